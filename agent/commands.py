"""The agent's commands: chat, ask, logs, kb (the knowledge layer's plus ``kb tasks``), config,
model, eval agent.

Imported lazily by ``agent.cli`` only when one of these commands runs.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import click

from agent.errors import DataError, InputError
from agent.validation import check_chars, check_identifier, check_text


def _state(ctx: click.Context) -> Any:
    from agent.cli import CliState

    obj = ctx.find_object(CliState)
    return obj if obj is not None else CliState(None)


def _agent(ctx: click.Context, model: str | None) -> Any:
    from agent.runtime import Agent

    return Agent.from_config(_state(ctx).config(), model=model, progress=True)


# ---------------------------------------------------------------------------------- chat
@click.command()
@click.option("--model", default=None, help="Model version, directory or hub id (default: production).")
@click.option("--conversation-id", default=None, help="Continue a logged conversation.")
@click.pass_context
def chat(ctx: click.Context, model: str | None, conversation_id: str | None) -> None:
    """Chat with the support agent in the terminal (/human, /new, /quit)."""
    from rich.console import Console

    from agent.types import Reply

    if conversation_id is not None:
        check_identifier(conversation_id, "--conversation-id")  # before the model loads
    console = Console(stderr=False, highlight=False)
    err = Console(stderr=True)
    with err.status("Loading the model and the knowledge base..."):
        agent = _agent(ctx, model)
    persona = agent.config.persona
    conversation_id = conversation_id or uuid.uuid4().hex
    console.print(
        f"[bold]{persona.agent_name}[/bold] ({persona.company} support, model {agent.generator.version}). "
        "Type your question; /human for a person, /new for a new conversation, /quit to leave."
    )
    while True:
        try:
            text = console.input("[bold cyan]you>[/bold cyan] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            break
        command = text.strip().lower()
        if command in ("/quit", "/exit", "/q"):
            break
        if command == "/new":
            conversation_id = uuid.uuid4().hex
            console.print("[dim]new conversation[/dim]")
            continue
        console.print(f"[bold green]{persona.agent_name}>[/bold green] ", end="")
        try:
            if command == "/human":
                reply = agent.escalate(conversation_id)
                console.print(reply.text)
            else:
                reply = None
                for item in agent.stream(conversation_id, text):
                    if isinstance(item, Reply):
                        reply = item
                    else:
                        console.print(item, end="", markup=False)
                        sys.stdout.flush()
                console.print()
        except InputError as exc:
            console.print(f"[yellow]{exc}[/yellow]")
            continue
        if reply is not None:
            _print_sources(console, reply)
    console.print(f"[dim]conversation {conversation_id} is saved in the log[/dim]")
    agent.close()


def _print_sources(console: Any, reply: Any) -> None:
    for citation in reply.citations:
        console.print(f"  [dim][{citation.index}] {citation.source}[/dim]")
    if reply.escalated:
        console.print(f"  [magenta]handed to the support team ({reply.escalation_reason})[/magenta]")


# ----------------------------------------------------------------------------------- ask
def read_history(path: Path) -> list[tuple[str, str]]:
    """(role, text) pairs from a JSON object with ``turns`` (as in ``../shared/data`` rows)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read conversation: {exc}", path=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", path=str(path), line=exc.lineno) from exc
    except RecursionError:
        raise DataError("JSON nested too deeply", path=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list):
        raise DataError("expected a JSON object with a list of `turns`", path=str(path))
    history = []
    for number, turn in enumerate(data["turns"], start=1):
        if not isinstance(turn, dict) or turn.get("role") not in ("customer", "agent", "human"):
            raise DataError(f"turn {number}: expected {{role: customer|agent, text}}", path=str(path))
        text = str(turn.get("text", ""))
        try:  # the store would refuse it after the conversation was created
            check_chars(text, "the text")
        except InputError as exc:
            raise DataError(f"turn {number}: {exc}", path=str(path)) from None
        history.append((turn["role"], text))
    return history


@click.command()
@click.argument("question")
@click.option(
    "--conversation",
    "conversation_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON object with `turns`: the history before QUESTION.",
)
@click.option("--conversation-id", default=None, help="Continue a logged conversation instead.")
@click.option("--model", default=None, help="Model version, directory or hub id (default: production).")
@click.option("--json", "as_json", is_flag=True, help="Print the reply as one JSON object.")
@click.pass_context
def ask(
    ctx: click.Context,
    question: str,
    conversation_file: Path | None,
    conversation_id: str | None,
    model: str | None,
    as_json: bool,
) -> None:
    """Ask one QUESTION and print the answer with its sources."""
    # Every input is checked before the index and the model load and before anything is written.
    limit = _state(ctx).config().guardrails.max_input_chars
    question = check_text(question, "the question", limit).strip()
    if conversation_id is not None:
        check_identifier(conversation_id, "--conversation-id")
    history = read_history(conversation_file) if conversation_file else []
    agent = _agent(ctx, model)
    conversation_id = conversation_id or uuid.uuid4().hex
    agent.store.ensure_conversation(conversation_id, channel="cli")
    for role, text in history:
        agent.store.add_turn(conversation_id, role, text, metadata={"imported_from": str(conversation_file)})
    reply = agent.reply(conversation_id, question)
    agent.close()
    if as_json:
        payload = {
            "answer": reply.text,
            "citations": [c.to_dict() for c in reply.citations],
            "escalated": reply.escalated,
            "escalation_reason": reply.escalation_reason,
            "refused": reply.refused,
            "model": reply.model_version,
            "turn_id": reply.turn_id,
            "conversation_id": reply.conversation_id,
            "latency_ms": round(reply.latency_ms, 1),
            "grounding": reply.grounding,
        }
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    from rich.console import Console

    console = Console(highlight=False)
    console.print(reply.text, markup=False)
    _print_sources(console, reply)


# ---------------------------------------------------------------------------------- logs
@click.group()
def logs() -> None:
    """List, show, export, correct and erase logged conversations; verified answers."""


def _store(ctx: click.Context) -> Any:
    from agent.store import LogStore

    return LogStore.from_config(_state(ctx).config())


@logs.command("list")
@click.option("--limit", default=20, show_default=True)
@click.option("--escalated/--not-escalated", default=None, help="Only (not) escalated conversations.")
@click.option("--unreviewed", is_flag=True, default=None, help="Only conversations nobody reviewed.")
@click.option("--search", "query", default=None, help="Full-text search over turns.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def logs_list(
    ctx: click.Context,
    limit: int,
    escalated: bool | None,
    unreviewed: bool | None,
    query: str | None,
    as_json: bool,
) -> None:
    """List recent conversations (newest first), or search them."""
    store = _store(ctx)
    if query:
        rows: list[dict[str, Any]] = [
            {
                "conversation_id": r.conversation_id,
                "turn_id": r.turn_id,
                "role": r.role,
                "rank": r.rank,
                "snippet": r.snippet,
            }
            for r in store.search(query, limit=limit)
        ]
    else:
        rows = [
            {
                "id": s.id,
                "updated_at": s.updated_at.isoformat() if s.updated_at else None,
                "status": s.status,
                "turns": s.turn_count,
                "first_message": s.first_message,
                "reviewed": s.reviewed,
            }
            for s in store.list_conversations(limit=limit, escalated=escalated, unreviewed=unreviewed)
        ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*(rows[0].keys() if rows else ["(no conversations)"]))
    for row in rows:
        table.add_row(*(str(v) if v is not None else "" for v in row.values()))
    Console().print(table)


@logs.command("show")
@click.argument("conversation_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def logs_show(ctx: click.Context, conversation_id: str, as_json: bool) -> None:
    """Show one conversation with its turns, sources and feedback."""
    store = _store(ctx)
    conversation = store.get_conversation(conversation_id)
    if as_json:
        click.echo(json.dumps(conversation.to_dict(), ensure_ascii=False, default=str))
        return
    click.echo(f"conversation {conversation.id}  status={conversation.status}")
    feedback: dict[str, list[Any]] = {}
    for f in store.feedback_for_conversation(conversation_id):
        feedback.setdefault(f.turn_id, []).append(f)
    for turn in conversation.turns:
        click.echo(f"[{turn.role}] {turn.text}")
        for citation in turn.citations:
            click.echo(f"    source [{citation.index}] {citation.source}")
        for f in feedback.get(str(turn.id), []):
            click.echo(f"    feedback thumbs={f.thumbs} rating={f.rating} correction={f.correction!r}")


@logs.command("export")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON Lines file (default: stdout).",
)
@click.pass_context
def logs_export(ctx: click.Context, out: Path | None) -> None:
    """Export every conversation with turns and feedback as JSON Lines, PII redacted."""
    from agent.pii import redact_export

    store = _store(ctx)
    handle = out.open("w", encoding="utf-8") if out else sys.stdout
    count = 0
    try:
        for row in store.export():
            handle.write(json.dumps(redact_export(row), ensure_ascii=False, default=str) + "\n")
            count += 1
    finally:
        if out:
            handle.close()
    click.echo(f"exported {count} conversations" + (f" to {out}" if out else ""), err=True)


@logs.command("correct")
@click.argument("turn_id")
@click.option("--text", "text", required=True, help="The corrected answer, served verbatim from now on.")
@click.option("--reviewer", default="cli", show_default=True, help="Who wrote the correction.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def logs_correct(ctx: click.Context, turn_id: str, text: str, reviewer: str, as_json: bool) -> None:
    """Correct the agent turn TURN_ID (``ask --json`` prints it): the same and closely similar
    questions get TEXT at once, cited as verified by the support team; the next ``data compile``
    turns it into SFT and DPO rows."""
    from agent.validation import CORRECTION_MAX_CHARS, check_name
    from agent.verified import record_correction

    check_identifier(turn_id, "TURN_ID")  # every input before the store opens
    text = check_text(text, "--text", CORRECTION_MAX_CHARS)
    check_name(reviewer, "--reviewer")
    with _store(ctx) as store:
        saved, answer = record_correction(store, turn_id, text, reviewer=reviewer)
    if as_json:
        click.echo(json.dumps({"feedback_id": saved.id, "verified": answer.to_dict()}, default=str))
        return
    click.echo(f"verified answer {answer.id} for: {answer.question}")


@logs.command("shortcuts")
@click.option("--all", "show_all", is_flag=True, help="Retired ones too.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def logs_shortcuts(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """Verified answers served in place of the model, with their hit counts."""
    with _store(ctx) as store:
        answers = store.verified_answers(live=None if show_all else True)
    rows = [
        {
            "id": a.id,
            "question": a.question,
            "hits": a.hits,
            "reviewer": a.reviewer,
            "live": a.live,
            "retired_reason": a.retired_reason,
        }
        for a in answers
    ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        state = "live" if row["live"] else f"retired ({row['retired_reason']})"
        click.echo(f"{row['id']}  {row['hits']:>5} hits  {state}  {row['question']}")
    if not rows:
        click.echo("(no verified answers)")


@logs.command("retire")
@click.argument("answer_id")
@click.option("--reason", default="retired by a reviewer", show_default=True)
@click.pass_context
def logs_retire(ctx: click.Context, answer_id: str, reason: str) -> None:
    """Stop serving the verified answer ANSWER_ID (see ``logs shortcuts``)."""
    check_identifier(answer_id, "ANSWER_ID")
    with _store(ctx) as store:
        answer = store.retire_verified_answer(answer_id, reason)
    click.echo(f"retired {answer.id} ({answer.hits} hits): {answer.question}")


@logs.command("erase")
@click.option("--conversation", "conversation_id", required=True, help="The conversation to erase.")
@click.option(
    "--by", "erased_by", default="cli", show_default=True, help="Who erased it (kept in the record)."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def logs_erase(ctx: click.Context, conversation_id: str, erased_by: str, as_json: bool) -> None:
    """Erase a customer's conversation: its turns, feedback, escalations and the verified answers
    made from it are deleted, and ``data compile`` never compiles it again (not even from an
    exported file). Compiled datasets made before now are flagged when they are used."""
    from agent.validation import check_name

    check_identifier(conversation_id, "--conversation")  # every input before the store opens
    check_name(erased_by, "--by")
    with _store(ctx) as store:
        erasure = store.erase_conversation(conversation_id, erased_by=erased_by)
    if as_json:
        click.echo(json.dumps(erasure.to_dict()))
        return
    click.echo(erasure.summary())


# ------------------------------------------------------------------------------------ kb
@click.command("tasks")
@click.option("--all", "show_all", is_flag=True, help="Closed tasks too, with what closed them.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of tasks.")
@click.pass_context
def kb_tasks(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """Knowledge tasks: questions customers said the docs miss (thumbs-down "docs_gap"), open until
    a document ingested later covers them (checked at every `supportloop ingest`)."""
    from agent.knowledge_tasks import task_json

    with _store(ctx) as store:
        rows = [task_json(t) for t in store.knowledge_tasks(include_closed=show_all)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        if row["open"]:
            state = "open"
        elif row["closed_by_document"]:
            state = f"closed by {row['closed_by_document']} (relevance {row['relevance']:.2f})"
        else:
            state = f"closed by {row['closed_by']}: {row['note']}"
        click.echo(f"{row['id']}  {row['raised_at'][:16]}  {state}  {row['question']}")
    if not rows:
        click.echo("(no open knowledge tasks)" if not show_all else "(no knowledge tasks)")


def _kb_group() -> click.Group:
    """The knowledge layer's ``kb`` group plus ``kb tasks``, which needs the log store."""
    from knowledge.cli import kb as knowledge_kb

    return click.Group("kb", commands={**knowledge_kb.commands, "tasks": kb_tasks}, help=knowledge_kb.help)


kb = _kb_group()


# -------------------------------------------------------------------------- config, model
@click.group()
def config() -> None:
    """Show the effective configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective config: defaults < supportloop.yaml < SUPPORTLOOP_* variables.
    Passwords and keys print as *** (``agent.config.mask_secrets``)."""
    import yaml

    from agent.config import mask_secrets

    cfg = _state(ctx).config()
    data = mask_secrets(cfg.to_dict())
    if as_json:
        click.echo(json.dumps(data))
    else:
        click.echo(f"# source: {cfg.source or 'defaults + environment'}")
        click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())


@click.group()
def model() -> None:
    """Prepare or inspect the base model."""


@model.command("prepare")
@click.pass_context
def model_prepare(ctx: click.Context) -> None:
    """Convert the packaged default model into the data home (done once, automatically)."""
    from agent.models import ensure_default_model

    path = ensure_default_model(_state(ctx).config().home, progress=True)
    click.echo(str(path))


@model.command("info")
@click.argument("spec", required=False, default="production")
@click.pass_context
def model_info(ctx: click.Context, spec: str) -> None:
    """Show what SPEC (default: production) resolves to."""
    from agent.models import resolve_spec

    resolved = resolve_spec(spec, home=_state(ctx).config().home)
    click.echo(json.dumps({"version": resolved.version, "base": resolved.base, "adapter": resolved.adapter}))


# ------------------------------------------------------------------------------ eval agent
@click.command("agent")
@click.option(
    "--docs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JSON Lines of documents (doc_id/id, text), or conversations with `contexts`.",
)
@click.option(
    "--conversations",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JSON Lines of conversations with `turns` and `answerability`.",
)
@click.option("--model", default=None, help="Model version, directory or hub id (default: production).")
@click.option(
    "--limit",
    type=int,
    default=None,
    help="At most N conversations, taken evenly across the answerability labels.",
)
@click.option("--company", default=None, help="Persona company for this evaluation.")
@click.option("--product", default=None, help="Persona product for this evaluation.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on the last line.")
@click.pass_context
def eval_agent(
    ctx: click.Context,
    docs: Path,
    conversations: Path,
    model: str | None,
    limit: int | None,
    company: str | None,
    product: str | None,
    as_json: bool,
) -> None:
    """Answer ANSWERABLE, decline UNANSWERABLE, clarify UNDERSPECIFIED; citation accuracy."""
    import dataclasses

    from agent.evaluate import eval_agent_on_files

    cfg = _state(ctx).config()
    persona = dataclasses.replace(
        cfg.persona, company=company or cfg.persona.company, product=product or cfg.persona.product
    )
    # Evaluation sets span other domains: the off-topic filter is for the product's customers.
    guardrails = dataclasses.replace(cfg.guardrails, refuse_off_topic=False)
    cfg = dataclasses.replace(cfg, persona=persona, guardrails=guardrails)
    summary = eval_agent_on_files(cfg, docs, conversations, model=model, limit=limit).summary()
    if as_json:
        click.echo(json.dumps(summary))
        return
    for key, value in summary.items():
        click.echo(f"{key:32} {value}")
