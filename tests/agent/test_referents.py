"""Asking back what "this" is (``agent.referents``): a message that points at a thing it never
names is asked which one, before anything is retrieved: an opening message, or a later one about
something new."""

from __future__ import annotations

import numpy as np
import pytest

from agent.generator import ScriptedGenerator
from agent.referents import LATER_KIND_TOPIC, LATER_TOPIC, ask_text, unnamed

PRODUCT = ("Halcyon Aero air purifier", "Halcyon Home")


@pytest.mark.parametrize(
    ("message", "thing"),
    [
        # MT-RAG's UNDERSPECIFIED opening questions.
        ("What are the services offered by this state library?", "state library"),
        (
            "Does this animal have antlers, a similar body shape, and a coat color similar to caribou?",
            "animal",
        ),
        ("Does this Fast food chain restaurant operate in India?", "Fast food chain restaurant"),
        ("Is this California county recognized for its support to its Veterans?", "California county"),
        ("Hi! Does this filter fit?", "filter"),  # a greeting says nothing to point back at
        ("Can you tell me when these orders ship?", "orders"),
    ],
)
def test_an_opening_message_pointing_at_a_thing_it_never_names_is_asked_which(
    message: str, thing: str
) -> None:
    assert unnamed(message, [], PRODUCT) == thing


@pytest.mark.parametrize(
    "message",
    [
        "Is this purifier covered by the warranty?",  # the persona's product: the customer's own
        "Does this Aero 500 come in white?",  # named
        "Can I get this Echo Dot to control it?",  # named
        "My Aero shows E3. What does this error mean?",  # an earlier sentence it points back at
        "My Aero 300 shows E3, what does this error mean?",  # a name earlier in the sentence
        "Is this covered under warranty?",  # "this" alone, then a verb
        "Can I order a filter this morning and get it Friday?",  # a time
        "Can you deliver this coming Saturday?",
        "Is that normal?",  # "that": too often a conjunction
        "I'd like to talk this through with someone.",  # a particle, and no question
        "My husband says these smart gadgets listen. Is the Aero recording us?",  # not in the asking sentence
        "How do I reset the filter light?",
        "Can you tell me how this app uses my data?",  # the company's own
    ],
)
def test_a_message_that_names_its_thing_or_points_at_none_is_not_asked(message: str) -> None:
    assert unnamed(message, [], PRODUCT) is None


def cosine(value: float):
    """An embedding model under which the message's cosine with every earlier turn is ``value``:
    the first text is the message, the rest are the earlier turns."""

    def embed(texts: list[str]) -> np.ndarray:
        other = [value, (1 - value**2) ** 0.5]
        return np.array([[1.0, 0.0]] + [other] * (len(texts) - 1), dtype=np.float32)

    return embed


def test_a_later_message_is_asked_only_when_it_is_about_something_new() -> None:
    """Later, "this animal" may point back at something said before under another word
    ("caribou"): asked only when the message's meaning is far from every earlier turn's and no
    word of the phrase was said."""
    question = "Does this animal have antlers?"
    earlier = ["Tell me about caribou.", "Caribou live in the Arctic."]
    assert unnamed(question, earlier, PRODUCT) is None  # no embedding model: openings only
    assert unnamed(question, earlier, PRODUCT, cosine(0.5)) is None  # the same topic: points back
    assert unnamed(question, earlier, PRODUCT, cosine(LATER_TOPIC)) is None
    assert unnamed(question, earlier, PRODUCT, cosine(0.05)) == "animal"  # a new topic
    said = ["Which animal has the biggest antlers?", "The moose."]
    assert unnamed(question, said, PRODUCT, cosine(0.05)) is None  # "animal" was said
    assert unnamed(question, ["", " "], PRODUCT) == "animal"  # empty turns say nothing
    assert unnamed("Is this purifier quiet?", earlier, PRODUCT, cosine(0.05)) is None  # the product
    assert (
        ask_text("state library") == "Which state library do you mean? Tell me its name and I'll look it up."
    )


def test_a_later_the_x_is_asked_only_for_a_kind_with_a_name_of_its_own() -> None:
    """Later, "the X" mostly points back at the thing talked about ("Is the view nice?"): asked
    only when X is a kind of named thing (a role, a place, a work, a creature), unsaid, and the
    message is about something new."""
    earlier = ["How do cells keep proteins apart?", "Membranes and transport proteins do it."]
    new_topic = cosine(0.1)
    assert unnamed("When was the famous basketball player born?", earlier, PRODUCT, new_topic) == (
        "famous basketball player"
    )
    assert unnamed("What awards has the actor received?", earlier, PRODUCT, new_topic) == "actor"
    assert unnamed("What events are hosted in the country's stadium?", earlier, PRODUCT, new_topic) == (
        "country"
    )
    assert unnamed("When was the actor born?", earlier, PRODUCT) is None  # no embedding model
    assert unnamed("When was the actor born?", earlier, PRODUCT, cosine(LATER_KIND_TOPIC)) is None
    said = ["Who starred in Heat?", "Al Pacino, an actor, starred in it."]
    assert unnamed("When was the actor born?", said, PRODUCT, new_topic) is None  # "actor" was said
    for message in (
        "Is the view nice?",  # an attribute of what was talked about, not a named kind
        "What is the price?",
        "Can the team call me back?",  # the company's own
        "Who leads the Prime Minister's office?",  # a title names it
        "Is it safe for the bird?",  # "it" points back: the bird is the customer's own
        "For the animals, is the Aero safe?",  # the product named: the animals are the customer's
    ):
        assert unnamed(message, earlier, PRODUCT, new_topic) is None, message
    assert unnamed("When was the actor born?", [], PRODUCT) is None  # an opening "the X": not asked


def test_the_agent_asks_back_before_it_retrieves_and_logs_it(make_agent) -> None:
    generator = ScriptedGenerator(["The library lends books."])
    agent = make_agent(generator)
    searched: list[str] = []
    search = agent.knowledge.search
    agent.knowledge.search = lambda query, **kw: searched.append(query) or search(query, **kw)
    reply = agent.reply("c1", "What are the services offered by this state library?")
    assert reply.text == ask_text("state library")
    assert searched == [] and not reply.citations and not reply.escalated
    assert (
        reply.grounding is not None
        and reply.grounding["passed"]
        and reply.grounding["asked_unnamed"] == "state library"
    )
    assert agent.store.get_turn(reply.turn_id).metadata["asked_unnamed"] == "state library"
    # The customer's answer is a later turn: answered as usual.
    later = agent.reply("c1", "Does this library lend e-books?")
    assert "asked_unnamed" not in (later.grounding or {})
    # Off: answered as usual.
    agent.config.grounding.ask_unnamed = False
    off = agent.reply("c2", "What are the services offered by this state library?")
    assert "asked_unnamed" not in (off.grounding or {})


def test_ask_unnamed_must_be_true_or_false() -> None:
    from agent.config import GroundingSettings
    from agent.errors import ConfigError

    with pytest.raises(ConfigError, match=r"grounding\.ask_unnamed must be true or false"):
        GroundingSettings(ask_unnamed="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"grounding\.ask_which must be true or false"):
        GroundingSettings(ask_which=1)  # type: ignore[arg-type]


def test_the_answer_to_the_question_back_is_checked_against_the_first_question(make_agent) -> None:
    """After "Which filter do you mean?", "HF-500" alone asks for nothing; the check reads it with
    the first question ("How much does this filter cost? HF-500"), so an answer that gives no
    price fails and the fallback quotes the price."""
    from agent.referents import asked

    assert asked(ask_text("filter")) == "filter" and asked("Which filter is yours?") is None
    agent = make_agent(ScriptedGenerator(["The HF-500 filter is replaced every 6 months."] * 2))
    back = agent.reply("c1", "How much does this filter cost?")
    assert back.text == ask_text("filter")
    reply = agent.reply("c1", "HF-500")
    assert "$39" in reply.text and (reply.grounding or {}).get("action") == "extractive", reply.text
    # Off: the answer is read alone, and asks for no price.
    agent.config.grounding.ask_unnamed = False
    agent.store.ensure_conversation("c2")
    agent.store.add_turn("c2", "customer", "How much does this filter cost?")
    agent.store.add_turn("c2", "agent", ask_text("filter"))
    alone = agent.reply("c2", "HF-500")
    assert alone.text == "The HF-500 filter is replaced every 6 months.", alone.text


def test_a_new_one_is_read_as_the_thing_the_customer_named_before() -> None:
    """ "How much is a new one for the Aero 300?" after "Can I wash the filter?" got "The Aero 300
    is priced at $199": retrieval and the check read "one" as the purifier."""
    from agent.referents import one_meant

    filter_talk = [("customer", "Can I wash the filter?"), ("agent", "Never wash the main filter.")]
    assert one_meant("How much is a new one for the Aero 300?", filter_talk) == (
        "How much is a new filter for the Aero 300?"
    )
    assert one_meant("Can I buy another one?", filter_talk) == "Can I buy another filter?"
    sleeve = [("customer", "How do I clean the mesh sleeve on my Aero 300's filter?"), ("agent", "...")]
    assert (
        one_meant("can I buy just a new one of those?", sleeve)
        == "can I buy just a new mesh sleeve of those?"
    )
    broke = [("customer", "My pre-filter sleeve tore when I pulled it off."), ("agent", "...")]
    assert one_meant("How much is a new one?", broke) == "How much is a new pre-filter sleeve?"
    # Left as written: "the new one" (as often the new email address as another filter), a message
    # that names the thing itself, a thing the pages never name, or nothing named before.
    assert one_meant("When does the new one take over?", filter_talk) == "When does the new one take over?"
    said = "can I just wash the filter instead of buying a new one?"
    assert one_meant(said, [("customer", "My remote broke."), ("agent", "...")]) == said
    smoke = [("customer", "we've had a lot of smoke this summer"), ("agent", "...")]
    assert one_meant("How much is a new one?", smoke, {"filter", "smoke"}) == "How much is a new one?"
    assert one_meant("How much is a new one?", []) == "How much is a new one?"
