"""Knowledge tasks (``agent.knowledge_tasks``, ``agent.store.tasks``): a docs_gap thumbs-down stays
open until a document ingested after it covers the question, or a reviewer closes it with a note.
The calibration and end-to-end tests run the real all-MiniLM-L6-v2 embeddings and Chroma."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.errors import InputError, NotFoundError, StoreError
from agent.feedback_reasons import labels_for
from agent.knowledge_tasks import COVERS_RELEVANCE, check_tasks, covering_hit
from agent.store import LogStore
from agent.types import RetrievedChunk
from knowledge.loaders import INGESTED_AT
from knowledge.types import Hit

DATA = Path(__file__).parent / "data" / "gap_docs.jsonl"
SAMPLE = Path(__file__).resolve().parents[2] / "agent" / "sample"
QUESTION = "How much is the Aero 700, and how big a room does it cover?"


def raise_task(
    store: LogStore, question: str = QUESTION, cid: str = "c-gap", reason: str = "docs_gap"
) -> str:
    """A customer question, an agent answer and the customer's thumbs-down with ``reason``."""
    store.ensure_conversation(cid)
    store.add_turn(cid, "customer", question)
    turn = store.add_turn(
        cid, "agent", "I don't know.", retrieved=[RetrievedChunk("k1", "product-specifications", 0.6)]
    )
    return str(store.add_feedback(str(turn.id), thumbs=-1, labels=labels_for(reason)).id)


def hit(doc_id: str, relevance: float, ingested: datetime | None) -> Hit:
    meta = {INGESTED_AT: ingested.isoformat()} if ingested else {}
    return Hit(doc_id, f"{doc_id}.md", "text", relevance, f"{doc_id}#0", relevance, metadata=meta)


class FakeKnowledge:
    def __init__(self, *hits: Hit):
        self.hits = list(hits)
        self.asked: list[str] = []

    def search(self, query: str, *, k: int = 5, history: Any = ()) -> list[Hit]:
        self.asked.append(query)
        return self.hits[:k]


# ---------------------------------------------------------------------------- the store


def test_a_docs_gap_is_an_open_task_and_closes_once_by_hand_with_a_note(home: Path) -> None:
    with LogStore(home=home) as store:
        task_id = raise_task(store)
        raise_task(store, "Is it loud?", cid="c-wrong", reason="wrong")  # not a knowledge task
        [task] = store.knowledge_tasks()
        assert task.id == task_id and task.open and task.question == QUESTION
        assert task.item.turn.retrieved[0].doc_id == "product-specifications"

        for bad in ({"closed_by": "riley", "note": "  "}, {"closed_by": None, "note": "added a page"}):
            with pytest.raises(InputError):
                store.close_knowledge_task(task_id, **bad)
        with pytest.raises(NotFoundError, match="kb tasks"):
            store.close_knowledge_task("nope", closed_by="riley", note="x")
        assert store.knowledge_tasks()[0].open  # bad input wrote nothing

        done = store.close_knowledge_task(task_id, closed_by="riley", note=" aero-700.md answers it ")
        assert done.closure is not None and done.closure.note == "aero-700.md answers it"
        with pytest.raises(StoreError, match="closed already"):
            store.close_knowledge_task(task_id, doc_id="aero-700", relevance=0.9)
        assert store.knowledge_tasks() == []
        [closed] = store.knowledge_tasks(include_closed=True)
        assert (
            closed.closure is not None
            and closed.closure.closed_by == "riley"
            and closed.closure.doc_id is None
        )


# ---------------------------------------------------------------------------- the check


def test_only_a_newer_document_above_the_threshold_closes_a_task(home: Path) -> None:
    with LogStore(home=home) as store:
        raise_task(store)
        raised = store.knowledge_tasks()[0].raised_at
        before, after = raised - timedelta(days=1), raised + timedelta(seconds=1)
        high, low = COVERS_RELEVANCE + 0.05, COVERS_RELEVANCE - 0.01
        # Older than the task (however relevant), below the threshold, or never stamped: open.
        for hits in ([hit("old", 0.99, before)], [hit("weak", low, after)], [hit("unstamped", 0.99, None)]):
            knowledge = FakeKnowledge(*hits)
            assert check_tasks(store, knowledge) == [] and knowledge.asked == [QUESTION]
        assert store.knowledge_tasks()[0].open
        [closed] = check_tasks(store, FakeKnowledge(hit("weak", low, after), hit("aero-700", high, after)))
        assert closed.closure is not None and closed.closure.doc_id == "aero-700"
        assert closed.closure.source == "aero-700.md" and closed.closure.relevance == pytest.approx(high)
        assert store.knowledge_tasks() == []
        assert check_tasks(store, FakeKnowledge(hit("again", 0.99, after))) == []  # closed stays closed


def test_covering_hit_compares_aware_times() -> None:
    raised = datetime(2026, 1, 1, 12, tzinfo=UTC)
    naive_later = datetime(2026, 1, 1, 12, 5)  # naive means UTC
    assert covering_hit(FakeKnowledge(hit("d", 0.9, naive_later)), QUESTION, raised) is not None
    assert covering_hit(FakeKnowledge(hit("d", 0.9, raised)), QUESTION, raised) is None


def test_kb_tasks_lists_open_ones_and_all_with_what_closed_them(home: Path) -> None:
    with LogStore(home=home) as store:
        first = raise_task(store)
        raise_task(store, "Do you ship to Puerto Rico?", cid="c-pr")
        store.close_knowledge_task(first, closed_by="riley", note="added aero-700.md")
    runner = CliRunner()
    result = runner.invoke(cli, ["kb", "tasks", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["question"] for r in rows] == ["Do you ship to Puerto Rico?"] and rows[0]["open"] is True
    result = runner.invoke(cli, ["kb", "tasks", "--all"])
    assert result.exit_code == 0, result.output
    assert "closed by riley: added aero-700.md" in result.output and "open  Do you ship" in result.output
    assert "stats" in runner.invoke(cli, ["kb", "--help"]).output  # the knowledge layer's kb commands stay


# ---------------------------------------------------------------------------- real embeddings


@pytest.fixture(scope="module")
def sample_and_gap_docs() -> Any:
    """The 22 sample pages and the 12 pages written for the held-out unanswerable questions, with
    each question's best relevance among the sample pages before the 12 were added."""
    from knowledge import Document, KnowledgeBase, KnowledgeConfig

    gaps = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    kb = KnowledgeBase(KnowledgeConfig(embed_threads=1))
    kb.ingest([SAMPLE / "docs"])
    on_topic = {g["doc_id"]: max(h.relevance for h in kb.search(g["question"], k=5)) for g in gaps}
    kb.ingest_documents(Document(g["doc_id"], g["doc_id"], g["text"], format="markdown") for g in gaps)
    yield kb, gaps, on_topic
    kb.close()


def test_the_threshold_separates_covering_pages_from_silent_ones(sample_and_gap_docs: Any) -> None:
    """The labelled set behind ``COVERS_RELEVANCE`` (see ``agent.knowledge_tasks``)."""
    kb, gaps, on_topic = sample_and_gap_docs
    heldout = [json.loads(line) for line in (SAMPLE / "heldout.jsonl").read_text().splitlines()]
    assert {g["question"] for g in gaps} == {q["question"] for q in heldout if q["kind"] == "unanswerable"}
    covering, other_pages = [], []
    for gap in gaps:
        scores = {h.doc_id: h.relevance for h in kb.search(gap["question"], k=34)}
        covering.append(scores[gap["doc_id"]])
        other_pages += [v for d, v in scores.items() if d.startswith("gap-") and d != gap["doc_id"]]
    not_covering = [*on_topic.values(), *other_pages]
    # No page that does not cover its question reaches the threshold: no task closes wrongly.
    assert max(not_covering) < COVERS_RELEVANCE, sorted(not_covering)[-3:]
    assert max(on_topic.values()) > COVERS_RELEVANCE - 0.01  # the threshold sits just above them
    # Most pages written for the question close its task.
    assert sum(score >= COVERS_RELEVANCE for score in covering) >= 10, sorted(covering)


# ---------------------------------------------------------------------------- end to end


def test_ingesting_a_covering_page_closes_the_task_and_an_unrelated_one_does_not(
    home: Path, tmp_path: Path
) -> None:
    gap = next(json.loads(line) for line in DATA.read_text().splitlines() if "aero-700" in line)
    unrelated = tmp_path / "careers.md"
    unrelated.write_text("# Careers\n\nHalcyon Home is hiring firmware engineers in Lisbon. Apply online.\n")
    covering = tmp_path / "aero-700.md"
    covering.write_text(gap["text"] + "\n")
    with LogStore(home=home) as store:
        task_id = raise_task(store, gap["question"])

    runner = CliRunner()
    result = runner.invoke(cli, ["ingest", str(unrelated)])
    assert result.exit_code == 0, result.output
    with LogStore(home=home) as store:
        assert [t.id for t in store.knowledge_tasks()] == [task_id]

    result = runner.invoke(cli, ["ingest", str(covering), "--json"])
    assert result.exit_code == 0, result.output
    assert "knowledge task closed by aero-700" in result.output
    with LogStore(home=home) as store:
        assert store.knowledge_tasks() == []
    rows = json.loads(runner.invoke(cli, ["kb", "tasks", "--all", "--json"]).output)
    assert rows[0]["id"] == task_id and rows[0]["closed_by_document"] == "aero-700"
    assert rows[0]["relevance"] >= COVERS_RELEVANCE and rows[0]["source"] == "aero-700.md"
