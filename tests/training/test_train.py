"""Each trainer takes real optimizer steps on a tiny model, changes its trainable parameters and
registers a candidate version with its parent; recipes and overrides behave as documented."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.errors import ConfigError, DataError
from agent.models import ModelRegistry
from tests.training.trainkit import FAST, PERSONA, kto_rows, pref_rows, sft_rows, snapshot_callback
from training.common import apply_overrides, load_recipe, parse_set, recipe_path, training_rows

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def train_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("train-home")


@pytest.fixture(scope="module")
def sft_version(train_home: Path, tiny_model_dir: Path):
    from training.sft import train_sft

    snap = snapshot_callback()
    result = train_sft(
        sft_rows(), base=tiny_model_dir, home=train_home, overrides=FAST, progress=False, callbacks=[snap]
    )
    return result, snap


def test_sft_lora_steps_change_the_adapter_and_register_a_candidate(sft_version, train_home: Path) -> None:
    result, snap = sft_version
    assert result.metrics["train_steps"] == 2
    assert snap.before and all("lora_" in n for n in snap.before)
    assert snap.changed(), "no trainable parameter changed"
    version = ModelRegistry(train_home).get(result.version)
    assert version.kind == "sft" and version.adapter_path == str(result.adapter_dir)
    assert (result.adapter_dir / "adapter_config.json").is_file()
    assert result.loss_png is not None and result.loss_png.stat().st_size > 0
    assert ModelRegistry(train_home).production_name() == "base"  # candidates are never promoted here


def test_sft_freeze_layers_trains_only_the_top_block(train_home: Path, tiny_model_dir: Path) -> None:
    from training.sft import train_sft

    snap = snapshot_callback()
    overrides = {**FAST, "model.freeze_layers": 1}
    result = train_sft(
        sft_rows(),
        base=tiny_model_dir,
        home=train_home,
        overrides=overrides,
        progress=False,
        callbacks=[snap],
    )
    names = list(snap.before)
    assert names and not any("layers.0." in n for n in names) and any("layers.1." in n for n in names)
    assert not any("lora_" in n for n in names)
    assert snap.changed()
    version = ModelRegistry(train_home).get(result.version)
    assert version.adapter_path is None and version.base_model == str(result.adapter_dir)
    assert (result.adapter_dir / "config.json").is_file()


@pytest.mark.parametrize("kind", ["dpo", "kto"])
def test_preference_trainers_continue_the_sft_adapter(kind: str, sft_version, train_home: Path) -> None:
    from training.preference import train_dpo, train_kto

    sft, _ = sft_version
    snap = snapshot_callback()
    train, rows = (train_dpo, pref_rows()) if kind == "dpo" else (train_kto, kto_rows())
    result = train(rows, base=sft.version, home=train_home, overrides=FAST, progress=False, callbacks=[snap])
    assert snap.changed()
    assert all(".ref." not in n for n in snap.before)  # TRL's frozen reference copy is not trained
    version = ModelRegistry(train_home).get(result.version)
    assert (version.kind, version.parent) == (kind, sft.version)
    saved = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert saved["r"] == json.loads((sft.adapter_dir / "adapter_config.json").read_text())["r"]
    assert not (result.adapter_dir / "ref").exists()


def test_reward_model_trains_a_scalar_head(train_home: Path, tiny_model_dir: Path) -> None:
    from training.reward import length_baseline, pairwise_accuracy, train_reward

    snap = snapshot_callback()
    result = train_reward(
        pref_rows(), base=tiny_model_dir, home=train_home, overrides=FAST, progress=False, callbacks=[snap]
    )
    assert snap.changed() and any("score" in n for n in snap.changed())
    assert ModelRegistry(train_home).get(result.version).kind == "reward"
    assert pairwise_accuracy([2.0, 1.0, 0.5], [1.0, 1.0, 1.0]) == pytest.approx(1 / 3)
    assert length_baseline(pref_rows()) == 1.0  # every chosen answer here is the longer one
    assert result.metrics["train_rows_used"] == result.metrics["train_rows"] == len(pref_rows())


def test_length_baseline_fits_its_direction_on_the_training_pairs() -> None:
    from training.reward import length_baseline, length_direction

    def pair(chosen: str, rejected: str) -> dict:
        return {"chosen": [{"content": chosen}], "rejected": [{"content": rejected}]}

    terse = [pair("Yes.", "Yes, and here is a long digression."), pair("No.", "Well, it depends a lot.")]
    held_out = [pair("Ok.", "Okay then, let me explain."), pair("A long right answer", "Wrong")]
    assert length_direction(terse) == "shorter" and length_direction(pref_rows()) == "longer"
    assert length_baseline(held_out) == 0.5
    assert length_baseline(held_out, fit=terse) == 0.5
    assert length_baseline(held_out[:1], fit=terse) == 1.0 and length_baseline(held_out[:1]) == 0.0


def test_training_rows_from_a_conversation_file_use_the_train_split(tmp_path: Path) -> None:
    sample = REPO / "agent" / "sample"
    train, val, info = training_rows(
        sample / "conversations.jsonl", "sft", docs=sample / "docs", persona=PERSONA
    )
    assert train and val and info["rows_available"] == len(train)
    assert not {r["prompt"][-1]["content"] for r in train} & {r["prompt"][-1]["content"] for r in val}
    assert set(train[0]) == {"prompt", "completion"}
    with pytest.raises(DataError, match="missing label"):
        training_rows(sft_rows(), "kto")


def test_recipes_and_overrides() -> None:
    for kind in ("sft", "dpo", "kto", "reward"):
        assert load_recipe("cpu", kind)[kind]
    assert (
        "use_cpu" not in load_recipe("gpu", "sft")["sft"]
        and load_recipe("gpu", "sft")["model"]["quantization"]
    )
    recipe = apply_overrides(
        load_recipe("cpu", "sft"), "sft", {"max_steps": 3, "lora.r": 4, "data.max_examples": None}
    )
    assert (
        recipe["sft"]["max_steps"] == 3 and recipe["lora"]["r"] == 4 and recipe["data"]["max_examples"] == 600
    )
    assert parse_set(["learning_rate=1e-4", "packing=true", "lora.target_modules=[q_proj]"]) == {
        "learning_rate": 1e-4,
        "packing": True,
        "lora.target_modules": ["q_proj"],
    }
    with pytest.raises(ConfigError, match="unknown section"):
        apply_overrides(recipe, "sft", {"bogus.x": 1})
    with pytest.raises(ConfigError, match="no recipe"):
        recipe_path("nope", "sft")
    with pytest.raises(ConfigError, match="--set expects"):
        parse_set(["novalue"])


def test_cpu_recipes_train_in_fp32_not_bf16_autocast(tmp_path: Path) -> None:
    """TRL's configs default to bf16 autocast; on an AVX2-only CPU that is ~10x slower."""
    from trl import DPOConfig, KTOConfig, RewardConfig, SFTConfig

    from training.common import trl_config

    for kind, cls in (("sft", SFTConfig), ("dpo", DPOConfig), ("kto", KTOConfig), ("reward", RewardConfig)):
        recipe = load_recipe("cpu", kind)
        assert trl_config(cls, recipe, kind, tmp_path).bf16 is False
        recipe[kind].pop("bf16")  # the guard, for recipes that do not say
        assert trl_config(cls, recipe, kind, tmp_path).bf16 is False


def test_compact_lm_head_gives_the_same_loss(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Scoring only the answer positions in TRL's fused head is a speed-up, not a new loss."""
    import contextlib

    import torch
    import trl.trainer.utils as trl_utils

    import training.common as common
    from training.sft import train_sft

    original = trl_utils._use_triton
    assert original(torch.device("cpu")) is False  # TRL's own choice: every position on CPU
    with common.compact_lm_head_on_cpu():
        assert trl_utils._use_triton(torch.device("cpu")) is True  # the patch is what TRL reads
    losses = {}
    for compact in (True, False):
        patch = common.compact_lm_head_on_cpu if compact else contextlib.nullcontext
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(common, "compact_lm_head_on_cpu", patch)
            result = train_sft(
                sft_rows(), base=tiny_model_dir, home=tmp_path / str(compact), overrides=FAST, progress=False
            )
        losses[compact] = result.metrics["train_loss"]
    assert trl_utils._use_triton is original  # restored after training
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_unknown_trl_field_is_a_config_error(tmp_path: Path) -> None:
    from trl import SFTConfig

    from training.common import trl_config

    recipe = apply_overrides(load_recipe("cpu", "sft"), "sft", {"learning_rat": 1e-4})
    with pytest.raises(ConfigError, match="learning_rat"):
        trl_config(SFTConfig, recipe, "sft", tmp_path)


def test_importing_the_cli_module_loads_no_ml_library() -> None:
    code = (
        "import sys, training.cli; "
        "print([m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'trl', 'peft')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_training_exports_resolve() -> None:
    import training

    for name in (
        "train_sft",
        "train_dpo",
        "train_kto",
        "train_reward",
        "evaluate_versions",
        "decide",
        "run_round",
    ):
        assert name in training.__all__ and callable(getattr(training, name))


def test_sweep_ranks_candidates_on_validation_perplexity(train_home: Path, tiny_model_dir: Path) -> None:
    from training.sft import sweep_grid, sweep_sft

    grid = sweep_grid(["learning_rate=1e-4,5e-3"])
    assert grid == {"learning_rate": [1e-4, 5e-3]}
    overrides = {**FAST, "max_steps": 1}
    ranking = sweep_sft(
        sft_rows()[2:],
        grid,
        val_rows=sft_rows()[:2],
        base=tiny_model_dir,
        home=train_home,
        overrides=overrides,
        progress=False,
    )
    assert len(ranking) == 2 and ranking[0]["val_perplexity"] <= ranking[1]["val_perplexity"]
    registry = ModelRegistry(train_home)
    assert {registry.get(r["version"]).metrics["sweep"]["learning_rate"] for r in ranking} == {1e-4, 5e-3}
