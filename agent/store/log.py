"""The conversation log: conversations, their turns, feedback on turns, and escalations.

Invariants:

* **Exact order.** Turns carry ``seq``, 1, 2, 3, ... per conversation, unique and gapless, allocated
  inside the writing transaction under a lock on the conversation (``BEGIN IMMEDIATE`` on SQLite,
  ``SELECT ... FOR UPDATE`` on PostgreSQL), so it is race-free across threads and processes.
  ``created_at`` is informational: clocks of different processes may disagree.
* **Ids** of conversations, turns, feedback and escalations are strings (uuid4 hex unless the
  caller names a conversation), so they stay stable when logs move between databases.
* **Ownership.** ``conversations.owner`` (e.g. an API key id) is set at creation and never
  changes. Any call given ``owner=`` treats another owner's conversation as missing
  (``NotFoundError``), so a key cannot learn that someone else's conversation exists.
* **Bounded feedback.** Labels, comments, corrections and reviewer names are checked against
  ``agent.validation``'s limits before the insert, whichever edge they came from.
* **Reviewed** means a feedback row from a reviewer or carrying a correction, labels or
  mark-for-training (``feedback.reviewed``, computed at insert). Customer thumbs/ratings alone do
  not make a conversation reviewed.
* **Escalated** means the conversation has ever been escalated (an ``escalations`` row); resolving
  it changes the status but keeps ``escalation_reason`` as history.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError

from agent import validation
from agent.errors import InputError, NotFoundError, StoreError
from agent.store.checks import check_id, check_json, check_status, check_text
from agent.store.engine import Database
from agent.store.rows import conversation_of, escalation_of, feedback_of, turn_of
from agent.store.schema import conversations, escalations, feedback, turns
from agent.types import ROLES, Citation, Conversation, Feedback, RetrievedChunk, Turn


class ConversationLog:
    """The log's reads and writes; ``LogStore`` provides ``_db``."""

    _db: Database

    # -- conversations -------------------------------------------------------------------------

    def create_conversation(
        self,
        conversation_id: str | None = None,
        *,
        owner: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        channel: str = "chat",
    ) -> Conversation:
        """A new, empty conversation; StoreError if ``conversation_id`` is taken."""
        cid = check_id(conversation_id, "conversation_id") if conversation_id else uuid.uuid4().hex
        values = self._new_conversation_values(cid, owner, metadata, channel)

        def work(conn: Connection) -> None:
            try:
                conn.execute(insert(conversations).values(values))
            except IntegrityError as exc:
                raise StoreError(
                    f"conversation {cid!r} already exists; use ensure_conversation() to reuse it "
                    "or omit the id to get a new one"
                ) from exc

        self._db.run(work, write=True)
        return conversation_of(values, ())

    def ensure_conversation(
        self, conversation_id: str, *, owner: str | None = None, channel: str = "chat"
    ) -> Conversation:
        """The conversation with its turns, created if missing. With ``owner``, another owner's
        conversation is NotFoundError (the id is taken; pick another)."""
        try:  # the common case, a read: the conversation exists
            return self.get_conversation(conversation_id, owner=owner)
        except NotFoundError:
            pass
        values = self._new_conversation_values(
            check_id(conversation_id, "conversation_id"), owner, None, channel
        )
        insert_ = sqlite_dialect.insert if self._db.dialect == "sqlite" else pg_dialect.insert
        # ON CONFLICT: concurrent get-or-create calls both succeed, and one row is created.
        self._db.run(
            lambda conn: conn.execute(insert_(conversations).values(values).on_conflict_do_nothing()),
            write=True,
        )
        return self.get_conversation(conversation_id, owner=owner)

    def get_conversation(self, conversation_id: str, *, owner: str | None = None) -> Conversation:
        """The conversation with its turns in order. NotFoundError if missing or, when ``owner``
        is given, owned by someone else."""

        def work(conn: Connection) -> Conversation:
            row = _conversation_row(conn, conversation_id, owner)
            return conversation_of(row._mapping, _turns(conn, [conversation_id])[conversation_id])

        return self._db.run(work)

    def set_status(self, conversation_id: str, status: str, *, reason: str | None = None) -> None:
        """Move a conversation to ``status``. "escalated" needs ``reason`` (same as ``escalate``);
        "resolved" records ``resolved_at`` and closes open escalations with ``reason`` as note;
        "open" clears ``resolved_at``; ``reason`` is not stored for "open"/"closed"."""
        check_status(status)
        if status == "escalated":
            if not reason:
                raise InputError("set_status(..., 'escalated') needs a reason; or call escalate()")
            self.escalate(conversation_id, reason)
            return
        if status == "resolved":
            self._resolve(conversation_id, resolved_by=None, note=reason, require_open=False)
            return

        def work(conn: Connection) -> None:
            values: dict[str, Any] = {"status": status, "updated_at": self._db.now()}
            if status == "open":
                values["resolved_at"] = None
            _update_conversation(conn, conversation_id, values)

        self._db.run(work, write=True)

    # -- turns ---------------------------------------------------------------------------------

    def add_turn(
        self,
        conversation_id: str,
        role: str,
        text: str,
        *,
        model_version: str | None = None,
        adapter: str | None = None,
        retrieved: Sequence[RetrievedChunk] = (),
        citations: Sequence[Citation] = (),
        latency_ms: float | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        author: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Turn:
        """Append a turn and commit before returning. NotFoundError for an unknown conversation."""
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        check_text(text, "text")
        for name, count in (("prompt_tokens", prompt_tokens), ("completion_tokens", completion_tokens)):
            if count is not None and count < 0:
                raise InputError(f"{name} must be >= 0, got {count}")
        values: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "conversation_id": conversation_id,
            "role": role,
            "text": text,
            "model_version": model_version,
            "adapter": adapter,
            "retrieved": check_json([c.to_dict() for c in retrieved], "retrieved"),
            "citations": check_json([c.to_dict() for c in citations], "citations"),
            "latency_ms": latency_ms,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "author": author,
            "meta": check_json(dict(metadata or {}), "metadata"),
        }
        created_at = self._db.run(lambda conn: self._append_turn(conn, values), write=True)
        return turn_of({**values, "created_at": created_at})

    def get_turn(self, turn_id: str) -> Turn:
        row = self._db.run(lambda conn: conn.execute(select(turns).where(turns.c.id == turn_id)).first())
        if row is None:
            raise NotFoundError(f"no turn {turn_id!r} in the log store at {self._db.url}")
        return turn_of(row._mapping)

    def turns(self, conversation_id: str) -> list[Turn]:
        """The conversation's turns in order; NotFoundError for an unknown conversation."""

        def work(conn: Connection) -> list[Turn]:
            _conversation_row(conn, conversation_id, None)
            return list(_turns(conn, [conversation_id])[conversation_id])

        return self._db.run(work)

    # -- feedback ------------------------------------------------------------------------------

    def add_feedback(
        self,
        turn_id: str,
        *,
        thumbs: int | None = None,
        rating: int | None = None,
        comment: str | None = None,
        correction: str | None = None,
        labels: Sequence[str] = (),
        reviewer: str | None = None,
        mark_for_training: bool = False,
    ) -> Feedback:
        """Record feedback on a turn (customer thumbs/rating, or a reviewer's rating, labels,
        correction, mark-for-training). NotFoundError for an unknown turn."""
        clean_labels = validation.check_labels(labels)
        item = Feedback(  # validates thumbs and rating
            turn_id=turn_id,
            thumbs=thumbs,
            rating=rating,
            comment=comment or None,
            correction=correction or None,
            labels=clean_labels,
            reviewer=reviewer or None,
            mark_for_training=bool(mark_for_training),
            id=uuid.uuid4().hex,
        )
        if (
            thumbs is None
            and rating is None
            and not (comment or correction or clean_labels or mark_for_training)
        ):
            raise InputError(
                "empty feedback: give thumbs, rating, comment, correction, labels or mark_for_training"
            )
        limits = (("comment", validation.COMMENT_MAX_CHARS), ("correction", validation.CORRECTION_MAX_CHARS))
        for name, limit in limits:
            value = getattr(item, name)
            if value is not None:
                validation.check_text(value, name, limit, allow_blank=True)
        if item.reviewer is not None:
            validation.check_name(item.reviewer, "reviewer")
        created_at = self._db.run(lambda conn: self._insert_feedback(conn, item), write=True)
        return dataclasses.replace(item, created_at=created_at)

    def feedback_for_turn(self, turn_id: str) -> list[Feedback]:
        return self._feedback_where(feedback.c.turn_id == turn_id)

    def feedback_for_conversation(self, conversation_id: str) -> list[Feedback]:
        return self._feedback_where(feedback.c.conversation_id == conversation_id)

    # -- escalations ---------------------------------------------------------------------------

    def escalate(self, conversation_id: str, reason: str, *, turn_id: str | None = None) -> None:
        """Hand the conversation to a human: an escalation row, status "escalated"."""
        if not reason or not reason.strip():
            raise InputError("an escalation needs a reason (shown to the support team)")
        check_text(reason, "reason")

        def work(conn: Connection) -> None:
            now = self._db.now()
            if turn_id is not None:
                owner_cid = conn.execute(
                    select(turns.c.conversation_id).where(turns.c.id == turn_id)
                ).scalar()
                if owner_cid != conversation_id:
                    raise NotFoundError(f"no turn {turn_id!r} in conversation {conversation_id!r}")
            _update_conversation(
                conn,
                conversation_id,
                {"status": "escalated", "escalation_reason": reason, "updated_at": now, "resolved_at": None},
            )
            conn.execute(
                insert(escalations).values(
                    id=uuid.uuid4().hex,
                    conversation_id=conversation_id,
                    turn_id=turn_id,
                    reason=reason,
                    created_at=now,
                )
            )

        self._db.run(work, write=True)

    def resolve_escalation(
        self, conversation_id: str, *, resolved_by: str | None = None, note: str | None = None
    ) -> None:
        """Close the conversation's open escalations and mark it "resolved". StoreError if none
        is open (someone else may have resolved it)."""
        self._resolve(conversation_id, resolved_by=resolved_by, note=note, require_open=True)

    def escalations(self, *, open_only: bool = True) -> list[dict[str, Any]]:
        """Escalation rows, oldest first: id, conversation_id, turn_id, reason, created_at,
        resolved_at, resolved_by, note."""
        stmt = select(escalations).order_by(escalations.c.created_at, escalations.c.pk)
        if open_only:
            stmt = stmt.where(escalations.c.resolved_at.is_(None))
        return self._db.run(lambda conn: [escalation_of(row._mapping) for row in conn.execute(stmt)])

    # -- internals -----------------------------------------------------------------------------

    def _new_conversation_values(
        self, cid: str, owner: str | None, metadata: Mapping[str, Any] | None, channel: str
    ) -> dict[str, Any]:
        if owner is not None:
            check_id(owner, "owner")
        check_id(channel, "channel", max_len=64)
        now = self._db.now()
        return {
            "id": cid,
            "owner": owner,
            "channel": channel,
            "status": "open",
            "escalation_reason": None,
            "meta": check_json(dict(metadata or {}), "metadata"),
            "turn_count": 0,
            "created_at": now,
            "updated_at": now,
            "resolved_at": None,
        }

    def _append_turn(self, conn: Connection, values: dict[str, Any]) -> datetime:
        """Insert the turn at the conversation's next seq; returns its ``created_at``."""
        cid = values["conversation_id"]
        # The row lock (PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the database) is what
        # makes seq allocation race-free, and taking "now" after it keeps created_at in seq order
        # among this host's writers.
        count = conn.execute(
            select(conversations.c.turn_count).where(conversations.c.id == cid).with_for_update()
        ).scalar_one_or_none()
        if count is None:
            raise NotFoundError(_missing_conversation(cid))
        now = self._db.now()
        conn.execute(
            update(conversations)
            .where(conversations.c.id == cid)
            .values(turn_count=count + 1, updated_at=now)
        )
        conn.execute(insert(turns).values({**values, "seq": count + 1, "created_at": now}))
        return now

    def _insert_feedback(self, conn: Connection, item: Feedback) -> datetime:
        """Insert ``item`` on its turn's conversation; returns its ``created_at``."""
        cid = conn.execute(select(turns.c.conversation_id).where(turns.c.id == item.turn_id)).scalar()
        if cid is None:
            raise NotFoundError(f"no turn {item.turn_id!r} in the log store at {self._db.url}")
        now = self._db.now()
        conn.execute(
            insert(feedback).values(
                id=item.id,
                turn_id=item.turn_id,
                conversation_id=cid,
                thumbs=item.thumbs,
                rating=item.rating,
                comment=item.comment,
                correction=item.correction,
                labels=list(item.labels),
                reviewer=item.reviewer,
                mark_for_training=item.mark_for_training,
                reviewed=bool(item.reviewer or item.correction or item.labels or item.mark_for_training),
                created_at=now,
            )
        )
        return now

    def _resolve(
        self, conversation_id: str, *, resolved_by: str | None, note: str | None, require_open: bool
    ) -> None:
        def work(conn: Connection) -> None:
            now = self._db.now()
            _update_conversation(
                conn,
                conversation_id,
                # A conversation resolved twice keeps its first resolution time.
                {
                    "status": "resolved",
                    "resolved_at": func.coalesce(conversations.c.resolved_at, now),
                    "updated_at": now,
                },
            )
            closed = conn.execute(
                update(escalations)
                .where(escalations.c.conversation_id == conversation_id, escalations.c.resolved_at.is_(None))
                .values(resolved_at=now, resolved_by=resolved_by, note=note)
            )
            if require_open and closed.rowcount == 0:
                # Raising rolls back the status change too.
                raise StoreError(
                    f"conversation {conversation_id!r} has no open escalation (already resolved?); "
                    "use set_status(id, 'resolved') to resolve a conversation that was not escalated"
                )

        self._db.run(work, write=True)

    def _feedback_where(self, condition: ColumnElement[bool]) -> list[Feedback]:
        stmt = select(feedback).where(condition).order_by(feedback.c.created_at, feedback.c.pk)
        return self._db.run(lambda conn: [feedback_of(row._mapping) for row in conn.execute(stmt)])


def _missing_conversation(conversation_id: str) -> str:
    return f"no conversation {conversation_id!r}; create it first (create_conversation / ensure_conversation)"


def _conversation_row(conn: Connection, conversation_id: str, owner: str | None) -> Any:
    row = conn.execute(select(conversations).where(conversations.c.id == conversation_id)).first()
    if row is None or (owner is not None and row.owner != owner):
        raise NotFoundError(_missing_conversation(conversation_id))
    return row


def _update_conversation(conn: Connection, conversation_id: str, values: dict[str, Any]) -> None:
    result = conn.execute(update(conversations).where(conversations.c.id == conversation_id).values(values))
    if result.rowcount == 0:
        raise NotFoundError(_missing_conversation(conversation_id))


def _turns(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[Turn, ...]]:
    grouped: dict[str, list[Turn]] = {cid: [] for cid in ids}
    if ids:
        stmt = select(turns).where(turns.c.conversation_id.in_(ids)).order_by(turns.c.seq)
        for row in conn.execute(stmt):
            grouped[row.conversation_id].append(turn_of(row._mapping))
    return {cid: tuple(items) for cid, items in grouped.items()}
