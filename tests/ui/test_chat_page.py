"""The customer chat page, driven by AppTest with the demo agent (no model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.errors import GenerationError
from agent.generator import ScriptedGenerator
from tests.ui.conftest import open_app, texts

QUESTION = "How do I reset the filter timer?"
ANSWER = "Press and hold the Filter button for 5 seconds until the icon blinks twice. [1]"


def ask(at: Any, text: str) -> Any:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception
    return at


def conversation_of(at: Any) -> str:
    from ui.chat import conversation_for

    return conversation_for(at.query_params["c"])


def test_chat_turn_appears_with_its_source(agent: Any) -> None:
    agent.generator.enqueue(ANSWER)
    at = ask(open_app(), QUESTION)

    bubbles = [(m.name, " ".join(str(md.value) for md in m.markdown)) for m in at.chat_message]
    assert bubbles[0] == ("user", QUESTION)
    assert bubbles[1][0] == "assistant" and ANSWER in bubbles[1][1]
    assert any(e.label == "Source" for e in at.expander)
    turns = agent.store.turns(conversation_of(at))
    assert [t.role for t in turns] == ["customer", "agent"]
    assert turns[1].citations and turns[1].citations[0].index == 1


def test_reload_restores_the_conversation_from_the_url(agent: Any) -> None:
    agent.generator.enqueue(ANSWER)
    first = ask(open_app(), QUESTION)
    token, cid = first.query_params["c"], conversation_of(first)
    assert len(token) >= 32 and token not in cid  # the URL carries a token, not the id

    reloaded = open_app(query={"c": token})  # a new session: only the URL survives
    shown = texts(reloaded)
    assert QUESTION in shown and ANSWER in shown
    assert conversation_of(reloaded) == cid

    by_id = open_app(query={"c": cid})  # knowing the id is not enough to open the chat
    assert QUESTION not in texts(by_id) and conversation_of(by_id) != cid


def test_thumbs_and_stars_are_stored(agent: Any) -> None:
    agent.generator.enqueue(ANSWER)
    at = ask(open_app(), QUESTION)
    turn_id = agent.store.turns(conversation_of(at))[1].id

    thumbs, stars = at.feedback[0], at.feedback[1]
    thumbs.set_value(0).run()  # thumbs down
    stars.set_value(3).run()  # four stars
    stored = agent.store.feedback_for_turn(turn_id)
    assert [(f.thumbs, f.rating, f.reviewer) for f in stored] == [(-1, None, None), (None, 4, None)]
    assert "Thanks for the feedback!" in texts(at)


@pytest.mark.parametrize(
    ("message", "expected"), [("   ", "Please type a message"), ("x" * 2500, "the limit is 2,000")]
)
def test_empty_and_oversize_messages_get_a_clear_message(agent: Any, message: str, expected: str) -> None:
    at = ask(open_app(), message)
    assert any(expected in w.value for w in at.warning), texts(at)
    assert agent.store.counts()["turns"] == 0  # nothing was logged


class FailingGenerator(ScriptedGenerator):
    def stream(self, messages: Any, options: Any, cancel: Any = None) -> Iterator[str]:
        yield "Let me"
        raise GenerationError("the model backend stopped responding")


def test_a_failing_turn_says_so(agent: Any) -> None:
    agent.generator = FailingGenerator()
    at = ask(open_app(), QUESTION)
    errors = " ".join(e.value for e in at.error)
    assert "couldn't finish that answer" in errors and "stopped responding" in errors
    roles = [t.role for t in agent.store.turns(conversation_of(at))]
    assert roles == ["customer", "system"]  # the message is kept; the failure is noted, not shown


def test_talk_to_a_person_then_the_reply_appears_marked_as_a_person(agent: Any) -> None:
    at = open_app()
    next(b for b in at.button if b.label == "Talk to a person").click().run()
    cid = conversation_of(at)
    assert agent.store.get_conversation(cid).status == "escalated"
    shown = texts(at)
    assert "reply right here" in shown  # the hand-off message, once
    assert [i.value for i in at.info if "What happens next" in i.value] and len(at.info) == 1
    assert "will reply here" not in shown and "No one from the team is online right now" in shown

    agent.human_reply(cid, "Hi, I'm Sam from the support team. Let's sort this out.", author="sam")
    at.run()  # what the page's 2-second poll does
    person = [m for m in at.chat_message if m.name == "human"]
    assert len(person) == 1
    shown = " ".join(str(md.value) for md in person[0].markdown)
    assert "Let's sort this out" in shown and "a person" in shown and "sam" in shown


def test_csat_question_when_the_conversation_ends(agent: Any) -> None:
    agent.generator.enqueue(ANSWER)
    at = ask(open_app(), QUESTION)
    next(b for b in at.button if b.label == "End chat").click().run()
    assert "How satisfied are you" in texts(at)

    at.feedback[-1].set_value(4).run()  # five stars
    csat = [f for f in agent.store.feedback_for_conversation(conversation_of(at)) if f.comment == "CSAT"]
    assert [f.rating for f in csat] == [5]
    assert "Thanks for rating" in texts(at)


def test_the_agent_is_built_once_per_process_not_per_rerun(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.runtime import Agent
    from ui import services

    monkeypatch.setenv("SUPPORTLOOP_UI_FAKE_MODEL", "1")
    monkeypatch.setenv("SUPPORTLOOP_UI_FAKE_DELAY", "0")
    built: list[Agent] = []
    original = Agent.__init__

    def counting(self: Agent, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Agent, "__init__", counting)
    services._build_agent.clear()
    try:
        at = ask(open_app(), QUESTION)
        for _ in range(3):
            at.run()
        ask(open_app(), "What does a red light mean?")  # another session, same process
        assert len(built) == 1
        assert built[0].config.home == home
    finally:
        services._build_agent.clear()
