"""Hybrid, conversation-aware retrieval over an in-memory snapshot of the index.

Invariants:
- A ``Snapshot`` is immutable: it is built once from the index (texts, metadata, vectors, the BM25
  index and the entity vocabulary) and replaced, never changed, after an ingest or a removal; so any
  number of threads can search one concurrently.
- Ranking: fused = dense_weight * min-max(cosine) + (1 - dense_weight) * BM25 / max(BM25), both over
  the candidate chunks; then + entity_boost * decay**r for chunks of an entity value named in the
  dialogue (r = 0 for the most recent turn naming one, 1 for the turn before, ...); then the best
  chunk stands for its document. Results are distinct documents, highest score first (or, asked
  for chunks, the best chunks, however many share a document).
- ``relevance`` is the clipped cosine similarity of the query vector and the chunk vector: absolute,
  comparable across queries.
- Entity tracking only uses the metadata fields it is given (configured, or inferred from the
  documents' metadata by the knowledge base) and the values found in the index.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.entities import EntityKey, EntityMatcher
from knowledge.text import tokenize
from knowledge.types import Hit, KnowledgeConfig

if TYPE_CHECKING:
    from knowledge.index import Records

Turn = tuple[str, str]
EmbedFn = Callable[[list[str]], np.ndarray]
CUSTOMER = "customer"


@dataclass(frozen=True)
class Snapshot:
    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    vectors: np.ndarray
    keys: list[str]  # document key (source) of each chunk
    bm25: Any
    matcher: EntityMatcher | None
    entity_values: dict[str, np.ndarray] = field(default_factory=dict)  # field -> value of each chunk

    @property
    def empty(self) -> bool:
        return not self.ids

    @classmethod
    def build(cls, records: Records, entity_fields: Sequence[str] = (), threshold: float = 0.7) -> Snapshot:
        keys = [str(m.get("source", i)) for i, m in zip(records.ids, records.metadatas, strict=True)]
        values = {
            name: np.array([str(m.get(name, "")) for m in records.metadatas], dtype=object)
            for name in entity_fields
        }
        return cls(
            records.ids,
            records.texts,
            records.metadatas,
            records.embeddings,
            keys,
            build_bm25(records.texts),
            build_matcher(records.texts, values, threshold),
            values,
        )


def build_bm25(texts: Sequence[str]) -> Any:
    if not texts:
        return None
    import bm25s

    corpus = [tokenize(t) or ["\x00"] for t in texts]  # bm25s rejects empty documents
    index = bm25s.BM25()
    index.index(corpus, show_progress=False)
    return index


def build_matcher(
    texts: Sequence[str], values: Mapping[str, np.ndarray], threshold: float
) -> EntityMatcher | None:
    grouped: dict[EntityKey, list[str]] = defaultdict(list)
    for name, column in values.items():
        for text, value in zip(texts, column, strict=True):
            if value:
                grouped[(name, value)].append(text)
    return EntityMatcher(grouped, threshold=threshold) if grouped else None


def bm25_scores(snapshot: Snapshot, text: str) -> np.ndarray:
    tokens = [t for t in tokenize(text) if t in snapshot.bm25.vocab_dict]
    if not tokens:
        return np.zeros(len(snapshot.ids), dtype=np.float32)
    return np.asarray(snapshot.bm25.get_scores(tokens), dtype=np.float32)


@dataclass(frozen=True)
class Query:
    """The newest customer message and the conversation it closes."""

    text: str
    history: tuple[Turn, ...] = ()

    def context(self, turns: int) -> str:
        """The last ``turns`` earlier customer messages, oldest first."""
        earlier = [text for role, text in self.history if role == CUSTOMER and text.strip()]
        return " ".join(earlier[-turns:]) if turns > 0 else ""

    def turns(self) -> list[Turn]:
        return [*self.history, (CUSTOMER, self.text)]


def entity_weights(query: Query, matcher: EntityMatcher | None, decay: float) -> dict[EntityKey, float]:
    """Entity values named in the dialogue -> decay**r, r counting turns that name one, newest first."""
    if matcher is None:
        return {}
    weights: dict[EntityKey, float] = {}
    rank = 0
    for _role, text in reversed(query.turns()):
        found = matcher.find(text)
        for key in found:
            weights.setdefault(key, decay**rank)
        rank += bool(found)
    return weights


def query_vector(query: Query, config: KnowledgeConfig, embed: EmbedFn) -> np.ndarray:
    context = query.context(config.history_turns)
    texts = [query.text, context] if context and config.history_weight > 0 else [query.text]
    vectors = embed(texts)
    vector = vectors[0] + (config.history_weight * vectors[1] if len(vectors) > 1 else 0.0)
    return np.asarray(vector / (np.linalg.norm(vector) or 1.0), dtype=np.float32)


def lexical_scores(snapshot: Snapshot, query: Query, config: KnowledgeConfig) -> np.ndarray:
    scores = bm25_scores(snapshot, query.text)
    context = query.context(config.history_turns)
    if context and config.history_weight > 0:
        scores = scores + config.history_weight * bm25_scores(snapshot, context)
    return scores


def entity_boosts(snapshot: Snapshot, weights: Mapping[EntityKey, float]) -> np.ndarray:
    boosts = np.zeros(len(snapshot.ids), dtype=np.float32)
    for (name, value), weight in weights.items():
        column = snapshot.entity_values.get(name)
        if column is not None:
            boosts = np.maximum(boosts, np.where(column == value, np.float32(weight), np.float32(0.0)))
    return boosts


def fuse(dense: np.ndarray, lexical: np.ndarray, candidates: np.ndarray, dense_weight: float) -> np.ndarray:
    """Min-max normalised cosine and max-normalised BM25 over the candidates, mixed linearly."""
    fused = np.zeros_like(dense)
    if not candidates.size:
        return fused
    d = dense[candidates]
    span = float(d.max() - d.min())
    d_norm = (d - d.min()) / span if span > 1e-9 else np.ones_like(d)
    top = float(lexical[candidates].max())
    l_norm = lexical[candidates] / top if top > 0 else np.zeros_like(d)
    fused[candidates] = dense_weight * d_norm + (1.0 - dense_weight) * l_norm
    return fused


@dataclass(frozen=True)
class Scored:
    """Per-chunk arrays of one query, and the query vector."""

    score: np.ndarray
    cosine: np.ndarray
    vector: np.ndarray


def score_chunks(snapshot: Snapshot, query: Query, config: KnowledgeConfig, embed: EmbedFn) -> Scored:
    vector = query_vector(query, config, embed)
    cosine = snapshot.vectors @ vector
    lexical = lexical_scores(snapshot, query, config)
    boosts = entity_boosts(snapshot, entity_weights(query, snapshot.matcher, config.entity_decay))
    candidates = np.flatnonzero(boosts > 0) if boosts.any() else np.arange(len(snapshot.ids))
    fused = fuse(cosine, lexical, candidates, config.dense_weight)
    if boosts.any():
        # Chunks outside the named entities still rank (below them), normalised on their own.
        others = np.flatnonzero(boosts == 0)
        fused += fuse(cosine, lexical, others, config.dense_weight) + config.entity_boost * boosts
    return Scored(fused, cosine, vector)


def best_per_document(snapshot: Snapshot, scores: np.ndarray, limit: int) -> list[int]:
    """Indices of the best chunk of each of the ``limit`` best documents."""
    chosen: list[int] = []
    seen: set[str] = set()
    for idx in np.argsort(-scores, kind="stable"):
        key = snapshot.keys[idx]
        if key in seen:
            continue
        seen.add(key)
        chosen.append(int(idx))
        if len(chosen) >= limit:
            break
    return chosen


def to_hit(snapshot: Snapshot, idx: int, score: float, cosine: float) -> Hit:
    meta = snapshot.metadatas[idx]
    return Hit(
        doc_id=str(meta.get("doc_id", snapshot.ids[idx])),
        source=str(meta.get("source", "")),
        text=snapshot.texts[idx],
        score=float(score),
        chunk_id=snapshot.ids[idx],
        relevance=float(min(1.0, max(0.0, cosine))),
        metadata=meta,
        title=(str(meta["title"]) or None) if meta.get("title") else None,
    )


Reranker = Callable[[Query, np.ndarray, list[str]], np.ndarray]


def search(
    snapshot: Snapshot,
    query: Query,
    k: int,
    config: KnowledgeConfig,
    embed: EmbedFn,
    reranker: Reranker | None = None,
    distinct: bool = True,
) -> list[Hit]:
    """At most ``k`` hits over distinct documents, best first; ``[]`` for an empty index or k < 1.
    ``distinct=False``: the ``k`` best chunks, several of them may come from one document."""
    if snapshot.empty or k < 1 or not query.text.strip():
        return []
    scored = score_chunks(snapshot, query, config, embed)
    depth = max(k, config.rerank_depth) if reranker is not None else k
    if distinct:
        chosen = best_per_document(snapshot, scored.score, depth)
    else:
        chosen = [int(i) for i in np.argsort(-scored.score, kind="stable")[:depth]]
    scores = scored.score[chosen]
    if reranker is not None and chosen:
        extra = reranker(query, scored.vector, [snapshot.texts[i] for i in chosen])
        scores = scores + config.rerank_weight * _minmax(extra)
        order = np.argsort(-scores, kind="stable")[:k]
        chosen, scores = [chosen[i] for i in order], scores[order]
    return [to_hit(snapshot, i, s, scored.cosine[i]) for i, s in zip(chosen, scores, strict=True)]


def _minmax(values: np.ndarray) -> np.ndarray:
    span = float(values.max() - values.min()) if values.size else 0.0
    return (values - values.min()) / span if span > 1e-9 else np.zeros_like(values)


def __getattr__(name: str) -> Any:
    # LangChain's retriever base pulls in langsmith and pydantic models (seconds on a small machine):
    # built on first use, so searching never pays for it.
    if name == "KnowledgeRetriever":
        return retriever_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def retriever_class() -> type:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document as LCDocument
    from langchain_core.retrievers import BaseRetriever

    class KnowledgeRetriever(BaseRetriever):
        """A LangChain retriever over a ``KnowledgeBase``: one ``Document`` per hit, best first.

        ``invoke(query)`` searches without context; ``invoke(query, history=[(role, text), ...])`` is
        conversation-aware; ``invoke(query, k=3)`` returns at most 3 documents for this call. Each document's metadata holds ``doc_id``, ``source``, ``score``,
        ``relevance`` and ``chunk_id`` next to the chunk's own metadata.
        """

        knowledge: Any
        k: int = 5

        def _get_relevant_documents(
            self,
            query: str,
            *,
            run_manager: CallbackManagerForRetrieverRun,
            history: Sequence[tuple[str, str]] = (),
            k: int | None = None,
        ) -> list[LCDocument]:
            hits = self.knowledge.search(query, k=self.k if k is None else k, history=history)
            return [LCDocument(page_content=h.text, metadata=hit_metadata(h), id=h.chunk_id) for h in hits]

    KnowledgeRetriever.__module__ = __name__
    return KnowledgeRetriever


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """A hit's chunk metadata plus its identity and scores, as a LangChain document carries them."""
    return {
        **hit.metadata,
        "doc_id": hit.doc_id,
        "source": hit.source,
        "score": hit.score,
        "relevance": hit.relevance,
        "chunk_id": hit.chunk_id,
    }
