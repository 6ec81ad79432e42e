"""What every trainer shares around ``trainer.train()``: the base model, the run, registration.

A trainer (``training.sft``, ``training.preference``, ``training.reward``, ``training.grpo``) is
a thin entry point over one TRL trainer; it takes its recipe from ``training.recipes`` and its
rows from ``training.data``, and everything else around the ``trainer.train()`` call lives here,
once.

Invariants:

* **Every result is a candidate version.** The adapter (or model) is written under
  ``<home>/models/adapters/<version>/`` and registered through ``agent.models.ModelRegistry``
  with its parent; nothing here ever changes the production pointer.
* **One run folder per run**: ``<home>/runs/<prefix>-<timestamp>`` (suffixed when taken),
  made by ``new_run_dir`` for trainers, rounds and compiled data alike.
* **Importing this module is cheap**: torch, transformers, peft and TRL are imported inside the
  functions that need them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import resource
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError
from training.recipes import apply_overrides, load_recipe, lora_config

if TYPE_CHECKING:
    from agent.models import ModelRegistry


@dataclass
class TrainResult:
    """A trained candidate: its registry version, where its weights are, what the run measured."""

    version: str
    adapter_dir: Path
    metrics: dict[str, Any]
    loss_png: Path | None
    kind: str = "sft"
    parent: str | None = None
    out_dir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


# ------------------------------------------------------------------------------- base model


@dataclass(frozen=True)
class Base:
    """Where training starts: the root model to register under, the parent version, an adapter."""

    model_dir: str  # what transformers loads (a directory or hub id)
    spec: str  # what the registry records as ``base_model`` (resolvable again later)
    parent: str | None  # the registry version trained from (None for a bare directory)
    adapter: str | None  # an adapter to keep training (SFT -> DPO/KTO, or a further round)


def resolve_base(base: str | Path, home: Path) -> Base:
    """``production``, a registry version, the default model name or a directory."""
    from agent.models import ModelRegistry, resolve_spec

    resolved = resolve_spec(str(base), home=home, progress=True)
    registry = ModelRegistry(home)
    name = registry.production_name() if str(base) == "production" else str(base)
    if registry.has(name):
        version = registry.get(name)
        if version.kind == "reward":
            raise ConfigError(f"{name} is a reward model; train from a generation model")
        spec = root_spec(registry, name)
        return Base(model_dir=resolved.base, spec=spec, parent=name, adapter=resolved.adapter)
    return Base(model_dir=resolved.base, spec=str(base), parent=None, adapter=resolved.adapter)


def root_spec(registry: ModelRegistry, name: str) -> str:
    """The ``base_model`` spec at the root of a version's chain (a model name or directory);
    a name the registry does not know is its own root."""
    seen = set()
    spec = name
    while registry.has(spec) and spec not in seen:
        seen.add(spec)
        spec = registry.get(spec).base_model
    return str(spec)


def load_tokenizer(model_dir: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_policy(base: Base, recipe: dict[str, Any]) -> tuple[Any, Any | None]:
    """The causal LM to train and the ``peft_config`` to hand TRL (None: already set up).

    * base with an adapter -> that adapter, trainable (DPO/KTO from SFT; a further SFT round);
    * ``model.freeze_layers: N`` -> every parameter frozen except the top N blocks, final norm
      and LM head (a full fine-tune of the top of the network, no LoRA);
    * otherwise -> the base model plus a fresh LoRA from the recipe (TRL wraps it).
    """
    from transformers import AutoModelForCausalLM

    settings = recipe.get("model") or {}
    model: Any = AutoModelForCausalLM.from_pretrained(base.model_dir, **_model_kwargs(settings))
    freeze = settings.get("freeze_layers")
    if base.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, base.adapter, is_trainable=True)
        if freeze is not None:  # freezing applies to the merged weights, trained in full
            model = model.merge_and_unload()
            return freeze_layers(model, int(freeze)), None
        return model, None
    if freeze is not None:
        return freeze_layers(model, int(freeze)), None
    return model, lora_config(recipe)


def _model_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    import torch

    kwargs: dict[str, Any] = {"dtype": getattr(torch, str(settings.get("dtype") or "float32"))}
    if settings.get("quantization"):
        from transformers import BitsAndBytesConfig

        quant = dict(settings["quantization"])
        if "bnb_4bit_compute_dtype" in quant:
            quant["bnb_4bit_compute_dtype"] = getattr(torch, quant["bnb_4bit_compute_dtype"])
        kwargs["quantization_config"] = BitsAndBytesConfig(**quant)
    return kwargs


def freeze_layers(model: Any, top: int) -> Any:
    """Train only the top ``top`` decoder blocks, the final norm and the LM head."""
    layers = model.model.layers
    if not 1 <= top <= len(layers):
        raise ConfigError(
            f"freeze_layers must be between 1 and {len(layers)} (the model's layers), got {top}"
        )
    for param in model.parameters():
        param.requires_grad = False
    keep = [*layers[len(layers) - top :], model.model.norm, model.lm_head]
    for module in keep:
        for param in module.parameters():
            param.requires_grad = True
    return model


def trainable_snapshot(model: Any) -> dict[str, Any]:
    """A copy of every trainable parameter (to check that training changed them)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


# ------------------------------------------------------------------------------- run


def start_run(
    kind: str,
    recipe: str | Path,
    overrides: Mapping[str, Any] | None,
    *,
    home: Path | None,
    out_dir: Path | None,
    progress: bool,
) -> tuple[dict[str, Any], Path, Path]:
    """What every trainer does first: (the recipe with overrides applied, the data home, the run
    folder, created)."""
    from agent.config import default_home

    home = home or default_home()
    config = apply_overrides(load_recipe(recipe, kind), kind, overrides or {})
    if not progress:
        config[kind]["disable_tqdm"] = True
    out_dir = out_dir or new_run_dir(home, kind)
    out_dir.mkdir(parents=True, exist_ok=True)
    return config, home, out_dir


def new_run_dir(home: Path, prefix: str) -> Path:
    base = home / "runs" / f"{prefix}-{datetime.now():%Y%m%d-%H%M%S}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


@contextlib.contextmanager
def compact_lm_head_on_cpu() -> Iterator[None]:
    """Score only the labelled positions in TRL's fused LM head, on CPU too.

    TRL's chunked log-probability head projects only the positions that carry a label, but only
    on Triton devices. Everywhere else it projects every position: it keeps tile shapes fixed for
    compilers such as Neuron's. On a CPU nothing recompiles. With a prompt-completion row
    (~750 prompt tokens, ~40 answer tokens) the full projection onto the 49k vocabulary, and its
    recomputation in the backward pass, cost more than the LoRA update itself. The loss is
    identical either way: unlabelled positions are masked out of it.
    """
    try:
        import trl.trainer.utils as trl_utils
    except ImportError:  # pragma: no cover - trl is a dependency
        yield
        return
    original = getattr(trl_utils, "_use_triton", None)
    if original is None:
        yield
        return
    trl_utils._use_triton = lambda device: device.type == "cpu" or original(device)
    try:
        yield
    finally:
        trl_utils._use_triton = original


def run_training(trainer: Any, out_dir: Path, title: str) -> dict[str, Any]:
    """Train; returns the run's metrics and writes ``log_history.json`` and ``loss.png``."""
    tokens = count_tokens(trainer)
    started = time.perf_counter()
    with compact_lm_head_on_cpu():
        output = trainer.train()
    seconds = time.perf_counter() - started
    # With bf16 autocast, accelerate leaves the model's forward wrapped in it: anything scored with
    # the trained model afterwards (a reward model's control fit) would be scored in bf16, and
    # served in fp32. Unwrap it in place, so the model in hand computes as the saved one will.
    trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    history = trainer.state.log_history
    (out_dir / "log_history.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    from training.report import plot_loss

    plot_loss(history, out_dir / "loss.png", title=title)
    metrics = {
        "train_loss": round(float(output.training_loss), 4),
        "train_steps": int(trainer.state.global_step),
        "train_seconds": round(seconds, 1),
        "peak_rss_mb": peak_rss_mb(),
        "trained_on": trained_on(trainer),
        "bf16": bool(getattr(trainer.args, "bf16", False)),
    }
    if tokens[0]:
        metrics["train_tokens"] = int(tokens[0])
        metrics["tokens_per_s"] = round(tokens[0] / seconds, 1)
    return metrics


def trained_on(trainer: Any) -> str:
    """Where the run trained, in words: the GPU's name, or the CPU's (with its core count)."""
    return device_name(getattr(getattr(trainer, "args", None), "device", None))


def device_name(device: Any) -> str:
    """A torch device in words: the GPU's name, or the CPU's (with its core count)."""
    import os

    if device is not None and getattr(device, "type", "cpu") == "cuda":
        import torch

        return f"{torch.cuda.get_device_name(device)} (cuda)"
    from training.ship import cpu_model

    return f"{cpu_model()} ({os.cpu_count()} cores)"


def count_tokens(trainer: Any) -> list[int]:
    """Count the non-padding tokens of every micro-batch the trainer trains on (a one-item list,
    filled in as training runs). TRL's own ``num_tokens`` counts one row per micro-batch when
    its collator sends ``position_ids`` without an attention mask, so it is not used."""
    counter = [0]
    step = trainer.training_step

    def counting(model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if not isinstance(inputs, Mapping):  # GRPO: raw rows, generated inside the step
            return step(model, inputs, *args, **kwargs)
        masks = [v for k, v in inputs.items() if k.endswith("attention_mask") and hasattr(v, "sum")]
        if masks:
            counter[0] += int(sum(int(m.sum()) for m in masks))
        elif "input_ids" in inputs:
            counter[0] += int(inputs["input_ids"].numel())
        return step(model, inputs, *args, **kwargs)

    trainer.training_step = counting
    return counter


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def save_and_register(
    model: Any,
    tokenizer: Any,
    *,
    home: Path,
    base: Base,
    kind: str,
    metrics: dict[str, Any],
    notes: str = "",
) -> tuple[str, Path]:
    """Save the adapter (or full model) into ``<home>/models/adapters/<version>/`` and register
    it as a candidate; returns (version, directory)."""
    from agent.models import ModelRegistry

    registry = ModelRegistry(home)
    root = home / "models" / "adapters"
    staging = root / f".staging-{kind}-{time.time_ns()}"
    staging.mkdir(parents=True)
    try:
        adapter = _save(model, tokenizer, staging)
        for _ in range(100):  # another process may take the name between the guess and register
            name = _next_name(registry)
            target = root / name
            if target.exists():
                continue
            staging.rename(target)
            try:
                registry.register(
                    name=name,
                    base_model=base.spec if adapter else str(target),
                    adapter_path=str(target) if adapter else None,
                    parent=base.parent,
                    kind=kind,
                    metrics=metrics,
                    notes=notes,
                )
            except ConfigError:
                target.rename(staging)
                continue
            return name, target
        raise ConfigError("could not find a free version name in the registry")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _save(model: Any, tokenizer: Any, directory: Path) -> bool:
    """Save into ``directory``; True when it is an adapter (False: a full model)."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        # Only the trained adapter: TRL's frozen "ref" copy (DPO/KTO) stays behind.
        model.save_pretrained(str(directory), selected_adapters=["default"])
        tokenizer.save_pretrained(str(directory))
        return True
    model.save_pretrained(str(directory), safe_serialization=True)
    tokenizer.save_pretrained(str(directory))
    return False


def _next_name(registry: ModelRegistry) -> str:
    taken = {v.name for v in registry.list()}
    n = len(taken)
    while f"v{n}" in taken:
        n += 1
    return f"v{n}"
