"""Supervised fine-tuning: a thin entry point over ``trl.SFTTrainer``.

Invariants:

* Rows are TRL conversational prompt-completion rows built by ``training.data`` with the
  serving prompt, so the loss is on the completion only (TRL's default for prompt-completion
  data: ``completion_only_loss=None`` resolves to True) and the model is tuned on exactly the
  prompt it is served with.
* LoRA by default (a fresh adapter on the base, or the base version's own adapter, trained
  further); ``model.freeze_layers: N`` instead fine-tunes the top N blocks in full.
* The result is registered as a *candidate* (kind ``sft``); production is never touched here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.common import (
    TrainResult,
    apply_overrides,
    load_policy,
    load_recipe,
    load_tokenizer,
    new_run_dir,
    resolve_base,
    run_training,
    save_and_register,
    training_rows,
    trl_config,
)


def train_sft(
    data: str | Path | Sequence[dict[str, Any]] | Any,
    *,
    base: str | Path = "production",
    recipe: str | Path = "cpu",
    overrides: Mapping[str, Any] | None = None,
    out_dir: Path | None = None,
    home: Path | None = None,
    docs: Path | None = None,
    persona: Any = None,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Fine-tune ``base`` on ``data`` (any importable conversation file, compiled rows or a
    ``CompiledDataset``) and register the result as a candidate version. ``callbacks``: extra
    ``transformers.TrainerCallback`` objects (the tests snapshot parameters with one)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from agent.config import default_home

    home = home or default_home()
    # 1. The recipe with command-line overrides, and the run folder.
    config = apply_overrides(load_recipe(recipe, "sft"), "sft", overrides or {})
    if not progress:
        config["sft"]["disable_tqdm"] = True
    out_dir = out_dir or new_run_dir(home, "sft")
    out_dir.mkdir(parents=True, exist_ok=True)

    # 2. Training rows: compiled with the serving prompt, subset to the recipe's size.
    data_cfg = config["data"]
    train, val, data_info = training_rows(
        data,
        "sft",
        docs=docs,
        persona=persona,
        turns=data_cfg.get("turns") or "all",
        max_examples=data_cfg.get("max_examples"),
    )

    # 3. Base model (+ LoRA, or frozen lower layers) and TRL's trainer.
    start = resolve_base(base, home)
    tokenizer = load_tokenizer(start.model_dir)
    model, peft_config = load_policy(start, config)
    args = trl_config(SFTConfig, config, "sft", out_dir)
    eval_dataset = Dataset.from_list(val) if val and args.eval_strategy != "no" else None
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train),
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )

    # 4. Train, plot the loss, register the candidate.
    metrics = run_training(trainer, out_dir, title=f"SFT on {len(train)} rows")
    metrics.update(train_rows=len(train), data=data_info["source"], recipe=config["source"])
    mode = (
        f"freeze_layers={config['model']['freeze_layers']}"
        if config["model"].get("freeze_layers")
        else "lora"
    )
    version, adapter_dir = save_and_register(
        trainer.model, tokenizer, home=home, base=start, kind="sft", metrics=metrics, notes=f"sft ({mode})"
    )
    return TrainResult(version, adapter_dir, metrics, out_dir / "loss.png", "sft", start.parent, out_dir)
