"""The training commands, registered lazily by ``agent.cli``: ``data`` (and, appended below it
later, ``train``, ``models``, ``eval_model``).

Invariant: importing this module is cheap (click only). Each command imports what it needs,
torch and transformers included, inside its function body, so ``supportloop --help`` and
``supportloop data compile`` never pay for the trainer's imports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

# -------------------------------------------------------------------------- shared helpers


def _config(ctx: click.Context) -> Any:
    from agent.cli import context_config

    return context_config(ctx)


# ---------------------------------------------------------------------------------- data


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
    from training.data import compile_dataset
    from training.run import new_run_dir

    if not inputs and not from_logs:
        raise click.UsageError("give at least one INPUT file or --from-logs")
    config = _config(ctx)
    store = _open_store(config) if from_logs else None
    try:
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
        )
    finally:
        if store is not None:
            store.close()
    paths = dataset.write(out or new_run_dir(Path(config.home), "data"))
    _report(dataset.manifest, paths)
    if as_json:
        manifest = {**dataset.manifest, "out_dir": str(paths["manifest"].parent)}
        click.echo(json.dumps(manifest, ensure_ascii=False))


def _open_store(config: Any) -> Any:
    from agent.store import LogStore

    return LogStore.from_config(config)


def _retriever(ctx: click.Context, config: Any) -> Any:
    """The knowledge base as a ``training.data.Retriever``, converting hits to passages."""
    from agent.prompt import Passage
    from knowledge import KnowledgeBase

    obj = ctx.find_root().obj
    if obj is not None and hasattr(obj, "knowledge_config"):
        knowledge_config = obj.knowledge_config()
    else:
        from agent.knowledge import knowledge_config as build

        knowledge_config = build(config)
    kb = KnowledgeBase(knowledge_config)

    def retrieve(question: str, history: Any) -> list[Passage]:
        hits = kb.search(question, k=config.retrieval.k, history=list(history))
        return [
            Passage(
                doc_id=h.doc_id,
                source=h.source,
                text=h.text,
                title=getattr(h, "title", None),
                score=float(h.score),
                chunk_id=getattr(h, "chunk_id", None),
            )
            for h in hits
        ]

    return retrieve


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
    if manifest["skipped"]:
        console.print(f"[yellow]skipped {len(manifest['skipped'])} invalid line(s):[/yellow]")
        for line in manifest["skipped"]:
            console.print(f"  {line}", markup=False, soft_wrap=True)
    console.print(f"written to {paths['manifest'].parent}", markup=False, soft_wrap=True)
    for name, path in paths.items():
        console.print(f"  {name}: {path}", markup=False, soft_wrap=True)


# --------------------------------------------------------------------------------- train


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


def _overrides(opts: dict[str, Any]) -> dict[str, Any]:
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
    config = _config(ctx)
    train_fn = getattr(importlib.import_module(module), func)
    result = train_fn(
        opts["data_path"],
        base=opts["base"],
        recipe=opts["recipe"],
        overrides=_overrides(opts),
        out_dir=opts.get("out"),
        home=Path(config.home),
        docs=opts.get("docs"),
        persona=config.persona,
    )
    from rich.console import Console

    console = Console(highlight=False, stderr=opts["as_json"])
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
    if opts["as_json"]:
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

    config = _config(ctx)
    ranking = sweep_sft(
        opts["data_path"],
        sweep_grid(opts["sweeps"]),
        base=opts["base"],
        recipe=opts["recipe"],
        overrides=_overrides(opts),
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
@click.option("--eval-limit", type=int, default=50, show_default=True, help="Held-out answers to evaluate.")
@click.option("--primary", default="rougeL_f1", show_default=True, help="The gate's primary metric.")
@click.option("--setting", type=click.Choice(["retrieved", "gold"]), default="retrieved", show_default=True)
@click.option("--margin", type=float, default=0.005, show_default=True)
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
    from training.gate import GateConfig
    from training.round import run_round

    if not data_files and not from_logs:
        raise click.UsageError("nothing to train on: give --data FILE or keep --from-logs")
    config = _config(ctx)
    store = _open_store(config) if from_logs else None
    try:
        result = run_round(
            home=Path(config.home),
            persona=config.persona,
            data_files=list(data_files),
            store=store,
            docs=docs or _default_docs(config),
            retriever=_eval_retriever(ctx, config, docs),
            overrides=_overrides({"max_steps": max_steps, "max_examples": max_examples, "sets": sets}),
            recipe=recipe,
            eval_limit=eval_limit,
            gate=GateConfig(primary=primary, setting=setting, margin=margin),
        )
    finally:
        if store is not None:
            store.close()
    verdict = "promoted" if result.promoted else "refused"
    click.echo(f"round {verdict}: candidate {result.candidate}", err=as_json)
    for reason in result.to_dict()["reasons"]:
        click.echo(f"  {reason}", err=as_json)
    click.echo(f"report: {result.report_md}", err=as_json)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, default=str))


def _default_docs(config: Any) -> Path | None:
    """The shipped sample documents when the index is the sample's (the default set-up)."""
    from agent.knowledge import SAMPLE_DOCS

    return SAMPLE_DOCS if config.retrieval.ingest_sample and SAMPLE_DOCS.is_dir() else None


def _eval_retriever(ctx: click.Context, config: Any, docs: Path | None) -> Any:
    """BM25 over --docs; else the knowledge index; else BM25 over the shipped sample documents."""
    from training.data import load_docs
    from training.evaluate import bm25_retriever, knowledge_retriever

    k = config.retrieval.k
    if docs is not None:
        return bm25_retriever(load_docs(docs), k=k)
    try:
        from knowledge import KnowledgeBase  # type: ignore[attr-defined]
    except ImportError:
        KnowledgeBase = None  # the knowledge package is not there yet
    if KnowledgeBase is not None:
        from agent.knowledge import open_knowledge

        return knowledge_retriever(open_knowledge(config), k=k)
    default = _default_docs(config)
    return bm25_retriever(load_docs(default), k=k) if default is not None else None


# -------------------------------------------------------------------------------- models


@click.group()
def models() -> None:
    """List, promote and roll back model versions."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_list(ctx: click.Context, as_json: bool) -> None:
    """Every version: name, kind, parent, base, adapter, created, metrics (* = production)."""
    from rich.console import Console
    from rich.table import Table

    from agent.models import ModelRegistry

    registry = ModelRegistry(Path(_config(ctx).home))
    production = registry.production_name()
    versions = registry.list()
    if as_json:
        rows = [{**v.to_dict(), "production": v.name == production} for v in versions]
        click.echo(json.dumps({"production": production, "versions": rows}, ensure_ascii=False))
        return
    table = Table(title="Model versions (* production)")
    for column in ("", "name", "kind", "parent", "base", "adapter", "created", "metrics"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            "*" if v.name == production else "",
            v.name,
            v.kind,
            v.parent or "-",
            v.base_model,
            v.adapter_path or "-",
            v.created_at or "-",
            _short_metrics(v.metrics),
        )
    Console(highlight=False).print(table)


def _short_metrics(metrics: dict[str, Any]) -> str:
    parts = [f"loss {metrics['train_loss']}"] if "train_loss" in metrics else []
    evaluation = metrics.get("eval", {}).get("models", {}).get("candidate", {})
    for setting, values in evaluation.items():
        if values.get("rougeL_f1") is not None:
            parts.append(f"ROUGE-L {setting} {values['rougeL_f1']:.3f}")
    return ", ".join(parts) or "-"


@models.command("promote")
@click.argument("version")
@click.option("--force", is_flag=True, help="Skip the gate (never allowed for reward models).")
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, path_type=Path),
    help="Evaluate on this file now (default: the version's stored evaluation).",
)
@click.option("--docs", type=click.Path(exists=True, path_type=Path))
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--primary", default="rougeL_f1", show_default=True)
@click.option("--setting", type=click.Choice(["retrieved", "gold"]), default="retrieved", show_default=True)
@click.option("--margin", type=float, default=0.005, show_default=True)
@click.pass_context
def models_promote(
    ctx: click.Context,
    version: str,
    force: bool,
    data_path: Path | None,
    docs: Path | None,
    limit: int,
    primary: str,
    setting: str,
    margin: float,
) -> None:
    """Make VERSION production if it passes the gate against the current production."""
    from agent.errors import ConfigError
    from agent.models import ModelRegistry
    from training.gate import GateConfig, promote, run_gate

    config = _config(ctx)
    home = Path(config.home)
    registry = ModelRegistry(home)
    if force or registry.get(version).kind == "reward":
        promote(version, home=home, force=force)  # refuses reward models, forced or not
        click.echo(f"{version} is production now (forced: the gate was skipped)")
        return
    stored = registry.get(version).metrics.get("eval")
    if data_path is None and (not stored or stored.get("production_version") != registry.production_name()):
        raise ConfigError(
            f"no evaluation of {version} against production {registry.production_name()}: "
            f"pass --data FILE (or run `supportloop eval model --model {version} --data FILE`)"
        )
    retriever = _eval_retriever(ctx, config, docs)
    if data_path is not None:
        report = _evaluate(home, config, version, data_path, docs, limit, retriever, few_shot=False)
    else:
        report = stored
    gate = GateConfig(primary=primary, setting=setting, margin=margin)
    decision = run_gate(version, report, home=home, config=gate, retriever=retriever, persona=config.persona)
    for line in decision.reasons:
        click.echo(f"  ok: {line}")
    for line in decision.failures:
        click.echo(f"  FAIL: {line}")
    promote(version, home=home, decision=decision)  # GateError (exit 5) when refused
    click.echo(f"{version} is production now")


@models.command("rollback")
@click.pass_context
def models_rollback(ctx: click.Context) -> None:
    """Restore the production version that preceded the current one."""
    from agent.models import ModelRegistry

    restored = ModelRegistry(Path(_config(ctx).home)).rollback()
    click.echo(f"production is {restored.name} again")


# ---------------------------------------------------------------------------------- eval


def _evaluate(
    home: Path,
    config: Any,
    version: str,
    data_path: Path,
    docs: Path | None,
    limit: int | None,
    retriever: Any,
    few_shot: bool = True,
) -> dict[str, Any]:
    """Evaluate VERSION vs production (vs the few-shot baseline) and store the summary."""
    from agent.models import ModelRegistry
    from training.evaluate import EvalPlan, evaluate_versions, examples_from_rows, load_eval_rows
    from training.round import _eval_summary
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
    )
    report = evaluate_versions(plan, home)
    if registry.has(version) and version != "base":
        registry.update_metrics(version, {"eval": _eval_summary(report, registry.production_name())})
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
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on the last line.")
@click.pass_context
def eval_model(
    ctx: click.Context, version: str, data_path: Path, docs: Path | None, limit: int | None, as_json: bool
) -> None:
    """Held-out generation metrics: candidate vs production vs few-shot, gold and retrieved passages."""
    from rich.console import Console
    from rich.table import Table

    from training.report import fmt

    config = _config(ctx)
    retriever = _eval_retriever(ctx, config, docs)
    report = _evaluate(Path(config.home), config, version, data_path, docs, limit, retriever)
    metrics = ("rougeL_f1", "bleu", "perplexity", "groundedness", "behaviour_accuracy")
    table = Table(title=f"{version} on {report['n']} held-out answers (greedy, <= 96 new tokens)")
    for column in ("model", "version", "passages", *metrics):
        table.add_column(column)
    for role, settings in report["models"].items():
        for setting, values in settings.items():
            table.add_row(role, report["specs"][role], setting, *(fmt(values.get(m)) for m in metrics))
    Console(highlight=False, stderr=as_json).print(table)
    if as_json:
        public = {k: report[k] for k in ("models", "n", "specs", "protocol")}
        click.echo(json.dumps(public, ensure_ascii=False))
