"""The ``vllm serve`` command for the model registry: multi-LoRA, one adapter per version, by name.

supportloop's API sends each request's ``model`` ("production" or a registry version) to the
remote server as the model name (``SUPPORTLOOP_GENERATION__BACKEND=openai``), so vLLM must serve a
LoRA module under each of those names. This prints that command:

    python -m deploy.vllm_args [--home DIR] [--base-model HF_ID_OR_DIR] [--json]

Invariants: "production" names the production version's adapter (or, when production is the
base model, an alias of the base); every registry version with an adapter on the same base is a
LoRA module named after the version; ``--max-lora-rank`` covers the largest adapter rank.
Versions on another base model are left out with a note on stderr (one vLLM serves one base).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path

from agent.models import BASE_VERSION, DEFAULT_HUB_ID, ModelRegistry, ModelVersion

VLLM_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def lora_modules(registry: ModelRegistry) -> tuple[str, dict[str, str], list[str]]:
    """(the base model of production, {module name: adapter dir}, versions left out)."""
    production = registry.production()
    base = _base_of(registry, production)
    modules: dict[str, str] = {}
    skipped: list[str] = []
    for version in registry.list():
        if not version.adapter_path:
            continue
        if _base_of(registry, version) != base:
            skipped.append(version.name)
            continue
        modules[version.name] = version.adapter_path
    if production.adapter_path:
        modules = {"production": production.adapter_path, **modules}
    return base, modules, skipped


def command(registry: ModelRegistry, base_model: str | None = None) -> list[str]:
    base, modules, _ = lora_modules(registry)
    served = ["base"] if "production" in modules else ["production", "base"]
    args = ["vllm", "serve", base_model or _hub_id(base), "--served-model-name", *served]
    if modules:
        args += ["--enable-lora", "--lora-modules", *(f"{name}={path}" for name, path in modules.items())]
        args += ["--max-loras", str(len(modules)), "--max-lora-rank", str(_max_rank(modules.values()))]
    return args


def _base_of(registry: ModelRegistry, version: ModelVersion) -> str:
    seen: set[str] = set()
    while (
        version.name != BASE_VERSION and registry.has(version.base_model) and version.base_model not in seen
    ):
        seen.add(version.base_model)
        version = registry.get(version.base_model)
    return version.base_model


def _hub_id(base: str) -> str:
    from agent.config import DEFAULT_MODEL

    return DEFAULT_HUB_ID if base == DEFAULT_MODEL else base


def _max_rank(paths: Iterable[str]) -> int:
    ranks = [16]
    for path in paths:
        config = Path(path) / "adapter_config.json"
        if config.is_file():
            ranks.append(int(json.loads(config.read_text(encoding="utf-8")).get("r", 16)))
    return next((r for r in VLLM_RANKS if r >= max(ranks)), max(ranks))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.vllm_args", description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="data home (default: $SUPPORTLOOP_HOME)")
    parser.add_argument("--base-model", default=None, help="base model for vLLM (default: production's)")
    parser.add_argument("--json", action="store_true", help="print the argument list as JSON")
    args = parser.parse_args(argv)
    registry = ModelRegistry(args.home)
    _, _, skipped = lora_modules(registry)
    for name in skipped:
        print(f"note: version {name} is on another base model; serve it from its own vLLM", file=sys.stderr)
    argv_out = command(registry, args.base_model)
    print(json.dumps(argv_out) if args.json else shlex.join(argv_out))


if __name__ == "__main__":
    main()
