"""The optional second stage: re-score the best fused candidates with a finer model.

Invariants:
- A reranker maps (query, query vector, candidate texts) to one score in [0, 1] per text; the
  retriever adds ``rerank_weight`` times the min-max normalised score to the fused score.
- ``rerank_model`` names a sentence-transformers ``CrossEncoder`` (local path, or a name in the local
  cache); without one, candidates are re-scored by their best-matching sentence under the embedding
  model already loaded, so reranking never needs a download.
- Models load once, on first use.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.errors import ConfigError
from knowledge.retrieval import Query
from knowledge.types import KnowledgeConfig

Reranker = Callable[[Query, np.ndarray, list[str]], np.ndarray]
EmbedFn = Callable[[list[str]], np.ndarray]

_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
_CACHE_SIZE = 50_000


def load_reranker(config: KnowledgeConfig, embed: EmbedFn) -> Reranker:
    if config.rerank_model:
        return CrossEncoderReranker(config.rerank_model)
    return SentenceReranker(embed)


class SentenceReranker:
    """Scores a passage by its best sentence: a chunk whose one relevant sentence is diluted in the
    chunk's mean embedding moves up."""

    def __init__(self, embed: EmbedFn):
        self._embed = embed
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def __call__(self, query: Query, vector: np.ndarray, texts: list[str]) -> np.ndarray:
        per_text = [[s for s in _SENTENCES.split(t) if len(s.split()) >= 3] or [t] for t in texts]
        self._ensure([s for sentences in per_text for s in sentences])
        return np.array(
            [max(float(self._vectors[s] @ vector) for s in sentences) for sentences in per_text],
            dtype=np.float32,
        )

    def _ensure(self, sentences: list[str]) -> None:
        missing = list(dict.fromkeys(s for s in sentences if s not in self._vectors))
        if not missing:
            return
        vectors = self._embed(missing)
        with self._lock:
            if len(self._vectors) + len(missing) > _CACHE_SIZE:
                self._vectors.clear()
            self._vectors.update(zip(missing, vectors, strict=True))


class CrossEncoderReranker:
    """A sentence-transformers cross-encoder reading query and passage together."""

    def __init__(self, model: str):
        self.model_name = model
        self._model: Any = None
        self._lock = threading.Lock()

    def __call__(self, query: Query, vector: np.ndarray, texts: list[str]) -> np.ndarray:
        model = self._load()
        with self._lock:
            scores = model.predict([(query.text, t) for t in texts], show_progress_bar=False)
        return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(scores, dtype=np.float32))), dtype=np.float32)

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _cross_encoder(self.model_name)
        return self._model


def _cross_encoder(name: str) -> Any:
    local = Path(name).expanduser()
    if _looks_local(name) and not local.exists():
        raise ConfigError(f"cannot load rerank model {name!r}: no such directory")
    from sentence_transformers import CrossEncoder

    try:
        if local.exists():
            return CrossEncoder(str(local), device="cpu")
        return CrossEncoder(name, device="cpu", local_files_only=True)
    except Exception as exc:
        raise ConfigError(
            f"cannot load rerank model {name!r} ({exc}); give a local path to a sentence-transformers "
            "CrossEncoder, or leave rerank_model unset to rerank with the embedding model"
        ) from None


def _looks_local(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or "\\" in name
