"""Idempotent requests (``store.requests``): the ledger that lets a retried HTTP request be
answered once.

Invariants:

* **One owner per key.** ``claim`` inserts the (API key, idempotency key) row in its own
  transaction; of two requests racing with the same key exactly one gets ``None`` (it owns the
  key and does the work), the other the row it lost to (SQLite serialises the write
  transactions; on PostgreSQL the primary key refuses the second insert).
* **A retry never does the work twice.** A row is ``pending`` until its owner ``finish``-es it
  as ``done`` or ``failed`` with the answer it sent; every later claim with the key gets that
  row back. A ``pending`` row older than ``PENDING_TTL_S`` belongs to a request whose process
  died: ``Idempotent.abandoned`` says so, and it is never worked on again.
* Keys are scoped by their owner (an API key id), so one client cannot replay another's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from agent.errors import StoreError
from agent.store.engine import Database
from agent.store.rows import dataclass_of
from agent.store.schema import idempotent_requests

PENDING_TTL_S = 900.0  # longer than any turn (generation.timeout_s is 120 s by default)
STATES = ("pending", "done", "failed")


@dataclass(frozen=True)
class Idempotent:
    """A request recorded under an idempotency key."""

    owner: str
    key: str
    fingerprint: str
    state: str
    status_code: int | None = None
    response: Any = None
    conversation_id: str | None = None
    created_at: datetime | None = None

    def abandoned(self, now: datetime) -> bool:
        return (
            self.state == "pending"
            and self.created_at is not None
            and (now - self.created_at).total_seconds() > PENDING_TTL_S
        )


class IdempotentRequests:
    """The ledger of requests sent with an idempotency key (``store.requests``)."""

    def __init__(self, db: Database):
        self._db = db

    def claim(self, owner: str, key: str, fingerprint: str) -> Idempotent | None:
        """None when this request now owns ``key`` (a ``pending`` row is written); else the row
        of the request that owned it first."""
        where = _where(owner, key)

        def work(conn: Connection) -> Idempotent | None:
            found = conn.execute(select(idempotent_requests).where(where)).first()
            if found is not None:
                return _row(found)
            conn.execute(
                insert(idempotent_requests).values(
                    owner=owner, key=key, fingerprint=fingerprint, state="pending", created_at=self._db.now()
                )
            )
            return None

        try:
            return self._db.run(work, write=True)
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
        return self.get(owner, key)  # a concurrent claim inserted it first

    def get(self, owner: str, key: str) -> Idempotent | None:
        row = self._db.run(
            lambda conn: conn.execute(select(idempotent_requests).where(_where(owner, key))).first()
        )
        return None if row is None else _row(row)

    def finish(
        self,
        owner: str,
        key: str,
        *,
        state: str,
        status_code: int,
        response: Any,
        conversation_id: str | None = None,
    ) -> None:
        """Record the answer a claimed request sent (``done``) or the error it ended with
        (``failed``)."""
        if state not in STATES[1:]:
            raise ValueError(f"state must be one of {STATES[1:]}")
        values = {
            "state": state,
            "status_code": status_code,
            "response": response,
            "conversation_id": conversation_id,
            "finished_at": self._db.now(),
        }
        self._db.run(
            lambda conn: conn.execute(update(idempotent_requests).where(_where(owner, key)).values(values)),
            write=True,
        )


def _where(owner: str, key: str) -> Any:
    return and_(idempotent_requests.c.owner == owner, idempotent_requests.c.key == key)


def _row(row: Any) -> Idempotent:
    return dataclass_of(Idempotent, row._mapping)
