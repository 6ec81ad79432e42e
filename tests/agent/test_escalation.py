"""Handoff detection measured on the shipped labelled questions (25 requests for a person,
65 ordinary questions, many of which mention people, agents or managers)."""

import json

from agent.escalation import low_confidence, unhelpful_streak, wants_human
from agent.knowledge import SAMPLE_DIR


def _labelled() -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in (SAMPLE_DIR / "questions.jsonl").read_text().splitlines() if line]
    wanted = [r["question"] for r in rows if r.get("expect") == "escalate"]
    ordinary = [r["question"] for r in rows if r.get("expect") != "escalate"]
    return wanted, ordinary


def test_handoff_precision_and_recall_at_least_0_9() -> None:
    wanted, ordinary = _labelled()
    assert len(wanted) >= 20 and len(ordinary) >= 20
    true_pos = sum(wants_human(q) for q in wanted)
    false_pos = sum(wants_human(q) for q in ordinary)
    precision = true_pos / max(1, true_pos + false_pos)
    recall = true_pos / len(wanted)
    print(
        f"handoff detection: precision={precision:.3f} recall={recall:.3f} (n={len(wanted)}+{len(ordinary)})"
    )
    assert precision >= 0.9 and recall >= 0.9


def test_phrasings_not_in_the_sample() -> None:
    assert wants_human("Can I get someone on the phone?")
    assert wants_human("I'd like to talk with a real human being")
    assert wants_human("stop the bot")
    assert not wants_human("Is the purifier safe for a person with asthma?")
    assert not wants_human("How many people can share one Halcyon account?")
    assert not wants_human("What does the 'agent' setting in the app do?")
    # A question about the hours of the people, not a request to be handed over now.
    assert not wants_human("what time does live chat with a real person open on saturdays?")
    assert not wants_human("When does the support team open on Monday?")
    assert wants_human("What time does phone support open? I need to speak to someone now")
    assert wants_human("Can I talk to a real person now?")


def test_low_confidence_and_unhelpful_streak() -> None:
    assert low_confidence(None, 0.3) and low_confidence(0.1, 0.3) and not low_confidence(0.5, 0.3)
    assert unhelpful_streak([False, True, True], 2)
    assert not unhelpful_streak([True, False], 2)
    assert not unhelpful_streak([True, True], 0)
