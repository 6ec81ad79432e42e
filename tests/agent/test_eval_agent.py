"""`supportloop eval agent`: behaviour labels, the summary's arithmetic, balanced subsets, bad
input, and a run over a real MiniLM index and a real store with a scripted generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import DataError
from agent.evaluate import (
    EvalCase,
    EvalReport,
    EvalResult,
    balanced_subset,
    behaviour,
    eval_agent_on_files,
    read_cases,
)
from agent.generator import ScriptedGenerator


def case(label: str, gold: tuple[str, ...] = (), cid: str = "c") -> EvalCase:
    return EvalCase(cid, [], "q?", label, gold)


def test_behaviour_labels_on_hand_checked_answers() -> None:
    assert behaviour("The fee is $25 [1].", escalated=False, refused=False) == "answer"
    assert behaviour("I don't know that, sorry.", escalated=False, refused=False) == "decline"
    assert behaviour("The fee is $25.", escalated=True, refused=False) == "decline"
    assert behaviour("Could you clarify which account you mean?", escalated=False, refused=False) == "clarify"
    assert (
        behaviour("Which one do you have, the Aero or the Aero Max?", escalated=False, refused=False)
        == "clarify"
    )


def test_summary_rates_and_citation_accuracy() -> None:
    report = EvalReport(
        [
            EvalResult(case("ANSWERABLE", ("a", "b")), "answer", cited=("a", "x")),  # half right
            EvalResult(case("ANSWERABLE", ("a",)), "answer", cited=("a",)),  # right
            EvalResult(case("ANSWERABLE", ("a",)), "decline"),
            EvalResult(case("UNANSWERABLE"), "decline"),
            EvalResult(case("UNDERSPECIFIED"), "answer"),
            EvalResult(case("PARTIAL", ("c",)), "answer"),  # answered without citing: not counted
        ]
    )
    s = report.summary()
    assert s["conversations"] == 6
    assert s["answerable_n"] == 3 and s["answerable_answer_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["unanswerable_decline_rate"] == 1.0 and s["underspecified_clarify_rate"] == 0.0
    assert s["partial_answer_rate"] == 1.0
    assert s["behaviour_accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert s["citation_accuracy"] == 0.75 and s["cited_answers"] == 2


def test_balanced_subset_covers_every_label_in_file_order() -> None:
    cases = [case("ANSWERABLE", cid=f"a{i}") for i in range(10)] + [
        case("UNANSWERABLE", cid="u0"),
        case("UNDERSPECIFIED", cid="s0"),
        case("UNDERSPECIFIED", cid="s1"),
    ]
    picked = balanced_subset(cases, 5)
    assert [c.id for c in picked] == ["a0", "a1", "u0", "s0", "s1"]
    assert balanced_subset(cases, None) == cases and balanced_subset(cases, 99) == cases


def test_malformed_conversations_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = {"turns": [{"role": "customer", "text": "hi"}], "answerability": "ANSWERABLE"}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "answerability": "MAYBE"}) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl.*2|2.*bad\.jsonl"):
        read_cases(bad)


def test_eval_agent_runs_the_real_pipeline_and_scores_what_it_did(home: Path, tmp_path: Path) -> None:
    """A real MiniLM index over the conversations' contexts and a real store; the generator is
    scripted so that what the agent says, and thus every rate, is known in advance."""
    rows = [
        {
            "id": "t1",
            "turns": [{"role": "customer", "text": "How long does the Aero warranty last?"}],
            "contexts": [{"doc_id": "warranty", "text": "The Aero warranty lasts 2 years from delivery."}],
            "answerability": "ANSWERABLE",
        },
        {
            "id": "t2",
            "turns": [{"role": "customer", "text": "How often should I replace the Aero HEPA filter?"}],
            "contexts": [{"doc_id": "filters", "text": "Replace the Aero HEPA filter every 6 months."}],
            "answerability": "ANSWERABLE",
        },
        {
            "id": "t3",
            "turns": [{"role": "customer", "text": "Can I pay for my order with Bitcoin?"}],
            "contexts": [],
            "answerability": "UNANSWERABLE",
        },
    ]
    conversations = tmp_path / "conversations.jsonl"
    conversations.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = load_config()
    config.escalation.min_relevance = 0.0  # every question reaches the generator
    generator = ScriptedGenerator(
        [
            "The Aero warranty lasts 2 years from delivery [1].",
            "Could you clarify which Aero model you have?",
            "I don't know whether we take Bitcoin.",
        ]
    )
    report = eval_agent_on_files(config, conversations, conversations, generator=generator, progress=False)
    s = report.summary()
    assert [r.behaviour for r in report.results] == ["answer", "clarify", "decline"]
    assert report.results[0].cited == ("warranty",)
    assert s["answerable_answer_rate"] == 0.5 and s["unanswerable_decline_rate"] == 1.0
    assert s["citation_accuracy"] == 1.0 and s["behaviour_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert len(generator.prompts) == 3 and "2 years" in json.dumps(generator.prompts[0])
