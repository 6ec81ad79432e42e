"""Static embeddings distilled from a sentence-transformers model: one vector per vocabulary token.

``embedding_model: static`` (the packaged all-MiniLM-L6-v2) or ``static:<model name or path>``.
A text's vector is the weighted mean of its tokens' vectors: no transformer runs at ingest or
query time, so embedding costs a tokenizer pass and a table lookup (the model2vec idea, done
here with torch and numpy, without a new dependency).

Distillation, once per source model, cached on disk (``cache_dir``, default
``$SUPPORTLOOP_HOME/models`` or ``~/.supportloop/models``):

1. every vocabulary token goes through the model as a one-token sentence (``[CLS] t [SEP]``),
   pooled the way the model pools sentences (mean over the positions);
2. PCA to ``dims`` components (decorrelates the space; 256 by default);
3. each token vector is scaled by a smooth inverse frequency weight, ``a / (a + p(rank))`` with
   p from Zipf's law over the vocabulary order (frequent pieces count less), as model2vec does.

Quality is lower than the transformer's; ``python -m benchmarks.retrieval_dstc11 --static``
and ``python -m benchmarks.ingest_dstc11 --static`` report both, side by side.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.encoding import DEFAULT_MODEL_ID, EncodingEmbeddings, default_model_path
from knowledge.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

PREFIX = "static"
FORMAT = 1  # bump when the distillation changes: old caches are rebuilt, never reused
SIF_COEFFICIENT = 1e-4


def is_static(name: str | None) -> bool:
    return bool(name) and (name == PREFIX or str(name).startswith(PREFIX + ":"))


def default_cache_dir() -> Path:
    home = os.environ.get("SUPPORTLOOP_HOME") or Path.home() / ".supportloop"
    return Path(home).expanduser() / "models"


class StaticEmbeddings(EncodingEmbeddings):
    """A LangChain ``Embeddings`` over a distilled token-vector table (see the module docstring)."""

    def __init__(
        self, name: str = PREFIX, *, dims: int = 256, cache_dir: Path | None = None, batch: int = 4096
    ):
        if not is_static(name):
            raise ConfigError(f"not a static embedding name: {name!r} (use 'static' or 'static:<model>')")
        self.source = name.partition(":")[2] or None  # None: the packaged MiniLM
        self.dims = dims
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.batch = batch
        self.model_id = f"static:{self.source or DEFAULT_MODEL_ID}:pca{dims}:v{FORMAT}"
        self._table: np.ndarray | None = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text (a text with no known token: zeros)."""
        import numpy as np

        table, tokenizer = self.load()
        out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
        for start in range(0, len(texts), self.batch):
            part = list(texts[start : start + self.batch])
            encodings = tokenizer.encode_batch(part, add_special_tokens=False)
            lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(part))
            if not lengths.sum():
                continue
            ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64, count=int(lengths.sum()))
            known = np.flatnonzero(lengths)
            offsets = (np.cumsum(lengths) - lengths)[known]
            out[start + known] = np.add.reduceat(table[ids], offsets, axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def dimension(self) -> int:
        return int(self.load()[0].shape[1])

    # -- the table ------------------------------------------------------------------------------
    def load(self) -> tuple[np.ndarray, Any]:
        if self._table is None:
            with self._lock:
                if self._table is None:
                    self._tokenizer, self._table = self._load_or_distill()
        return self._table, self._tokenizer

    @property
    def path(self) -> Path:
        key = hashlib.sha256(self.model_id.encode()).hexdigest()[:12]
        return self.cache_dir / f"static-{key}"

    def _load_or_distill(self) -> tuple[Any, np.ndarray]:
        import numpy as np
        from tokenizers import Tokenizer

        target = self.path
        if not (target / "vectors.npy").is_file():
            distill(self._source_path(), target, dims=self.dims, model_id=self.model_id)
        tokenizer = Tokenizer.from_file(str(target / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer, np.load(target / "vectors.npy")

    def _source_path(self) -> str:
        return str(default_model_path()) if self.source is None else self.source


def distill(source: str, target: Path, *, dims: int = 256, model_id: str = "", batch_size: int = 512) -> Path:
    """Distil ``source`` (a sentence-transformers model path or name) into ``target``: ``vectors.npy``
    (vocabulary x ``dims`` float32), ``tokenizer.json`` and ``meta.json``. Written atomically."""
    import shutil
    import tempfile

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from tqdm import tqdm

    try:
        model = SentenceTransformer(source, device="cpu")
    except Exception as exc:
        raise ConfigError(f"cannot load {source!r} to distil static embeddings: {exc}") from None
    tokenizer = model.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{source!r} has no fast tokenizer; static embeddings need one")
    vocab_size = len(tokenizer)
    special = [tokenizer.cls_token_id, tokenizer.sep_token_id]
    if None in special:  # e.g. no [CLS]: fall back on bos/eos, or nothing around the token
        special = [i for i in (tokenizer.bos_token_id, tokenizer.eos_token_id) if i is not None]
    head, tail = special[:1], special[1:]

    # 1. Every token as a one-token sentence, pooled as the model pools sentences.
    rows = []
    model.eval()
    with torch.inference_mode():
        for start in tqdm(range(0, vocab_size, batch_size), desc="distilling static embeddings", leave=False):
            ids = torch.arange(start, min(start + batch_size, vocab_size)).unsqueeze(1)
            parts = [torch.full_like(ids, t) for t in head] + [ids] + [torch.full_like(ids, t) for t in tail]
            input_ids = torch.cat(parts, dim=1)
            features = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
            if "token_type_ids" in tokenizer.model_input_names:
                features["token_type_ids"] = torch.zeros_like(input_ids)
            rows.append(model(features)["sentence_embedding"].float().numpy())
    vectors = np.concatenate(rows).astype(np.float64)

    # 2. PCA.
    vectors -= vectors.mean(axis=0)
    dims = min(dims, vectors.shape[1])
    _, _, components = np.linalg.svd(vectors, full_matrices=False)
    vectors = vectors @ components[:dims].T

    # 3. Smooth inverse frequency weights from Zipf's law over the vocabulary order.
    rank = np.arange(1, vocab_size + 1, dtype=np.float64)
    proba = (1.0 / rank) / (1.0 / rank).sum()
    vectors *= (SIF_COEFFICIENT / (SIF_COEFFICIENT + proba))[:, None]

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        np.save(tmp / "vectors.npy", vectors.astype(np.float32))
        tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        meta = {"source": source, "model_id": model_id, "dims": dims, "vocab": vocab_size, "format": FORMAT}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: keep theirs
            if not (target / "vectors.npy").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
