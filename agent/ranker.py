"""The ranker: the embedding model that chooses which of the retriever's chunks the model is shown.

The agent re-ranks the retriever's candidate chunks by the sentence in each that best answers the
question (``agent.grounding.rank_passages``), and shows the best ``retrieval.k``. A ranker is a
LoRA adapter on the packaged all-MiniLM-L6-v2, trained by ``supportloop train ranker``
(``training.ranker``) on a company's past conversations, that scores those sentences in place of
the index's own model. Only the choice of chunks changes: the index, the answer check and its
quote keep the index's model, because their bars were set on its cosines, while the re-rank
min-max normalises its scores and so reads any model's.

Invariants:
- A ranker directory holds ``adapter_config.json``, ``adapter_model.safetensors`` and
  ``ranker.json`` (its manifest); ``check_ranker`` names what is wrong before anything loads.
- ``retrieval.ranker`` is ``auto`` (the ranker that comes with the production model: the shipped
  default's when the shipped default is production, else one in the production adapter's
  ``ranker/`` folder, else none), ``none`` (the index's model) or a ranker directory.
- A ranker loads once per directory per process, on first use; nothing is downloaded.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent.errors import ConfigError
from agent.models import SHIPPED_DIR, shipped_manifest

SHIPPED_RANKER = SHIPPED_DIR / "ranker"
RANKER_FILES = ("adapter_config.json", "adapter_model.safetensors", "ranker.json")
RANKER_BASE = "sentence-transformers/all-MiniLM-L6-v2"  # the packaged embedding model

Encode = Callable[[Sequence[str]], np.ndarray]


def check_ranker(path: str | Path) -> Path:
    """``path`` as a ranker directory, or a ConfigError that says what is missing or wrong."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ConfigError(
            f"retrieval.ranker: {directory} is not a directory (a `supportloop train ranker` --out)"
        )
    missing = [name for name in RANKER_FILES if not (directory / name).is_file()]
    if missing:
        raise ConfigError(
            f"retrieval.ranker: {directory} is not a ranker: it lacks {', '.join(missing)} "
            "(train one with `supportloop train ranker`)"
        )
    try:
        manifest = json.loads((directory / "ranker.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"retrieval.ranker: {directory / 'ranker.json'} is unreadable: {exc}") from None
    base = manifest.get("base") if isinstance(manifest, dict) else None
    if base != RANKER_BASE:
        raise ConfigError(
            f"retrieval.ranker: {directory} was trained on {base!r}; supportloop's rankers adapt {RANKER_BASE}"
        )
    return directory


def ranker_for(setting: str, version: str | None, adapter: str | None) -> Path | None:
    """The ranker directory ``retrieval.ranker`` names for the model ``version`` (with its
    ``adapter`` directory) being served, or None for the index's own model."""
    if setting == "none":
        return None
    if setting != "auto":
        return check_ranker(setting)
    shipped = shipped_manifest()
    if shipped is not None and version == shipped.get("name") and SHIPPED_RANKER.is_dir():
        return check_ranker(SHIPPED_RANKER)
    if adapter and (Path(adapter) / "ranker").is_dir():
        return check_ranker(Path(adapter) / "ranker")
    return None


def production_ranker(config: Any) -> Path | None:
    """The ranker of a data home's production model under ``config`` (for evaluations and data
    compiles, which retrieve as the agent does)."""
    setting = config.retrieval.ranker
    if setting == "none":
        return None
    if setting != "auto":
        return check_ranker(setting)
    from agent.models import ModelRegistry

    registry = ModelRegistry(config.home)
    version = registry.get(registry.production_name())
    return ranker_for(setting, version.name, version.adapter_path)


@functools.lru_cache(maxsize=4)
def load_ranker(path: str) -> Encode:
    """The ranker at ``path`` as an encoder: texts -> L2-normalised float32 rows (one load per path)."""
    directory = check_ranker(path)
    from sentence_transformers import SentenceTransformer

    from knowledge.encoding import default_model_path

    model = SentenceTransformer(str(default_model_path()), device="cpu")
    model.load_adapter(str(directory))
    model.eval()
    lock = threading.Lock()

    def encode(texts: Sequence[str]) -> np.ndarray:
        with lock:
            vectors = model.encode(
                list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    return encode
