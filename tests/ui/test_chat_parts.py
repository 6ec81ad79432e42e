"""The chat's pure parts, the reply worker, the branding settings and the team-online count."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from agent.config import load_config
from agent.errors import ConfigError, InputError
from agent.generator import ScriptedGenerator
from agent.types import Citation, Turn
from tests.ui.conftest import PASSWORD, open_app, texts
from ui.chat import conversation_for, cut_short, numbering, renumber, snippet, source_rows, wait_text
from ui.replies import ReplyWorker


def test_snippets_end_at_a_sentence_and_never_mid_word() -> None:
    text = (
        "1. Unplug the purifier.\n2. Turn it over, and lift it off.\n| a | table |\n"
        + "More words here. " * 40
    )
    cut = snippet(text, limit=80)
    assert cut == "Unplug the purifier. Turn it over, and lift it off. More words here."
    long = snippet("word " * 100, limit=30)
    assert long.endswith("…") and len(long) <= 31 and "wor…" not in long


def test_sources_are_numbered_from_one_with_titles_and_links() -> None:
    citations = (Citation("warranty", "warranty.md", "…", index=2, score=0.9),)
    passages = [{"title": "Other"}, {"title": "Warranty: Coverage", "text": "Two years. Parts included."}]
    turn = Turn("agent", "Covered for two years [2].", citations=citations, metadata={"passages": passages})
    branding = load_config(env={"SUPPORTLOOP_BRANDING__SOURCE_URL": "https://help.example/{doc_id}"}).branding
    assert source_rows(turn, branding) == [
        (1, "Warranty: Coverage", "Two years. Parts included.", "https://help.example/warranty")
    ]
    assert renumber(turn.text, numbering(citations)) == "Covered for two years [1]."


@pytest.mark.parametrize(
    ("metadata", "tokens", "expected"),
    [
        ({"grounding": {"action": "sent", "dropped_tail": True}}, 30, True),
        ({"grounding": {"action": "extractive", "dropped_tail": True}}, 30, False),
        ({"timed_out": True}, 3, True),
        ({"grounding": {"passed": True, "checked": False}}, 160, True),
        ({"grounding": {"passed": True, "checked": False}}, 20, False),
        ({}, 20, False),
    ],
)
def test_cut_short_answers_are_recognised(metadata: dict[str, Any], tokens: int, expected: bool) -> None:
    turn = Turn("agent", "An answer.", completion_tokens=tokens, metadata=metadata)
    assert cut_short(turn, load_config(env={})) is expected


def test_wait_text_says_what_to_expect() -> None:
    assert "No one from the team is online" in wait_text(0, 3)
    assert wait_text(2, 4.2) == "2 people from the team online now; expected wait: about 4 min."
    assert "within a few minutes" in wait_text(1, None)


def test_the_resume_token_is_not_the_conversation_id() -> None:
    cid = conversation_for("abc")
    assert len(cid) == 32 and "abc" not in cid and cid == conversation_for("abc")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ACCENT_COLOR", "teal", "like #1F5F99"),
        ("ACCENT_COLOR", "'#FFD700'", "contrast of 1.4:1"),
        ("WELCOME", "Hi {name}", "bad placeholder"),
        ("SOURCE_URL", "https://help.example/", "containing {doc_id}"),
    ],
)
def test_bad_branding_is_a_clear_config_error(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load_config(env={f"SUPPORTLOOP_BRANDING__{key}": value})


class GatedGenerator(ScriptedGenerator):
    """Streams its scripted reply only once the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def stream(self, messages: Any, options: Any, cancel: Any = None) -> Iterator[str]:
        self.gate.wait(30)
        yield from super().stream(messages, options, cancel)


def test_a_second_message_is_queued_and_answered_in_order(agent: Any) -> None:
    agent.generator = GatedGenerator()
    agent.generator.enqueue("Hold the Filter button for 5 seconds. [1]")
    agent.generator.enqueue("Blinking red means the filter is at 0%. [1]")
    worker = ReplyWorker(agent)
    worker.submit("c1", "How do I reset the filter timer?")
    for _ in range(200):  # the thread picks the first message up
        if worker.progress("c1").active:
            break
        threading.Event().wait(0.05)
    worker.submit("c1", "What does a red blinking light mean?")
    assert worker.progress("c1").active == "How do I reset the filter timer?"
    assert worker.progress("c1").queued == ("What does a red blinking light mean?",)
    with pytest.raises(InputError, match="limit is 2,000"):
        worker.submit("c1", "x" * 2001)  # refused at once: nothing queued
    agent.generator.gate.set()
    assert worker.wait("c1", 30)
    turns = agent.store.turns("c1")
    assert [t.role for t in turns] == ["customer", "agent", "customer", "agent"]
    assert "Hold the Filter" in turns[1].text and "Blinking red" in turns[3].text
    assert worker.progress("c1").finished == 2 and not worker.progress("c1").busy


def test_an_oversize_message_is_refused_and_nothing_is_logged(agent: Any) -> None:
    """(That the text stays in the box is checked in the browser: AppTest does not keep it.)"""
    at = open_app()
    text = "My purifier " + "x" * 2100
    at.chat_input[0].set_value(text).run()
    assert "the limit is 2,000" in texts(at)
    assert agent.store.counts()["turns"] == 0


def test_a_thumbs_down_reason_is_stored_with_other_text(agent: Any) -> None:
    agent.generator.enqueue("Hold the Filter button for 5 seconds. [1]")
    at = open_app()
    at.chat_input[0].set_value("How do I reset the filter timer?").run()
    at.feedback[0].set_value(0).run()  # thumbs down
    at.button_group[-1].set_value("other").run()  # the reason pills
    at.text_input[0].set_value("It's for the Aero 300").run()
    next(b for b in at.button if b.label == "Send feedback").click().run()
    feedback = agent.store.feedback_for_conversation(at_cid(at))
    assert [(f.thumbs, f.labels, f.comment) for f in feedback][-1] == (
        -1,
        ("reason:other",),
        "It's for the Aero 300",
    )
    assert "Thanks, noted: Other." in texts(at)


def at_cid(at: Any) -> str:
    return conversation_for(at.query_params["c"])


def test_console_users_online_counts_signed_in_people(agent: Any) -> None:
    store = agent.store
    assert store.console_users_online() == 0
    user = store.create_user("riley", PASSWORD, "reviewer")
    token = store.start_console_session(user)
    store.start_console_session(user)  # a second tab
    assert store.console_users_online() == 1
    store.set_user_disabled("riley")
    assert store.console_users_online() == 0
    store.set_user_disabled("riley", False)
    store.end_console_session(token)
    assert store.console_users_online() == 1
