"""``supportloop data``: compile conversations and reviewed logs into training data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from training.cli_shared import config_of, erasures_of, log_store

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from training.data import Retriever


@click.group()
def data() -> None:
    """Compile conversations and reviewed logs into training data."""


@data.command("compile")
@click.argument("inputs", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--from-logs", is_flag=True, help="Also export reviewed conversations from the log store.")
@click.option(
    "--docs",
    type=click.Path(exists=True, path_type=Path),
    help="Documents for gold_doc_ids: JSON Lines (doc_id, text) or a folder of Markdown files.",
)
@click.option(
    "--retrieve", is_flag=True, help="Retrieve passages from the knowledge index when none are known."
)
@click.option(
    "--val-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.2, show_default=True
)
@click.option(
    "--split-salt",
    help="Draw a different split of the same size (any string; the default split has none).",
)
@click.option("--turns", type=click.Choice(["all", "last"]), default="all", show_default=True)
@click.option("--skip-invalid", is_flag=True, help="Skip malformed lines (each is listed in the manifest).")
@click.option(
    "--redact-public",
    is_flag=True,
    help="Also redact contact details published in --docs (kept by default: they are the company's).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON on the last line.")
@click.pass_context
def compile_command(
    ctx: click.Context,
    inputs: tuple[Path, ...],
    out: Path | None,
    from_logs: bool,
    docs: Path | None,
    retrieve: bool,
    val_fraction: float,
    split_salt: str | None,
    turns: str,
    skip_invalid: bool,
    redact_public: bool,
    as_json: bool,
) -> None:
    """Compile INPUT files (conversations: .jsonl turns/messages/rated responses, .csv turns)
    into SFT, preference and KTO files, with PII redacted and a train/validation split."""
    from training.data import compile_dataset, current_index
    from training.run import new_run_dir

    if not inputs and not from_logs:
        raise click.UsageError("give at least one INPUT file or --from-logs")
    config = config_of(ctx)
    erased, latest_erasure = erasures_of(config)  # left out of files too, not only the store's
    with log_store(config, from_logs) as store:
        dataset = compile_dataset(
            list(inputs),
            store=store,
            docs=docs,
            retriever=_retriever(ctx, config) if retrieve else None,
            persona=config.persona,
            val_fraction=val_fraction,
            split_salt=split_salt,
            turns=turns,
            skip_invalid=skip_invalid,
            progress=True,
            keep_public=not redact_public,
            erased=erased,
            index=current_index(config) if from_logs else None,
        )
    paths = dataset.write(out or new_run_dir(Path(config.home), "data"))
    _report(dataset.manifest, paths)
    _flag_stale(Path(config.home), latest_erasure)
    if as_json:
        manifest = {**dataset.manifest, "out_dir": str(paths["manifest"].parent)}
        click.echo(json.dumps(manifest, ensure_ascii=False))


def _flag_stale(home: Path, latest_erasure: Any) -> None:
    """Warn about compiled datasets in the data home made before the latest erasure."""
    from training.data.erasure import stale_datasets

    stale = stale_datasets(home, latest_erasure)
    if stale:
        click.echo(
            f"warning: {len(stale)} compiled dataset(s) predate the latest erasure and may hold an "
            "erased conversation; delete them or train on this one instead:",
            err=True,
        )
        for path in stale:
            click.echo(f"  {path}", err=True)


def _retriever(ctx: click.Context, config: AgentConfig) -> Retriever:
    """The knowledge base as a ``training.data.Retriever`` (the CLI's knowledge settings)."""
    from knowledge import KnowledgeBase
    from training.retrievers import knowledge_retriever

    obj = ctx.find_root().obj
    if obj is not None and hasattr(obj, "knowledge_config"):
        knowledge_config = obj.knowledge_config()
    else:
        from agent.knowledge import knowledge_config as build

        knowledge_config = build(config)
    settings = config.retrieval
    return knowledge_retriever(
        KnowledgeBase(knowledge_config),
        k=settings.k,
        candidates=settings.candidates,
        one_per_page=settings.one_per_page,
        keep_retrieved=settings.keep_retrieved,
    )


def _report(manifest: dict[str, Any], paths: dict[str, Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title="Compiled training data")
    for column in ("rows", "train", "validation"):
        table.add_column(column, justify="left" if column == "rows" else "right")
    for kind, label in (("sft", "SFT"), ("pref", "preference"), ("kto", "KTO")):
        counts = manifest["counts"][kind]
        table.add_row(label, str(counts["train"]), str(counts["val"]))
    console.print(table)
    redactions = ", ".join(f"{k} {v}" for k, v in manifest["redactions"].items()) or "none"
    dropped = sum(manifest["duplicates_dropped"].values())
    conversations = manifest["conversations"]
    console.print(
        f"{conversations} conversations; PII redacted: {redactions}; duplicates dropped: {dropped}",
        soft_wrap=True,
    )
    if manifest.get("erased_left_out"):
        console.print(f"erased conversations left out: {manifest['erased_left_out']}")
    if manifest.get("stale_left_out"):
        console.print(stale_line(manifest), markup=False, soft_wrap=True)
    if manifest["skipped"]:
        console.print(f"[yellow]skipped {len(manifest['skipped'])} invalid line(s):[/yellow]")
        for line in manifest["skipped"]:
            console.print(f"  {line}", markup=False, soft_wrap=True)
    console.print(f"written to {paths['manifest'].parent}", markup=False, soft_wrap=True)
    for name, path in paths.items():
        console.print(f"  {name}: {path}", markup=False, soft_wrap=True)


def stale_line(manifest: dict[str, Any]) -> str:
    """One line: the rows left out for quoting documents that changed or vanished, and which."""
    documents = ", ".join(f"{d['source']} ({d['reason']})" for d in manifest["stale_documents"])
    return (
        f"stale provenance: {manifest['stale_left_out']} row(s) left out, quoting text no longer in "
        f"{documents}; re-review those answers (console: Provenance) to bring them back"
    )


@data.command("mix")
@click.argument("recipe")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option(
    "--shared",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The public data sets ($SHARED in the recipe; default: ../shared/data beside the checkout).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON on the last line.")
@click.pass_context
def mix_command(
    ctx: click.Context, recipe: str, out: Path | None, shared: Path | None, as_json: bool
) -> None:
    """Compile and blend the sources of a mix RECIPE (a name in training/recipes or a YAML path)
    into one SFT file: each source with its own docs, persona and split, augmented and seeded."""
    from transformers import AutoTokenizer

    from agent.models import ensure_default_model
    from training.mix import build_mix, load_mix, write_mix
    from training.run import new_run_dir

    config = config_of(ctx)
    sources, settings = load_mix(recipe, shared)
    tokenizer = AutoTokenizer.from_pretrained(str(ensure_default_model(Path(config.home), progress=True)))

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    train, val, manifest = build_mix(sources, int(settings.get("seed", 0)), count)
    paths = write_mix(out or new_run_dir(Path(config.home), "mix"), train, val, manifest)
    for source in manifest["sources"]:
        click.echo(
            f"{source['name']}: {source['rows_used']} of {source['rows_available']} rows, "
            f"{source['rows_total']} with augmentations",
            err=as_json,
        )
    click.echo(f"{manifest['train_rows']} training rows -> {paths['sft_train']}", err=as_json)
    if as_json:
        click.echo(json.dumps({**manifest, "out_dir": str(paths["manifest"].parent)}))
