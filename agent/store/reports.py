"""Reports over the log, read-only: the console's conversation list, the dashboard's KPIs, the
export (training data's source) and the table counts.

Long reads (``export``, ``reviewed_conversations``) go by keyset pagination, one short read
transaction per page: a slow consumer never holds a snapshot open (which on SQLite would stop WAL
checkpoints). "Reviewed" and "escalated" mean what ``log.py`` says.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, exists, func, or_, select

from agent.errors import InputError
from agent.store.checks import check_page, check_status
from agent.store.engine import Database
from agent.store.rows import conversation_of, escalation_of, feedback_of, plain, turn_of
from agent.store.schema import conversations, escalations, feedback, turns
from agent.types import Conversation, Feedback

FIRST_MESSAGE_CHARS = 200
_PAGE = 100  # conversations per round trip in the iterators


@dataclass(frozen=True)
class ConversationSummary:
    """One row of the review console's conversation list."""

    id: str
    created_at: datetime
    updated_at: datetime
    status: str
    escalation_reason: str | None
    turn_count: int
    first_message: str | None  # the first customer message, truncated
    model_versions: tuple[str, ...]
    min_rating: int | None  # lowest rating given to any turn, by customer or reviewer
    reviewed: bool
    owner: str | None

    def to_dict(self) -> dict[str, Any]:
        return plain(self)  # type: ignore[no-any-return]


class Reports:
    """Listing, KPIs, export and counts; ``LogStore`` provides ``_db``."""

    _db: Database

    def list_conversations(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_version: str | None = None,
        min_rating: int | None = None,
        max_rating: int | None = None,
        escalated: bool | None = None,
        unreviewed: bool | None = None,
        status: str | None = None,
        owner: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ConversationSummary]:
        """Conversations, most recently active first. ``since``/``until`` bound the creation time
        (inclusive/exclusive); ``model_version``: some agent turn used it; ``min_rating`` /
        ``max_rating`` bound the lowest rating of any turn (unrated conversations drop out);
        ``escalated``: ever escalated or never; ``unreviewed``: no reviewed feedback or some."""
        check_page(limit, offset)
        if status is not None:
            check_status(status)
        for name, value in (("min_rating", min_rating), ("max_rating", max_rating)):
            if value is not None and not 1 <= value <= 5:
                raise InputError(f"{name} must be between 1 and 5, got {value}")
        c = conversations.c
        stmt = select(conversations)
        if since is not None:
            stmt = stmt.where(c.created_at >= since)
        if until is not None:
            stmt = stmt.where(c.created_at < until)
        if model_version is not None:
            stmt = stmt.where(
                exists().where(turns.c.conversation_id == c.id, turns.c.model_version == model_version)
            )
        lowest = select(func.min(feedback.c.rating)).where(feedback.c.conversation_id == c.id)
        if min_rating is not None:
            stmt = stmt.where(lowest.scalar_subquery() >= min_rating)
        if max_rating is not None:
            stmt = stmt.where(lowest.scalar_subquery() <= max_rating)
        was_escalated = exists().where(escalations.c.conversation_id == c.id)
        if escalated is not None:
            stmt = stmt.where(was_escalated if escalated else ~was_escalated)
        reviewed = exists().where(feedback.c.conversation_id == c.id, feedback.c.reviewed.is_(True))
        if unreviewed is not None:
            stmt = stmt.where(~reviewed if unreviewed else reviewed)
        if status is not None:
            stmt = stmt.where(c.status == status)
        if owner is not None:
            stmt = stmt.where(c.owner == owner)
        stmt = stmt.order_by(c.updated_at.desc(), c.id.desc()).limit(limit).offset(offset)
        return self._db.run(lambda conn: _summaries(conn, list(conn.execute(stmt))))

    def reviewed_conversations(
        self, *, since: datetime | None = None, human_answered: bool = False
    ) -> Iterator[tuple[Conversation, list[Feedback]]]:
        """Reviewed conversations (see ``log.py``) with all their feedback, oldest first;
        ``since``: only those with a review at or after it. ``human_answered``: also those where
        a person answered after a hand-off (a ``human`` turn; ``since``: one at or after it).
        Streams in pages."""
        cond: list[ColumnElement[bool]] = [
            feedback.c.conversation_id == conversations.c.id,
            feedback.c.reviewed.is_(True),
        ]
        if since is not None:
            cond.append(feedback.c.created_at >= since)
        wanted: ColumnElement[bool] = exists().where(*cond)
        if human_answered:
            human = [turns.c.conversation_id == conversations.c.id, turns.c.role == "human"]
            if since is not None:
                human.append(turns.c.created_at >= since)
            wanted = or_(wanted, exists().where(*human))
        for record in self._iter_records([wanted]):
            yield record.conversation, record.feedback

    def export(
        self, *, conversation_ids: Iterable[str] | None = None, since: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """JSON-ready dicts, one per conversation, oldest first (within each slice of
        ``conversation_ids``): the conversation's columns, its turns (with seq, retrieved chunks,
        citations, metadata), feedback and escalations. ``since``: conversations active (updated)
        at or after it."""
        where: list[ColumnElement[bool]] = []
        if since is not None:
            where.append(conversations.c.updated_at >= since)
        batches = [where]
        if conversation_ids is not None:
            ids = list(dict.fromkeys(conversation_ids))
            # In slices, so a long list never exceeds a backend's bound-parameter limit.
            batches = [
                [conversations.c.id.in_(ids[i : i + _PAGE]), *where] for i in range(0, len(ids), _PAGE)
            ]
        for batch in batches:
            for record in self._iter_records(batch):
                yield record.to_dict()

    def kpis(
        self, *, since: datetime | None = None, until: datetime | None = None, by: str = "model_version"
    ) -> list[dict[str, Any]]:
        """Dashboard KPIs over conversations created in [since, until), one dict per group.

        ``by``: "model_version", "day" (UTC creation date) or both, comma-separated. A conversation
        belongs to the group of every model version that answered in it; turn-level numbers
        (agent_turns, thumbs, ratings) count only that version's turns.

        * thumbs_up_rate, mean_rating (CSAT): customer feedback (no reviewer) on agent turns
        * escalation_rate: conversations ever escalated / conversations
        * deflection_rate: conversations resolved and never escalated / conversations
        * mean_resolution_s: mean of resolved_at - created_at over resolved conversations
        * grounded_rate: share of the model's answers checked against their passages that passed
          the answer check (``checked_answers`` of them; small talk, verified answers and
          hand-offs are not checked)
        Rates and means are None when nothing was measured.
        """
        dims = [d.strip() for d in by.split(",") if d.strip()]
        if not dims or any(d not in ("model_version", "day") for d in dims) or len(set(dims)) != len(dims):
            raise InputError(f"by must be 'model_version', 'day' or 'day,model_version', got {by!r}")
        window: list[ColumnElement[bool]] = []
        if since is not None:
            window.append(conversations.c.created_at >= since)
        if until is not None:
            window.append(conversations.c.created_at < until)
        return self._db.run(lambda conn: _kpis(conn, window, dims))

    def counts(self) -> dict[str, int]:
        def work(conn: Connection) -> dict[str, int]:
            return {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (conversations, turns, feedback, escalations)
            }

        return self._db.run(work)

    def _iter_records(self, where: Sequence[ColumnElement[bool]]) -> Iterator[_Record]:
        """Conversations matching ``where`` with everything logged about them, oldest first, a
        page per transaction (keyset pagination: see the module docstring)."""
        c = conversations.c
        after: tuple[datetime, str] | None = None
        while True:
            stmt = select(conversations).where(*where)
            if after is not None:
                stmt = stmt.where(
                    or_(c.created_at > after[0], and_(c.created_at == after[0], c.id > after[1]))
                )
            stmt = stmt.order_by(c.created_at, c.id).limit(_PAGE)
            page = self._db.run(functools.partial(_load_records, stmt=stmt))
            yield from page
            if len(page) < _PAGE:
                return
            after = (page[-1].row.created_at, page[-1].row.id)


# -- the conversation list ----------------------------------------------------------------------


def _summaries(conn: Connection, rows: list[Any]) -> list[ConversationSummary]:
    ids = [row.id for row in rows]
    if not ids:
        return []
    first = _first_messages(conn, ids)
    versions = _model_versions(conn, ids)
    lowest = _lowest_ratings(conn, ids)
    reviewed = _reviewed(conn, ids)
    return [
        ConversationSummary(
            id=row.id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            status=row.status,
            escalation_reason=row.escalation_reason,
            turn_count=row.turn_count,
            first_message=_truncate(first.get(row.id)),
            model_versions=tuple(sorted(versions[row.id])),
            min_rating=lowest.get(row.id),
            reviewed=row.id in reviewed,
            owner=row.owner,
        )
        for row in rows
    ]


def _first_messages(conn: Connection, ids: list[str]) -> dict[str, str]:
    """Conversation id -> the text of its first customer turn."""
    earlier = turns.alias("earlier")
    first_seq = (
        select(func.min(earlier.c.seq))
        .where(earlier.c.conversation_id == turns.c.conversation_id, earlier.c.role == "customer")
        .scalar_subquery()
    )
    stmt = select(turns.c.conversation_id, turns.c.text).where(
        turns.c.conversation_id.in_(ids), turns.c.role == "customer", turns.c.seq == first_seq
    )
    return dict(conn.execute(stmt).tuples().all())


def _model_versions(conn: Connection, ids: list[str]) -> dict[str, set[str]]:
    versions: dict[str, set[str]] = defaultdict(set)
    stmt = (
        select(turns.c.conversation_id, turns.c.model_version)
        .distinct()
        .where(turns.c.conversation_id.in_(ids), turns.c.model_version.is_not(None))
    )
    for cid, version in conn.execute(stmt).tuples():
        versions[cid].add(version)
    return versions


def _lowest_ratings(conn: Connection, ids: list[str]) -> dict[str, int | None]:
    stmt = (
        select(feedback.c.conversation_id, func.min(feedback.c.rating))
        .where(feedback.c.conversation_id.in_(ids))
        .group_by(feedback.c.conversation_id)
    )
    return dict(conn.execute(stmt).tuples().all())


def _reviewed(conn: Connection, ids: list[str]) -> set[str]:
    stmt = (
        select(feedback.c.conversation_id)
        .distinct()
        .where(feedback.c.conversation_id.in_(ids), feedback.c.reviewed.is_(True))
    )
    return set(conn.execute(stmt).scalars())


def _truncate(value: str | None) -> str | None:
    if value is None or len(value) <= FIRST_MESSAGE_CHARS:
        return value
    return value[: FIRST_MESSAGE_CHARS - 1].rstrip() + "…"


# -- the export ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    row: Any  # the conversations row
    conversation: Conversation
    feedback: list[Feedback]
    escalations: list[dict[str, Any]]
    turn_seq: dict[str, int]  # turn id -> seq (not on Turn)

    def to_dict(self) -> dict[str, Any]:
        conv = self.conversation
        return plain(
            {
                "id": conv.id,
                "owner": self.row.owner,
                "channel": self.row.channel,
                "status": conv.status,
                "escalation_reason": conv.escalation_reason,
                "created_at": conv.created_at,
                "updated_at": conv.updated_at,
                "resolved_at": self.row.resolved_at,
                "metadata": conv.metadata,
                "turns": [{**plain(t), "seq": self.turn_seq[t.id or ""]} for t in conv.turns],
                "feedback": self.feedback,
                "escalations": self.escalations,
            }
        )


def _load_records(conn: Connection, stmt: Select[Any]) -> list[_Record]:
    rows = list(conn.execute(stmt))
    ids = [row.id for row in rows]
    if not ids:
        return []
    turn_rows: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(select(turns).where(turns.c.conversation_id.in_(ids)).order_by(turns.c.seq)):
        turn_rows[row.conversation_id].append(row)
    feedback_rows: dict[str, list[Feedback]] = defaultdict(list)
    stmt = select(feedback).where(feedback.c.conversation_id.in_(ids))
    for row in conn.execute(stmt.order_by(feedback.c.created_at, feedback.c.pk)):
        feedback_rows[row.conversation_id].append(feedback_of(row._mapping))
    escalation_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    stmt = select(escalations).where(escalations.c.conversation_id.in_(ids))
    for row in conn.execute(stmt.order_by(escalations.c.created_at, escalations.c.pk)):
        escalation_rows[row.conversation_id].append(escalation_of(row._mapping))
    return [
        _Record(
            row=row,
            conversation=conversation_of(row._mapping, tuple(turn_of(t._mapping) for t in turn_rows[row.id])),
            feedback=feedback_rows[row.id],
            escalations=escalation_rows[row.id],
            turn_seq={t.id: t.seq for t in turn_rows[row.id]},
        )
        for row in rows
    ]


# -- KPIs ---------------------------------------------------------------------------------------


def _kpis(conn: Connection, window: list[ColumnElement[bool]], dims: list[str]) -> list[dict[str, Any]]:
    # Aggregated here rather than in SQL: date truncation and interval arithmetic differ per
    # dialect, and three narrow queries over the window stay cheap at dashboard scale.
    c = conversations.c
    was_escalated = exists().where(escalations.c.conversation_id == c.id)
    convs = {
        row.id: row
        for row in conn.execute(
            select(c.id, c.created_at, c.resolved_at, c.status, was_escalated.label("escalated")).where(
                *window
            )
        )
    }
    in_window = [turns.c.conversation_id == c.id, turns.c.role == "agent", *window]
    agent_turns = list(
        conn.execute(
            select(turns.c.id, turns.c.conversation_id, turns.c.model_version, turns.c.meta).join(
                conversations, and_(*in_window)
            )
        )
    )
    version_of = {t.id: t.model_version for t in agent_turns}
    customer_feedback = [
        f
        for f in conn.execute(
            select(feedback.c.turn_id, feedback.c.thumbs, feedback.c.rating)
            .join(conversations, feedback.c.conversation_id == c.id)
            .where(feedback.c.reviewer.is_(None), *window)
        )
        if f.turn_id in version_of
    ]
    groups = _kpi_groups(convs, agent_turns, customer_feedback, dims)
    result = [_kpi_row(dims, key, group, convs) for key, group in groups.items()]
    # None (turns without a model version) sorts last.
    return sorted(result, key=lambda r: tuple((r[d] is None, r[d] or "") for d in dims))


def _kpi_groups(
    convs: dict[str, Any], agent_turns: list[Any], customer_feedback: list[Any], dims: list[str]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Group key -> its conversations, agent-turn count, customer thumbs and ratings."""

    def keys(cid: str, version: str | None) -> tuple[Any, ...]:
        day = convs[cid].created_at.date().isoformat()
        return tuple(day if d == "day" else version for d in dims)

    groups: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(
        lambda: {"conversations": set(), "agent_turns": 0, "thumbs": [], "ratings": [], "grounded": []}
    )
    for t in agent_turns:
        group = groups[keys(t.conversation_id, t.model_version)]
        group["conversations"].add(t.conversation_id)
        group["agent_turns"] += 1
        verdict = (t.meta or {}).get("grounding") or {}
        if verdict.get("checked"):  # model answers checked against passages (not small talk etc.)
            group["grounded"].append(1.0 if verdict.get("passed") else 0.0)
    answered = {t.conversation_id for t in agent_turns}
    for cid in convs.keys() - answered:  # e.g. escalated before the agent replied
        groups[keys(cid, None)]["conversations"].add(cid)
    turn_of_id = {t.id: t for t in agent_turns}
    for f in customer_feedback:
        turn = turn_of_id[f.turn_id]
        group = groups[keys(turn.conversation_id, turn.model_version)]
        if f.thumbs is not None:
            group["thumbs"].append(f.thumbs)
        if f.rating is not None:
            group["ratings"].append(f.rating)
    return groups


def _kpi_row(
    dims: list[str], key: tuple[Any, ...], group: dict[str, Any], convs: dict[str, Any]
) -> dict[str, Any]:
    members = [convs[cid] for cid in group["conversations"]]
    n = len(members)
    escalated = sum(1 for m in members if m.escalated)
    resolved = [m for m in members if m.status == "resolved" and m.resolved_at is not None]
    deflected = sum(1 for m in resolved if not m.escalated)
    durations = [(m.resolved_at - m.created_at).total_seconds() for m in resolved]
    return {
        **dict(zip(dims, key, strict=True)),
        "conversations": n,
        "agent_turns": group["agent_turns"],
        "thumbs": len(group["thumbs"]),
        "thumbs_up_rate": _mean([1.0 if t > 0 else 0.0 for t in group["thumbs"]]),
        "ratings": len(group["ratings"]),
        "mean_rating": _mean(group["ratings"]),
        "escalated": escalated,
        "escalation_rate": escalated / n if n else None,
        "resolved": len(resolved),
        "deflection_rate": deflected / n if n else None,
        "mean_resolution_s": _mean(durations),
        "checked_answers": len(group["grounded"]),
        "grounded_rate": _mean(group["grounded"]),
    }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
