"""Thumbs-down reasons route (``agent.store.reasons``): counted per reason, a wrong answer waits for
a correction, a docs gap lists the question with what was retrieved, personal data redacts the
turn in the store and keeps its conversation out of ``data compile``."""

from __future__ import annotations

import pytest

from agent.errors import InputError
from agent.store.reasons import REDACTED
from agent.verified import record_correction


def test_reasons_are_counted_and_listed_with_their_question(make_agent) -> None:  # type: ignore[no-untyped-def]
    agent = make_agent()
    wrong = agent.reply("w", "How long is the warranty?")
    gap = agent.reply("g", "How often should I replace the HEPA filter?")
    agent.feedback(wrong.turn_id, thumbs=-1, reason="wrong")
    agent.feedback(gap.turn_id, thumbs=-1, reason="docs_gap")
    counts = agent.store.reason_counts()
    assert counts["wrong"] == 1 and counts["docs_gap"] == 1 and counts["tone"] == 0
    (item,) = agent.store.reason_items("wrong")
    assert item.question == "How long is the warranty?" and not item.corrected
    record_correction(agent.store, wrong.turn_id, "Three years.", reviewer="ann")
    assert agent.store.reason_items("wrong")[0].corrected
    (task,) = agent.store.reason_items("docs_gap")
    assert task.question.startswith("How often") and task.turn.retrieved  # what was retrieved


def test_an_unknown_reason_is_refused_and_nothing_is_written(make_agent) -> None:  # type: ignore[no-untyped-def]
    agent = make_agent()
    reply = agent.reply("x", "How long is the warranty?")
    with pytest.raises(InputError, match="unknown thumbs-down reason"):
        agent.feedback(reply.turn_id, thumbs=-1, reason="boring")
    assert agent.store.feedback_for_turn(reply.turn_id) == []


def test_personal_data_redacts_the_turn_and_keeps_it_out_of_training(make_agent) -> None:  # type: ignore[no-untyped-def]
    from training.data.readers import from_store

    agent = make_agent()
    kept = agent.reply("kept", "How long is the warranty?")
    agent.feedback(kept.turn_id, rating=5, reviewer="ann", mark_for_training=True)
    leaked = agent.reply("leaked", "My card is 4111 1111 1111 1111, how long is the warranty?")
    agent.feedback(leaked.turn_id, rating=5, reviewer="ann", mark_for_training=True)
    agent.feedback(leaked.turn_id, thumbs=-1, reason="personal_data")
    turn = agent.store.get_turn(leaked.turn_id)
    assert turn.text == REDACTED and turn.metadata["redacted"] is True
    assert [c.id for c in from_store(agent.store)] == ["kept"]
