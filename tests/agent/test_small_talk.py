"""Small talk gets a short on-brand answer without retrieval or a hand-off; everything else
(questions, problems wrapped in a greeting, requests for a person) goes on as before. Measured on
a labelled set: precision and recall of ``guardrails.small_talk``."""

from __future__ import annotations

import json

from agent.guardrails import small_talk
from agent.knowledge import SAMPLE_DIR
from agent.runtime import HANDOFF

NAMES = ("Aria", "Halcyon Home")

SMALL_TALK = [
    "Hello",
    "hello!",
    "hi",
    "Hi there",
    "hey",
    "Hey there!",
    "hiya",
    "good morning",
    "Good afternoon :)",
    "good evening",
    "Hello? Is anyone there?",
    "howdy",
    "hey 👋",
    "Hi Aria",
    "how are you",
    "How are you doing today?",
    "hi, how are you?",
    "how's it going?",
    "what's up",
    "thanks",
    "Thank you!",
    "thank you so much",
    "thanks a lot",
    "Thanks Aria!",
    "thx",
    "thank you for your help",
    "thanks again",
    "cheers",
    "much appreciated",
    "that was very helpful",
    "thanks, that was helpful!",
    "ok thanks",
    "great, thank you!",
    "perfect, thanks",
    "bye",
    "goodbye",
    "Bye now!",
    "see you later",
    "have a nice day",
    "thanks, bye!",
    "that's all, thanks",
    "ok bye",
    "take care",
    "good night",
    "are you a bot?",
    "Are you a robot?",
    "am I talking to a real person?",
    "is this an AI?",
    "are you human?",
    "who are you?",
    "are you real?",
    "is this automated?",
    "ok",
    "okay",
    "cool",
    "got it",
    "sounds good",
    "great!",
]
QUESTIONS = [
    "hi, my filter light is red",
    "thanks but it still doesn't work",
    "Hello, how do I replace the filter?",
    "hey, what does error E3 mean?",
    "thanks, and how long is the warranty?",
    "ok, and what about the Wi-Fi setup?",
    "good morning, my purifier makes a loud noise",
    "How are you supposed to clean the pre-filter?",
    "How do I reset the purifier?",
    "Is the filter washable?",
    "hi I need help",
    "hello, my order hasn't arrived",
    "thank you, can I return it within 30 days?",
    "bye the way, does it work with Alexa?",
    "Are you able to change my delivery address?",
    "Is this filter compatible with the Aero?",
    "What are you able to help with regarding refunds?",
    "great, so how often should I change it?",
    "history of my orders",
    "hi, the app says offline",
    "the light is blinking, thanks",
    "cool, where do I buy filters?",
    "ok but the fan is still loud",
    "Good evening, I was charged twice",
    "morning! my unit won't turn on",
    "sure, my serial number is HA-12345",
    "who are you shipping with?",
    "how are you handling returns during the holidays?",
    "What's up with the red light?",
    "are you open on Sundays?",
]
HANDOFFS = [
    "I want to speak to a human",
    "hi, can I talk to a real person?",
    "thanks, but please get me a manager",
    "hello, connect me with an agent",
    "stop the bot",
]


def test_small_talk_precision_and_recall() -> None:
    labelled = [(m, True) for m in SMALL_TALK] + [(m, False) for m in QUESTIONS + HANDOFFS]
    assert len(labelled) >= 80
    found = [(m, small_talk(m, NAMES) is not None, wanted) for m, wanted in labelled]
    true_pos = sum(got and wanted for _, got, wanted in found)
    false_pos = [m for m, got, wanted in found if got and not wanted]
    missed = [m for m, got, wanted in found if wanted and not got]
    precision = true_pos / max(1, true_pos + len(false_pos))
    recall = true_pos / len(SMALL_TALK)
    print(
        f"small talk: precision={precision:.3f} recall={recall:.3f} (n={len(SMALL_TALK)}+{len(labelled) - len(SMALL_TALK)})"
    )
    assert precision >= 0.95, false_pos
    assert recall >= 0.9, missed


def test_kinds() -> None:
    assert small_talk("Hello", NAMES) == "greeting"
    assert small_talk("how are you?", NAMES) == "how_are_you"
    assert small_talk("thanks!", NAMES) == "thanks"
    assert small_talk("thanks, bye", NAMES) == "goodbye"
    assert small_talk("are you a bot?", NAMES) == "bot"
    assert small_talk("", NAMES) is None and small_talk("hi " * 40, NAMES) is None


def test_no_shipped_question_or_handoff_request_is_small_talk() -> None:
    rows = [json.loads(line) for line in (SAMPLE_DIR / "questions.jsonl").read_text().splitlines() if line]
    assert len(rows) >= 80
    assert [r["question"] for r in rows if small_talk(r["question"], NAMES)] == []


def test_hello_is_answered_on_brand_without_retrieval_or_handoff(make_agent) -> None:
    agent = make_agent()
    reply = agent.reply("st-1", "Hello")
    assert not reply.escalated and not reply.refused
    persona = agent.config.persona
    assert persona.agent_name in reply.text and persona.company in reply.text
    assert agent.knowledge.queries == [] and agent.generator.prompts == []
    assert reply.grounding == {**reply.grounding, "passed": True, "checked": False}
    assert "action" in reply.grounding
    turn = agent.store.get_turn(reply.turn_id)
    assert turn.metadata["small_talk"] == "greeting" and turn.metadata["grounding"]["checked"] is False
    assert agent.store.get_conversation("st-1").status != "escalated"


def test_a_greeting_with_a_question_and_a_request_for_a_person_go_on_as_before(make_agent) -> None:
    agent = make_agent()
    agent.generator.enqueue("Replace the HEPA filter every 6 months [1].")
    assert "6 months" in agent.reply("st-2", "Hi, how often do I replace the HEPA filter?").text
    assert agent.knowledge.queries
    handoff = agent.reply("st-3", "hi, can I talk to a real person?")
    assert handoff.escalation_reason == "customer_request"
    assert handoff.text == HANDOFF["customer_request"].format(company=agent.config.persona.company)


def test_names_come_from_the_config(make_agent) -> None:
    agent = make_agent(persona__agent_name="Max", persona__company="Acme")
    text = agent.reply("st-4", "are you a bot?").text
    assert "Max" in text and "Acme" in text and "Aria" not in text
