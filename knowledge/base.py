"""``KnowledgeBase``: ingest documents, keep the index in sync with them, and search it.

Invariants:
- Construction is cheap; the index, the embedding model and the search snapshot load on first use,
  once, under a lock.
- Ingest compares content-hash chunk ids with the ids already stored before embedding anything:
  unchanged documents cost no embedding; a changed document's new chunks are added and its old ones
  deleted (none left stale); rows that vanished from a re-ingested JSON Lines file are removed.
- Every mutation (ingest, remove) invalidates the search snapshot; the next search rebuilds it.
- Every ingest that changes the index (or finds no inference stored), and every removal, infers the
  entity fields from the stored documents' metadata and keeps them with the index. Searches track
  the configured ``entity_fields`` when set, else those inferred ones (unless ``entity_inference``
  is off).
- ``search`` is safe to call from several threads.
- Every chunk written carries ``ingested_at`` (``loaders.INGESTED_AT``, ISO 8601 UTC) in its
  metadata, so a hit says when its text entered the index; unchanged chunks are never rewritten,
  so re-ingesting an unchanged document keeps its first time. Chunks stored before this existed
  have none.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.chunking import chunk_document
from knowledge.entities import infer_entity_fields
from knowledge.loaders import INGESTED_AT, RESERVED_KEYS, discover, load_file
from knowledge.types import Chunk, Document, Failure, Hit, IngestReport, KnowledgeConfig

# Part of every file digest: bump it when loading or chunking changes what a file turns into.
CHUNKING_FORMAT = 1

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import numpy as np
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever

    from knowledge.index import ChromaIndex
    from knowledge.retrieval import Snapshot


@dataclass
class _Plan:
    """What an ingest will write: chunks to embed and add, ids to delete, per-document outcome."""

    add: list[Chunk] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_unchanged: int = 0


def words_of(texts: Iterable[str]) -> frozenset[str]:
    """The lower-cased words of ``texts`` ("tip-over" kept whole): ``KnowledgeBase.words``."""
    return frozenset(
        word for text in texts for word in re.findall(r"[a-z0-9]+(?:['’-][a-z0-9]+)*", text.lower())
    )


# A heading: a "#" line, or a line whose every word over three letters is capitalised.
_TITLE_LINE = re.compile(r"\s*#|(?!.*(?<![\w'’-])[a-z][\w'’-]{3,})")
# A word is read as a name when the pages write it capitalised this often, or it has a digit or a
# capital past its first letter ("E4", "HEPA", "iPhone"): "Good" in "Air quality: Good" is not one.
NAMED_TIMES = 3
_SHAPED = re.compile(r"\d|\w[A-Z]")
_CASED_WORD = re.compile(r"[A-Za-z0-9]+(?:['’-][A-Za-z0-9]+)*")


def cased_words(texts: Iterable[str]) -> dict[str, str]:
    """The names ``texts`` write, by their lower-cased form, each as it is written mid-sentence
    ("aero" -> "Aero", "e4" -> "E4", "hepa" -> "HEPA"): a word never written lower-case, and
    written capitalised after a lower-case word (a heading's words are not read), so a word that
    only opens sentences ("Unplug") is not one. Its most common form wins. A word of one letter is
    not one; nor one written so fewer than ``NAMED_TIMES`` times, unless it has a digit or a
    capital past its first letter."""
    lower: set[str] = set()
    seen: dict[str, dict[str, int]] = {}
    for text in texts:
        for line in text.splitlines():
            if _TITLE_LINE.match(line):
                continue  # a heading's words are capitalised as a title ("Shipping Options and Costs")
            _read_line(line, lower, seen)
    return {
        key: max(forms, key=lambda w: (forms[w], w))
        for key, forms in seen.items()
        if key not in lower
        and len(key) > 1
        and (sum(forms.values()) >= NAMED_TIMES or _SHAPED.search(" ".join(forms)))
    }


def _read_line(line: str, lower: set[str], seen: dict[str, dict[str, int]]) -> None:
    """Count ``line``'s words into ``lower`` (written lower-case) and ``seen`` (capitalised after a
    lower-case word: its forms and how often)."""
    previous, end = "", 0
    for match in _CASED_WORD.finditer(line):
        word = match.group(0)
        after_lower = previous == previous.lower() != "" and line[end : match.start()] in (" ", ", ")
        previous, end = word, match.end()
        if word == word.lower():
            lower.add(word)
            continue
        if after_lower:
            forms = seen.setdefault(word.lower(), {})
            forms[word] = forms.get(word, 0) + 1


class KnowledgeBase:
    """Product documents in a Chroma index, searchable with hybrid, conversation-aware retrieval."""

    def __init__(self, config: KnowledgeConfig, embeddings: Embeddings | None = None):
        self.config = config
        self._embeddings = embeddings
        self._index: ChromaIndex | None = None
        self._snapshot: Snapshot | None = None
        self._variants: tuple[str, ...] | None = None
        self._words: frozenset[str] | None = None
        self._cased: dict[str, str] | None = None
        self._reranker: Any = None
        self._lock = threading.RLock()

    # -- lazy resources -------------------------------------------------------------------------

    @property
    def embeddings(self) -> Embeddings:
        if self._embeddings is None:
            with self._lock:
                if self._embeddings is None:
                    from knowledge.embeddings import load_embeddings

                    self._embeddings = load_embeddings(
                        self.config.embedding_model,
                        batch_size=self.config.embed_batch_size,
                        max_seq_length=self.config.max_seq_length,
                        threads=self.config.embed_threads,
                        cache_dir=self.config.model_cache,
                    )
        return self._embeddings

    @property
    def index(self) -> ChromaIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    from knowledge.embeddings import model_id
                    from knowledge.index import ChromaIndex

                    self._index = ChromaIndex(self.config, self.embeddings, model_id(self.embeddings))
        return self._index

    def embed(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Normalised vectors for ``texts`` through whichever ``Embeddings`` this base uses."""
        import numpy as np

        encode = getattr(self.embeddings, "encode", None)
        if callable(encode):
            return np.asarray(encode(texts, progress=progress), dtype=np.float32)
        vectors = np.asarray(self.embeddings.embed_documents(texts), dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    # -- ingestion --------------------------------------------------------------------------------

    def ingest(self, paths: Sequence[str | Path], *, progress: bool = False) -> IngestReport:
        """Ingest files, folders (recursively) and globs; unreadable documents are reported, not fatal.

        A file whose bytes (and the chunking settings) match its last complete ingest is skipped
        without being loaded: its documents count as unchanged. Files ``discover`` leaves unread
        (symlinks out of a folder, special files) are listed in ``report.skipped``."""
        started = time.perf_counter()
        refs, found = discover(paths)
        failures = [f for f in found if not f.skipped]
        unread = tuple(f for f in found if f.skipped)
        docs: list[Document] = []
        complete_files: set[str] = set()
        loaded: set[str] = set()
        digests: dict[str, str] = {}
        with self._lock:
            states = self.index.file_states()
        skipped = [0, 0]  # documents, chunks
        for ref in _progress(refs, progress, "loading"):
            digest = _file_digest(ref.path, self._chunking_key())
            state = states.get(ref.source) or {}
            if digest is not None and state.get("sha256") == digest:
                skipped[0] += int(state.get("docs", 0))
                skipped[1] += int(state.get("chunks", 0))
                continue
            result = load_file(ref)
            loaded.add(ref.source)
            docs.extend(result.documents)
            failures.extend(result.failures)
            if not result.failures:
                complete_files.add(ref.source)
                if digest is not None:
                    digests[ref.source] = digest
        report = self._ingest(docs, failures, complete_files, progress, started, digests, loaded)
        report = replace(
            report,
            unchanged=report.unchanged + skipped[0],
            chunks_unchanged=report.chunks_unchanged + skipped[1],
            seconds=time.perf_counter() - started,
            skipped=unread,
        )
        log.info(
            "ingest: %d added, %d updated, %d unchanged, %d removed, %d failed, %d skipped (%d chunks added)",
            report.added,
            report.updated,
            report.unchanged,
            report.removed,
            report.failed,
            len(report.skipped),
            report.chunks_added,
        )
        return report

    def ingest_documents(self, docs: Iterable[Document], *, progress: bool = False) -> IngestReport:
        """Ingest documents built by the caller (each replaces the document of the same source)."""
        return self._ingest(list(docs), [], set(), progress, time.perf_counter())

    def _ingest(
        self,
        docs: list[Document],
        failures: list[Failure],
        complete_files: set[str],
        progress: bool,
        started: float,
        digests: dict[str, str] | None = None,
        files: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> IngestReport:
        """``digests``: file source -> digest of the files loaded complete (``ingest``); ``None``
        (documents from the caller) forgets every file's state once anything changes."""
        docs, dupes = _unique_sources(docs)
        failures.extend(dupes)
        chunks = {
            d.source: chunk_document(d, self.config.chunk_size, self.config.chunk_overlap) for d in docs
        }
        for source in [s for s, c in chunks.items() if not c]:
            failures.append(Failure(source, "no text found in the document"))
            del chunks[source]
        with self._lock:
            plan = self._plan(chunks, complete_files)
            self._write(plan, progress)
            if plan.add or plan.delete:
                self._forget()
            if digests is None:
                if plan.add or plan.delete:
                    self.index.update_file_states({}, clear=True)
            else:
                self.index.update_file_states(_file_states(docs, chunks, failures, digests, files))
            if plan.add or plan.delete or self.index.entity_fields() is None:
                self.index.set_entity_fields(self._infer_entity_fields())
        return IngestReport(
            added=plan.added,
            updated=plan.updated,
            unchanged=plan.unchanged,
            removed=plan.removed,
            chunks_added=len(plan.add),
            chunks_removed=len(plan.delete),
            chunks_unchanged=plan.chunks_unchanged,
            failures=tuple(failures),
            seconds=time.perf_counter() - started,
        )

    def _chunking_key(self) -> str:
        return f"{CHUNKING_FORMAT}:{self.config.chunk_size}:{self.config.chunk_overlap}"

    def _plan(self, chunks: dict[str, list[Chunk]], complete_files: set[str]) -> _Plan:
        plan = _Plan()
        if not chunks and not complete_files:  # e.g. every file skipped as unchanged
            return plan
        stored, files = self._stored_ids()
        for source, new in chunks.items():
            old = stored.get(source, set())
            new_ids = {c.chunk_id for c in new}
            plan.add.extend(c for c in new if c.chunk_id not in old)
            plan.delete.extend(sorted(old - new_ids))
            plan.chunks_unchanged += len(old & new_ids)
            if not old:
                plan.added += 1
            elif old == new_ids:
                plan.unchanged += 1
            else:
                plan.updated += 1
        for file in complete_files:
            for source in files.get(file, set()) - set(chunks):
                plan.delete.extend(sorted(stored[source]))
                plan.removed += 1
        return plan

    def _stored_ids(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """Stored chunk ids by source, and the sources of each file (one pass over metadata only)."""
        by_source: dict[str, set[str]] = defaultdict(set)
        by_file: dict[str, set[str]] = defaultdict(set)
        for ids, metas in self.index.metadata_pages():
            for chunk_id, meta in zip(ids, metas, strict=True):
                source = str(meta.get("source", ""))
                by_source[source].add(chunk_id)
                if meta.get("file"):
                    by_file[str(meta["file"])].add(source)
        return by_source, by_file

    def _write(self, plan: _Plan, progress: bool) -> None:
        if plan.add:
            texts = [c.text for c in plan.add]
            vectors = self.embed(texts, progress=progress)
            now = datetime.now(UTC).isoformat()
            self.index.upsert(
                [c.chunk_id for c in plan.add], texts, [_chunk_metadata(c, now) for c in plan.add], vectors
            )
        if plan.delete:
            self.index.delete(plan.delete)

    # -- maintenance -------------------------------------------------------------------------------

    def remove(self, source: str) -> int:
        """Remove a source (or every row of a JSON Lines file); returns the number of chunks removed."""
        with self._lock:
            ids = self.index.ids_where({"$or": [{"source": source}, {"file": source}]})
            if ids:
                self.index.delete(ids)
                self._forget()
                self.index.update_file_states({}, clear=True)  # the next ingest checks every file again
                self.index.set_entity_fields(self._infer_entity_fields())
        return len(ids)

    def count(self) -> int:
        """Number of chunks in the index."""
        return self.index.count()

    def stats(self) -> dict[str, Any]:
        from knowledge.embeddings import model_id

        fields, origin = self.entity_fields()
        docs: set[str] = set()
        sources: set[str] = set()
        chunks = 0
        for _ids, metas in self.index.metadata_pages():
            chunks += len(metas)
            for meta in metas:
                sources.add(str(meta.get("file") or meta.get("source", "")))
                docs.add(str(meta.get("source", "")))
        return {
            "documents": len(docs),
            "chunks": chunks,
            "sources": len(sources),
            "collection": self.config.collection,
            "persist_dir": str(self.config.persist_dir) if self.config.persist_dir else None,
            "chroma_url": self.config.chroma_url,
            "embedding_model": model_id(self.embeddings),
            "entity_fields": list(fields),
            "entity_fields_origin": origin,
            "variants": list(self.variants()),
            "variants_origin": "configured" if self.config.variants else "inferred",
        }

    def variants(self) -> tuple[str, ...]:
        """The variants the documents compare side by side (``knowledge.variants``): the configured
        ones, else those the stored tables show; computed once per version of the index."""
        if self.config.variants:
            return self.config.variants
        with self._lock:
            if self._variants is None:
                from knowledge.variants import infer_variants

                self._variants = infer_variants(
                    (str(meta.get("source", "")), text)
                    for _ids, texts, metas in self.index.text_pages()
                    for text, meta in zip(texts, metas, strict=True)
                )
            return self._variants

    def words(self) -> frozenset[str]:
        """Every word of the indexed documents, lower-cased ("tip-over" kept whole): what the help
        pages name anywhere, so the agent can tell a thing they never mention from one the passages
        it was shown leave out; computed once per version of the index."""
        with self._lock:
            if self._words is None:
                self._words = words_of(self._texts())
            return self._words

    def cased(self) -> dict[str, str]:
        """The indexed documents' words that they only ever write with capitals, by their
        lower-cased form ("aero" -> "Aero", "e4" -> "E4", ``cased_words``): how the agent reads a
        message typed in lower case; computed once per version of the index."""
        with self._lock:
            if self._cased is None:
                self._cased = cased_words(self._texts())
            return self._cased

    def _texts(self) -> Iterator[str]:
        """Every indexed chunk's text."""
        return (text for _ids, texts, _metas in self.index.text_pages() for text in texts)

    def _forget(self) -> None:
        """Drop what was computed from the index (its snapshot, variants and words); under the lock."""
        self._snapshot = None
        self._variants = None
        self._words = None
        self._cased = None

    def entity_fields(self) -> tuple[tuple[str, ...], str]:
        """The metadata fields entity tracking uses, and where they come from: ``"configured"``
        (``entity_fields`` is set: it wins), ``"inferred"`` (from the documents' metadata, kept with
        the index; possibly none) or ``"off"`` (neither set nor inferred: ``entity_inference=False``)."""
        if self.config.entity_fields:
            return self.config.entity_fields, "configured"
        if not self.config.entity_inference:
            return (), "off"
        with self._lock:
            stored = self.index.entity_fields()
            # An index built before inference existed: inferred now, kept at its next ingest.
            return (stored if stored is not None else self._infer_entity_fields()), "inferred"

    def _infer_entity_fields(self) -> tuple[str, ...]:
        return infer_entity_fields(_document_metadata(self.index.metadata_pages()))

    def sources(self) -> list[str]:
        """Every stored file source (JSON Lines files once, not per row), sorted."""
        found: set[str] = set()
        for _ids, metas in self.index.metadata_pages():
            found.update(str(m.get("file") or m.get("source", "")) for m in metas)
        return sorted(found)

    def stored_chunks(self) -> Iterator[Chunk]:
        """Every stored chunk as the index holds it now (text and metadata, no vectors)."""
        for ids, texts, metas in self.index.text_pages():
            for chunk_id, text, meta in zip(ids, texts, metas, strict=True):
                yield Chunk(
                    chunk_id,
                    str(meta.get("doc_id", chunk_id)),
                    str(meta.get("source", "")),
                    text,
                    int(meta.get("chunk_index", 0)),
                    title=str(meta["title"]) if meta.get("title") else None,
                    file=str(meta.get("file", "")),
                )

    def close(self) -> None:
        """Free an in-memory index (persistent ones stay on disk)."""
        with self._lock:
            if self._index is not None:
                self._index.drop()
                self._index = None
                self._forget()

    # -- search -------------------------------------------------------------------------------------

    def search(
        self, query: str, *, k: int = 5, history: Sequence[tuple[str, str]] = (), distinct: bool = True
    ) -> list[Hit]:
        """At most ``k`` hits over distinct documents, best first; ``history`` holds (role, text) turns.
        ``distinct=False``: the ``k`` best chunks, several of them may come from one document."""
        from knowledge.retrieval import Query, search

        snapshot = self.snapshot()
        turns = tuple((str(role), str(text)) for role, text in history)
        hits = search(
            snapshot, Query(query, turns), k, self.config, self._embed_queries, self._rerank_fn(), distinct
        )
        log.debug(
            "search: k=%d history=%d turns -> %d hits, best relevance %s, documents %s",
            k,
            len(turns),
            len(hits),
            f"{hits[0].relevance:.3f}" if hits else "none",
            [h.doc_id for h in hits],
        )
        return hits

    def snapshot(self) -> Snapshot:
        """The current search snapshot, built from the index if a mutation invalidated it."""
        snap = self._snapshot
        if snap is None:
            with self._lock:
                if self._snapshot is None:
                    from knowledge.retrieval import Snapshot

                    fields, _origin = self.entity_fields()
                    self._snapshot = Snapshot.build(
                        self.index.records(), fields, self.config.entity_threshold
                    )
                snap = self._snapshot
        return snap

    def refresh(self) -> None:
        """Forget the snapshot, e.g. after another process changed a shared index."""
        with self._lock:
            self._forget()

    def _embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.embed(texts)

    def _rerank_fn(self) -> Any:
        if not self.config.rerank:
            return None
        if self._reranker is None:
            with self._lock:
                if self._reranker is None:
                    from knowledge.rerank import load_reranker

                    self._reranker = load_reranker(self.config, self.embed)
        return self._reranker

    def as_retriever(self, *, k: int = 5) -> BaseRetriever:
        """This base as a LangChain retriever (``invoke(query, history=[...])`` also works)."""
        from knowledge.retrieval import retriever_class

        retriever: BaseRetriever = retriever_class()(knowledge=self, k=k)
        return retriever


def _chunk_metadata(chunk: Chunk, ingested_at: str) -> dict[str, Any]:
    meta: dict[str, Any] = dict(chunk.metadata)
    meta.update(
        {INGESTED_AT: ingested_at},
        doc_id=chunk.doc_id,
        source=chunk.source,
        file=chunk.file,
        chunk_index=chunk.index,
        headings=" > ".join(chunk.headings),
    )
    if chunk.title:
        meta["title"] = chunk.title
    return meta


def _document_metadata(pages: Iterable[tuple[list[str], list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """The metadata of each stored document (its first chunk's, less what the index adds)."""
    documents: dict[str, dict[str, Any]] = {}
    for _ids, metas in pages:
        for meta in metas:
            source = str(meta.get("source", ""))
            if source not in documents:
                documents[source] = {k: v for k, v in meta.items() if k not in RESERVED_KEYS}
    return list(documents.values())


def _file_digest(path: Path, key: str) -> str | None:
    """SHA-256 of the chunking settings and the file's bytes; None when it cannot be read."""
    import hashlib

    digest = hashlib.sha256(key.encode())
    if not path.is_file():  # a FIFO would block the read; load_file reports it
        return None
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _file_states(
    docs: list[Document],
    chunks: dict[str, list[Chunk]],
    failures: list[Failure],
    digests: dict[str, str],
    files: set[str],
) -> dict[str, dict[str, Any] | None]:
    """The state to record for each file of an ``ingest`` call: digest and counts for files whose
    every document is in the index now, ``None`` (forget) for the others."""
    failed = {f.path for f in failures}
    by_file: dict[str, list[str]] = defaultdict(list)
    for doc in docs:
        by_file[doc.file].append(doc.source)
    states: dict[str, dict[str, Any] | None] = {source: None for source in files}
    for file, digest in digests.items():
        sources = by_file.get(file, [])
        if sources and file not in failed and not failed.intersection(sources):
            states[file] = {
                "sha256": digest,
                "docs": len(sources),
                "chunks": sum(len(chunks[s]) for s in sources),
            }
    return states


def _unique_sources(docs: list[Document]) -> tuple[list[Document], list[Failure]]:
    seen: dict[str, Document] = {}
    failures: list[Failure] = []
    for doc in docs:
        if doc.source in seen:
            failures.append(Failure(doc.source, "another document in this ingest has the same source"))
        else:
            seen[doc.source] = doc
    return list(seen.values()), failures


def _progress(items: Sequence[Any], enabled: bool, desc: str) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", leave=False)
