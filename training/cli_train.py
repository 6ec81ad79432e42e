"""``supportloop train``: fine-tune with TRL (sft, dpo, kto, reward, grpo) or run a whole round."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from training.cli_shared import (
    GATE,
    config_of,
    default_docs,
    erasures_of,
    eval_retriever,
    gate_options,
    log_store,
)
from training.gate import GateConfig

if TYPE_CHECKING:
    from training.run import TrainResult


def _train_options(func: Any) -> Any:
    """The options every trainer takes; each maps onto a recipe key (see training.recipes)."""
    options = [
        click.option(
            "--data",
            "data_path",
            required=True,
            type=click.Path(exists=True, path_type=Path),
            help="Any importable conversation or preference file, or compiled TRL rows.",
        ),
        click.option(
            "--docs",
            type=click.Path(exists=True, path_type=Path),
            help="Documents for gold_doc_ids (JSON Lines or a folder of Markdown).",
        ),
        click.option(
            "--base",
            default="production",
            show_default=True,
            help="Start from: production, a registry version (its adapter keeps training) or a directory.",
        ),
        click.option(
            "--recipe", default="cpu", show_default=True, help="Recipe name (cpu, gpu) or a YAML path."
        ),
        click.option("--max-steps", type=int, help="Optimizer steps (overrides epochs)."),
        click.option("--learning-rate", type=float),
        click.option("--epochs", type=float, help="num_train_epochs."),
        click.option("--lora-r", type=int, help="LoRA rank."),
        click.option("--max-examples", type=int, help="Train on a seeded subset of this many rows."),
        click.option(
            "--set",
            "sets",
            multiple=True,
            metavar="KEY=VALUE",
            help="Any recipe field, e.g. --set max_length=1024 --set lora.lora_alpha=64 (repeatable).",
        ),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder."),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on the last line."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def recipe_overrides(opts: dict[str, Any]) -> dict[str, Any]:
    """The trainer flags that were given, and every ``--set KEY=VALUE``, as recipe overrides."""
    from training.recipes import parse_set

    flags = {
        "max_steps": opts.get("max_steps"),
        "learning_rate": opts.get("learning_rate"),
        "num_train_epochs": opts.get("epochs"),
        "lora.r": opts.get("lora_r"),
        "data.max_examples": opts.get("max_examples"),
        "model.freeze_layers": opts.get("freeze_layers"),
        "model.length_prior": True if opts.get("length_prior") else None,
        "model.control": list(opts["control"]) if opts.get("control") else None,
    }
    return {**{k: v for k, v in flags.items() if v is not None}, **parse_set(opts.get("sets") or ())}


def _run_trainer(ctx: click.Context, kind: str, opts: dict[str, Any]) -> None:
    import importlib

    module, func = {
        "sft": ("training.sft", "train_sft"),
        "dpo": ("training.preference", "train_dpo"),
        "kto": ("training.preference", "train_kto"),
        "reward": ("training.reward", "train_reward"),
        "grpo": ("training.grpo", "train_grpo"),
    }[kind]
    config = config_of(ctx)
    _warn_if_stale(config, opts["data_path"])
    train_fn = getattr(importlib.import_module(module), func)
    result = train_fn(
        opts["data_path"],
        base=opts["base"],
        recipe=opts["recipe"],
        overrides=recipe_overrides(opts),
        out_dir=opts.get("out"),
        home=Path(config.home),
        docs=opts.get("docs"),
        persona=config.persona,
    )
    _print_result(kind, result, opts["as_json"])


def _warn_if_stale(config: Any, data: Path) -> None:
    """Warn when ``data`` is a compiled dataset made before the latest erasure."""
    from training.data.erasure import stale_warning

    warning = stale_warning(Path(data), erasures_of(config)[1])
    if warning:
        click.echo(f"warning: {warning}", err=True)


def _print_result(kind: str, result: TrainResult, as_json: bool) -> None:
    """The candidate in a few lines (on stderr with --json), then the result as JSON."""
    from rich.console import Console

    console = Console(highlight=False, stderr=as_json)
    metrics = result.metrics
    console.print(
        f"[bold]{kind}[/bold] candidate [bold]{result.version}[/bold] (parent {result.parent or '-'}): "
        f"{metrics.get('train_rows')} rows, {metrics.get('train_steps')} steps in {metrics.get('train_seconds')} s, "
        f"loss {metrics.get('train_loss')}, {metrics.get('tokens_per_s', 'n/a')} tokens/s, "
        f"peak RSS {metrics.get('peak_rss_mb')} MB",
        soft_wrap=True,
    )
    console.print(
        f"weights: {result.adapter_dir}\nloss curve: {result.loss_png}", markup=False, soft_wrap=True
    )
    console.print(f"not promoted: `supportloop models promote {result.version}` runs the gate", markup=False)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False))


@click.group()
def train() -> None:
    """Fine-tune with TRL (sft, dpo, kto, reward, grpo) or run a whole round."""


@train.command("sft")
@_train_options
@click.option("--freeze-layers", type=int, help="Full fine-tune of the top N layers instead of LoRA.")
@click.option(
    "--sweep",
    "sweeps",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Train every combination (e.g. --sweep learning_rate=1e-4,2e-4 --sweep lora.r=8,16) and "
    "rank them on validation perplexity.",
)
@click.pass_context
def train_sft_command(ctx: click.Context, **opts: Any) -> None:
    """Supervised fine-tuning (LoRA) on the serving prompt; registers a candidate."""
    if not opts["sweeps"]:
        _run_trainer(ctx, "sft", opts)
        return
    from training.sft import sweep_grid, sweep_sft

    config = config_of(ctx)
    ranking = sweep_sft(
        opts["data_path"],
        sweep_grid(opts["sweeps"]),
        base=opts["base"],
        recipe=opts["recipe"],
        overrides=recipe_overrides(opts),
        home=Path(config.home),
        docs=opts.get("docs"),
        persona=config.persona,
    )
    for rank, row in enumerate(ranking, start=1):
        click.echo(f"{rank}. " + ", ".join(f"{k}={v}" for k, v in row.items()), err=opts["as_json"])
    click.echo(f"best on validation: {ranking[0]['version']}", err=opts["as_json"])
    if opts["as_json"]:
        click.echo(json.dumps({"best": ranking[0]["version"], "ranking": ranking}))


@train.command("dpo")
@_train_options
@click.pass_context
def train_dpo_command(ctx: click.Context, **opts: Any) -> None:
    """DPO from an SFT version (--base VERSION) on preference pairs."""
    _run_trainer(ctx, "dpo", opts)


@train.command("kto")
@_train_options
@click.pass_context
def train_kto_command(ctx: click.Context, **opts: Any) -> None:
    """KTO from an SFT version (--base VERSION) on thumbs/ratings."""
    _run_trainer(ctx, "kto", opts)


@train.command("reward")
@_train_options
@click.option("--freeze-layers", type=int, help="Train the top N layers and the head instead of LoRA.")
@click.option(
    "--length-prior",
    is_flag=True,
    help="Fit the length-only preference first and train the score on what it does not explain; "
    "the reward is the score plus that prior.",
)
@click.option(
    "--control",
    multiple=True,
    type=click.Choice(["length", "groundedness"]),
    help="After training, score the training pairs and fit how much the score and this feature "
    "of the answer each count; the reward is that weighted sum. Repeatable.",
)
@click.pass_context
def train_reward_command(ctx: click.Context, **opts: Any) -> None:
    """A reward model (scalar head) on preference pairs; never servable."""
    _run_trainer(ctx, "reward", opts)


@train.command("grpo")
@_train_options
@click.option(
    "--reward",
    "rewards",
    multiple=True,
    metavar="NAME=WEIGHT",
    help="Reward functions and weights, replacing the recipe's (the others are off): groundedness, "
    "reference, length, model (with --reward-model). Repeatable.",
)
@click.option("--reward-model", help="A registered reward model version, for --reward model=WEIGHT.")
@click.pass_context
def train_grpo_command(ctx: click.Context, **opts: Any) -> None:
    """GRPO on the conversations' prompts, sampling answers and scoring them with reward
    functions (passage groundedness, ROUGE-L against the real answer, length, a reward model)."""
    from training.recipes import parse_set

    sets = list(opts.get("sets") or ())
    if opts["rewards"]:
        from training.grpo import REWARDS

        chosen = parse_set(opts["rewards"])
        sets += [f"rewards.{name}={chosen.get(name, 0)}" for name in REWARDS]
        sets += [f"rewards.{name}={weight}" for name, weight in chosen.items() if name not in REWARDS]
    if opts.get("reward_model"):
        sets.append(f"rewards.model_version={opts['reward_model']}")
    _run_trainer(ctx, "grpo", {**opts, "sets": tuple(sets)})


@train.command("round")
@click.option(
    "--data",
    "data_files",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Extra conversation files to train on (repeatable).",
)
@click.option(
    "--from-logs/--no-from-logs",
    default=True,
    show_default=True,
    help="Export reviewed conversations from the log store.",
)
@click.option(
    "--docs",
    type=click.Path(exists=True, path_type=Path),
    help="Documents: gold passages and the retrieved setting (default: the knowledge index).",
)
@click.option("--recipe", default="cpu", show_default=True)
@click.option("--max-steps", type=int)
@click.option("--max-examples", type=int)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE")
@click.option(
    "--eval-limit", type=int, default=GATE.eval_limit, show_default=True, help="Held-out answers to evaluate."
)
@gate_options
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def train_round(
    ctx: click.Context,
    data_files: tuple[Path, ...],
    from_logs: bool,
    docs: Path | None,
    recipe: str,
    max_steps: int | None,
    max_examples: int | None,
    sets: tuple[str, ...],
    eval_limit: int,
    primary: str,
    setting: str,
    margin: float,
    as_json: bool,
) -> None:
    """Logs -> compile -> SFT (+DPO/KTO) -> evaluate -> gate -> promote or refuse, with a report."""
    from training.data import current_index
    from training.round import run_round

    if not data_files and not from_logs:
        raise click.UsageError("nothing to train on: give --data FILE or keep --from-logs")
    config = config_of(ctx)
    with log_store(config, from_logs) as store:
        result = run_round(
            home=Path(config.home),
            persona=config.persona,
            data_files=list(data_files),
            store=store,
            docs=docs or default_docs(config),
            retriever=eval_retriever(config, docs),
            overrides=recipe_overrides({"max_steps": max_steps, "max_examples": max_examples, "sets": sets}),
            recipe=recipe,
            eval_limit=eval_limit,
            gate=GateConfig(primary=primary, setting=setting, margin=margin, eval_limit=eval_limit),
            erased=erasures_of(config)[0],  # erased conversations stay out of --data files too
            index=current_index(config) if from_logs else None,  # stale answers stay out
        )
    verdict = "promoted" if result.promoted else "refused"
    click.echo(f"round {verdict}: candidate {result.candidate}", err=as_json)
    if result.decision is not None:
        click.echo(f"  {result.decision.why}", err=as_json)
    for reason in result.to_dict()["reasons"]:
        click.echo(f"  {reason}", err=as_json)
    click.echo(f"report: {result.report_md}", err=as_json)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, default=str))


@train.command("ranker")
@click.option(
    "--data",
    "data_files",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Past conversations (repeatable): JSON Lines with turns or messages, or CSV.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the ranker goes (default: <home>/models/rankers/ranker-<time>); must not exist yet.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--learning-rate", type=float, default=2e-4, show_default=True)
@click.option("--lora-r", type=int, default=16, show_default=True, help="LoRA rank.")
@click.option(
    "--validation",
    type=float,
    default=0.15,
    show_default=True,
    help="Share of conversations kept out of training and measured on.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON on the last line.")
@click.pass_context
def train_ranker_command(
    ctx: click.Context,
    data_files: tuple[Path, ...],
    out: Path | None,
    seed: int,
    epochs: int,
    learning_rate: float,
    lora_r: int,
    validation: float,
    as_json: bool,
) -> None:
    """The ranker that picks the chunks the model is shown, tuned on past conversations (LoRA)."""
    import time

    from rich.console import Console

    from agent.knowledge import open_knowledge
    from training.ranker import train_ranker

    config = config_of(ctx)
    out = out or Path(config.home) / "models" / "rankers" / time.strftime("ranker-%Y%m%d-%H%M%S")
    manifest = train_ranker(
        list(data_files),
        open_knowledge(config),
        out,
        seed=seed,
        epochs=epochs,
        learning_rate=learning_rate,
        lora_r=lora_r,
        validation=validation,
        k=config.retrieval.k,
        candidates=max(config.retrieval.candidates, config.retrieval.k + 1),
        progress=not as_json,
    )
    console = Console(highlight=False, stderr=as_json)
    data, metrics = manifest["data"], manifest["metrics"]
    console.print(
        f"ranker trained on {data['train_pairs']} message/chunk pairs from {data['conversations_read']} "
        f"conversations in {manifest['train']['seconds']} s",
        markup=False,
        soft_wrap=True,
    )
    if metrics.get("validation_pairs"):
        console.print(
            f"answering chunk among the {metrics['k']} shown, {metrics['validation_pairs']} held-out messages: "
            f"index model {metrics['shown_recall_index_model']}, ranker {metrics['shown_recall_ranker']}",
            markup=False,
            soft_wrap=True,
        )
    console.print(
        f"ranker: {out}\nuse it: set retrieval.ranker to that path (SUPPORTLOOP_RETRIEVAL__RANKER={out})",
        markup=False,
        soft_wrap=True,
    )
    if as_json:
        click.echo(json.dumps({"ranker": str(out), **manifest}, ensure_ascii=False))
