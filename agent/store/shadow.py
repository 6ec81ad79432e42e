"""Shadow answers in the log store: a candidate's silent answer on a production turn, scored
beside production's (``agent.shadow``).

Invariants:

* **Only beside a turn that exists.** A row is written from the shadow's background thread after
  the turn; it is inserted only if the production turn is still in the store, in the same
  transaction, so a conversation erased meanwhile never gets a shadow row back. Erasure deletes
  a conversation's rows (``erasure.py``).
* **Scores are written once, rewards replaced.** The serving-side scores (grounding, groundedness,
  length) come with the row; a reward model's scores are added later by the one command that
  loads reward models (``supportloop models shadow status``), and scoring with another reward
  model replaces them, ``reward_model`` naming the one they came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from agent.store.engine import Database
from agent.store.rows import dataclass_of
from agent.store.schema import shadow_answers, turns, utc
from agent.types import ShadowAnswer


class ShadowLog:
    """Shadow answers' reads and writes; ``LogStore`` provides ``_db``."""

    _db: Database

    def add_shadow_answer(self, values: Mapping[str, Any]) -> bool:
        """Record one shadowed turn (the columns of ``shadow_answers`` but ``pk`` and
        ``created_at``); False, and nothing written, when its turn is no longer in the store."""

        def work(conn: Connection) -> bool:
            # FOR SHARE (PostgreSQL): an erasure deleting the turn waits for this insert, then
            # deletes its row too; SQLite's write transaction already excludes one.
            turn = select(turns.c.id).where(turns.c.id == values["turn_id"]).with_for_update(read=True)
            if conn.execute(turn).first() is None:
                return False
            conn.execute(insert(shadow_answers).values({**values, "created_at": self._db.now()}))
            return True

        return self._db.run(work, write=True)

    def shadow_answers(self, version: str, *, production: str, since: datetime) -> list[ShadowAnswer]:
        """The turns ``version`` shadowed beside ``production`` since ``since``, oldest first,
        each with production's logged answer."""
        stmt = (
            select(shadow_answers, turns.c.text.label("production_answer"))
            .join(turns, turns.c.id == shadow_answers.c.turn_id, isouter=True)
            .where(
                shadow_answers.c.shadow_version == version,
                shadow_answers.c.production_version == production,
                shadow_answers.c.created_at >= utc(since),
            )
            .order_by(shadow_answers.c.pk)
        )
        return self._db.run(lambda conn: [_answer_of(row._mapping) for row in conn.execute(stmt)])

    def set_shadow_rewards(self, reward_model: str, rewards: Mapping[str, tuple[float, float]]) -> None:
        """Record ``reward_model``'s (production, shadow) rewards of the rows ``rewards`` names."""

        def work(conn: Connection) -> None:
            for row_id, (production, shadow) in rewards.items():
                conn.execute(
                    update(shadow_answers)
                    .where(shadow_answers.c.id == row_id)
                    .values(reward_model=reward_model, production_reward=production, shadow_reward=shadow)
                )

        self._db.run(work, write=True)


def _answer_of(row: Any) -> ShadowAnswer:
    return dataclass_of(ShadowAnswer, row)
