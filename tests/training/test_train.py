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
from training.data import training_rows
from training.recipes import apply_overrides, load_recipe, parse_set, recipe_path

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
    assert result.metrics["trained_on"].endswith("cores)")  # the CPU, in words (a GPU run names the GPU)
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


def test_held_out_margin_is_the_answers_log_likelihood_difference(tiny_model) -> None:
    import torch

    from training.preference import completion_logprob, logprob_margin, pair_margins

    model, tokenizer = tiny_model
    rows = pref_rows()[:3]
    for row in rows:  # the summed log-likelihood of the answer tokens only, as the LM loss gives it
        answer = row["chosen"][-1]["content"]
        prompt_len = len(
            tokenizer.apply_chat_template(
                row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True
            )["input_ids"]
        )
        full = tokenizer.apply_chat_template(
            [*row["prompt"], {"role": "assistant", "content": answer}], tokenize=True, return_dict=True
        )["input_ids"]
        labels = torch.tensor([[-100] * prompt_len + full[prompt_len:]])
        with torch.inference_mode():
            loss = model(input_ids=torch.tensor([full]), labels=labels).loss
        expected = -float(loss) * (len(full) - prompt_len)
        assert completion_logprob(model, tokenizer, row["prompt"], answer) == pytest.approx(
            expected, abs=1e-3
        )
    margins = pair_margins(model, tokenizer, rows)
    swapped = pair_margins(
        model, tokenizer, [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows]
    )
    assert margins == pytest.approx([-m for m in swapped], abs=1e-4)
    summary = logprob_margin(model, tokenizer, rows)
    assert summary["pairs"] == 3
    assert summary["margin"] == pytest.approx(sum(margins) / 3, abs=1e-4)
    assert summary["pair_accuracy"] == pytest.approx(sum(m > 0 for m in margins) / 3)


@pytest.fixture(scope="module")
def reward_version(train_home: Path, tiny_model_dir: Path):
    from training.reward import train_reward

    snap = snapshot_callback()
    result = train_reward(
        pref_rows(), base=tiny_model_dir, home=train_home, overrides=FAST, progress=False, callbacks=[snap]
    )
    return result, snap


def test_reward_model_trains_a_scalar_head(reward_version, train_home: Path) -> None:
    from training.reward import length_baseline, pairwise_accuracy

    result, snap = reward_version
    assert snap.changed() and any("score" in n for n in snap.changed())
    assert ModelRegistry(train_home).get(result.version).kind == "reward"
    assert pairwise_accuracy([2.0, 1.0, 0.5], [1.0, 1.0, 1.0]) == pytest.approx(1 / 3)
    assert length_baseline(pref_rows()) == 1.0  # every chosen answer here is the longer one
    assert result.metrics["train_rows_used"] == result.metrics["train_rows"] == len(pref_rows())


def test_reward_pairs_over_max_length_are_cut_from_the_left_not_dropped(
    train_home: Path, tiny_model_dir: Path
) -> None:
    from transformers import TrainerCallback

    from training.reward import train_reward

    rows = pref_rows()
    long_rows = [
        {
            **r,
            "prompt": [
                {**r["prompt"][0], "content": "Background. " * 400 + r["prompt"][0]["content"]},
                *r["prompt"][1:],
            ],
        }
        for r in rows
    ]
    lengths: list[int] = []

    class Spy(TrainerCallback):
        """Records the token lengths TRL's collator hands to the model, and the last tokens."""

        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            for batch in train_dataloader:
                lengths.extend(batch["attention_mask"].sum(dim=1).tolist())

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    limit = 8 + max(
        len(tokenizer.apply_chat_template(r["prompt"] + r[k], tokenize=True, return_dict=True)["input_ids"])
        for r in rows
        for k in ("chosen", "rejected")
    )
    overrides = {**FAST, "max_length": limit}
    cut = train_reward(
        long_rows,
        base=tiny_model_dir,
        home=train_home,
        overrides=overrides,
        progress=False,
        callbacks=[Spy()],
    )
    assert cut.metrics["train_rows_used"] == cut.metrics["train_rows"] == len(rows)
    assert cut.metrics["answers_cut_left"] == 2 * len(rows)
    assert lengths and max(lengths) <= limit

    dropped = train_reward(
        long_rows + rows,
        base=tiny_model_dir,
        home=train_home,
        overrides={**overrides, "model.truncate": "drop"},
        progress=False,
    )
    assert dropped.metrics["train_rows_used"] < dropped.metrics["train_rows"]
    with pytest.raises(ConfigError, match=r"model\.truncate"):
        train_reward(
            rows, base=tiny_model_dir, home=train_home, overrides={**FAST, "model.truncate": "right"}
        )


def test_reward_model_from_an_sft_version_is_saved_merged(
    sft_version, train_home: Path, tiny_model_dir: Path
) -> None:
    """A reward model on an SFT body must keep the SFT weights when it is loaded again."""
    import torch
    from transformers import AutoModelForCausalLM

    from agent.models import resolve_spec
    from training.reward import load_reward_model, reward_scores, train_reward

    sft, _ = sft_version
    result = train_reward(pref_rows(), base=sft.version, home=train_home, overrides=FAST, progress=False)
    version = ModelRegistry(train_home).get(result.version)
    assert (version.kind, version.parent, version.adapter_path) == ("reward", sft.version, None)
    assert (result.adapter_dir / "config.json").is_file()
    resolved = resolve_spec(result.version, home=train_home)
    assert resolved.adapter is None
    model, tokenizer = load_reward_model(resolved.base)
    name = "model.layers.0.self_attn.q_proj.weight"
    saved = dict(model.named_parameters())[name]
    bare = dict(AutoModelForCausalLM.from_pretrained(tiny_model_dir).named_parameters())[name]
    assert not torch.allclose(saved, bare)  # the SFT adapter (and the reward LoRA) are in the body
    # The SFT adapter lands in the classifier's body exactly as in the causal LM.
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from training.reward import _with_merged_adapter

    body = _with_merged_adapter(
        AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1), str(sft.adapter_dir)
    )
    causal = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(sft.adapter_dir)
    ).merge_and_unload()
    merged = dict(causal.named_parameters())[name]
    assert not torch.allclose(merged, bare)
    assert torch.allclose(dict(body.named_parameters())[name], merged)
    row = pref_rows()[0]
    assert len(reward_scores(model, tokenizer, row["prompt"], ["a", "b"])) == 2


def test_reward_length_prior_is_an_offset_in_training_and_part_of_the_reward(
    train_home: Path, tiny_model_dir: Path
) -> None:
    import math

    from training.reward import (
        LENGTH_PRIOR_FILE,
        fit_length_prior,
        load_reward_model,
        reward_scores,
        train_reward,
    )

    rows = pref_rows()  # every chosen answer is the longer one: the prior must favour length
    prior = fit_length_prior(rows)
    assert prior > 0
    flipped = [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows]
    assert fit_length_prior(flipped) == pytest.approx(-prior)
    with pytest.raises(ValueError):
        fit_length_prior([])

    seen: list[float] = []

    from transformers import TrainerCallback

    class Spy(TrainerCallback):
        """Records the margins TRL's collator hands to the loss."""

        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            for batch in train_dataloader:
                seen.extend(batch["margin"].tolist())

    result = train_reward(
        rows,
        base=tiny_model_dir,
        home=train_home,
        overrides={**FAST, "model.length_prior": True},
        progress=False,
        callbacks=[Spy()],
    )
    assert result.metrics["length_prior"] == pytest.approx(prior, abs=1e-5)
    assert sorted(seen) == pytest.approx(
        sorted(
            -prior
            * (math.log1p(len(r["chosen"][-1]["content"])) - math.log1p(len(r["rejected"][-1]["content"])))
            for r in rows
        ),
        abs=1e-5,
    )
    assert (result.adapter_dir / LENGTH_PRIOR_FILE).is_file()

    model, tokenizer = load_reward_model(result.adapter_dir, str(tiny_model_dir))
    assert model.length_prior == pytest.approx(prior)
    prompt, answers = rows[0]["prompt"], ["Short.", "A much longer answer than that one."]
    bare = reward_scores(model, tokenizer, prompt, answers, length_prior=False)
    full = reward_scores(model, tokenizer, prompt, answers)
    assert full == pytest.approx([b + prior * math.log1p(len(a)) for b, a in zip(bare, answers, strict=True)])


@pytest.mark.parametrize("bf16", [False, True])
def test_reward_control_features_are_fit_on_the_training_pairs_and_part_of_the_reward(
    train_home: Path, tiny_model_dir: Path, bf16: bool
) -> None:
    """With bf16 autocast in training too: the fit is on the scores the saved model gives (fp32),
    not on the autocast forward accelerate leaves on the trained model."""
    import math

    from training.reward import (
        CONTROL_FILE,
        fit_control,
        load_reward_model,
        reward_scores,
        train_reward,
    )

    rows = [
        {
            **row,
            "prompt": [
                {
                    "role": "user",
                    "content": f"Passages:\n[1] Refunds take {i + 3} business days.\n\nCustomer: When?",
                }
            ],
        }
        for i, row in enumerate(pref_rows())
    ]
    with pytest.raises(ConfigError, match="unknown control feature"):
        train_reward(
            rows, base=tiny_model_dir, home=train_home, overrides={**FAST, "model.control": ["tone"]}
        )
    result = train_reward(
        rows,
        base=tiny_model_dir,
        home=train_home,
        overrides={**FAST, "bf16": bf16, "model.control": ["length", "groundedness"]},
        progress=False,
    )
    assert result.metrics["bf16"] is bf16
    saved = json.loads((result.adapter_dir / CONTROL_FILE).read_text())
    assert saved["fit_on_pairs"] == len(rows) and set(saved["features"]) == {"length", "groundedness"}
    assert result.metrics["control"] == pytest.approx(saved["weights"], abs=1e-5)

    model, tokenizer = load_reward_model(result.adapter_dir, str(tiny_model_dir))
    assert model.reward_control == pytest.approx(saved["weights"])

    def both(row: dict, **kwargs) -> list[float]:
        answers = [row["chosen"][-1]["content"], row["rejected"][-1]["content"]]
        return reward_scores(model, tokenizer, row["prompt"], answers, **kwargs)

    # The weights are the fit on the reloaded model's own scores of the training pairs.
    bare = [both(r, length_prior=False) for r in rows]
    refit = fit_control(rows, [c for c, _ in bare], [r for _, r in bare], ("length", "groundedness"))
    assert refit == pytest.approx(model.reward_control, rel=1e-3, abs=1e-4)
    w = model.reward_control
    prompt = rows[0]["prompt"]
    answers = ["Refunds take 3 business days.", "Our office cat is called Biscuit, and she likes naps."]
    plain = reward_scores(model, tokenizer, prompt, answers, control=False)
    assert plain == pytest.approx(reward_scores(model, tokenizer, prompt, answers, length_prior=False))
    grounded = [1.0, 0.0]  # every content word of the first answer is in the passage; none of the second
    expected = [
        w["score"] * s + w["length"] * math.log1p(len(a)) + w["groundedness"] * g
        for s, a, g in zip(plain, answers, grounded, strict=True)
    ]
    assert reward_scores(model, tokenizer, prompt, answers) == pytest.approx(expected)


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


def test_reward_scores_share_the_prompt_and_match_full_passes(tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.reward import _score, reward_scores

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir), num_labels=1).eval()
    torch.nn.init.normal_(model.score.weight, std=1.0)  # a readable spread of scores
    model.config.pad_token_id = tokenizer.pad_token_id
    prompt = [{"role": "user", "content": "My router keeps dropping the connection every evening."}]
    answers = ["Restart it.", "Please update the firmware, then restart it.", "Restart it, then call us."]

    def full(answer: str, max_length: int) -> float:
        text = tokenizer.apply_chat_template(
            [*prompt, {"role": "assistant", "content": answer}], tokenize=False
        )
        return _score(model, tokenizer(text, add_special_tokens=False)["input_ids"][-max_length:])

    shared = reward_scores(model, tokenizer, prompt, answers)
    assert shared == pytest.approx([full(a, 1024) for a in answers], abs=1e-4)
    assert len(set(shared)) == 3  # the answers are told apart, not all read at one position
    # Cut from the left when too long: every text runs in full, cut to fit.
    assert reward_scores(model, tokenizer, prompt, answers, max_length=12) == pytest.approx(
        [full(a, 12) for a in answers], abs=1e-4
    )
    assert reward_scores(model, tokenizer, prompt, answers[:1]) == pytest.approx([shared[0]], abs=1e-4)


def test_length_control_separates_what_the_score_adds_from_what_length_explains() -> None:
    import random

    from training.reward import (
        fit_length_control,
        length_baseline,
        length_controlled_scores,
        pairwise_accuracy,
    )

    rng = random.Random(0)

    def pairs(n: int) -> tuple[list[dict], list[float], list[float]]:
        """Shorter answers win 76% of the time; a hidden quality decides the rest, and the score
        sees that quality (plus noise) but also rewards length, like a length-biased model."""
        rows, chosen, rejected = [], [], []
        for _ in range(n):
            short, long_ = "x" * rng.randint(20, 60), "x" * rng.randint(200, 400)
            quality_short, quality_long = rng.gauss(1.0, 1), rng.gauss(0, 1)
            win_short = quality_short > quality_long
            c, r = (short, long_) if win_short else (long_, short)
            qc, qr = (quality_short, quality_long) if win_short else (quality_long, quality_short)
            rows.append({"chosen": [{"content": c}], "rejected": [{"content": r}]})
            chosen.append(qc + 0.004 * len(c) + rng.gauss(0, 0.3))
            rejected.append(qr + 0.004 * len(r) + rng.gauss(0, 0.3))
        return rows, chosen, rejected

    train, held_out = pairs(400), pairs(300)
    w_score, w_length = fit_length_control(*train)
    assert w_score > 0 and w_length < 0  # the score helps; length, once it is controlled for, hurts
    raw = pairwise_accuracy(*held_out[1:])
    controlled = pairwise_accuracy(*length_controlled_scores(*held_out, (w_score, w_length)))
    assert controlled > raw + 0.05

    # A score that is pure noise gets (almost) no weight; length carries the ranking alone.
    rows = pairs(3000)[0]
    noise = [rng.gauss(0, 1) for _ in rows], [rng.gauss(0, 1) for _ in rows]
    w_noise, w_len = fit_length_control(rows, *noise)
    assert abs(w_noise) < abs(w_len) / 3
    held_rows = held_out[0]
    held_noise = [rng.gauss(0, 1) for _ in held_rows], [rng.gauss(0, 1) for _ in held_rows]
    by_length = length_baseline(held_rows, fit=rows)
    assert pairwise_accuracy(*length_controlled_scores(held_rows, *held_noise, (w_noise, w_len))) == (
        pytest.approx(by_length, abs=0.04)
    )
    with pytest.raises(ValueError):
        fit_length_control(rows, [1.0], [0.0])


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


@pytest.mark.parametrize("native", [False, True])
def test_cpu_recipes_train_in_fp32_and_bf16_auto_follows_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """TRL's configs default to bf16 autocast. On an AVX2-only CPU that is ~10x slower than fp32,
    so the CPU recipes train in fp32; ``bf16: auto`` (opt-in) turns autocast on only where the CPU
    has AVX512-BF16 or AMX."""
    import torch
    from trl import DPOConfig, GRPOConfig, KTOConfig, RewardConfig, SFTConfig

    from training import recipes
    from training.recipes import trl_config

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert recipes.cpu_bf16() is native
    for kind, cls in (
        ("sft", SFTConfig),
        ("dpo", DPOConfig),
        ("kto", KTOConfig),
        ("reward", RewardConfig),
        ("grpo", GRPOConfig),
    ):
        recipe = load_recipe("cpu", kind)
        assert trl_config(cls, recipe, kind, tmp_path).bf16 is False
        recipe[kind].pop("bf16")  # the guard, for recipes that do not say
        assert trl_config(cls, recipe, kind, tmp_path).bf16 is False
        recipe[kind]["bf16"] = "auto"
        assert trl_config(cls, recipe, kind, tmp_path).bf16 is native
        recipe[kind]["bf16"] = "sometimes"
        with pytest.raises(ConfigError, match="bf16 must be true, false or auto"):
            trl_config(cls, recipe, kind, tmp_path)


def test_compact_lm_head_gives_the_same_loss(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Scoring only the answer positions in TRL's fused head is a speed-up, not a new loss."""
    import contextlib

    import torch
    import trl.trainer.utils as trl_utils

    import training.run as run
    from training.sft import train_sft

    original = trl_utils._use_triton
    assert original(torch.device("cpu")) is False  # TRL's own choice: every position on CPU
    with run.compact_lm_head_on_cpu():
        assert trl_utils._use_triton(torch.device("cpu")) is True  # the patch is what TRL reads
    losses = {}
    for compact in (True, False):
        patch = run.compact_lm_head_on_cpu if compact else contextlib.nullcontext
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(run, "compact_lm_head_on_cpu", patch)
            result = train_sft(
                sft_rows(), base=tiny_model_dir, home=tmp_path / str(compact), overrides=FAST, progress=False
            )
        losses[compact] = result.metrics["train_loss"]
    assert trl_utils._use_triton is original  # restored after training
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_unknown_trl_field_is_a_config_error(tmp_path: Path) -> None:
    from trl import SFTConfig

    from training.recipes import trl_config

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


GRPO_FAST = {
    "max_steps": 2,
    "num_generations": 2,
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "max_completion_length": 8,
    "logging_steps": 1,
}


def test_grpo_samples_scores_and_changes_the_adapter(train_home: Path, tiny_model_dir: Path) -> None:
    from training.grpo import train_grpo

    snap = snapshot_callback()
    result = train_grpo(
        sft_rows(),
        base=tiny_model_dir,
        home=train_home,
        overrides={**GRPO_FAST, "rewards.length": 1.0, "rewards.reference": 1.0, "rewards.groundedness": 1.0},
        progress=False,
        callbacks=[snap],
    )
    assert result.metrics["train_steps"] == 2
    assert snap.before and all("lora_" in n for n in snap.before)
    assert snap.changed(), "no trainable parameter changed"
    assert "reward_first" in result.metrics and "reward_last" in result.metrics
    history = json.loads((result.out_dir / "log_history.json").read_text())
    logged = {k for h in history for k in h}
    for name in ("length_reward", "reference_reward", "groundedness_reward"):
        assert any(name in k for k in logged), f"{name} not logged: {sorted(logged)}"
    version = ModelRegistry(train_home).get(result.version)
    assert version.kind == "grpo" and version.adapter_path == str(result.adapter_dir)


def test_grpo_rewards_score_support_answers() -> None:
    from training.grpo import groundedness_reward, length_reward, reference_reward

    row = sft_rows()[0]
    answer = row["completion"][0]["content"]
    ref = [row["completion"]]
    off_topic = [{"role": "assistant", "content": "Bananas are yellow fruit."}]
    assert reference_reward([row["completion"], off_topic], ref * 2) == pytest.approx([1.0, 0.0], abs=0.05)
    assert length_reward([row["completion"]], ref) == [1.0]
    assert length_reward([[{"role": "assistant", "content": ""}]], ref) == [0.0]
    assert length_reward([[{"role": "assistant", "content": answer * 3}]], ref) == [0.0]
    grounded, ungrounded = groundedness_reward([row["prompt"]] * 2, [row["completion"], off_topic])
    assert grounded > ungrounded
    assert groundedness_reward([[{"role": "user", "content": "hi"}]], [off_topic]) == [0.5]  # no passages


def test_grpo_reward_settings_are_checked(train_home: Path, sft_version, reward_version) -> None:
    from training.grpo import reward_functions

    funcs, weights = reward_functions({"groundedness": 1.0, "length": 0, "reference": 2}, train_home)
    assert [f.__name__ for f in funcs] == ["groundedness_reward", "reference_reward"] and weights == [
        1.0,
        2.0,
    ]
    with pytest.raises(ConfigError, match="unknown reward"):
        reward_functions({"politeness": 1.0}, train_home)
    with pytest.raises(ConfigError, match="must be a number"):
        reward_functions({"length": "high"}, train_home)
    with pytest.raises(ConfigError, match="model_version"):
        reward_functions({"model": 1.0}, train_home)
    with pytest.raises(ConfigError, match="at least one reward"):
        reward_functions({"length": 0}, train_home)
    with pytest.raises(ConfigError, match="not a reward model"):
        reward_functions({"model": 1.0, "model_version": sft_version[0].version}, train_home)

    # A registered reward model as a reward: it scores answers, and tells them apart.
    (model_reward,), _ = reward_functions(
        {"model": 0.5, "model_version": reward_version[0].version}, train_home
    )
    row = pref_rows()[0]
    other = pref_rows()[1]
    prompts = [row["prompt"]] * 2 + [other["prompt"]]
    scores = model_reward(prompts=prompts, completions=[row["chosen"], row["rejected"], other["chosen"]])
    assert len(scores) == 3 and scores[0] != scores[1]
    # A group scored together (shared prompt) equals each answer scored on its own.
    alone = [
        model_reward(prompts=[p], completions=[c])[0]
        for p, c in zip(prompts, [row["chosen"], row["rejected"], other["chosen"]], strict=True)
    ]
    assert scores == pytest.approx(alone, abs=1e-4)


def test_train_grpo_command_takes_reward_flags(home: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    from click.testing import CliRunner

    from agent.cli import cli

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in sft_rows()))
    sets = [f"--set={k}={v}" for k, v in GRPO_FAST.items() if k != "max_steps"]
    args = ["train", "grpo", "--data", str(data), "--base", str(tiny_model_dir)]
    args += ["--max-steps", "1", "--reward", "length=1", "--reward", "reference=0.5", *sets, "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output.strip().splitlines()[-1])
    assert outcome["kind"] == "grpo" and outcome["metrics"]["train_steps"] == 1
    history = json.loads((Path(outcome["out_dir"]) / "log_history.json").read_text())
    logged = {k for h in history for k in h}
    assert any("length_reward" in k for k in logged) and any("reference_reward" in k for k in logged)
    assert not any("groundedness_reward" in k for k in logged)  # --reward replaces the recipe's set

    bad = CliRunner().invoke(cli, [*args[:6], "--reward", "politeness=1"])
    assert bad.exit_code != 0 and "unknown reward" in str(bad.exception)
    assert ModelRegistry(home).get(outcome["version"]).kind == "grpo"


def test_train_reward_command_length_prior_flag_sets_the_recipe_key() -> None:
    from click.testing import CliRunner

    from agent.cli import cli
    from training.cli_train import recipe_overrides

    assert recipe_overrides({"length_prior": True})["model.length_prior"] is True
    assert "model.length_prior" not in recipe_overrides({"length_prior": False})
    assert load_recipe("cpu", "reward")["model"]["length_prior"] is False  # off unless asked
    assert recipe_overrides({"control": ("length", "groundedness")})["model.control"] == [
        "length",
        "groundedness",
    ]
    assert "model.control" not in recipe_overrides({"control": ()})
    assert load_recipe("cpu", "reward")["model"]["control"] == []  # off unless asked
    shown = CliRunner().invoke(cli, ["train", "reward", "--help"])
    assert shown.exit_code == 0 and "--length-prior" in shown.output and "--control" in shown.output
    bad = CliRunner().invoke(cli, ["train", "reward", "--data", __file__, "--control", "tone"])
    assert bad.exit_code != 0 and "tone" in bad.output
