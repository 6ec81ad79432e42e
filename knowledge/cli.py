"""Click commands of the knowledge layer: ``ingest``, ``search``, ``kb stats|remove|sources`` and
``eval retrieval``. The entry module registers them lazily; importing this module stays cheap
(click and our own types only).

Invariants:
- Settings come from the context object's ``knowledge_config()`` when it has one, else an index
  under ``$SUPPORTLOOP_HOME`` (default ``~/.supportloop``).
- After an ``ingest`` that added chunks, the context object's ``after_ingest(knowledge_base)`` runs when it has
  one (supportloop closes the knowledge tasks the new documents cover); its messages go to stderr.
- User errors (missing file, bad JSON Lines line, unknown source, bad settings) are one-line
  ``click.ClickException`` messages, never tracebacks. Progress bars go to stderr; with ``--json``
  the last line of stdout is one JSON value.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from knowledge.errors import KnowledgeError
from knowledge.types import Hit, IngestReport, KnowledgeConfig

if TYPE_CHECKING:
    from knowledge.base import KnowledgeBase


def _config() -> KnowledgeConfig:
    ctx = click.get_current_context(silent=True)
    factory = getattr(ctx.obj if ctx is not None else None, "knowledge_config", None)
    if callable(factory):
        cfg = factory()
        if isinstance(cfg, KnowledgeConfig):
            return cfg
    home = Path(os.environ.get("SUPPORTLOOP_HOME", "~/.supportloop")).expanduser()
    return KnowledgeConfig(persist_dir=home / "index")


@contextmanager
def _user_errors() -> Iterator[None]:
    """Library errors become one-line click errors."""
    try:
        yield
    except KnowledgeError as exc:
        raise click.ClickException(str(exc)) from None


def _after_ingest(base: KnowledgeBase) -> None:
    ctx = click.get_current_context(silent=True)
    hook = getattr(ctx.obj if ctx is not None else None, "after_ingest", None)
    if callable(hook):
        hook(base)


def _open(cfg: KnowledgeConfig | None = None) -> KnowledgeBase:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from knowledge.base import KnowledgeBase

    return KnowledgeBase(cfg or _config())


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def ingest(paths: tuple[str, ...], as_json: bool) -> None:
    """Ingest product documents (files, folders, globs): Markdown, text, HTML, PDF, JSON Lines."""
    from knowledge.loaders import discover

    refs, found = discover(paths)
    refused = [f for f in found if not f.skipped]
    if refused:  # a path given that is missing or a special file
        raise click.ClickException(f"{refused[0].reason}: {refused[0].path}")
    if not refs:
        skipped = [f for f in found if f.skipped]
        more = f" ({len(skipped)} skipped; first: {skipped[0]})" if skipped else ""
        raise click.ClickException(
            "no supported documents found (.md .txt .html .pdf .jsonl) in: " + " ".join(paths) + more
        )
    base = _open()
    with _user_errors():
        report = base.ingest(paths, progress=True)
    if report.chunks_added:  # only new chunks can cover a task
        _after_ingest(base)
    if as_json:
        _echo_json(report.as_dict())
    else:
        _print_report(report)
    if report.failures and not report.documents:
        raise click.ClickException("no document could be ingested")


def _print_report(report: IngestReport) -> None:
    skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
    click.echo(
        f"documents: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.removed} removed, {report.failed} failed{skipped}"
    )
    click.echo(
        f"chunks:    {report.chunks_added} added, {report.chunks_removed} removed, "
        f"{report.chunks_unchanged} unchanged ({report.seconds:.1f}s)"
    )
    for failure in report.failures:
        click.echo(f"failed: {failure}", err=True)
    for skip in report.skipped:
        click.echo(f"skipped: {skip}", err=True)


@click.command()
@click.argument("query")
@click.option(
    "--k", "k", default=5, show_default=True, type=click.IntRange(min=1), help="Documents to return."
)
@click.option(
    "--history",
    "history_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON file {"turns": [{"role", "text"}, ...]}: the conversation before QUERY.',
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of hits.")
def search(query: str, k: int, history_file: Path | None, as_json: bool) -> None:
    """Search the knowledge index (QUERY is the newest customer message)."""
    history = _read_history(history_file) if history_file else []
    with _user_errors():
        hits = _open().search(query, k=k, history=history)
    if as_json:
        _echo_json([_hit_json(h) for h in hits])
        return
    if not hits:
        click.echo("no results (is the index empty? see `supportloop kb stats`)")
    for rank, hit in enumerate(hits, start=1):
        click.echo(
            f"{rank}. {hit.doc_id}  [{hit.source}]  score={hit.score:.3f} relevance={hit.relevance:.3f}"
        )
        click.echo("   " + " ".join(hit.text.split())[:300])


def _read_history(path: Path) -> list[tuple[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise click.ClickException(f"{path}: not a JSON file ({exc})") from None
    turns = data.get("turns") if isinstance(data, dict) else None
    if not isinstance(turns, list) or not all(
        isinstance(t, dict) and isinstance(t.get("text"), str) for t in turns
    ):
        raise click.ClickException(f'{path}: expected {{"turns": [{{"role": ..., "text": ...}}, ...]}}')
    return [(str(t.get("role", "customer")), t["text"]) for t in turns]


def _hit_json(hit: Hit) -> dict[str, Any]:
    return {
        "doc_id": hit.doc_id,
        "source": hit.source,
        "score": round(hit.score, 6),
        "relevance": round(hit.relevance, 6),
        "text": hit.text,
        "title": hit.title,
        "chunk_id": hit.chunk_id,
        "metadata": dict(hit.metadata),
    }


@click.group()
def kb() -> None:
    """Knowledge index statistics and maintenance."""


@kb.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def kb_stats(as_json: bool) -> None:
    """Documents, chunks and sources in the index, where it lives, and the entity fields tracked in
    conversations (configured, or inferred from the documents' metadata)."""
    with _user_errors():
        stats = _open().stats()
    if as_json:
        _echo_json(stats)
        return
    for key, value in _stats_lines(stats):
        click.echo(f"{key + ':':17s}{value}")


def _stats_lines(stats: dict[str, Any]) -> list[tuple[str, Any]]:
    """``stats`` as (label, value) lines: the entity fields, and the variants, each on one line with
    their origin."""
    hidden = ("entity_fields", "entity_fields_origin", "variants", "variants_origin")
    lines = [(k, v) for k, v in stats.items() if k not in hidden]
    if "entity_fields" in stats:
        names = ", ".join(stats["entity_fields"]) or "none"
        lines.append(("entity_fields", f"{names} ({stats.get('entity_fields_origin', 'configured')})"))
    if "variants" in stats:
        names = ", ".join(stats["variants"]) or "none"
        lines.append(("variants", f"{names} ({stats.get('variants_origin', 'configured')})"))
    return lines


@kb.command("sources")
def kb_sources() -> None:
    """List the sources in the index (what `kb remove` takes)."""
    with _user_errors():
        for source in _open().sources():
            click.echo(source)


@kb.command("remove")
@click.argument("source")
def kb_remove(source: str) -> None:
    """Remove a source: a file as ingested (e.g. guide.md) or a JSON Lines file or row (file#id)."""
    with _user_errors():
        removed = _open().remove(source)
    if not removed:
        raise click.ClickException(f"no such source in the index: {source} (see `supportloop kb sources`)")
    click.echo(f"removed {removed} chunks of {source}")


@click.command("retrieval")
@click.option(
    "--docs",
    "docs_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON Lines documents: doc_id (or id), text, other fields as metadata.",
)
@click.option(
    "--queries",
    "queries_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON Lines: {turns: [...], gold_doc_ids} or {question, gold_doc_ids}.",
)
@click.option(
    "--persist-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Index into this folder (kept) instead of a fresh in-memory index.",
)
@click.option("--k", "k", default=5, show_default=True, type=click.IntRange(min=1), help="Also report hit@k.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N queries.")
@click.option(
    "--entity-field",
    "entity_fields",
    multiple=True,
    help="Metadata field tracked through the dialogue (repeatable), e.g. entity_name.",
)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of the metrics.")
def eval_retrieval(
    docs_path: Path,
    queries_path: Path,
    persist_dir: Path | None,
    k: int,
    limit: int | None,
    entity_fields: tuple[str, ...],
    as_json: bool,
) -> None:
    """Retrieval quality on labelled queries: hit@1, hit@5, MRR over distinct documents."""
    from knowledge.evaluate import run_eval_retrieval

    cfg = _config()
    if entity_fields:
        cfg = dataclasses.replace(cfg, entity_fields=tuple(dict.fromkeys(entity_fields)))
    with _user_errors():
        result = run_eval_retrieval(
            cfg, docs_path, queries_path, persist_dir=persist_dir, k=k, limit=limit, progress=True
        )
    if not as_json:
        for key, value in result.items():
            click.echo(f"{key + ':':17s}{round(value, 4) if isinstance(value, float) else value}")
        return
    _echo_json(result)
