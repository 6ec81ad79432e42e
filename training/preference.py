"""Preference tuning from an SFT adapter: thin entry points over ``trl.DPOTrainer`` (pairs) and
``trl.KTOTrainer`` (unpaired thumbs/ratings).

Invariants:

* **Start from the SFT adapter.** ``base`` is normally the SFT version; its adapter is loaded
  trainable and TRL copies it as a frozen ``ref`` adapter, so the reference policy *is* the SFT
  parent and only one base model sits in memory. A base without an adapter gets a fresh LoRA
  (then the reference is the base with the adapter disabled).
* The result is registered as a candidate of kind ``dpo``/``kto`` with the SFT version as parent.
* ``logprob_margin`` is the held-out measure: mean over pairs of log p(chosen) - log p(rejected),
  summed over completion tokens, for any model; DPO should raise it over its parent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.config import Persona
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


def train_dpo(data: TrainingData, **kwargs: Any) -> TrainResult:
    """DPO on preference pairs (reviewer corrections over replies, higher- over lower-rated)."""
    return _train_preference("dpo", data, **kwargs)


def train_kto(data: TrainingData, **kwargs: Any) -> TrainResult:
    """KTO on unpaired rows labelled desirable/undesirable (thumbs, or ratings >= 4 / <= 2)."""
    return _train_preference("kto", data, **kwargs)


def _train_preference(
    kind: str,
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
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    config_cls, trainer_cls = (DPOConfig, DPOTrainer) if kind == "dpo" else (KTOConfig, KTOTrainer)
    # 1. Recipe + overrides, run folder.
    config, home, out_dir = start_run(kind, recipe, overrides, home=home, out_dir=out_dir, progress=progress)

    # 2. Rows (pairs for DPO, labelled completions for KTO).
    train, _val, data_info = training_rows(
        data, kind, docs=docs, persona=persona, max_examples=config["data"].get("max_examples")
    )

    # 3. The SFT adapter, trainable; TRL keeps a frozen copy of it as the reference.
    start = resolve_base(base, home)
    tokenizer = load_tokenizer(start.model_dir)
    model, peft_config = load_policy(start, config)
    trainer = trainer_cls(
        model=model,
        ref_model=None,
        args=trl_config(config_cls, config, kind, out_dir),
        train_dataset=Dataset.from_list(train),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )

    # 4. Train, plot, register as a candidate child of the SFT version.
    metrics = run_training(trainer, out_dir, title=f"{kind.upper()} on {len(train)} rows")
    metrics.update(train_rows=len(train), data=data_info["source"], recipe=config["source"])
    version, adapter_dir = save_and_register(
        trainer.model, tokenizer, home=home, base=start, kind=kind, metrics=metrics, notes=kind
    )
    return TrainResult(version, adapter_dir, metrics, out_dir / "loss.png", kind, start.parent, out_dir)


# ------------------------------------------------------------------------------- margin


def completion_logprob(model: Any, tokenizer: Any, prompt: list[dict[str, str]], answer: str) -> float:
    """log p(answer | prompt) under the chat template, summed over the answer's tokens."""
    import torch

    prompt_ids = tokenizer.apply_chat_template(
        prompt, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    full_ids = tokenizer.apply_chat_template(
        [*prompt, {"role": "assistant", "content": answer}], tokenize=True, return_dict=True
    )["input_ids"]
    ids = torch.tensor([full_ids], device=model.device)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, :-1].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    targets = ids[0, 1:]
    token_lp = logprobs.gather(1, targets[:, None])[:, 0]
    return float(token_lp[len(prompt_ids) - 1 :].sum())


def pair_margins(
    model: Any, tokenizer: Any, pairs: Sequence[Mapping[str, Any]], *, progress: str | None = None
) -> list[float]:
    """Per pair: log p(chosen) - log p(rejected), each summed over the answer's tokens.

    ``progress``: a label shows a tqdm bar with it (off by default)."""
    from tqdm.auto import tqdm

    return [
        completion_logprob(model, tokenizer, row["prompt"], row["chosen"][-1]["content"])
        - completion_logprob(model, tokenizer, row["prompt"], row["rejected"][-1]["content"])
        for row in tqdm(pairs, desc=progress, unit="pair", disable=progress is None)
    ]


def logprob_margin(model: Any, tokenizer: Any, pairs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Mean chosen-minus-rejected log-probability margin and the share of pairs it ranks right."""
    return margin_summary(pair_margins(model, tokenizer, pairs))


def margin_summary(margins: Sequence[float]) -> dict[str, float]:
    """``logprob_margin``'s figures from per-pair margins: mean, share above 0, count."""
    if not margins:
        return {"margin": float("nan"), "pair_accuracy": float("nan"), "pairs": 0}
    return {
        "margin": sum(margins) / len(margins),
        "pair_accuracy": sum(m > 0 for m in margins) / len(margins),
        "pairs": len(margins),
    }
