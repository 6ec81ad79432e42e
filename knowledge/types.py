"""Value types of the knowledge layer: frozen dataclasses, no I/O, no heavy imports.

Invariants:
- A ``Document``'s ``source`` is unique in an index: it is what ``remove`` takes and what a chunk
  belongs to. ``doc_id`` is what the agent cites and what gold labels name.
- A ``Chunk``'s ``chunk_id`` is a content hash: the same document text, metadata and chunking settings
  always give the same ids, so re-ingesting unchanged documents embeds nothing.
- A ``Hit``'s ``score`` only orders hits of one query (higher is better). Its ``relevance`` is an
  absolute query-passage similarity in [0, 1] (the cosine similarity of the query and the hit's best
  chunk embeddings, clipped at 0) that can be compared across queries, e.g. against a hand-off
  threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from knowledge.errors import ConfigError

DocFormat = Literal["markdown", "text"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Document:
    """One source document as loaded: ``markdown`` text keeps its headings for the chunker."""

    doc_id: str
    source: str
    text: str
    title: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    format: DocFormat = "text"
    # The file a document came from (a JSON Lines file holds many); "" when not from a file.
    file: str = ""


@dataclass(frozen=True)
class Chunk:
    """A retrievable piece of a document; ``text`` starts with the heading trail it sits under."""

    chunk_id: str
    doc_id: str
    source: str
    text: str
    index: int
    headings: tuple[str, ...] = ()
    title: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    file: str = ""


@dataclass(frozen=True)
class Hit:
    """One retrieved document, represented by its best chunk.

    ``score``: the fused ranking score, only comparable within one result list (higher is better).
    ``relevance``: cosine similarity of query and chunk embeddings clipped to [0, 1]; comparable
    across queries, so "best relevance below a threshold" can trigger a hand-off to a human.
    """

    doc_id: str
    source: str
    text: str
    score: float
    chunk_id: str
    relevance: float
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    title: str | None = None


@dataclass(frozen=True)
class Failure:
    """A document (or JSON Lines row) that could not be ingested, and why; ``skipped``: a file
    left unread on purpose (a symlink out of the folder, a special file)."""

    path: str
    reason: str
    skipped: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class IngestReport:
    """What one ingest did, counted per document and per chunk."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_unchanged: int = 0
    failures: tuple[Failure, ...] = ()
    seconds: float = 0.0
    skipped: tuple[Failure, ...] = ()  # files left unread on purpose, with the reason

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def documents(self) -> int:
        return self.added + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": {
                "added": self.added,
                "updated": self.updated,
                "unchanged": self.unchanged,
                "removed": self.removed,
                "failed": self.failed,
            },
            "chunks": {
                "added": self.chunks_added,
                "removed": self.chunks_removed,
                "unchanged": self.chunks_unchanged,
            },
            "failures": [{"path": f.path, "reason": f.reason} for f in self.failures],
            "skipped": [{"path": f.path, "reason": f.reason} for f in self.skipped],
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class KnowledgeConfig:
    """Where the index lives, which models to use, and the retrieval knobs.

    Defaults were tuned on the first half (by sorted id) of the DSTC11 conversations; see
    ``python -m benchmarks.retrieval_dstc11``.
    """

    persist_dir: Path | None = None  # None: an in-memory index that lives as long as the process
    collection: str = "supportloop"
    embedding_model: str | None = None  # None: the packaged all-MiniLM-L6-v2; "static[:model]": distilled
    model_cache: Path | None = (
        None  # where distilled static embeddings are kept (None: $SUPPORTLOOP_HOME/models)
    )
    chroma_url: str | None = None  # http(s)://host:port of a Chroma server, instead of persist_dir
    # Metadata fields tracked through the dialogue; empty: those inferred from the documents'
    # metadata at ingest (``entity_inference``), kept with the index.
    entity_fields: tuple[str, ...] = ()
    entity_inference: bool = True  # False: no entity tracking unless entity_fields names fields
    # The variants the documents compare side by side ("Aero 300", "Aero 500"); empty: inferred
    # from their tables (``knowledge.variants``). The agent asks a question naming none which one.
    variants: tuple[str, ...] = ()
    rerank: bool = False
    rerank_model: str | None = None  # a sentence-transformers CrossEncoder; None: sentence-level MiniLM
    chunk_size: int = 600  # characters of body text per chunk (the heading trail comes on top)
    chunk_overlap: int = 100  # characters of trailing sentences repeated at the next chunk's start
    # Retrieval knobs.
    dense_weight: float = 0.8  # share of the normalised dense score in the fused score; the rest is BM25
    history_weight: float = 0.3  # weight of earlier customer turns in the query, relative to the last
    history_turns: int = 2  # earlier customer turns that add context to the query
    entity_boost: float = 1.0  # added to the fused score of chunks of the most recently named entity
    entity_decay: float = 0.5  # boost factor per older mention (second most recent: boost * decay)
    entity_threshold: float = 0.7  # share of a name's weight a mention must cover to count
    rerank_depth: int = 20  # candidate documents the reranker re-scores
    rerank_weight: float = 0.5  # weight of the min-max normalised rerank score added to the fused score
    embed_batch_size: int = 64
    max_seq_length: int = 256
    # torch threads while embedding documents; None: torch's default (all cores). On a machine other
    # processes keep busy, 1 avoids threads spinning while they wait for each other.
    embed_threads: int | None = None

    def __post_init__(self) -> None:
        if self.persist_dir is not None and not isinstance(self.persist_dir, Path):
            object.__setattr__(self, "persist_dir", Path(self.persist_dir).expanduser())
        if isinstance(self.entity_fields, str):
            object.__setattr__(self, "entity_fields", (self.entity_fields,))
        object.__setattr__(self, "entity_fields", tuple(self.entity_fields))
        if isinstance(self.variants, str):
            object.__setattr__(self, "variants", (self.variants,))
        object.__setattr__(self, "variants", tuple(self.variants))
        if self.chunk_size <= 0 or not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError("chunk_size must be positive and chunk_overlap in [0, chunk_size)")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ConfigError("dense_weight must be between 0 and 1")

    @property
    def location(self) -> str:
        """Where the index lives, for messages and ``stats``."""
        if self.chroma_url:
            return self.chroma_url
        return str(self.persist_dir) if self.persist_dir is not None else ":memory:"
