"""Verified answers in the log store: what a reviewer's correction says, kept beside the
conversation it corrected, until it retires.

Invariants:

* **One live answer per question.** Adding an answer for a question (compared after collapsing
  whitespace and case) retires the live one it replaces, in the same transaction, with the reason
  "superseded"; so a re-correction wins at once and is never shadowed by the older text.
* **Retired is final.** A retired answer keeps its row (hits, who wrote it, why it retired) for
  the console's history; it is never served again. Retiring twice is a ``StoreError``.
* **Hits** count the customer questions an answer served; incremented in one statement, so
  concurrent servers never lose a count.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, insert, select, update

from agent import validation
from agent.errors import InputError, NotFoundError, StoreError
from agent.store.checks import check_text
from agent.store.engine import Database
from agent.store.rows import dataclass_of
from agent.store.schema import turns, verified_answers
from agent.types import VerifiedAnswer

SUPERSEDED = "superseded"


def question_key(question: str) -> str:
    """The form two questions are compared in for "the same question": case and spacing folded."""
    return " ".join(question.split()).casefold()


class VerifiedLog:
    """Verified answers' reads and writes; ``LogStore`` provides ``_db``."""

    _db: Database

    def add_verified_answer(
        self,
        question: str,
        answer: str,
        *,
        turn_id: str | None = None,
        feedback_id: str | None = None,
        reviewer: str | None = None,
    ) -> VerifiedAnswer:
        """Record ``answer`` as the verified answer to ``question``; a live answer to the same
        question retires ("superseded"). NotFoundError for an unknown ``turn_id``."""
        for name, value, limit in (
            ("question", question, validation.CORRECTION_MAX_CHARS),
            ("answer", answer, validation.CORRECTION_MAX_CHARS),
        ):
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"a verified answer needs a non-empty {name}")
            validation.check_text(value, name, limit)
            check_text(value, name)
        if reviewer is not None:
            validation.check_name(reviewer, "reviewer")
        key = question_key(question)

        def work(conn: Connection) -> dict[str, Any]:
            if (
                turn_id is not None
                and conn.execute(select(turns.c.id).where(turns.c.id == turn_id)).first() is None
            ):
                raise NotFoundError(f"no turn {turn_id!r} in the log store at {self._db.url}")
            now = self._db.now()
            for row in conn.execute(
                select(verified_answers.c.id, verified_answers.c.question).where(
                    verified_answers.c.retired_at.is_(None)
                )
            ):
                if question_key(row.question) == key:
                    conn.execute(
                        update(verified_answers)
                        .where(verified_answers.c.id == row.id)
                        .values(retired_at=now, retired_reason=SUPERSEDED)
                    )
            values = {
                "id": uuid.uuid4().hex,
                "question": question.strip(),
                "answer": answer.strip(),
                "turn_id": turn_id,
                "feedback_id": feedback_id,
                "reviewer": reviewer,
                "hits": 0,
                "created_at": now,
            }
            conn.execute(insert(verified_answers).values(values))
            return values

        return _verified_of(self._db.run(work, write=True))

    def verified_answers(self, *, live: bool | None = True) -> list[VerifiedAnswer]:
        """Verified answers, oldest first: live ones (default), retired ones (``live=False``) or
        all (``live=None``)."""
        stmt = select(verified_answers).order_by(verified_answers.c.pk)
        if live is True:
            stmt = stmt.where(verified_answers.c.retired_at.is_(None))
        elif live is False:
            stmt = stmt.where(verified_answers.c.retired_at.is_not(None))
        return self._db.run(lambda conn: [_verified_of(row._mapping) for row in conn.execute(stmt)])

    def get_verified_answer(self, answer_id: str) -> VerifiedAnswer:
        row = self._db.run(
            lambda conn: conn.execute(
                select(verified_answers).where(verified_answers.c.id == answer_id)
            ).first()
        )
        if row is None:
            raise NotFoundError(f"no verified answer {answer_id!r}")
        return _verified_of(row._mapping)

    def count_verified_hit(self, answer_id: str) -> None:
        """One more customer question answered by ``answer_id``."""

        def work(conn: Connection) -> None:
            conn.execute(
                update(verified_answers)
                .where(verified_answers.c.id == answer_id)
                .values(hits=verified_answers.c.hits + 1, last_hit_at=self._db.now())
            )

        self._db.run(work, write=True)

    def retire_verified_answer(self, answer_id: str, reason: str) -> VerifiedAnswer:
        """Stop serving ``answer_id``; ``reason`` is shown in the console. NotFoundError if
        unknown, StoreError if it already retired."""
        if not isinstance(reason, str) or not reason.strip():
            raise InputError("retiring a verified answer needs a reason")
        validation.check_text(reason, "reason", validation.COMMENT_MAX_CHARS)

        def work(conn: Connection) -> None:
            now = self._db.now()
            done = conn.execute(
                update(verified_answers)
                .where(verified_answers.c.id == answer_id, verified_answers.c.retired_at.is_(None))
                .values(retired_at=now, retired_reason=reason.strip())
            )
            if done.rowcount == 0:
                exists = conn.execute(
                    select(verified_answers.c.id).where(verified_answers.c.id == answer_id)
                ).first()
                if exists is None:
                    raise NotFoundError(f"no verified answer {answer_id!r}")
                raise StoreError(f"verified answer {answer_id!r} has already retired")

        self._db.run(work, write=True)
        return self.get_verified_answer(answer_id)


def _verified_of(row: Any) -> VerifiedAnswer:
    return dataclass_of(VerifiedAnswer, row)
