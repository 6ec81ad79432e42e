"""Erasure: a customer's conversation removed at their request, and a record that it was.

Invariants:

* **One transaction.** ``erase_conversation`` deletes the conversation, its turns (the full-text
  index follows: triggers / generated column), their feedback, its escalations, the verified
  answers derived from its turns (their question is the customer's words) and the idempotent
  requests whose stored answer belongs to it, the closures of knowledge tasks its feedback raised
  (``tasks.py``: a reviewer's note may name the customer), its provenance flags and the shadow
  answers to its turns (``shadow.py``), and inserts the ``erasures`` row, or does none of it.
* **The record names no one.** Only ``erasure_key(conversation_id)``, the SHA-256 of the id, is
  kept, with the counts of what was removed, who erased it and when. ``data compile`` compares
  every conversation it reads (log store and files alike) against these keys and leaves erased
  ones out, so an exported copy of the log cannot bring one back.
* **Erasing twice** answers the first record (``Erasure.already``); an id that is neither in the
  store nor erased is a ``NotFoundError``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from agent import validation
from agent.errors import NotFoundError
from agent.store.engine import Database
from agent.store.schema import (
    conversations,
    erasures,
    escalations,
    feedback,
    idempotent_requests,
    knowledge_task_closures,
    provenance_flags,
    shadow_answers,
    turns,
    verified_answers,
)

REMOVED = ("turns", "feedback", "escalations", "verified_answers", "requests")


def erasure_key(conversation_id: str) -> str:
    """The form an erased conversation id is kept in (and compared in): its SHA-256, hex."""
    return hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Erasure:
    """What one erasure removed. ``already``: the conversation had been erased before (this is
    that earlier record; nothing was removed now)."""

    id: str
    conversation_key: str
    turns: int
    feedback: int
    escalations: int
    verified_answers: int
    requests: int
    erased_by: str | None
    erased_at: datetime
    already: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["erased_at"] = self.erased_at.isoformat()
        return data

    def summary(self) -> str:
        """One line: what was removed (or that it had been, and when)."""
        if self.already:
            return f"already erased at {self.erased_at.isoformat()} (erasure {self.id})"
        counts = ", ".join(f"{getattr(self, name)} {name.replace('_', ' ')}" for name in REMOVED)
        return f"erased the conversation: {counts} (erasure {self.id})"


class ErasureLog:
    """Erasure's reads and writes; ``LogStore`` provides ``_db``."""

    _db: Database

    def erase_conversation(self, conversation_id: str, *, erased_by: str | None = None) -> Erasure:
        """Remove the conversation and everything derived from it (see the module docstring)."""
        validation.check_identifier(conversation_id, "conversation id")
        if erased_by is not None:
            validation.check_name(erased_by, "erased_by")
        key = erasure_key(conversation_id)

        def work(conn: Connection) -> dict[str, Any]:
            earlier = conn.execute(select(erasures).where(erasures.c.conversation_key == key)).first()
            found = conn.execute(
                select(conversations.c.id).where(conversations.c.id == conversation_id)
            ).first()
            if found is None:
                if earlier is not None:
                    return {**earlier._mapping, "already": True}
                raise NotFoundError(f"no conversation {conversation_id!r} in the log store at {self._db.url}")
            turn_ids = select(turns.c.id).where(turns.c.conversation_id == conversation_id)
            feedback_ids = select(feedback.c.id).where(feedback.c.conversation_id == conversation_id)
            # A task is its feedback row, so its closure goes with it (not counted apart).
            _delete(conn, knowledge_task_closures, knowledge_task_closures.c.feedback_id.in_(feedback_ids))
            removed = {
                # Derived rows first: verified answers have no foreign key to the turn they came from.
                "verified_answers": _delete(conn, verified_answers, verified_answers.c.turn_id.in_(turn_ids)),
                "requests": _delete(
                    conn, idempotent_requests, idempotent_requests.c.conversation_id == conversation_id
                ),
                "feedback": _delete(conn, feedback, feedback.c.conversation_id == conversation_id),
                "escalations": _delete(conn, escalations, escalations.c.conversation_id == conversation_id),
                "turns": _delete(conn, turns, turns.c.conversation_id == conversation_id),
            }
            _delete(conn, provenance_flags, provenance_flags.c.conversation_id == conversation_id)
            # After the turns: a shadow row being written waits on its turn, so it is gone by now
            # (a measurement of the conversation, not a record of it: not counted).
            _delete(conn, shadow_answers, shadow_answers.c.conversation_id == conversation_id)
            conn.execute(delete(conversations).where(conversations.c.id == conversation_id))
            values = {
                "id": uuid.uuid4().hex,
                "conversation_key": key,
                **removed,
                "erased_by": erased_by,
                "erased_at": self._db.now(),
            }
            if earlier is not None:  # re-created under the same id after an erasure: add to it
                values = {**values, "id": earlier.id}
                conn.execute(delete(erasures).where(erasures.c.id == earlier.id))
            conn.execute(erasures.insert().values(values))
            return values

        row = self._db.run(work, write=True)
        return Erasure(**{f.name: row[f.name] for f in dataclasses.fields(Erasure) if f.name in row})

    def erasure_keys(self) -> frozenset[str]:
        """Every erased conversation's ``erasure_key``."""
        return frozenset(
            self._db.run(lambda conn: list(conn.execute(select(erasures.c.conversation_key)).scalars()))
        )

    def latest_erasure(self) -> datetime | None:
        """When the last conversation was erased, or None."""
        stmt = select(erasures.c.erased_at).order_by(erasures.c.erased_at.desc()).limit(1)
        return self._db.run(lambda conn: conn.execute(stmt).scalar())

    def erasures(self) -> list[Erasure]:
        """Every erasure, oldest first."""

        def work(conn: Connection) -> list[Erasure]:
            rows = conn.execute(select(erasures).order_by(erasures.c.pk))
            names = [f.name for f in dataclasses.fields(Erasure) if f.name != "already"]
            return [Erasure(**{n: row._mapping[n] for n in names}) for row in rows]

        return self._db.run(work)


def _delete(conn: Connection, table: Any, condition: Any) -> int:
    return int(conn.execute(delete(table).where(condition)).rowcount or 0)
