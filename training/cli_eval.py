"""``supportloop eval model``: held-out generation metrics of a model version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from training.cli_shared import config_of, eval_retriever

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from training.data import Retriever


def evaluate_and_record(
    home: Path,
    config: AgentConfig,
    version: str,
    data_path: Path,
    docs: Path | None,
    limit: int | None,
    retriever: Retriever | None,
    few_shot: bool = True,
    engine: str = "transformers",
) -> dict[str, Any]:
    """Evaluate VERSION vs production (vs the few-shot baseline) and store the summary."""
    from agent.models import ModelRegistry
    from training.evaluate import EvalPlan, Protocol, evaluate_versions, examples_from_rows, load_eval_rows
    from training.gate import eval_summary
    from training.run import root_spec

    registry = ModelRegistry(home)
    held_out, train_rows = load_eval_rows(data_path, docs=docs, persona=config.persona)
    roles = {"candidate": version, "production": registry.production_name()}
    if few_shot:
        roles["few_shot"] = root_spec(registry, version)
    # Few-shot examples come from the training split; with none (a bare compiled file), from the
    # held-out rows past the limit, never from the rows being evaluated.
    all_held_out = held_out
    held_out = held_out[:limit] if limit else held_out
    pool = train_rows or all_held_out[len(held_out) :]
    plan = EvalPlan(
        models=roles,
        examples=examples_from_rows(held_out),
        shot_pool=pool,
        retriever=retriever,
        settings=("gold", "retrieved") if retriever is not None else ("gold",),
        protocol=Protocol(engine=engine),
    )
    report = evaluate_versions(plan, home)
    if registry.has(version) and version != "base":
        registry.update_metrics(version, {"eval": eval_summary(report, registry.production_name())})
    return report


@click.command("model")
@click.option("--model", "version", required=True, help="The version to evaluate (or a directory).")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Any importable conversation file (its validation split) or compiled SFT rows.",
)
@click.option(
    "--docs",
    type=click.Path(exists=True, path_type=Path),
    help="Documents: gold passages and BM25 for the retrieved setting.",
)
@click.option("--limit", type=int, help="Evaluate at most N held-out answers.")
@click.option(
    "--engine",
    type=click.Choice(["transformers", "compiled"]),
    default="transformers",
    show_default=True,
    help="Generate with the model in torch, or with its compiled engine (what the agent serves).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on the last line.")
@click.pass_context
def eval_model(
    ctx: click.Context,
    version: str,
    data_path: Path,
    docs: Path | None,
    limit: int | None,
    engine: str,
    as_json: bool,
) -> None:
    """Held-out generation metrics: candidate vs production vs few-shot, gold and retrieved passages."""
    from rich.console import Console
    from rich.table import Table

    from training.report import fmt

    config = config_of(ctx)
    retriever = eval_retriever(config, docs)
    report = evaluate_and_record(
        Path(config.home), config, version, data_path, docs, limit, retriever, engine=engine
    )
    metrics = ("rougeL_f1", "bleu", "perplexity", "groundedness", "behaviour_accuracy")
    title = f"{version} on {report['n']} held-out answers (greedy, <= 96 new tokens, {engine})"
    table = Table(title=title)
    for column in ("model", "version", "passages", *metrics):
        table.add_column(column)
    for role, settings in report["models"].items():
        for setting, values in settings.items():
            table.add_row(role, report["specs"][role], setting, *(fmt(values.get(m)) for m in metrics))
    Console(highlight=False, stderr=as_json).print(table)
    if as_json:
        public = {k: report[k] for k in ("models", "n", "specs", "protocol")}
        click.echo(json.dumps(public, ensure_ascii=False))
