"""Training rows keep their provenance: each row names the document version its passages quote,
and an answer quoting text the knowledge index no longer holds is left out until re-reviewed.

The unit tests use built records and an in-memory index state; the end-to-end test runs the real
parts: the sample documents in a Chroma index of the data home with the packaged MiniLM
embeddings, turns logged by the real ``Agent`` into the real store, ``data compile --from-logs``."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.errors import InputError
from agent.prompt import Passage
from agent.store import LogStore, ProvenanceFlag
from knowledge.chunking import chunk_document
from knowledge.types import Document
from training.data import (
    IndexState,
    PromptOptions,
    SourceConversation,
    TurnFeedback,
    kto_rows,
    leave_out_stale,
    passage_hash,
    preference_rows,
    sft_rows,
    stale_reason,
)

DOC = Document(
    "filters",
    "filters.md",
    "# Filters\n\nReplace the filter every 6 months.\n\nRinse the pre-filter monthly.",
    format="markdown",
)


def served(chunk_text: str) -> str:
    """A chunk as the runtime logs it: cleaned, sentences joined by single spaces."""
    from agent.guardrails import clean_passage

    return clean_passage(chunk_text)


def passage_of(doc: Document, chunk_index: int = 0) -> Passage:
    chunk = chunk_document(doc)[chunk_index]
    return Passage(doc.doc_id, doc.source, served(chunk.text), doc.title, chunk_id=chunk.chunk_id)


# ------------------------------------------------------------------------------- the row field


def test_every_row_kind_lists_its_passages_with_chunk_id_and_text_hash() -> None:
    shown = (passage_of(DOC), Passage("gold", "gold.md", "A gold passage not from the index."))
    conv = SourceConversation(
        id="c1",
        turns=(("customer", "How often?"), ("agent", "Every 6 months.")),
        origin="test",
        passages={1: shown},
        feedback={1: TurnFeedback(thumbs=1, correction="Every six months.")},
    )
    options = PromptOptions()
    rows = [*sft_rows(conv, options), *preference_rows(conv, options), *kto_rows(conv, options)]
    assert len(rows) == 3
    for row in rows:
        assert row["provenance"] == [
            {
                "doc_id": "filters",
                "source": "filters.md",
                "chunk_id": shown[0].chunk_id,
                "hash": passage_hash(shown[0].text),
            },
            {"doc_id": "gold", "source": "gold.md", "chunk_id": None, "hash": passage_hash(shown[1].text)},
        ]
    assert rows[0]["provenance"][0]["hash"] != rows[0]["provenance"][1]["hash"]


def test_the_hash_ignores_whitespace_only() -> None:
    assert passage_hash("Replace the filter\n every  6 months.") == passage_hash(
        "Replace the filter every 6 months."
    )
    assert passage_hash("Replace the filter every 6 months.") != passage_hash(
        "Replace the filter every 8 months."
    )


# ------------------------------------------------------------------------------- staleness


def test_a_passage_is_stale_when_its_document_changed_or_vanished() -> None:
    old = passage_of(DOC)
    assert stale_reason(old, IndexState.of(chunk_document(DOC))) is None

    edited = Document(DOC.doc_id, DOC.source, DOC.text.replace("6 months", "8 months"), format="markdown")
    assert stale_reason(old, IndexState.of(chunk_document(edited))) == "changed"

    other = Document("shipping", "shipping.md", "Shipping takes 3 days.")
    assert stale_reason(old, IndexState.of(chunk_document(other))) == "removed"
    assert stale_reason(Passage("x", "", "no source"), IndexState.of(chunk_document(other))) is None


def test_same_text_under_new_metadata_is_not_stale() -> None:
    """A chunk id covers metadata too; what matters is whether the text is still there."""
    old = passage_of(DOC)
    retitled = Document(DOC.doc_id, DOC.source, DOC.text, metadata={"product": "Aero"}, format="markdown")
    state = IndexState.of(chunk_document(retitled))
    assert old.chunk_id not in state.chunk_ids
    assert stale_reason(old, state) is None


def test_flags_keep_their_first_time_and_go_when_the_text_is_back(tmp_path: Path) -> None:
    clock = {"now": datetime(2026, 1, 1, tzinfo=UTC)}
    with LogStore(home=tmp_path, clock=lambda: clock["now"]) as store:
        flag = ProvenanceFlag("t1", "c1", "filters.md", "filters", "changed")
        [first] = store.sync_provenance_flags([flag])
        clock["now"] += timedelta(days=1)
        [again] = store.sync_provenance_flags(
            [ProvenanceFlag("t1", "c1", "filters.md", "filters", "removed")]
        )
        assert again.detected_at == first.detected_at == datetime(2026, 1, 1, tzinfo=UTC)
        assert store.provenance_flags()[0].reason == "removed"
        assert store.sync_provenance_flags([]) == [] and store.provenance_flags() == []
        with pytest.raises(InputError, match="unknown provenance reason 'moved'"):
            store.sync_provenance_flags([flag, ProvenanceFlag("t2", "c1", "a.md", "a", "moved")])
        assert store.provenance_flags() == []  # bad input writes nothing


def logged_conversation(store: LogStore, cid: str, passage: Passage) -> str:
    store.create_conversation(cid)
    store.add_turn(cid, "customer", "How often should I replace the filter?")
    meta = {
        "passages": [
            {"doc_id": passage.doc_id, "source": passage.source, "title": None, "text": passage.text}
        ]
    }
    turn = store.add_turn(cid, "agent", "Every 6 months.", metadata=meta)
    store.add_feedback(turn.id, reviewer="riley", mark_for_training=True)
    return str(turn.id)


def test_two_chunks_of_one_page_keep_their_own_chunk_ids(tmp_path: Path) -> None:
    """The agent may show two chunks of one page; each is read back as the chunk it was, whether
    the log holds its id (now) or only the turn's retrieved list does (older logs)."""
    from agent.types import RetrievedChunk
    from training.data import from_store

    ids = ("a" * 32, "b" * 32)
    with LogStore(home=tmp_path) as store:
        for cid, with_ids in (("new", True), ("old", False)):
            store.create_conversation(cid)
            store.add_turn(cid, "customer", "How often should I replace the filter?")
            passages = [
                {"doc_id": "filters", "source": "filters.md", "title": None, "text": text}
                | ({"chunk_id": i} if with_ids else {})
                for text, i in zip(("Replace it every 6 months.", "Rinse it monthly."), ids, strict=True)
            ]
            retrieved = [RetrievedChunk(i, "filters", 0.9, "filters.md") for i in ids]
            turn = store.add_turn(
                cid, "agent", "Every 6 months.", retrieved=retrieved, metadata={"passages": passages}
            )
            store.add_feedback(turn.id, reviewer="riley", mark_for_training=True)
        for conv in from_store(store):
            assert [p.chunk_id for p in conv.passages[1]] == list(ids), conv.id


def test_a_stale_answer_is_left_out_until_a_review_after_it_was_found(tmp_path: Path) -> None:
    from training.data import from_store

    clock = {"now": datetime(2026, 1, 1, tzinfo=UTC)}
    edited = Document(DOC.doc_id, DOC.source, DOC.text.replace("6 months", "8 months"), format="markdown")
    with LogStore(home=tmp_path, clock=lambda: clock["now"]) as store:
        turn_id = logged_conversation(store, "c1", passage_of(DOC))
        clock["now"] += timedelta(days=1)

        current = IndexState.of(chunk_document(DOC))
        kept, found = leave_out_stale(list(from_store(store)), current, store)
        assert not found.flags and not kept[0].left_out

        changed = IndexState.of(chunk_document(edited))
        kept, found = leave_out_stale(list(from_store(store)), changed, store)
        assert kept[0].left_out == {1} and found.left_out == {turn_id}
        assert found.documents() == [
            {"source": "filters.md", "doc_id": "filters", "reason": "changed", "answers": 1}
        ]

        clock["now"] += timedelta(hours=1)
        store.add_feedback(turn_id, reviewer="riley", labels=["re-reviewed"])
        kept, found = leave_out_stale(list(from_store(store)), changed, store)
        assert not kept[0].left_out and found.rereviewed == {turn_id} and not found.left_out

        store.erase_conversation("c1")  # its flags go with it
        assert store.provenance_flags() == []


# ------------------------------------------------------------------------------- end to end


def ingest(config: Any, folder: Path) -> None:
    from agent.knowledge import knowledge_config
    from knowledge import KnowledgeBase

    kb = KnowledgeBase(knowledge_config(config))
    try:
        report = kb.ingest([folder])
        assert not report.failures
    finally:
        kb.close()


def compile_from_logs() -> tuple[dict[str, Any], str]:
    from agent.cli import cli

    result = CliRunner().invoke(cli, ["data", "compile", "--from-logs", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1]), result.output


def sft_rows_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    out = Path(manifest["out_dir"])
    return [json.loads(line) for name in ("sft_train", "sft_val") for line in (out / f"{name}.jsonl").open()]


def edit_passage_in(file: Path, passage_text: str) -> None:
    """Change, in ``file``, a paragraph the logged passage quotes."""
    text = file.read_text(encoding="utf-8")
    flat = " ".join(passage_text.split())
    paragraph = next(
        p
        for p in text.split("\n\n")
        if p.strip() and not p.startswith("#") and " ".join(p.split())[:60] in flat
    )
    file.write_text(
        text.replace(paragraph, paragraph + " This changed in the 2026 edition."), encoding="utf-8"
    )


@pytest.mark.slow
def test_a_changed_or_removed_document_leaves_its_rows_out_until_re_reviewed(
    home: Path, tmp_path: Path
) -> None:
    from agent.config import load_config
    from agent.generator import ScriptedGenerator
    from agent.knowledge import SAMPLE_DOCS, knowledge_config
    from agent.runtime import Agent
    from knowledge import KnowledgeBase

    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("filters-and-replacement.md", "shipping-and-delivery.md", "warranty.md"):
        shutil.copy(SAMPLE_DOCS / name, docs / name)
    config = load_config()
    ingest(config, docs)

    # Two reviewed answers, logged by the real runtime with what retrieval gave them.
    kb = KnowledgeBase(knowledge_config(config))
    assert "minilm" in kb.stats()["embedding_model"].lower()  # the packaged real embeddings
    with LogStore.from_config(config) as store:
        agent = Agent(ScriptedGenerator(), kb, store, config)
        turns = {}
        for cid, question in (
            ("c-filter", "How often should I replace the HEPA filter?"),
            ("c-ship", "How long does shipping take?"),
        ):
            reply = agent.reply(cid, question)
            turns[cid] = reply.turn_id
            store.add_feedback(reply.turn_id, reviewer="riley", mark_for_training=True)
        logged = {cid: store.turns(cid)[1].metadata["passages"] for cid in turns}
    kb.close()
    filter_doc = logged["c-filter"][0]
    assert filter_doc["source"].endswith("filters-and-replacement.md")
    ship_sources = {p["source"] for p in logged["c-ship"]}

    manifest, _ = compile_from_logs()
    assert manifest["provenance_checked"] and manifest["stale_left_out"] == 0
    rows = {r["conversation_id"]: r for r in sft_rows_of(manifest)}
    assert set(rows) == {"c-filter", "c-ship"}
    first = rows["c-filter"]["provenance"][0]
    assert first["source"] == filter_doc["source"] and len(first["chunk_id"]) == 32
    assert first["hash"] == passage_hash(filter_doc["text"])

    # The document the filter answer quotes changes; re-ingesting replaces its chunks.
    if any(s.endswith("filters-and-replacement.md") for s in ship_sources):
        pytest.skip("retrieval gave the shipping answer the filter page too; the test needs them apart")
    edit_passage_in(docs / "filters-and-replacement.md", filter_doc["text"])
    ingest(config, docs)
    manifest, output = compile_from_logs()
    assert [r["conversation_id"] for r in sft_rows_of(manifest)] == ["c-ship"]
    assert manifest["stale_left_out"] >= 1
    named = {d["source"]: d["reason"] for d in manifest["stale_documents"]}
    assert named == {filter_doc["source"]: "changed"}
    assert "stale provenance: " in output and "filters-and-replacement.md (changed)" in output

    # A reviewer re-reviews it: it is back, with the passages it was shown.
    with LogStore.from_config(config) as store:
        store.add_feedback(turns["c-filter"], reviewer="riley", labels=["re-reviewed"])
    manifest, _ = compile_from_logs()
    assert sorted(r["conversation_id"] for r in sft_rows_of(manifest)) == ["c-filter", "c-ship"]
    assert manifest["stale_left_out"] == 0 and manifest["stale_rereviewed"] == 1

    # The shipping page is removed from the index: every answer quoting it is left out, and only
    # those, named "removed".
    [shipping] = [s for s in ship_sources if s.endswith("shipping-and-delivery.md")]
    kb = KnowledgeBase(knowledge_config(config))
    assert kb.remove(shipping) > 0
    kb.close()
    manifest, _ = compile_from_logs()
    quoting = {cid for cid, passages in logged.items() if shipping in {p["source"] for p in passages}}
    assert "c-ship" in quoting
    assert {r["conversation_id"] for r in sft_rows_of(manifest)} == set(turns) - quoting
    assert {d["source"]: d["reason"] for d in manifest["stale_documents"]}[shipping] == "removed"
