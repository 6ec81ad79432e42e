"""``supportloop models``: list, promote and roll back model versions; canary and shadow."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from training.cli_eval import evaluate_and_record
from training.cli_shared import GATE, config_of, erasures_of, eval_retriever, gate_options

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from training.data import Retriever


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
    from training.data.erasure import trained_before_erasure

    config = config_of(ctx)
    registry = ModelRegistry(Path(config.home))
    production = registry.production_name()
    versions = registry.list()
    latest_erasure = erasures_of(config)[1]
    flagged = {v.name for v in versions if trained_before_erasure(v.metrics, v.created_at, latest_erasure)}
    if as_json:
        rows = [
            {**v.to_dict(), "production": v.name == production, "trained_before_erasure": v.name in flagged}
            for v in versions
        ]
        click.echo(json.dumps({"production": production, "versions": rows}, ensure_ascii=False))
        return
    table = Table(title="Model versions (* production)")
    for column in ("", "name", "kind", "parent", "base", "adapter", "created", "metrics", "provenance"):
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
            _short_provenance(v.provenance, v.notes),
        )
    Console(highlight=False).print(table)
    if flagged:
        names = ", ".join(v.name for v in versions if v.name in flagged)
        click.echo(
            f"trained before an erasure (their weights may have seen an erased conversation; "
            f"retrain without it): {names}"
        )


def _short_provenance(provenance: dict[str, Any], notes: str) -> str:
    """Where a version came from, in a line: shipped recipe, data sources, hardware."""
    if not provenance:
        return notes or "-"
    sources = [s.get("name", "?") for s in provenance.get("data", {}).get("sources", [])]
    hardware = provenance.get("hardware", {})
    train = provenance.get("train", {})
    parts = [notes] if notes else []
    if sources:
        parts.append(f"data: {', '.join(sources)}")
    if train.get("train_seconds"):
        parts.append(f"{train['train_rows']} rows in {float(train['train_seconds']) / 60:.0f} min")
    if hardware:
        parts.append(f"on {hardware.get('cores')} x {hardware.get('cpu')}")
    return "; ".join(parts)


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
@click.option("--limit", type=int, default=GATE.eval_limit, show_default=True)
@gate_options
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

    config = config_of(ctx)
    home = Path(config.home)
    registry = ModelRegistry(home)
    if force or registry.get(version).kind == "reward":
        promote(version, home=home, force=force)  # refuses reward models, forced or not
        click.echo(f"{version} is production now (forced: the gate was skipped)")
        _end_canary_of(home, version)
        _retire_shortcuts(config, version, lambda: eval_retriever(config, docs))
        return
    stored: dict[str, Any] = registry.get(version).metrics.get("eval") or {}
    if data_path is None and stored.get("production_version") != registry.production_name():
        raise ConfigError(
            f"no evaluation of {version} against production {registry.production_name()}: "
            f"pass --data FILE (or run `supportloop eval model --model {version} --data FILE`)"
        )
    retriever = eval_retriever(config, docs)
    report = (
        evaluate_and_record(home, config, version, data_path, docs, limit, retriever, few_shot=False)
        if data_path is not None
        else stored
    )
    gate = GateConfig(primary=primary, setting=setting, margin=margin, eval_limit=limit)
    decision = run_gate(version, report, home=home, config=gate, retriever=retriever, persona=config.persona)
    for line in decision.reasons:
        click.echo(f"  ok: {line}")
    for line in decision.failures:
        click.echo(f"  FAIL: {line}")
    click.echo(decision.why)
    promote(version, home=home, decision=decision)  # GateError (exit 5) when refused
    click.echo(f"{version} is production now")
    _end_canary_of(home, version)
    _retire_shortcuts(config, version, lambda: retriever)


def _retire_shortcuts(config: AgentConfig, version: str, retriever: Callable[[], Retriever]) -> None:
    """After any promotion, forced or gated: the verified answers the new production model now
    answers like the reviewer retire (``training.gate.retire_after_promotion``). ``retriever``
    is called only when there is a live one, so a forced promotion loads no index for nothing."""
    from agent.store import LogStore
    from training.gate import retire_after_promotion

    with LogStore.from_config(config) as store:
        if not store.verified_answers():
            return
        retired = retire_after_promotion(store, version, Path(config.home), retriever(), config.persona)
    if retired:
        click.echo(f"{len(retired)} verified answers retired: {version} answers their questions correctly")


def _end_canary_of(home: Path, version: str) -> None:
    """A promoted canary or shadow has done its job: everyone gets it now."""
    from agent.canary import end_canary, load_canary
    from agent.shadow import end_shadow, load_shadow

    running = load_canary(home)
    if running is not None and running.version == version:
        end_canary(home)
        click.echo(f"canary {version} ended: it is production for everyone")
    shadow = load_shadow(home)
    if shadow is not None and shadow.version == version:
        end_shadow(home)
        click.echo(f"shadow {version} ended: it is production now")


@models.command("canary")
@click.argument("action", metavar="VERSION|status|abort")
@click.option(
    "--share",
    type=float,
    default=10.0,
    show_default=True,
    help="Percent of conversations the canary answers (sticky per conversation).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_canary(ctx: click.Context, action: str, share: float, as_json: bool) -> None:
    """Serve VERSION to a sticky --share of the conversations that ask for production (the API
    reads it live: no restart); `status`: each arm's KPIs since the start, with a two-proportion
    test of the thumbs-up rates; `abort`: production for everyone again (`models promote
    VERSION` ends it too)."""
    from agent.canary import canary_status, end_canary, load_canary, start_canary

    home = Path(config_of(ctx).home)
    if action == "abort":
        stopped = end_canary(home)
        click.echo(f"canary {stopped.version} stopped" if stopped else "no canary is running")
        return
    if action == "status":
        canary = load_canary(home)
        if canary is None:
            raise click.UsageError("no canary is running: start one with `supportloop models canary VERSION`")
        from agent.store import LogStore

        with LogStore.from_config(config_of(ctx)) as store:
            status = canary_status(store, canary)
        _show(status, as_json, _print_canary)
        return
    canary = start_canary(home, action, share)
    click.echo(
        f"canary {canary.version} answers {canary.share:g}% of production conversations "
        f"(production {canary.production}); `supportloop models canary status` compares them"
    )


def _print_canary(status: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    canary = status["canary"]
    table = Table(title=f"canary {canary['version']} ({canary['share']:g}%) since {canary['started_at']}")
    names = (
        "conversations",
        "thumbs",
        "thumbs_up_rate",
        "mean_rating",
        "escalation_rate",
        "mean_resolution_s",
        "grounded_rate",
    )
    table.add_column("arm")
    for name in names:
        table.add_column(name, justify="right")
    for arm, row in status["arms"].items():
        table.add_row(f"{arm} ({row['version']})", *(_cell(row[n]) for n in names))
    console = Console(highlight=False)
    console.print(table)
    for label, test in (
        ("thumbs-up rate", status["thumbs_up_test"]),
        ("answer check", status["grounded_test"]),
    ):
        if test["p_value"] is None:
            console.print(f"{label}: not enough measured in both arms to test yet")
            continue
        verdict = "significant" if test["significant"] else "not significant"
        console.print(
            f"{label} difference {test['difference']:+.3f} "
            f"(95% CI [{test['ci_low']:+.3f}, {test['ci_high']:+.3f}]), p = {test['p_value']:.3g}: "
            f"{verdict} at {test['alpha']}"
        )


@models.command("shadow")
@click.argument("action", metavar="VERSION|status|stop")
@click.option(
    "--share",
    type=float,
    default=100.0,
    show_default=True,
    help="Percent of production's conversations the shadow also answers (sticky per conversation).",
)
@click.option("--reward", "reward_model", help="status: score with this reward model (default: the newest).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_shadow(
    ctx: click.Context, action: str, share: float, reward_model: str | None, as_json: bool
) -> None:
    """VERSION also answers a --share of production's turns, silently, on a background worker
    (the server reads it live: no restart); nothing it writes reaches a customer. `status`: both
    arms' scores on the same turns (grounding check, groundedness, length, and the reward
    model's score when one is registered) with a paired test; `stop`: end it (`models promote
    VERSION` ends it too)."""
    from agent.shadow import end_shadow, load_shadow, shadow_status, start_shadow

    config = config_of(ctx)
    home = Path(config.home)
    if action == "stop":
        stopped = end_shadow(home)
        click.echo(f"shadow {stopped.version} stopped" if stopped else "no shadow is running")
        return
    if action == "status":
        from agent.models import ModelRegistry
        from agent.store import LogStore
        from training.shadow import add_rewards, reward_model_for

        shadow = load_shadow(home)
        if shadow is None:
            raise click.UsageError("no shadow is running: start one with `supportloop models shadow VERSION`")
        reward_model = reward_model_for(home, reward_model)
        production = ModelRegistry(home).production_name()
        with LogStore.from_config(config) as store:
            if reward_model is not None:
                add_rewards(store, shadow, home, reward_model)
            status = shadow_status(store, shadow, reward_model, production=production)
        _show(status, as_json, _print_shadow)
        return
    shadow = start_shadow(home, action, share)
    click.echo(
        f"shadow {shadow.version} answers {shadow.share:g}% of production's conversations silently "
        f"(production {shadow.production}); `supportloop models shadow status` compares them"
    )


def _print_shadow(status: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    shadow, turns = status["shadow"], status["turns"]
    table = Table(title=f"shadow {shadow['version']} ({shadow['share']:g}%) since {shadow['started_at']}")
    shown = ("turns", "pass_rate", "mean_groundedness", "mean_reward", "mean_chars")
    names = [n for n in shown if n in status["arms"]["production"]]
    table.add_column("arm")
    for name in names:
        table.add_column(name, justify="right")
    for arm, row in status["arms"].items():
        table.add_row(f"{arm} ({row['version']})", *(_cell(row[n]) for n in names))
    console = Console(highlight=False)
    console.print(table)
    for metric, test in status["comparison"].items():
        if test["n"]:
            console.print(
                f"{metric}: shadow - production {test['mean']:+.3f} ({test['confidence']:.0%} CI "
                f"[{test['ci_low']:+.3f}, {test['ci_high']:+.3f}]) on {test['n']} turns, "
                f"p(better) = {test['p_better']:.3g}, p(worse) = {test['p_worse']:.3g}"
            )
    if status["reward_model"] is None:
        console.print("reward: no reward model is registered (supportloop train reward)")
    if turns["dropped"] or turns["failed"]:
        console.print(
            f"not measured: {turns['dropped']} turns dropped (queue full), {turns['failed']} failed"
        )
    if status["production_changed"]:
        console.print(status["production_changed"])
    console.print(status["verdict"])


def _show(status: dict[str, Any], as_json: bool, table: Callable[[dict[str, Any]], None]) -> None:
    if as_json:
        click.echo(json.dumps(status, default=str))
    else:
        table(status)


def _cell(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value if value is not None else "-")


@models.command("rollback")
@click.pass_context
def models_rollback(ctx: click.Context) -> None:
    """Restore the production version that preceded the current one."""
    from agent.models import ModelRegistry

    restored = ModelRegistry(Path(config_of(ctx).home)).rollback()
    click.echo(f"production is {restored.name} again")


@models.command("ship")
@click.argument("version")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--name", required=True, help="The name the shipped version gets in every data home.")
@click.option("--mix", "mix_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_context
def models_ship(ctx: click.Context, version: str, out: Path, name: str, mix_dir: Path | None) -> None:
    """Write VERSION's adapter and a manifest (base, recipe, data digests, hardware) to --out."""
    from agent.models import ModelRegistry
    from training.ship import ship

    registered = ModelRegistry(Path(config_of(ctx).home)).get(version)
    if not registered.adapter_path:
        raise click.UsageError(f"{version} has no adapter to ship")
    mix = json.loads((mix_dir / "mix_manifest.json").read_text()) if mix_dir else None
    path = ship(registered, out, name=name, mix_manifest=mix)
    click.echo(f"shipped {version} as {name}: {path}")


@models.command("export")
@click.argument("version")
@click.option("--format", "fmt", type=click.Choice(["ct2", "gguf", "hf"]), default="ct2", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="ct2: also write the check's figures into this manifest (the shipped default's build).",
)
@click.pass_context
def models_export(ctx: click.Context, version: str, fmt: str, out: Path, manifest: Path | None) -> None:
    """Export VERSION merged (LoRA folded in): CTranslate2 int8 after the full equivalence check
    (token agreement and the gate's primary metric), a transformers folder, or GGUF f16 through
    llama.cpp's convert_hf_to_gguf.py (set LLAMA_CPP_CONVERT to its path; it ships in the
    llama-cpp-python sdist)."""
    import os
    import shutil
    import subprocess
    import sys

    from agent.compiled import ensure_compiled
    from agent.models import load_resolved, resolve_spec

    home = Path(config_of(ctx).home)
    resolved = resolve_spec(version, home=home)
    if fmt in ("hf", "gguf"):
        script = os.environ.get("LLAMA_CPP_CONVERT") or shutil.which("convert_hf_to_gguf.py")
        if fmt == "gguf" and not script:
            raise click.UsageError(
                "GGUF export needs llama.cpp's convert_hf_to_gguf.py: set LLAMA_CPP_CONVERT to its path"
            )
        hf_dir = out / "hf" if fmt == "gguf" else out
        model, tokenizer = load_resolved(resolved, merge=True)
        model.save_pretrained(hf_dir, safe_serialization=True)
        tokenizer.save_pretrained(hf_dir)
        if fmt == "gguf":
            target = out / f"{Path(resolved.version).name}.f16.gguf"
            cmd = [sys.executable, str(script), str(hf_dir), "--outfile", str(target), "--outtype", "f16"]
            subprocess.run(cmd, check=True)
    else:
        engine = ensure_compiled(resolved, home, check="full")
        shutil.copytree(engine / "ct2", out, dirs_exist_ok=True)
        shutil.copy2(engine / "equivalence.json", out / "equivalence.json")
        click.echo((engine / "equivalence.json").read_text())
        if manifest is not None:
            from training.ship import record_metrics

            report = json.loads((engine / "equivalence.json").read_text())
            record_metrics(
                manifest, {"equivalence": {**report, "measured_by": f"supportloop models export {version}"}}
            )
    click.echo(f"exported {resolved.version} ({fmt}) to {out}")
