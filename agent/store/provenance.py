"""Provenance flags: logged answers whose passages quote a document version the knowledge index
no longer holds. ``training.data.provenance`` finds them and decides what they mean for training
data; this module only keeps the facts.

Invariants:

* **A flag is one (agent turn, document source)**, with its reason (``"changed"``: the document is
  still indexed but no longer holds the passage's text; ``"removed"``: it is gone) and
  ``detected_at``, when it was first found.
* **A scan replaces the set, in one transaction** (``sync_provenance_flags``): a flag found again
  keeps its first ``detected_at``, a new one gets now, one no longer found (the text came back)
  is deleted. So "when" is stable across scans and never moves forward for the same finding.
* Erasing a conversation deletes its flags with its turns (``erasure.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from agent.errors import InputError
from agent.store.engine import Database
from agent.store.rows import dataclass_of
from agent.store.schema import provenance_flags

REASONS = ("changed", "removed")


@dataclass(frozen=True)
class ProvenanceFlag:
    """One logged answer's passage from a document that changed or vanished from the index."""

    turn_id: str
    conversation_id: str
    source: str
    doc_id: str
    reason: str  # one of REASONS
    title: str | None = None
    detected_at: datetime | None = None  # set by the store: when this was first found


class ProvenanceLog:
    """Reads and writes behind provenance flags; ``LogStore`` provides ``_db``."""

    _db: Database

    def sync_provenance_flags(self, found: Iterable[ProvenanceFlag]) -> list[ProvenanceFlag]:
        """Make the stored flags those of a complete scan, ``found`` (see the module docstring);
        returns them with their ``detected_at``. An unknown reason is an ``InputError`` and
        nothing is written."""
        flags = {(f.turn_id, f.source): f for f in found}
        unknown = sorted({f.reason for f in flags.values()} - set(REASONS))
        if unknown:
            raise InputError(
                f"unknown provenance reason {unknown[0]!r}; expected one of {', '.join(REASONS)}"
            )

        def work(conn: Connection) -> list[ProvenanceFlag]:
            now = self._db.now()
            columns = (provenance_flags.c.turn_id, provenance_flags.c.source, provenance_flags.c.detected_at)
            first_seen = {(r.turn_id, r.source): r.detected_at for r in conn.execute(select(*columns))}
            for turn_id, source in set(first_seen) - set(flags):
                conn.execute(delete(provenance_flags).where(_key(turn_id, source)))
            kept = []
            for key, flag in flags.items():
                flag = dataclasses.replace(flag, detected_at=first_seen.get(key, now))
                values = _values(flag)
                if key in first_seen:
                    conn.execute(update(provenance_flags).where(_key(*key)).values(values))
                else:
                    conn.execute(insert(provenance_flags).values(values))
                kept.append(flag)
            return sorted(kept, key=_order)

        return self._db.run(work, write=True)

    def provenance_flags(self) -> list[ProvenanceFlag]:
        """Every stored flag, oldest finding first."""

        def work(conn: Connection) -> list[ProvenanceFlag]:
            rows = conn.execute(select(provenance_flags))
            return sorted((dataclass_of(ProvenanceFlag, dict(row._mapping)) for row in rows), key=_order)

        return self._db.run(work)


def _key(turn_id: str, source: str) -> Any:
    return and_(provenance_flags.c.turn_id == turn_id, provenance_flags.c.source == source)


def _values(flag: ProvenanceFlag) -> dict[str, Any]:
    return {f.name: getattr(flag, f.name) for f in dataclasses.fields(flag)}


def _order(flag: ProvenanceFlag) -> tuple[Any, ...]:
    return (flag.detected_at, flag.conversation_id, flag.turn_id, flag.source)
