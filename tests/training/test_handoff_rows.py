"""Hand-off outcomes as training signal: a person's answer after a hand-off is an SFT target,
and an answer a reviewer marked "should have handed off" becomes a hand-off example; both
through ``data compile``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.config import Persona
from agent.feedback_reasons import SHOULD_HAND_OFF
from agent.store import LogStore
from training.data import compile_dataset, load_rows
from training.data.rows import handoff_text

PERSONA = Persona(company="Aerly")
HUMAN_ANSWER = "I've refunded the duplicate charge of $49; it shows in 3-5 business days."


def handed_off(store: LogStore, cid: str = "handed") -> None:
    """Customer -> the agent's hand-off note -> a person's answer; nobody reviewed it."""
    store.ensure_conversation(cid)
    store.add_turn(cid, "customer", "I was charged twice for my filter order.")
    note = store.add_turn(cid, "agent", "I've asked a member of the support team to join.")
    store.escalate(cid, "customer_request", turn_id=str(note.id))
    store.add_feedback(str(note.id), thumbs=-1)  # the customer's thumbs, unreviewed
    store.add_turn(cid, "human", HUMAN_ANSWER, author="kim")


def answered(store: LogStore, cid: str, label: str, correction: str | None = None) -> None:
    store.ensure_conversation(cid)
    store.add_turn(cid, "customer", "My purifier smells of burning plastic, is it safe?")
    turn = store.add_turn(cid, "agent", "That is normal for new filters, keep using it.")
    store.add_feedback(str(turn.id), labels=[label], reviewer="kim", correction=correction)


def completions(rows: list[dict]) -> list[str]:
    return [row["completion"][-1]["content"] for row in rows]


def test_a_human_answer_after_a_hand_off_becomes_an_sft_target(store_url: str) -> None:
    with LogStore(store_url) as store:
        handed_off(store)
        dataset = compile_dataset([], store=store, persona=PERSONA, val_fraction=0.0)
    (row,) = dataset.sft_train
    assert row["completion"][-1]["content"] == HUMAN_ANSWER
    assert row["prompt"][-1]["content"].endswith("Customer: I was charged twice for my filter order.")
    # The agent's note is not a target, and unreviewed customer thumbs give no KTO row.
    assert dataset.kto_train == [] and dataset.pref_train == []
    assert dataset.manifest["hand_off"] == {"human_answers": 1, "should_have_handed_off": 0}


@pytest.mark.parametrize("label", [SHOULD_HAND_OFF, "should_handoff", "Should have escalated"])
def test_should_have_handed_off_becomes_a_hand_off_example(store_url: str, label: str) -> None:
    with LogStore(store_url) as store:
        answered(store, "burning", label)
        dataset = compile_dataset([], store=store, persona=PERSONA, val_fraction=0.0)
    handoff = handoff_text(PERSONA)
    assert "Aerly support team" in handoff
    assert completions(dataset.sft_train) == [handoff]
    (pair,) = dataset.pref_train
    assert pair["chosen"][-1]["content"] == handoff
    assert pair["rejected"][-1]["content"] == "That is normal for new filters, keep using it."
    assert dataset.manifest["hand_off"]["should_have_handed_off"] == 1
    assert dataset.manifest["answers_not_used_for_sft"] == 0


def test_a_correction_wins_over_the_hand_off_label(store_url: str) -> None:
    fixed = "Unplug it now and contact us: a burning smell is never normal."
    with LogStore(store_url) as store:
        answered(store, "burning", SHOULD_HAND_OFF, correction=fixed)
        dataset = compile_dataset([], store=store, persona=PERSONA, val_fraction=0.0)
    assert completions(dataset.sft_train) == [fixed]
    assert dataset.manifest["hand_off"]["should_have_handed_off"] == 0


def test_data_compile_from_logs_carries_both_signals(home: Path, tmp_path: Path) -> None:
    with LogStore(home=home) as store:
        handed_off(store)
        answered(store, "burning", SHOULD_HAND_OFF)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["data", "compile", "--from-logs", "--out", str(out), "--val-fraction", "0", "--json"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output.strip().splitlines()[-1])
    assert manifest["hand_off"] == {"human_answers": 1, "should_have_handed_off": 1}
    targets = completions(load_rows(out / "sft_train.jsonl"))
    assert HUMAN_ANSWER in targets
    assert any("support team" in t and "join" in t for t in targets)
