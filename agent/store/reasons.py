"""Thumbs-down reasons in the log store: counts per reason, the turns given one, and redaction.

Invariants:

* A reason is the feedback label ``reason:<key>`` (``agent.feedback_reasons``); nothing else in
  the schema names it, so the vocabulary can grow without a migration.
* **Redaction replaces, in one transaction,** the turn's text with ``REDACTED``, and drops what
  repeats it (``metadata.passages`` stays: passages are the company's documents), recording
  ``metadata.redacted``; the full-text index follows the text (triggers / generated column).
  ``data compile`` leaves out every conversation holding a redacted turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from agent.errors import NotFoundError
from agent.feedback_reasons import REASON_PREFIX, THUMBS_DOWN_REASONS, reason_of
from agent.store.engine import Database
from agent.store.rows import feedback_of, turn_of
from agent.store.schema import feedback, turns
from agent.types import Feedback, Turn

REDACTED = "[redacted: personal data]"


@dataclass(frozen=True)
class ReasonItem:
    """One thumbs-down with a reason: the feedback, the agent turn, the customer's question."""

    reason: str
    feedback: Feedback
    turn: Turn
    question: str
    corrected: bool  # a correction exists on this turn


class ReasonLog:
    """Reads and writes behind the thumbs-down reasons; ``LogStore`` provides ``_db``."""

    _db: Database

    def reason_counts(self) -> dict[str, int]:
        """Thumbs-down feedback per reason key (every key, zeros included)."""
        counts = dict.fromkeys(THUMBS_DOWN_REASONS, 0)
        for item in self._reason_feedback():
            key = reason_of(item.labels)
            if key is not None:
                counts[key] += 1
        return counts

    def reason_items(self, reason: str) -> list[ReasonItem]:
        """Feedback with ``reason``, newest first, with the turn it rated and that turn's question."""
        items = [f for f in self._reason_feedback() if reason_of(f.labels) == reason]

        def work(conn: Connection) -> list[ReasonItem]:
            out = []
            for item in reversed(items):
                row = conn.execute(select(turns).where(turns.c.id == item.turn_id)).first()
                if row is None:
                    continue
                turn = turn_of(row._mapping)
                question = conn.execute(
                    select(turns.c.text)
                    .where(
                        turns.c.conversation_id == turn.conversation_id,
                        turns.c.seq < row.seq,
                        turns.c.role == "customer",
                    )
                    .order_by(turns.c.seq.desc())
                    .limit(1)
                ).scalar()
                corrected = conn.execute(
                    select(feedback.c.id).where(
                        feedback.c.turn_id == item.turn_id, feedback.c.correction.is_not(None)
                    )
                ).first()
                out.append(ReasonItem(reason, item, turn, question or "", corrected is not None))
            return out

        return self._db.run(work)

    def redact_turn(self, turn_id: str) -> Turn:
        """Replace the turn's text with ``REDACTED`` (see the module docstring)."""

        def work(conn: Connection) -> Any:
            row = conn.execute(select(turns).where(turns.c.id == turn_id)).first()
            if row is None:
                raise NotFoundError(f"no turn {turn_id!r} in the log store at {self._db.url}")
            meta = {**dict(row.meta or {}), "redacted": True}
            conn.execute(update(turns).where(turns.c.id == turn_id).values(text=REDACTED, meta=meta))
            return {**row._mapping, "text": REDACTED, "meta": meta}

        return turn_of(self._db.run(work, write=True))

    def _reason_feedback(self) -> list[Feedback]:
        # Labels are a JSON list: filtered here, the same way on both backends.
        stmt = select(feedback).order_by(feedback.c.created_at, feedback.c.pk)

        def work(conn: Connection) -> list[Feedback]:
            rows = (feedback_of(row._mapping) for row in conn.execute(stmt))
            return [f for f in rows if any(label.startswith(REASON_PREFIX) for label in f.labels)]

        return self._db.run(work)
