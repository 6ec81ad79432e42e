"""The vector store: a Chroma collection reached through ``langchain-chroma``; the only importer of chromadb.

Invariants:
- Chroma's built-in embedding function is never used (it downloads a model): every write carries
  vectors computed by our ``Embeddings``, and the collection is created with ``embedding_function=None``.
- A collection remembers the embedding model that filled it; opening it with another model is an
  error, since vectors of two models cannot be compared.
- In-memory indexes get a private collection name: Chroma shares in-memory state per process.
- Telemetry is off.
- Whatever Chroma raises (its own errors, sqlite's, HTTP's) leaves this module as a one-line
  ``StoreError`` naming the collection and where it lives.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from knowledge.errors import ConfigError, StoreError, one_line
from knowledge.types import KnowledgeConfig

if TYPE_CHECKING:
    import numpy as np
    from langchain_chroma import Chroma
    from langchain_core.embeddings import Embeddings

_COLLECTION_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")
PAGE = 5000
# Collection metadata key holding {file source: {"sha256", "docs", "chunks"}} of files ingested
# complete, so that re-ingesting an unchanged file skips loading, chunking and the id comparison.
FILES_KEY = "supportloop_files"
# Collection metadata key holding the JSON list of entity fields inferred from the documents'
# metadata at the last ingest (absent: never inferred, e.g. an index built before inference).
ENTITY_FIELDS_KEY = "supportloop_entity_fields"


def check_collection_name(name: str) -> str:
    if not _COLLECTION_NAME.match(name) or ".." in name:
        raise ConfigError(
            f"invalid collection name {name!r}: use 3-512 characters from a-z A-Z 0-9 . _ -, "
            "starting and ending with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class Records:
    """Everything stored for a set of chunks, in one order."""

    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    embeddings: np.ndarray


class ChromaIndex:
    """A Chroma collection holding chunk texts, metadata and vectors."""

    def __init__(self, config: KnowledgeConfig, embeddings: Embeddings, embedding_id: str):
        name = check_collection_name(config.collection)
        ephemeral = config.persist_dir is None and not config.chroma_url
        self.name = f"{name[:480]}-{uuid.uuid4().hex[:12]}" if ephemeral else name
        self.config = config
        self.embedding_id = embedding_id
        self.client = _client(config)
        with self._failures("open"):
            self.collection = self.client.get_or_create_collection(
                self.name,
                embedding_function=None,
                metadata={"embedding_model": embedding_id},
                configuration={"hnsw": {"space": "cosine"}},
            )
        stored = (self.collection.metadata or {}).get("embedding_model")
        if stored and stored != embedding_id:
            raise ConfigError(
                f"collection {self.name!r} at {config.location} was built with embedding model {stored!r}, "
                f"not {embedding_id!r}: use that model, another collection, or remove the index"
            )
        self._embeddings = embeddings
        self._vectorstore: Chroma | None = None

    @property
    def vectorstore(self) -> Chroma:
        """The same collection as a LangChain ``Chroma`` vector store (for LangChain users)."""
        if self._vectorstore is None:
            from langchain_chroma import Chroma

            with self._failures("open"):
                self._vectorstore = Chroma(
                    client=self.client, collection_name=self.name, embedding_function=self._embeddings
                )
        return self._vectorstore

    @contextlib.contextmanager
    def _failures(self, action: str) -> Iterator[None]:
        """Chroma's exceptions, whatever their type, become one-line ``StoreError``s."""
        try:
            yield
        except Exception as exc:
            where = f"collection {self.name!r} at {self.config.location}"
            raise StoreError(f"cannot {action} {where}: {one_line(exc)}") from None

    def count(self) -> int:
        with self._failures("read"):
            return int(self.collection.count())

    def max_batch(self) -> int:
        try:
            return max(1, min(int(self.client.get_max_batch_size()), PAGE))
        except Exception:  # older servers do not say; a conservative batch always works
            return 1000

    def upsert(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        vectors: np.ndarray,
    ) -> None:
        step = self.max_batch()
        for i in range(0, len(ids), step):
            with self._failures("write"):
                self.collection.upsert(
                    ids=list(ids[i : i + step]),
                    documents=list(texts[i : i + step]),
                    metadatas=list(metadatas[i : i + step]),  # type: ignore[arg-type]
                    embeddings=vectors[i : i + step],
                )

    def delete(self, ids: Sequence[str]) -> None:
        step = self.max_batch()
        for i in range(0, len(ids), step):
            with self._failures("write"):
                self.collection.delete(ids=list(ids[i : i + step]))

    def ids_where(self, where: dict[str, Any]) -> list[str]:
        with self._failures("read"):
            return list(self.collection.get(where=where, include=[])["ids"])

    def metadata_pages(self) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
        """(ids, metadatas) of the whole collection, a page at a time."""
        for page in self._pages(["metadatas"]):
            yield list(page["ids"]), [dict(m or {}) for m in page["metadatas"]]

    def text_pages(self) -> Iterator[tuple[list[str], list[str], list[dict[str, Any]]]]:
        """(ids, texts, metadatas) of the whole collection, a page at a time (no vectors)."""
        for page in self._pages(["documents", "metadatas"]):
            yield (
                list(page["ids"]),
                [t or "" for t in page["documents"]],
                [dict(m or {}) for m in page["metadatas"]],
            )

    def records(self) -> Records:
        """Every chunk with text, metadata and vector (the retriever's in-memory snapshot)."""
        import numpy as np

        ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any]] = []
        vectors: list[np.ndarray] = []
        for page in self._pages(["documents", "metadatas", "embeddings"]):
            ids.extend(page["ids"])
            texts.extend(t or "" for t in page["documents"])
            metas.extend(dict(m or {}) for m in page["metadatas"])
            vectors.append(np.asarray(page["embeddings"], dtype=np.float32))
        matrix = np.concatenate(vectors) if vectors and ids else np.zeros((0, 0), dtype=np.float32)
        return Records(ids, texts, metas, matrix)

    def _pages(self, include: list[str]) -> Iterator[dict[str, Any]]:
        total = self.count()
        for offset in range(0, total, PAGE):
            with self._failures("read"):
                page = self.collection.get(include=include, limit=PAGE, offset=offset)  # type: ignore[arg-type]
            if not page["ids"]:
                break
            yield page

    def file_states(self) -> dict[str, dict[str, Any]]:
        """What the last complete ingest of each file recorded (empty when unknown or unreadable)."""
        raw = (self.collection.metadata or {}).get(FILES_KEY)
        try:
            states = json.loads(raw) if isinstance(raw, str) else {}
        except ValueError:
            return {}
        return states if isinstance(states, dict) else {}

    def update_file_states(self, changes: dict[str, dict[str, Any] | None], *, clear: bool = False) -> None:
        """Set (or, with ``None``, forget) files' states; ``clear`` forgets every other file first."""
        current = self.file_states()
        states = {} if clear else dict(current)
        for source, state in changes.items():
            if state is None:
                states.pop(source, None)
            else:
                states[source] = state
        if states != current:
            self._set_metadata(FILES_KEY, json.dumps(states, sort_keys=True) if states else None)

    def entity_fields(self) -> tuple[str, ...] | None:
        """The entity fields inferred at the last ingest; ``None`` when never inferred (or unreadable)."""
        raw = (self.collection.metadata or {}).get(ENTITY_FIELDS_KEY)
        try:
            fields = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            return None
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            return None
        return tuple(fields)

    def set_entity_fields(self, fields: Sequence[str]) -> None:
        """Remember the inferred entity fields with the collection, for every later opening."""
        if self.entity_fields() != tuple(fields):
            self._set_metadata(ENTITY_FIELDS_KEY, json.dumps(list(fields)))

    def _set_metadata(self, key: str, value: str | None) -> None:
        """Set (or, with ``None``, drop) one key of the collection's metadata, keeping the others."""
        metadata = {k: v for k, v in (self.collection.metadata or {}).items() if k != key}
        if value is not None:
            metadata[key] = value
        with self._failures("update"):
            self.collection.modify(metadata=metadata)

    def drop(self) -> None:
        """Delete an in-memory collection (persistent ones are left alone)."""
        if self.config.persist_dir is None and not self.config.chroma_url:
            with contextlib.suppress(Exception):  # already gone: nothing to free
                self.client.delete_collection(self.name)


def _client(config: KnowledgeConfig) -> Any:
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    try:
        if config.chroma_url:
            url = urlparse(config.chroma_url if "://" in config.chroma_url else f"http://{config.chroma_url}")
            if not url.hostname:
                raise ConfigError(f"invalid chroma_url {config.chroma_url!r}: expected http://host:port")
            port = url.port or (443 if url.scheme == "https" else 8000)
            return chromadb.HttpClient(
                host=url.hostname, port=port, ssl=url.scheme == "https", settings=settings
            )
        if config.persist_dir is not None:
            config.persist_dir.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(config.persist_dir), settings=settings)
        return chromadb.EphemeralClient(settings=settings)
    except ConfigError:
        raise
    except Exception as exc:
        raise StoreError(f"cannot open the Chroma index at {config.location}: {one_line(exc)}") from None
