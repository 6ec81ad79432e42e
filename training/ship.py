"""Ship a trained version: its adapter and a manifest in a folder the package carries.

The manifest says what the adapter is and how it was made: base model, recipe, the data mix
(each input's SHA-256, rows per source), training metrics, the time it took and the hardware it
ran on, and the command that reproduces it. ``agent.models`` registers the folder in every new
data home (see its module docstring). The adapter is stored in float16 (half the bytes; LoRA
weights lose nothing that matters at that precision, and PEFT loads them into the fp32 model).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from pathlib import Path
from typing import Any

REPRODUCE = "bash scripts/build-default-model.sh"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def hardware() -> dict[str, Any]:
    flags = ""
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags]
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "isa": isa, "machine": platform.machine()}


def ship(version: Any, out: Path, *, name: str, mix_manifest: dict[str, Any] | None = None) -> Path:
    """Write ``version``'s adapter (float16) and its manifest into ``out``; return the manifest path."""
    import torch
    from safetensors.torch import load_file, save_file

    adapter = Path(version.adapter_path)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: v.to(torch.float16).contiguous()
        for k, v in load_file(adapter / "adapter_model.safetensors").items()
    }
    save_file(tensors, out / "adapter_model.safetensors")
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = version.base_model
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    metrics = dict(version.metrics)
    manifest = {
        "name": name,
        "kind": version.kind,
        "base_model": version.base_model,
        "created_at": version.created_at,
        "recipe": {"trainer": version.kind, "recipe": _relative(metrics.pop("recipe", None))},
        "data": mix_manifest or {},
        "train": {
            k: metrics.get(k)
            for k in ("train_rows", "train_steps", "train_seconds", "train_loss", "tokens_per_s")
        },
        # The packaging machine, and the device the training ran on (a GPU rebuild ships from a CPU).
        "hardware": {
            **hardware(),
            **({"trained_on": metrics["trained_on"]} if metrics.get("trained_on") else {}),
        },
        "metrics": {},
        "reproduce": REPRODUCE,
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def _relative(path: Any) -> Any:
    """A recipe path relative to the checkout (manifests travel; absolute paths do not)."""
    if not path:
        return path
    repo = Path(__file__).resolve().parents[1]
    try:
        return str(Path(path).resolve().relative_to(repo))
    except ValueError:
        return str(path)


def record_metrics(manifest_path: Path, metrics: dict[str, Any]) -> None:
    """Add evaluation figures to a shipped manifest (the benchmark's headline numbers)."""
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["metrics"] = {**manifest.get("metrics", {}), **metrics}
    manifest_path.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
