"""Recipes: YAML files of TRL's own config fields, with command-line overrides.

Invariants:

* **Recipes are TRL's own configs.** A recipe is YAML with one section named after the trainer
  (``sft``, ``dpo``, ``kto``, ``reward``, ``grpo``) that maps 1:1 onto the TRL config class,
  a ``lora`` section that maps onto ``peft.LoraConfig``, an optional ``model`` section
  (``freeze_layers``, ``dtype``, ``quantization``), a ``data`` section (``max_examples``,
  ``turns``) and, for GRPO only, a ``rewards`` section (reward name -> weight). Overrides are
  dotted keys (``lora.r``); a bare key belongs to the trainer section. An unknown field is a
  ``ConfigError`` naming the recipe, never silently dropped.
* The shipped recipes are the package data in ``training/recipes/`` (``<kind>-<name>.yaml``); a
  recipe may also be any YAML path.
* Importing this module is cheap: PEFT is imported inside ``lora_config``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from agent.errors import ConfigError

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
SECTIONS = ("lora", "model", "data")
# Sections only one trainer reads: GRPO's reward functions and their weights.
TRAINER_SECTIONS = {"grpo": ("rewards",)}


def _sections(kind: str) -> tuple[str, ...]:
    return (*SECTIONS, *TRAINER_SECTIONS.get(kind, ()))


def recipe_path(recipe: str | Path, kind: str) -> Path:
    """A recipe name (``cpu`` -> ``recipes/<kind>-cpu.yaml``) or a YAML file path."""
    text = str(recipe)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text).expanduser()
    else:
        path = RECIPES_DIR / f"{kind}-{text}.yaml"
    if not path.is_file():
        known = sorted(p.stem.split("-", 1)[1] for p in RECIPES_DIR.glob(f"{kind}-*.yaml"))
        raise ConfigError(f"no recipe {text!r} for {kind} (known: {', '.join(known)}; or a YAML path)")
    return path


def load_recipe(recipe: str | Path, kind: str) -> dict[str, Any]:
    """The recipe's sections as plain dicts (missing sections are empty)."""
    path = recipe_path(recipe, kind)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict) or not isinstance(data.get(kind), dict):
        raise ConfigError(f"{path}: a {kind} recipe needs a `{kind}:` mapping of TRL config fields")
    unknown = sorted(set(data) - {kind, *_sections(kind)})
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {', '.join(unknown)}; known: {kind}, {', '.join(_sections(kind))}"
        )
    recipe_data: dict[str, Any] = {name: dict(data.get(name) or {}) for name in (kind, *_sections(kind))}
    recipe_data["source"] = str(path)
    return recipe_data


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``--set key=value`` items as typed overrides (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = _scalar(yaml.safe_load(raw)) if raw.strip() else None
    return out


def _scalar(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` as a string; a learning rate written that way is still a number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_overrides(recipe: dict[str, Any], kind: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``recipe`` with dotted overrides applied; ``None`` values are ignored."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in recipe.items()}
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.rpartition(".")
        section = section or kind
        if section not in (kind, *_sections(kind)):
            raise ConfigError(
                f"override {key!r}: unknown section {section!r} (use {kind}, {', '.join(_sections(kind))})"
            )
        out[section][name] = value
    return out


def trl_config(cls: Any, recipe: dict[str, Any], kind: str, output_dir: Path) -> Any:
    """The TRL config class built from the recipe's trainer section (ConfigError on unknown fields)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    values = dict(recipe[kind])
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"{recipe.get('source')}: unknown {cls.__name__} field(s): {', '.join(unknown)}")
    if values.get("use_cpu"):
        # TRL's configs default to bf16 autocast. On a CPU without bf16 instructions (AVX2 only)
        # that makes training about 10x slower, not faster. On one with AVX512-BF16 or AMX it is
        # faster (`bf16: auto` opts in); not the default while its loss runs a little higher
        # (docs/experiments/2026-12-06-beam-search-and-int8-refusals.md).
        values.setdefault("bf16", False)
    if "bf16" in values:
        values["bf16"] = resolve_bf16(
            values["bf16"], cpu=bool(values.get("use_cpu")), source=recipe.get("source")
        )
    values.setdefault("report_to", available_reporters())
    values.setdefault("disable_tqdm", False)
    return cls(output_dir=str(output_dir), **values)


def cpu_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles), as torch detects it. The
    CPU model changes from machine to machine, so the answer is read, never assumed."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def resolve_bf16(value: Any, *, cpu: bool, source: Any = None) -> bool:
    """A recipe's ``bf16``: true, false, or ``auto`` (bf16 autocast where the hardware computes
    bf16 natively: a CPU with ``cpu_bf16``, a CUDA device with bf16 support); ConfigError otherwise."""
    if isinstance(value, bool):
        return value
    if value != "auto":
        raise ConfigError(f"{source or 'recipe'}: bf16 must be true, false or auto, not {value!r}")
    if cpu:
        return cpu_bf16()
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def lora_config(recipe: dict[str, Any]) -> Any:
    from peft import LoraConfig

    try:
        return LoraConfig(**recipe["lora"])
    except TypeError as exc:
        raise ConfigError(f"{recipe.get('source')}: lora: {exc}") from exc


def available_reporters() -> list[str] | str:
    """TensorBoard and/or MLflow when installed, else "none" (nothing is ever sent anywhere else)."""
    import importlib.util

    found = [name for name in ("tensorboard", "mlflow") if importlib.util.find_spec(name) is not None]
    return found or "none"
