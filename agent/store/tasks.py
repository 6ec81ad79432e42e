"""Knowledge tasks in the log store: each ``docs_gap`` thumbs-down is a task, open until it closes.

Invariants:

* **A task is its feedback row.** Nothing is written when a customer reports a docs gap; the task
  is the ``reason:docs_gap`` feedback (``reasons.py``), and its id is the feedback's id. Closing
  writes one ``knowledge_task_closures`` row: by a document (``doc_id``, ``source``,
  ``relevance``: ``agent.knowledge_tasks`` decides it covers the question) or by a reviewer
  (``closed_by`` and a ``note``, both required).
* **Closed is final.** Closing a closed task is a ``StoreError``; the insert and the check are one
  statement under the primary key, so two ingests closing the same task at once record one.
* Bad input raises before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from agent import validation
from agent.errors import InputError, NotFoundError, StoreError
from agent.store.checks import check_text
from agent.store.engine import Database
from agent.store.reasons import ReasonItem
from agent.store.rows import dataclass_of
from agent.store.schema import knowledge_task_closures

DOCS_GAP = "docs_gap"


@dataclass(frozen=True)
class TaskClosure:
    """What closed a knowledge task: a document, or a reviewer's note."""

    feedback_id: str
    closed_at: datetime
    doc_id: str | None = None
    source: str | None = None
    relevance: float | None = None
    closed_by: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class KnowledgeTask:
    """A customer's question the docs did not answer, what was retrieved then, and its closure."""

    item: ReasonItem
    closure: TaskClosure | None = None

    @property
    def id(self) -> str:
        return str(self.item.feedback.id)

    @property
    def question(self) -> str:
        return self.item.question

    @property
    def raised_at(self) -> datetime:
        assert self.item.feedback.created_at is not None  # the store always sets it
        return self.item.feedback.created_at

    @property
    def open(self) -> bool:
        return self.closure is None


class TaskLog:
    """Knowledge tasks' reads and writes; ``LogStore`` provides ``_db`` and ``reason_items``."""

    _db: Database
    reason_items: Callable[[str], list[ReasonItem]]

    def knowledge_tasks(self, *, include_closed: bool = False) -> list[KnowledgeTask]:
        """Knowledge tasks, newest first: the open ones, or every one with ``include_closed``."""
        rows = self._db.run(lambda conn: list(conn.execute(select(knowledge_task_closures))))
        closures = {row.feedback_id: dataclass_of(TaskClosure, dict(row._mapping)) for row in rows}
        tasks = [
            KnowledgeTask(item, closures.get(str(item.feedback.id))) for item in self.reason_items(DOCS_GAP)
        ]
        return [t for t in tasks if include_closed or t.open]

    def close_knowledge_task(
        self,
        task_id: str,
        *,
        doc_id: str | None = None,
        source: str | None = None,
        relevance: float | None = None,
        closed_by: str | None = None,
        note: str | None = None,
    ) -> KnowledgeTask:
        """Close ``task_id`` (a ``docs_gap`` feedback id) by a covering document (``doc_id``) or
        by hand (``closed_by`` and ``note``). NotFoundError for no such task, StoreError if it
        is closed already."""
        values = _closure_values(task_id, doc_id, source, relevance, closed_by, note)
        task = next((t for t in self.knowledge_tasks(include_closed=True) if t.id == task_id), None)
        if task is None:
            raise NotFoundError(
                f"no knowledge task {task_id!r}: `supportloop kb tasks --all` lists them "
                "(a task is a thumbs-down with the reason docs_gap)"
            )

        def work(conn: Connection) -> dict[str, Any]:
            row = {**values, "closed_at": self._db.now()}
            try:
                conn.execute(insert(knowledge_task_closures).values(row))
            except IntegrityError as exc:
                raise StoreError(f"knowledge task {task_id!r} is closed already") from exc
            return row

        closure = dataclass_of(TaskClosure, self._db.run(work, write=True))
        return KnowledgeTask(task.item, closure)


def _closure_values(
    task_id: str,
    doc_id: str | None,
    source: str | None,
    relevance: float | None,
    closed_by: str | None,
    note: str | None,
) -> dict[str, Any]:
    """The closure row's values, checked: a document, or a reviewer with a note."""
    if not isinstance(task_id, str) or not task_id:
        raise InputError("a knowledge task id is needed (see `supportloop kb tasks`)", param="task_id")
    if doc_id is None:
        if not isinstance(note, str) or not note.strip():
            raise InputError(
                "closing a knowledge task by hand needs a note: what covers the question now", param="note"
            )
        if not closed_by:
            raise InputError("closing a knowledge task by hand needs the reviewer's name", param="closed_by")
        validation.check_text(note, "note", validation.COMMENT_MAX_CHARS)
        check_text(note, "note")
        validation.check_name(closed_by, "closed_by")
        note = note.strip()
    elif relevance is not None and not 0.0 <= relevance <= 1.0:
        raise InputError(f"relevance must be between 0 and 1, got {relevance!r}", param="relevance")
    return {
        "feedback_id": task_id,
        "doc_id": doc_id,
        "source": source,
        "relevance": relevance,
        "closed_by": closed_by,
        "note": note,
    }
