"""Verified answers: a reviewer's correction is served at once, verbatim, for the same and closely
similar questions (``agent.verified``), and kept in the log store with its hit count until it retires."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.errors import InputError, NotFoundError, StoreError
from agent.generator import ScriptedGenerator
from agent.knowledge import SAMPLE_DIR
from agent.store import LogStore
from agent.verified import MIN_SIMILARITY, SOURCE, VerifiedIndex, compatible, key_terms, record_correction

PAIRS = SAMPLE_DIR / "verified_pairs.jsonl"
CORRECTED = "The Aero warranty is 3 years from delivery for orders placed since March. Verified."


@pytest.fixture
def store(store_url: str) -> Iterator[LogStore]:
    with LogStore(store_url) as opened:
        yield opened


class CountingGenerator(ScriptedGenerator):
    """Counts generations, so a test can tell that no model ran."""

    calls = 0

    def stream(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().stream(*args, **kwargs)


def answered_turn(store: LogStore, cid: str = "c1", question: str = "How long is the warranty?") -> str:
    store.ensure_conversation(cid)
    store.add_turn(cid, "customer", question)
    return str(store.add_turn(cid, "agent", "The warranty lasts 2 years.").id)


# ------------------------------------------------------------------------------- the store


def test_store_keeps_one_live_answer_per_question_and_counts_hits(store: LogStore) -> None:
    turn_id = answered_turn(store)
    first = store.add_verified_answer(
        "How long is the warranty?", "Two years.", turn_id=turn_id, reviewer="ann"
    )
    second = store.add_verified_answer("how long is  the WARRANTY?", "Three years.", reviewer="bob")
    (live,) = store.verified_answers()
    assert live.id == second.id and live.answer == "Three years." and live.live
    (old,) = store.verified_answers(live=False)
    assert old.id == first.id and old.retired_reason == "superseded" and old.turn_id == turn_id
    store.count_verified_hit(str(second.id))
    store.count_verified_hit(str(second.id))
    hit = store.get_verified_answer(str(second.id))
    assert hit.hits == 2 and hit.last_hit_at is not None
    retired = store.retire_verified_answer(str(second.id), "answered by model v3")
    assert not retired.live and retired.retired_reason == "answered by model v3" and retired.hits == 2
    assert store.verified_answers() == []
    assert len(store.verified_answers(live=None)) == 2
    with pytest.raises(StoreError, match="already retired"):
        store.retire_verified_answer(str(second.id), "again")
    with pytest.raises(NotFoundError):
        store.retire_verified_answer("nope", "x")


def test_store_refuses_bad_verified_answers_and_writes_nothing(store: LogStore) -> None:
    for question, answer in (("", "a"), ("q", "  "), ("q\x00", "a")):
        with pytest.raises(InputError):
            store.add_verified_answer(question, answer)
    with pytest.raises(NotFoundError):
        store.add_verified_answer("q", "a", turn_id="missing-turn")
    assert store.verified_answers(live=None) == []


def test_record_correction_writes_feedback_and_verified_answer(store: LogStore) -> None:
    turn_id = answered_turn(store)
    saved, answer = record_correction(store, turn_id, f"  {CORRECTED}  ", reviewer="ann")
    assert answer.question == "How long is the warranty?" and answer.answer == CORRECTED
    assert answer.feedback_id == saved.id and answer.turn_id == turn_id
    (feedback,) = store.feedback_for_turn(turn_id)
    assert feedback.correction == CORRECTED and feedback.reviewer == "ann"


def test_record_correction_refuses_bad_input_and_writes_nothing(store: LogStore) -> None:
    turn_id = answered_turn(store)
    customer_turn = store.turns("c1")[0].id
    with pytest.raises(InputError, match="not an agent turn"):
        record_correction(store, str(customer_turn), "text")
    with pytest.raises(InputError):
        record_correction(store, turn_id, "   ")
    with pytest.raises(NotFoundError):
        record_correction(store, "missing", "text")
    assert store.feedback_for_conversation("c1") == [] and store.verified_answers(live=None) == []


# ------------------------------------------------------------------------------- matching


def test_key_terms_and_edits_separate_near_misses() -> None:
    assert key_terms("What does error E4 mean on my Aero 300?")[0] == {"e4", "300"}
    assert not compatible("How do I switch off the child lock?", "How do I switch on the child lock?")
    assert not compatible("Is Sleep mode quiet?", "Is Turbo mode quiet?")
    assert not compatible(
        "How many days do I have to return a purifier bought on your website?",
        "How many days do I have to return a purifier bought at a store?",
    )
    assert compatible("What does shipping to Canada cost?", "How much is shipping to Canada?")


def fake_embed(table: dict[str, list[float]]):  # type: ignore[no-untyped-def]
    def embed(texts: list[str]) -> np.ndarray:
        rows = np.asarray([table[t] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    return embed


def test_index_matches_above_the_threshold_only(store: LogStore) -> None:
    stored = "What does shipping to Canada cost?"
    store.add_verified_answer(stored, "Shipping to Canada is $25.")
    close, far = "How much is shipping to Canada?", "Do you ship to Canada at all?"
    embed = fake_embed({stored: [1.0, 0.0], close: [1.0, 0.3], far: [1.0, 1.0]})
    index = VerifiedIndex(store, embed)
    match = index.match(close)
    assert match is not None and match.answer.question == stored and match.similarity >= MIN_SIMILARITY
    assert index.match(far) is None  # cosine 0.71
    assert index.match("  what does SHIPPING to canada cost? ").similarity == 1.0  # type: ignore[union-attr]
    assert VerifiedIndex(store, None).match(close) is None  # no embeddings: the same question only


# ------------------------------------------------------------------------------- serving


def test_the_next_same_question_gets_the_correction_verbatim_without_the_model(make_agent) -> None:  # type: ignore[no-untyped-def]
    generator = CountingGenerator(["The warranty lasts 2 years. [1]"])
    agent = make_agent(generator)
    first = agent.reply("a", "How long is the warranty?")
    assert generator.calls == 1
    record_correction(agent.store, first.turn_id, CORRECTED, reviewer="ann")

    reply = agent.reply("b", "how long is the  warranty?")
    assert generator.calls == 1  # no model call
    assert reply.text == CORRECTED
    (citation,) = reply.citations
    assert citation.source == SOURCE and citation.doc_id.startswith("verified:")
    assert reply.grounding == {
        "passed": True,
        "action": "sent",
        "checked": False,
        "unsupported": [],
        "dropped_tail": False,
        "source": "verified",
    }
    turn = agent.store.get_turn(reply.turn_id)
    assert turn.text == CORRECTED and turn.model_version is None and turn.citations[0].source == SOURCE
    assert turn.metadata["verified"]["similarity"] == 1.0
    (live,) = agent.store.verified_answers()
    assert live.hits == 1

    agent.reply("c", "Which filter does the Aero take?")  # another question: the model answers
    assert generator.calls == 2


def test_a_retired_shortcut_is_no_longer_served(make_agent) -> None:  # type: ignore[no-untyped-def]
    generator = CountingGenerator(["The warranty lasts 2 years. [1]", "The warranty lasts 2 years. [1]"])
    agent = make_agent(generator)
    first = agent.reply("a", "How long is the warranty?")
    _, answer = record_correction(agent.store, first.turn_id, CORRECTED)
    agent.store.retire_verified_answer(str(answer.id), "the model answers it")
    assert agent.reply("b", "How long is the warranty?").text != CORRECTED
    assert generator.calls == 2


# ------------------------------------------------------------------------------- the command line


def test_logs_correct_shortcuts_and_retire_from_the_command_line(home: Path) -> None:
    with LogStore(home=home) as store:
        turn_id = answered_turn(store)
    runner = CliRunner()
    result = runner.invoke(cli, ["logs", "correct", turn_id, "--text", CORRECTED, "--json"])
    assert result.exit_code == 0, result.output
    answer_id = json.loads(result.output)["verified"]["id"]
    listed = json.loads(runner.invoke(cli, ["logs", "shortcuts", "--json"]).output)
    assert [(r["id"], r["question"], r["hits"]) for r in listed] == [
        (answer_id, "How long is the warranty?", 0)
    ]
    result = runner.invoke(cli, ["logs", "retire", answer_id, "--reason", "model learnt it"])
    assert result.exit_code == 0 and "retired" in result.output
    assert json.loads(runner.invoke(cli, ["logs", "shortcuts", "--json"]).output) == []


@pytest.mark.parametrize(
    "args",
    [["logs", "correct", "bad id!", "--text", "x"], ["logs", "correct", "t1", "--text", "  "]],
)
def test_logs_correct_refuses_bad_input_before_writing(home: Path, args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    with LogStore(home=home) as store:
        assert store.verified_answers(live=None) == []


# ------------------------------------------------------------------------------- calibration


@pytest.mark.slow
def test_calibrated_threshold_keeps_precision_on_paraphrases_and_near_misses(home: Path) -> None:
    """The labelled set: paraphrases (same answer) and near-misses (look alike, other answer) of
    the sample company's questions. Precision >= 0.95 is the requirement; recall is recorded."""
    from knowledge import load_embeddings

    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 80 and sum(r["same_answer"] for r in rows) * 2 == len(rows)
    embeddings = load_embeddings(None)
    predicted = []
    with LogStore(home=home) as store:
        for number, row in enumerate(rows):
            for answer in store.verified_answers():
                store.retire_verified_answer(str(answer.id), "next pair")
            store.add_verified_answer(row["question"], f"answer {number}")
            index = VerifiedIndex(store, lambda texts: embeddings.encode(texts))
            predicted.append(index.match(row["other"]) is not None)
    truth = [r["same_answer"] for r in rows]
    tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
    precision = tp / max(sum(predicted), 1)
    recall = tp / sum(truth)
    assert precision >= 0.95, (precision, recall)
    assert recall >= 0.55, (precision, recall)  # measured: precision 1.00, recall 0.59 at 0.80
