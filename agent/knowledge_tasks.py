"""Knowledge tasks close themselves: a ``docs_gap`` thumbs-down stays listed until a document
ingested after it covers the customer's question.

"Covers" is decided by the knowledge base itself: the task's question is searched again, and a
hit whose text entered the index after the task was raised (``knowledge.loaders.INGESTED_AT``)
with a relevance of at least ``COVERS_RELEVANCE`` closes it, recording that document. Chunks from
before the task never close it, whatever their score: they were there when the customer asked.
A reviewer can also close a task by hand with a note (``LogStore.close_knowledge_task``).

``check_tasks`` runs after every ``supportloop ingest`` and when the console's feedback-reasons
page loads.

**The threshold** was chosen on a labelled set of (question, document) pairs: the 12 questions
of ``agent/sample/heldout.jsonl`` that the sample docs do not answer, each with one short page
written to answer it (``tests/agent/data/gap_docs.jsonl``), searched with the packaged
all-MiniLM-L6-v2 over the 22 sample pages plus those 12:

* covering (the question, its page): relevance 0.536 to 0.874; 10 of 12 at 0.759 or more.
* not covering, on topic (the question, the sample page retrieval ranks first: related but
  silent, e.g. the Halcyon Care page for "how many times a year can I pause it"): up to 0.754.
* not covering, another new page (the question, each of the other 11 pages): up to 0.532.

No threshold separates all 12 (the firmware page scores 0.536, under six on-topic pages), so it
sits where no non-covering pair closes a task: 0.756, between the highest non-covering pair
(0.754) and the next covering one (0.759). A wrong close hides a gap nobody sees again; a missed
one leaves the task listed for a reviewer to close by hand. Relevance measures topic, not
answer: on-topic pages that stay silent reach 0.75 here, as the 2026-12-03 answerability study
found (retrieval relevance at chance for near-miss questions). Long multi-topic pages score lower
than a page written for the question (the sample pages' own questions: 3 of 40 reach 0.756), so
those close by hand. ``tests/agent/test_knowledge_tasks.py`` recomputes the figures and fails if
the threshold stops separating them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.errors import StoreError
from agent.store.schema import utc
from knowledge.loaders import INGESTED_AT

if TYPE_CHECKING:
    from agent.store import LogStore
    from agent.store.tasks import KnowledgeTask
    from knowledge.types import Hit

COVERS_RELEVANCE = 0.756
SEARCH_K = 8  # hits looked at per question: a new page that covers it ranks near the top
log = logging.getLogger(__name__)


def ingested_at(hit: Hit) -> datetime | None:
    """When ``hit``'s chunk entered the index (aware UTC), or None (an index from before the
    stamp, or a knowledge base that does not stamp)."""
    value = hit.metadata.get(INGESTED_AT)
    try:
        return utc(datetime.fromisoformat(str(value))) if value else None
    except ValueError:
        return None


def covering_hit(
    knowledge: Any, question: str, raised_at: datetime, threshold: float = COVERS_RELEVANCE
) -> Hit | None:
    """The best hit for ``question`` that was ingested after ``raised_at`` with a relevance of at
    least ``threshold``, or None."""
    found = [
        hit
        for hit in knowledge.search(question, k=SEARCH_K)
        if hit.relevance >= threshold and (when := ingested_at(hit)) is not None and when > utc(raised_at)
    ]
    return max(found, key=lambda hit: hit.relevance, default=None)


def check_tasks(store: LogStore, knowledge: Any, threshold: float = COVERS_RELEVANCE) -> list[KnowledgeTask]:
    """Close every open knowledge task a newer document covers; the tasks closed now."""
    closed = []
    for task in store.knowledge_tasks():
        if not task.question.strip():
            continue
        hit = covering_hit(knowledge, task.question, task.raised_at, threshold)
        if hit is None:
            continue
        try:
            closed.append(
                store.close_knowledge_task(
                    task.id, doc_id=hit.doc_id, source=hit.source, relevance=round(hit.relevance, 4)
                )
            )
        except StoreError as exc:  # closed meanwhile (another ingest, a reviewer)
            log.info("knowledge task %s not closed: %s", task.id, exc)
    return closed


def task_json(task: KnowledgeTask) -> dict[str, Any]:
    """One task as ``kb tasks --json`` prints it."""
    closure = task.closure
    return {
        "id": task.id,
        "question": task.question,
        "raised_at": task.raised_at.isoformat(),
        "conversation_id": task.item.turn.conversation_id,
        "retrieved": [{"doc_id": c.doc_id, "score": c.score} for c in task.item.turn.retrieved],
        "open": task.open,
        "closed_at": closure.closed_at.isoformat() if closure else None,
        "closed_by_document": closure.doc_id if closure else None,
        "source": closure.source if closure else None,
        "relevance": closure.relevance if closure else None,
        "closed_by": closure.closed_by if closure else None,
        "note": closure.note if closure else None,
    }
