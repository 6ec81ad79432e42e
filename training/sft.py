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

import math
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


def train_sft(
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
    """Fine-tune ``base`` on ``data`` (any importable conversation file, compiled rows or a
    ``CompiledDataset``) and register the result as a candidate version. ``callbacks``: extra
    ``transformers.TrainerCallback`` objects (the tests snapshot parameters with one)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    # 1. The recipe with command-line overrides, and the run folder.
    config, home, out_dir = start_run("sft", recipe, overrides, home=home, out_dir=out_dir, progress=progress)

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


# ------------------------------------------------------------------------------- sweep


def sweep_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``--sweep learning_rate=1e-4,2e-4 --sweep lora.r=8,16`` as {key: [values]} (YAML-typed)."""
    from training.recipes import parse_set

    grid: dict[str, list[Any]] = {}
    for item in items:
        key, _, values = item.partition("=")
        grid[key.strip()] = [parse_set([f"{key}={v}"])[key.strip()] for v in values.split(",") if v.strip()]
    return grid


def sweep_sft(
    data: TrainingData,
    grid: Mapping[str, Sequence[Any]],
    *,
    val_rows: Sequence[dict[str, Any]] | None = None,
    max_val: int = 50,
    home: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Train one SFT candidate per combination of ``grid`` (e.g. learning rate x LoRA rank x
    epochs) and rank them on validation perplexity of the reference answers (the compiled
    validation split of ``data``, or ``val_rows``), best first. Every run stays a registered
    candidate; the ranking says which one to evaluate and promote."""
    import itertools

    from agent.config import default_home
    from agent.models import ModelRegistry, load_resolved, resolve_spec
    from training.decoding import reference_nll

    home = home or default_home()
    if val_rows is None:
        _, val_rows, _ = training_rows(data, "sft", docs=kwargs.get("docs"), persona=kwargs.get("persona"))
    val_rows = list(val_rows)[:max_val]
    if not val_rows:
        from agent.errors import DataError

        raise DataError("the sweep needs validation rows (a conversation file, or val_rows)")
    ranking = []
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        setting = dict(zip(keys, values, strict=True))
        result = train_sft(data, home=home, overrides={**(overrides or {}), **setting}, **kwargs)
        model, tokenizer = load_resolved(resolve_spec(result.version, home=home))
        total, count = 0.0, 0
        for row in val_rows:
            nll, n = reference_nll(model, tokenizer, row["prompt"], row["completion"][-1]["content"])
            total, count = total + nll, count + n
        ppl = round(math.exp(total / max(count, 1)), 4)
        ModelRegistry(home).update_metrics(result.version, {"sweep": {**setting, "val_perplexity": ppl}})
        ranking.append({"version": result.version, **setting, "val_perplexity": ppl})
    return sorted(ranking, key=lambda r: r["val_perplexity"])
