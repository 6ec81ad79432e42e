"""Shipping a version: a float16 adapter and a manifest naming where it trained and on what."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from agent.models import ModelVersion
from training.ship import hardware, ship


def version(tmp_path: Path, metrics: dict) -> ModelVersion:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    save_file({"lora_A.weight": torch.randn(4, 8)}, adapter / "adapter_model.safetensors")
    (adapter / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "/tmp/elsewhere", "r": 4})
    )
    return ModelVersion(
        name="v1", base_model="smollm2-135m-instruct", adapter_path=str(adapter), kind="sft", metrics=metrics
    )


@pytest.mark.parametrize("trained_on", ["NVIDIA H200 (cuda)", None])
def test_the_manifest_names_the_training_device_and_the_adapter_is_float16(
    tmp_path: Path, trained_on: str | None
) -> None:
    metrics = {"train_rows": 10, "train_seconds": 1.5, "recipe": "training/recipes/sft-gpu-lora.yaml"}
    manifest_path = ship(version(tmp_path, {**metrics, "trained_on": trained_on}), tmp_path / "out", name="x")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["hardware"].get("trained_on") == trained_on
    assert manifest["hardware"]["cores"] == hardware()["cores"]
    assert manifest["recipe"]["recipe"] == "training/recipes/sft-gpu-lora.yaml"
    assert manifest["train"]["train_rows"] == 10
    (tensor,) = load_file(tmp_path / "out" / "adapter_model.safetensors").values()
    assert tensor.dtype == torch.float16
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "smollm2-135m-instruct"  # not the training machine's path
