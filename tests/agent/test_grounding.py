"""The answer check: figures, names and words must come from the sources; failures fall back."""

from __future__ import annotations

import pytest

from agent.generator import ScriptedGenerator
from agent.grounding import SentenceGate, Sources, extractive_answer, figures

PASSAGE = "The Aero warranty lasts 2 years from the delivery date and covers the motor."


def test_figures_are_normalised() -> None:
    assert figures("It costs $39, lasts two years and shows E4 on the AF-300.") == [
        "39",
        "e4",
        "af-300",
        "2",
    ]


@pytest.mark.parametrize(
    ("sentence", "supported"),
    [
        ("The warranty lasts 2 years from the delivery date.", True),
        ("The warranty lasts two years [1].", True),
        ("The warranty lasts 90 days.", False),  # an invented figure
        ("The warranty covers the motor, says Dyson.", False),  # a name no source has
        ("You should use a screwdriver to pry the panel open.", False),  # words from nowhere
        ("I'm sorry, I don't know. I can connect you with a member of the support team.", True),
    ],
)
def test_a_sentence_is_supported_only_by_what_the_sources_say(sentence: str, supported: bool) -> None:
    sources = Sources([PASSAGE, "How long is the warranty?"])
    assert (sources.unsupported(sentence) == []) is supported


def test_the_gate_releases_checked_sentences_and_stops_at_the_first_failure() -> None:
    gate = SentenceGate(Sources([PASSAGE]))
    text = "The warranty lasts 2 years. It covers the motor. It costs $49 extra"
    assert gate.feed("The warranty lasts 2") == 0  # no complete sentence yet
    first = gate.feed(text)
    assert text[:first] == "The warranty lasts 2 years. It covers the motor. "
    assert gate.feed(text, final=True) == first and gate.failed[0] == "49"


def test_extractive_answer_quotes_the_best_matching_passage_sentences() -> None:
    passages = ["Shipping is free. Orders leave in 2 days.", PASSAGE + " Batteries are not covered."]
    answer = extractive_answer("How long is the warranty on the motor?", passages)
    assert answer is not None and "2 years" in answer and answer.endswith("[2]")
    assert extractive_answer("pizza toppings?", passages) is None


def test_extractive_answer_ranks_by_the_embedding_model_when_given_one() -> None:
    """Word overlap picks the sentence repeating the question's words; the embedding model picks
    the one that answers it, worded differently."""
    import numpy as np

    passages = [
        "You can send back a purifier you bought on our website in its original box. "
        "Returns are accepted within 30 days of delivery."
    ]
    question = "How many days do I have to send back a purifier I bought on your website?"
    by_words = extractive_answer(question, passages, max_sentences=1)
    assert by_words is not None and "original box" in by_words

    def embed(texts: list[str]) -> np.ndarray:  # a stand-in that knows "days" ~ "30 days"
        vectors = np.array([[1.0, 0.0] if "days" in t else [0.0, 1.0] for t in texts])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    by_meaning = extractive_answer(question, passages, max_sentences=1, embed=embed)
    assert by_meaning is not None and "30 days" in by_meaning and "original box" not in by_meaning


def test_an_invented_figure_never_reaches_the_customer(make_agent) -> None:
    agent = make_agent(ScriptedGenerator(["The warranty lasts 90 days."]))
    deltas = [d for d in agent.stream("g1", "How long is the warranty?") if isinstance(d, str)]
    text = "".join(deltas)
    assert "90 days" not in text and "2 years" in text
    turn = agent.store.turns("g1")[-1]
    assert turn.metadata["grounding"]["action"] == "extractive"
    assert turn.metadata["grounding"]["passed"] is False
    assert turn.metadata["grounding"]["unsupported"] == ["90"]


def test_a_supported_answer_is_sent_as_generated(make_agent) -> None:
    agent = make_agent(ScriptedGenerator(["The warranty lasts 2 years from the delivery date."]))
    reply = agent.reply("g3", "How long is the warranty?")
    assert reply.text == "The warranty lasts 2 years from the delivery date."
    assert reply.grounding is not None
    assert reply.grounding["passed"] is True and reply.grounding["action"] == "sent"


def test_fallback_decline_offers_a_person(make_agent) -> None:
    agent = make_agent(ScriptedGenerator(["It lasts 90 days."]), grounding__fallback="decline")
    reply = agent.reply("g4", "How long is the warranty?")
    assert "90" not in reply.text and "support team" in reply.text
    assert reply.grounding is not None and reply.grounding["action"] == "declined"


def test_supported_sentences_stay_when_a_later_one_fails(make_agent) -> None:
    agent = make_agent(ScriptedGenerator(["The warranty lasts 2 years. It also covers 5 free repairs."]))
    reply = agent.reply("g5", "How long is the warranty?")
    assert reply.text == "The warranty lasts 2 years."
    assert reply.grounding is not None
    assert reply.grounding["action"] == "sent" and reply.grounding["passed"] is False


def test_an_answer_cut_by_the_token_limit_never_ends_mid_sentence(make_agent) -> None:
    generator = ScriptedGenerator(["The warranty lasts 2 years. It covers the motor and the"])
    agent = make_agent(generator, generation__max_new_tokens=8)
    reply = agent.reply("g6", "How long is the warranty?")
    assert reply.text == "The warranty lasts 2 years."
    assert reply.grounding is not None and reply.grounding["dropped_tail"] is True


def test_leading_whitespace_does_not_shift_what_was_checked(make_agent) -> None:
    agent = make_agent(ScriptedGenerator(["  The warranty lasts 2 years. It costs $49 extra."]))
    deltas = [d for d in agent.stream("g7", "How long is the warranty?") if isinstance(d, str)]
    assert "".join(deltas).strip() == "The warranty lasts 2 years."
    assert agent.store.turns("g7")[-1].text == "The warranty lasts 2 years."


def test_a_list_number_is_shown_with_its_item_never_alone_at_the_end() -> None:
    """A numbered step cut by the token limit right after "2." used to end the answer on a bare
    "2." (seen in the browser): the number now waits for its item and goes if the item never comes."""
    gate = SentenceGate(Sources(["To reset it, unplug the purifier. Hold the Filter button for 3 seconds."]))
    text = "To reset it:\n1. Unplug the purifier.\n2."
    cleared = gate.feed(text, final=True)
    assert text[:cleared].rstrip().endswith("Unplug the purifier.") and not gate.failed
    assert gate.feed(text + " Hold the Filter button for 3 seconds.", final=True) > cleared
