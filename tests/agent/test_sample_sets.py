"""The sample's question sets: the held-out test set, the dev set the answer check was tuned on and
the fresh sets written after both stay apart from each other and from the training conversations,
and every key fact is real."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks.common import FOCUSED_SETS, QUESTION_SETS

SAMPLE = Path(__file__).resolve().parents[2] / "agent" / "sample"
KINDS = {"answerable", "unanswerable", "followup", "ambiguous"}


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (SAMPLE / name).read_text(encoding="utf-8").splitlines() if line]


def normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


@pytest.mark.parametrize("name", [*QUESTION_SETS, *FOCUSED_SETS])
def test_every_key_fact_is_on_its_gold_pages(name: str) -> None:
    for row in rows(name):
        assert row["kind"] in KINDS, row["id"]
        assert bool(row["answer_contains"]) is (row["kind"] != "unanswerable"), row["id"]
        for fact in row["answer_contains"]:
            for page in row["gold_doc_ids"]:
                text = (SAMPLE / "docs" / f"{page}.md").read_text(encoding="utf-8").lower().replace("**", "")
                assert fact in text, f"{row['id']}: {fact!r} not on {page}"
        assert set(row.get("changed") or []) <= set(row["answer_contains"]), row["id"]


def test_the_question_sets_are_apart_from_each_other_and_from_training() -> None:
    dev = {normal(r["question"]) for r in rows("dev.jsonl")}
    held_out = {normal(r["question"]) for r in rows("heldout.jsonl")}
    fresh = {normal(r["question"]) for r in rows("fresh.jsonl")}
    trained = {
        normal(t["text"]) for c in rows("conversations.jsonl") for t in c["turns"] if t["role"] == "customer"
    }
    assert len(dev) == len(rows("dev.jsonl")) and len(held_out) == len(rows("heldout.jsonl"))
    assert len(fresh) == len(rows("fresh.jsonl")) == 90
    assert not dev & held_out and not fresh & (dev | held_out)
    assert not (dev | held_out | fresh) & trained
    ambiguous = {normal(r["question"]) for r in rows("ambiguous.jsonl")}
    assert len(ambiguous) == len(rows("ambiguous.jsonl")) and not ambiguous & (
        dev | held_out | fresh | trained
    )
    fresh2 = {normal(r["question"]) for r in rows("fresh2.jsonl")}
    assert len(fresh2) == len(rows("fresh2.jsonl")) == 40
    assert not fresh2 & (dev | held_out | fresh | ambiguous | trained)
    fresh3 = {normal(r["question"]) for r in rows("fresh3.jsonl")}
    assert len(fresh3) == len(rows("fresh3.jsonl")) == 40
    assert not fresh3 & (dev | held_out | fresh | fresh2 | ambiguous | trained)
    fresh4 = {normal(r["question"]) for r in rows("fresh4.jsonl")}
    assert len(fresh4) == len(rows("fresh4.jsonl")) == 40
    assert not fresh4 & (dev | held_out | fresh | fresh2 | fresh3 | ambiguous | trained)
    fresh5 = {normal(r["question"]) for r in rows("fresh5.jsonl")}
    assert len(fresh5) == len(rows("fresh5.jsonl")) == 40
    assert not fresh5 & (dev | held_out | fresh | fresh2 | fresh3 | fresh4 | ambiguous | trained)
    fresh6 = {normal(r["question"]) for r in rows("fresh6.jsonl")}
    assert len(fresh6) == len(rows("fresh6.jsonl")) == 40
    assert not fresh6 & (dev | held_out | fresh | fresh2 | fresh3 | fresh4 | fresh5 | ambiguous | trained)
    lists = {normal(r["question"]) for r in rows("lists.jsonl")}
    assert len(lists) == len(rows("lists.jsonl")) == 20
    assert not lists & (dev | held_out | fresh | fresh2 | fresh3 | fresh4 | ambiguous | trained)
    lists2 = {normal(r["question"]) for r in rows("lists2.jsonl")}
    assert len(lists2) == len(rows("lists2.jsonl")) == 20
    assert not lists2 & (dev | held_out | fresh | fresh2 | fresh3 | fresh4 | ambiguous | lists | trained)
    lists3 = {normal(r["question"]) for r in rows("lists3.jsonl")}
    assert len(lists3) == len(rows("lists3.jsonl")) == 20
    assert not lists3 & (
        dev | held_out | fresh | fresh2 | fresh3 | fresh4 | ambiguous | lists | lists2 | trained
    )


@pytest.mark.parametrize("name", [n for n in FOCUSED_SETS if n.startswith("askback")])
def test_each_askback_row_opens_with_a_message_the_agent_asks_back(name: str) -> None:
    """The row's first two turns are what the agent does: the opening points at a thing it never
    names, and the agent's turn is its question back; the key fact is in none of the turns."""
    from agent.referents import ask_text, unnamed

    for row in rows(name):
        opening, back = (t["text"] for t in row["history"])
        thing = unnamed(opening, [], ("Halcyon Aero air purifier", "Halcyon Home"))
        assert thing is not None and back == ask_text(thing), row["id"]
        said = normal(" ".join([opening, back, row["question"]]))
        assert not any(normal(fact) in said for fact in row["answer_contains"]), row["id"]


def test_the_ambiguous_set_names_no_model_where_the_answer_depends_on_it() -> None:
    from agent.which import named

    for row in rows("ambiguous.jsonl"):
        said = [row["question"], *(t["text"] for t in row["history"] if t["role"] == "customer")]
        # An ambiguous question names neither model and its key facts are one per model; a
        # follow-up's conversation has named the one it is about.
        assert bool(any(named(t, ("Aero 300", "Aero 500")) for t in said)) is (row["kind"] == "followup"), (
            row["id"]
        )
        assert row["kind"] == "followup" or len(row["answer_contains"]) == 2, row["id"]
