"""GRPO: a thin entry point over ``trl.GRPOTrainer`` with support-answer reward functions.

Invariants:

* **Prompts are the serving prompts.** Rows come from the same compiled SFT split (prompt with
  the passages, and the conversation's real answer, kept as ``reference`` for the rewards that
  compare with it), so the policy is tuned on exactly what it is served.
* **Rewards are named in the recipe.** The ``rewards`` section maps a reward name to its weight:
  ``groundedness`` (share of the answer's content words found in the prompt's passages, the
  evaluation's own measure), ``reference`` (ROUGE-L F1 against the real answer), ``length``
  (closeness to the real answer's length) and ``model`` (a registered reward model, named by
  ``rewards.model_version``). A weight of 0 turns a reward off; an unknown name or a weight
  that is not a number is refused, never ignored.
* Like SFT, LoRA on the base (or the base version's own adapter, trained further); the result is
  registered as a candidate of kind ``grpo`` with its parent; production is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from agent.config import Persona
from agent.errors import ConfigError
from training.data import TrainingData, training_rows
from training.recipes import trl_config
from training.run import (
    TrainResult,
    load_policy,
    load_tokenizer,
    resolve_base,
    run_training,
    save_and_register,
    start_run,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel

REWARDS = ("groundedness", "reference", "length", "model")
# One score per completion; TRL passes the rows' other columns (``reference``) as keywords.
RewardFunction = Callable[..., list[float]]


def _text(completion: Any) -> str:
    """A completion's text: TRL passes conversational completions as message lists."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if m.get("role", "assistant") == "assistant")


def _passages(prompt: Any) -> str:
    from training.heldout import split_user_message

    if isinstance(prompt, str):
        return ""
    user = [m["content"] for m in prompt if m.get("role") == "user"]
    return split_user_message(user[-1])[0] if user else ""


def groundedness_reward(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
    """Share of each answer's content words that occur in its prompt's passages (0 when the
    answer has no content words; 0.5, neutral, when the prompt has no passages)."""
    from training.metrics import groundedness

    out = []
    for prompt, completion in zip(prompts, completions, strict=True):
        passages = _passages(prompt)
        if not passages.strip():
            out.append(0.5)
            continue
        score = groundedness(_text(completion), passages)
        out.append(0.0 if score is None else float(score))
    return out


def reference_reward(completions: list[Any], reference: list[Any], **_: Any) -> list[float]:
    """ROUGE-L F1 (stemmed, the evaluation's scorer) of each answer against the real answer."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [
        scorer.score(_text(ref), _text(c))["rougeL"].fmeasure
        for c, ref in zip(completions, reference, strict=True)
    ]


def length_reward(completions: list[Any], reference: list[Any], **_: Any) -> list[float]:
    """1 at the real answer's length, falling linearly to 0 at twice (or none of) that length."""
    out = []
    for completion, ref in zip(completions, reference, strict=True):
        target = max(len(_text(ref)), 1)
        out.append(max(0.0, 1.0 - abs(len(_text(completion)) - target) / target))
    return out


def model_reward(version: str, home: Path) -> RewardFunction:
    """A registered reward model (kind ``reward``) as a reward function."""
    from training.reward import load_registered_reward, reward_scores

    model, tokenizer = load_registered_reward(version, home, what="rewards.model_version")

    def reward(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        # TRL lays out each prompt's sampled answers next to each other: score a prompt's group
        # in one call, so its prompt runs through the reward model once (``reward_scores``).
        scores: list[float] = []
        start = 0
        while start < len(prompts):
            end = start + 1
            while end < len(prompts) and prompts[end] == prompts[start]:
                end += 1
            answers = [_text(c) for c in completions[start:end]]
            scores += reward_scores(model, tokenizer, list(prompts[start]), answers)
            start = end
        return scores

    reward.__name__ = f"reward_model_{version}"
    return reward


BUILTIN_REWARDS: dict[str, RewardFunction] = {
    "groundedness": groundedness_reward,
    "reference": reference_reward,
    "length": length_reward,
}


def reward_functions(settings: Mapping[str, Any], home: Path) -> tuple[list[RewardFunction], list[float]]:
    """The recipe's ``rewards`` section as TRL reward functions and their weights."""
    settings = dict(settings)
    version = settings.pop("model_version", None)
    unknown = sorted(set(settings) - set(REWARDS))
    if unknown:
        raise ConfigError(f"unknown reward(s) {', '.join(unknown)}; known: {', '.join(REWARDS)}")
    funcs: list[RewardFunction] = []
    weights: list[float] = []
    for name, weight in settings.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ConfigError(f"rewards.{name}: the weight must be a number (0: off), got {weight!r}")
        if weight == 0:
            continue
        if name == "model":
            if not version:
                raise ConfigError("rewards.model needs rewards.model_version: the reward model's version")
            funcs.append(model_reward(str(version), home))
        else:
            funcs.append(BUILTIN_REWARDS[name])
        weights.append(float(weight))
    if not funcs:
        raise ConfigError(
            f"a GRPO recipe needs at least one reward in its rewards section ({', '.join(REWARDS)})"
        )
    return funcs, weights


def _count_generated_tokens(trainer: Any) -> list[int]:
    """Prompt and sampled-answer tokens of every batch the loss sees (a one-item list)."""
    counter = [0]
    compute_loss = trainer.compute_loss

    def counting(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        for key in ("prompt_mask", "completion_mask"):
            if isinstance(inputs, Mapping) and hasattr(inputs.get(key), "sum"):
                counter[0] += int(inputs[key].sum())
        return compute_loss(model, inputs, *args, **kwargs)

    trainer.compute_loss = counting
    return counter


def train_grpo(
    data: TrainingData,
    *,
    base: str | Path = "production",
    recipe: str | Path = "cpu",
    overrides: Mapping[str, Any] | None = None,
    out_dir: Path | None = None,
    home: Path | None = None,
    docs: Path | None = None,
    persona: Persona | None = None,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """GRPO on the prompts of ``data`` (any importable conversation file, compiled SFT rows or a
    ``CompiledDataset``) with the recipe's reward functions; registers a candidate."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    # 1. Recipe + overrides, run folder, reward functions (checked before any model loads).
    config, home, out_dir = start_run(
        "grpo", recipe, overrides, home=home, out_dir=out_dir, progress=progress
    )
    funcs, weights = reward_functions(config["rewards"], home)
    config["grpo"]["reward_weights"] = weights

    # 2. Prompts (with the real answer as ``reference``).
    train, _val, data_info = training_rows(
        data, "grpo", docs=docs, persona=persona, max_examples=config["data"].get("max_examples")
    )
    rows = [{"prompt": r["prompt"], "reference": r["completion"]} for r in train]

    # 3. Policy (LoRA on the base, or the base version's adapter) and TRL's trainer.
    start = resolve_base(base, home)
    tokenizer = load_tokenizer(start.model_dir)
    model, peft_config = load_policy(start, config)
    trainer = GRPOTrainer(
        model=model,
        # TRL takes a list of reward model names, models or functions returning list[float | None];
        # ours are functions that score every sample, and a list does not widen by itself.
        reward_funcs=cast("list[str | PreTrainedModel | Callable[..., list[float | None]]]", funcs),
        args=trl_config(GRPOConfig, config, "grpo", out_dir),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )

    # 4. Train (counting prompt + sampled answer tokens), plot, register as a candidate.
    tokens = _count_generated_tokens(trainer)
    metrics = run_training(trainer, out_dir, title=f"GRPO on {len(rows)} prompts")
    if tokens[0]:
        metrics.update(train_tokens=tokens[0], tokens_per_s=round(tokens[0] / metrics["train_seconds"], 1))
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    if rewards:
        metrics.update(reward_first=round(float(rewards[0]), 4), reward_last=round(float(rewards[-1]), 4))
    metrics.update(train_rows=len(rows), data=data_info["source"], recipe=config["source"])
    version, adapter_dir = save_and_register(
        trainer.model, tokenizer, home=home, base=start, kind="grpo", metrics=metrics, notes="grpo"
    )
    return TrainResult(version, adapter_dir, metrics, out_dir / "loss.png", "grpo", start.parent, out_dir)
