"""The answer check: figures, names and words must come from the sources; failures fall back."""

from __future__ import annotations

from typing import Any

import pytest

from agent.generator import ScriptedGenerator
from agent.grounding import (
    SentenceGate,
    Sources,
    extractive_answer,
    figures,
    passage_sentences,
    quantities,
    quote_for_decline,
    rank_sentences,
)
from tests.agent.fakes import KeywordKnowledge

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


SHIPPING = (
    "Shipping and Delivery > Shipping Options and Costs\n"
    "| Destination | Method | Delivery time | Cost |\n|---|---|---|---|\n"
    "| Contiguous US | Express | 1–2 business days | $14.95 |\n"
    "| Alaska and Hawaii | Standard only | 6–10 business days | Free on orders over $50, otherwise $5.95 |\n"
    "| Canada | Standard | 5–8 business days | $12 flat |\n"
    "Halcyon Care filter deliveries always ship free by standard shipping."
)


def test_quantities_pair_each_figure_with_its_unit() -> None:
    assert quantities("It takes 3–5 business days, a 30-day window, two years, 22 dB.") == {
        "3 business day", "5 business day", "30 day", "2 year", "22 db",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("sentence", "supported"),
    [
        ("Clean the sensor every 5 months.", True),
        ("Clean the sensor every 3 to 5 days.", False),  # "5" and "days" are there, "5 days" is not
        ("Banks take 3 to 5 business days.", True),
        ("The warranty is a 2-year warranty.", True),
    ],
)
def test_a_figure_with_a_unit_is_one_fact(sentence: str, supported: bool) -> None:
    sources = Sources(["Clean the sensor every 5 months.", "Banks take 3 to 5 business days.", PASSAGE])
    assert (sources.unsupported(sentence) == []) is supported


def test_table_rows_are_sentences_named_by_their_header() -> None:
    rows = passage_sentences(SHIPPING)
    assert rows[1] == (
        "Alaska and Hawaii: Method Standard only; Delivery time 6–10 business days; "
        "Cost Free on orders over $50, otherwise $5.95."
    )
    assert rows[-1] == "Halcyon Care filter deliveries always ship free by standard shipping."
    # The breadcrumb ran into the header row; a chunk that starts mid-table ran its rows together.
    assert passage_sentences("Filters > Which Filter? | Filter | Price |\n|---|---|\n| AF-300 | $39 |") == [
        "AF-300: Price $39."
    ]
    assert passage_sentences(
        "Specs > Table\n plus Display | | Weight | 4.8 kg | 6.9 kg | | Colors | White | Grey |"
    ) == [
        "Weight: 4.8 kg; 6.9 kg.",
        "Colors: White; Grey.",
    ]
    assert passage_sentences("Warranty > Coverage\n - **New purifiers:** 2 years.\n- 2 filters a year.") == [
        "New purifiers: 2 years.",
        "2 filters a year.",
    ]


def test_extractive_answer_quotes_the_table_row_that_answers() -> None:
    answer = extractive_answer("How long does standard delivery to Hawaii take?", [SHIPPING], max_sentences=1)
    assert answer is not None and "6–10 business days" in answer


def test_a_follow_up_is_ranked_with_the_customers_earlier_question() -> None:
    noise = "Noise > Levels\n| Mode | Aero 300 | Aero 500 |\n|---|---|---|\n| Sleep | 22 dB | 20 dB |\n| Turbo | 52 dB | 56 dB |"
    assert rank_sentences("And on the other one?", [noise]) == []  # no word of its own to go on
    ranked = rank_sentences("And on the other one?", [noise], context=["How loud is Turbo mode?"])
    assert ranked[0].text == "Turbo: Aero 300 52 dB; Aero 500 56 dB."


def test_figures_must_come_from_the_sentences_that_answer_the_question() -> None:
    """ "$69" is in the passages, but not in the row the question asks about."""
    prices = (
        "Care > Price\n| Purifier | Filter | Monthly price |\n|---|---|---|\n"
        "| Aero 300 | AF-300 Standard | $5.99 |\n| Aero 500 | AF-500P Pet & Odor | $10.49 |\n"
        "The AF-500P Pet & Odor filter costs $69 on its own."
    )
    question = "What's the monthly price of Halcyon Care for an Aero 500 with the Pet & Odor filter?"
    ranked = rank_sentences(question, [prices])
    told = [e.text for e in ranked[:1]]
    assert "$10.49" in told[0]
    sources = Sources([prices, question], evidence=told, conversation=[question])
    assert sources.unsupported("The monthly price is $10.49.") == []
    assert sources.unsupported("The monthly price is $69.") == ["69 (not in the answering passage)"]
    assert Sources([prices, question]).unsupported("The monthly price is $69.") == []  # any passage


class MeaningKnowledge(KeywordKnowledge):
    """Keyword search plus an embedding stand-in (bag of words), as a real knowledge base has."""

    VOCAB = ("hawaii", "alaska", "express", "standard", "canada", "delivery", "long", "take", "cost")

    def embed(self, texts: list[str]) -> Any:
        import numpy as np

        vectors = np.array([[t.lower().count(w) for w in self.VOCAB] for t in texts], dtype=np.float32) + 1e-3
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_an_answer_to_another_question_falls_back_to_the_row_that_answers(make_agent) -> None:
    question, wrong = (
        "How long does standard delivery to Hawaii take?",
        "Express delivery takes 1–2 business days.",
    )
    agent = make_agent(ScriptedGenerator([wrong]), docs={"shipping": SHIPPING})
    agent.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    reply = agent.reply("g8", question)
    assert "6–10 business days" in reply.text and "1–2" not in reply.text
    assert reply.grounding is not None and reply.grounding["action"] == "extractive"
    # Off, or with no embedding model to rank by meaning, any passage sentence may back a figure:
    # what still catches it is that the Hawaii row shares more of the words (``_misbound``).
    off = make_agent(ScriptedGenerator([wrong]), docs={"shipping": SHIPPING}, grounding__evidence_sentences=0)
    off.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    lexical = make_agent(ScriptedGenerator([wrong]), docs={"shipping": SHIPPING})
    for number, other in enumerate((off, lexical)):
        sent = other.reply(f"g{9 + number}", question)
        assert sent.grounding is not None
        assert all("answering passage" not in u for u in sent.grounding["unsupported"]), sent.grounding  # type: ignore[union-attr]
        assert any("for this)" in u for u in sent.grounding["unsupported"]), sent.grounding  # type: ignore[union-attr]


def test_a_weak_best_match_is_declined_rather_than_quoted(make_agent) -> None:
    """The answer failed the check, and no passage sentence matches the question well: quoting the
    nearest row would answer another question, so the agent says it does not know."""
    question, wrong = "How long does delivery to Mexico take?", "Delivery to Mexico takes 4 days."
    agent = make_agent(ScriptedGenerator([wrong]), docs={"shipping": SHIPPING})
    agent.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    ranked = rank_sentences(question, [SHIPPING], agent.knowledge.embed)
    assert 0 < ranked[0].score < agent.config.grounding.min_quote_score
    reply = agent.reply("q1", question)
    assert reply.grounding is not None and reply.grounding["action"] == "declined"
    assert "don't have that information" in reply.text and "4 days" not in reply.text
    # With the bar at 0, the nearest rows are quoted as before.
    quoting = make_agent(
        ScriptedGenerator([wrong]), docs={"shipping": SHIPPING}, grounding__min_quote_score=0.0
    )
    quoting.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    quoted = quoting.reply("q2", question)
    assert quoted.grounding is not None and quoted.grounding["action"] == "extractive"
    # Ranked by shared words alone (no embedding model) the scores are on another scale: no bar.
    texts = [SHIPPING]
    assert extractive_answer(question, texts, min_score=1.9) is not None
    assert extractive_answer(question, texts, embed=agent.knowledge.embed, min_score=1.9) is None


def test_a_quote_bar_outside_its_range_is_a_config_error() -> None:
    from agent.config import GroundingSettings
    from agent.errors import ConfigError

    with pytest.raises(ConfigError, match=r"grounding\.min_quote_score must be between 0 and 2"):
        GroundingSettings(min_quote_score=-0.1)


FILTER_ICON = (
    "LED Indicators > Status Icons\n**Filter icon**\n- Off: the filter is fine.\n"
    "- Solid amber: 10% or less filter life remaining. Order a replacement.\n"
    "- Blinking red: filter life is at 0%. Replace it now."
)


def test_what_a_sentence_adds_must_come_from_the_answering_sentences() -> None:
    """ "The filter is reset" repeats the question's words and adds two of its own, only one of
    which ("filter") the answering sentence has: every word is in the sources, the claim is not."""
    question = "What does a red blinking light mean?"
    told = ["Blinking red: filter life is at 0%.", "Replace it now."]
    sources = Sources([FILTER_ICON, question], evidence=told, conversation=[question])
    wrong = "The red blinking light means that the filter is reset."
    assert sources.unsupported(wrong) == ["answering passage 1/3 new words"]
    assert sources.unsupported("A blinking red light means the filter life is at 0%.") == []
    assert sources.unsupported("It means you should replace the filter now.") == []
    assert sources.unsupported("Does it blink red or amber?") == []  # asking back claims nothing
    # Off (0), or with no ranking to say which sentences answer, the rule does not apply.
    off = Sources([FILTER_ICON, question], evidence=told, conversation=[question], new_word_support=0)
    assert off.unsupported(wrong) == []
    assert Sources([FILTER_ICON, question], conversation=[question]).unsupported(wrong) == []


def test_an_answer_that_adds_what_the_passage_does_not_say_falls_back(make_agent) -> None:
    # (An answer that names the item, "The blinking red light means the filter is reset", is
    # also caught by the list-item rule, which no setting turns off.)
    question, wrong = ("What does a blinking red light mean?", "A red light means the filter is reset.")

    class Icons(MeaningKnowledge):
        VOCAB = ("red", "amber", "blink", "replace", "fine", "filter", "light", "mean")

    docs = {"led-indicators": FILTER_ICON}
    agent = make_agent(ScriptedGenerator([wrong]), docs=docs)
    agent.knowledge = Icons(docs)
    reply = agent.reply("n1", question)
    assert reply.grounding is not None and reply.grounding["action"] == "extractive"
    assert "Blinking red: filter life is at 0%" in reply.text and "reset" not in reply.text
    assert any("new words" in u for u in reply.grounding["unsupported"])
    kept = make_agent(ScriptedGenerator([wrong]), docs=docs, grounding__new_word_support=0.0)
    kept.knowledge = Icons(docs)
    assert kept.reply("n2", question).text == wrong


def test_a_new_word_share_outside_its_range_is_a_config_error() -> None:
    from agent.config import GroundingSettings
    from agent.errors import ConfigError

    with pytest.raises(ConfigError, match=r"grounding\.new_word_support must be between 0 and 1"):
        GroundingSettings(new_word_support=1.5)


PAIRING = (
    "Wi-Fi and App Pairing > Pairing Steps\n 1. Plug in the purifier and wait for the white warm-up "
    "ring to finish (about 30 seconds). 2. Press and hold the Wi-Fi button for 3 seconds until the "
    "Wi-Fi icon blinks slowly. This is pairing mode, and it lasts 10 minutes. 3. In the app, tap "
    "**+ Add device** and choose Aero 300 or Aero 500."
)


def test_a_numbered_procedure_is_read_as_its_steps() -> None:
    from agent.grounding import procedure

    assert procedure(PAIRING) == [
        "Plug in the purifier and wait for the white warm-up ring to finish (about 30 seconds).",
        "Press and hold the Wi-Fi button for 3 seconds until the Wi-Fi icon blinks slowly. "
        "This is pairing mode, and it lasts 10 minutes.",
        "In the app, tap + Add device and choose Aero 300 or Aero 500.",
    ]
    assert procedure("Filters cost $39. 2. is not a step here, nor is 1. alone.") == []
    assert procedure("Prices: 1. $39 for the AF-300.") == []  # one step is not a procedure


def test_a_how_to_question_is_answered_with_the_whole_procedure() -> None:
    """The best sentences of "how do I pair it?" include step 1 and a neighbour; the steps, in
    order and numbered, answer the question, where two ranked sentences would stop at step 1."""
    other = (
        "Firmware Updates > Without Wi-Fi\n If you never connect your purifier to Wi-Fi, it keeps working."
    )
    question = "How do I connect the purifier to Wi-Fi?"
    answer = extractive_answer(question, [other, PAIRING])
    assert answer is not None
    body = answer.removeprefix("Here is what our help pages say: ")
    assert body.startswith("1. Plug in the purifier") and "2. Press and hold the Wi-Fi button" in body
    assert "3. In the app, tap + Add device" in body and body.endswith("[2]")
    # Not a how-to question: the best sentences, as before.
    plain = extractive_answer("What does the Wi-Fi button do when I hold it for 3 seconds?", [other, PAIRING])
    assert plain is not None and "1. Plug in" not in plain and "3 seconds" in plain


def test_near_ties_in_the_ranking_are_all_evidence() -> None:
    from agent.grounding import Evidence, evidence

    ranked = [
        Evidence(0.9, 1, 0, "a"),
        Evidence(0.8, 1, 1, "b"),
        Evidence(0.78, 1, 2, "c"),
        Evidence(0.5, 1, 3, "d"),
    ]
    assert (
        evidence(ranked, 2) == ["a", "b", "c"]
        and evidence(ranked, 1) == ["a", "b"]
        and evidence(ranked, 0) == []
    )


def test_a_word_every_sentence_shares_lifts_them_little_and_a_rare_one_more() -> None:
    from agent.grounding import LEXICAL_WEIGHT

    page = (
        "Care members keep the warranty as long as they subscribe. Replacement units keep the "
        "warranty for 90 days. The warranty covers the motor in the Aero 500."
    )
    # "warranty" is in every sentence: it lifts each by under half the lexical weight.
    common = [e.score for e in rank_sentences("What is the warranty?", [page])]
    assert len(common) == 3 and len(set(common)) == 1 and 0 < common[0] < LEXICAL_WEIGHT / 2
    # "motor" is in one: that sentence comes first.
    ranked = rank_sentences("Does the warranty cover the motor?", [page])
    assert ranked[0].text.startswith("The warranty covers the motor") and ranked[0].score > common[0]


def test_cached_embed_embeds_each_text_once_and_keeps_the_order() -> None:
    import numpy as np

    from agent.grounding import CachedEmbed

    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.array([[float(len(t)), 1.0] for t in texts])

    cached = CachedEmbed(embed, size=3)
    first = cached(["aa", "b", "aa"])
    assert calls == [["aa", "b"]] and first.tolist() == [[2.0, 1.0], [1.0, 1.0], [2.0, 1.0]]
    assert cached(["b", "cccc"]).tolist() == [[1.0, 1.0], [4.0, 1.0]] and calls[-1] == ["cccc"]
    cached(["ddd", "ee"])  # over the bound: the cache starts again rather than growing
    assert cached(["ee"]).tolist() == [[2.0, 1.0]] and calls[-1] == ["ddd", "ee"]


def test_a_page_title_is_not_a_sentence_to_quote() -> None:
    assert passage_sentences(
        "LED Indicators and Light Ring\nYour Aero uses a light ring around the top."
    ) == ["Your Aero uses a light ring around the top."]


def test_with_the_embedding_model_a_sentence_sharing_no_word_can_answer() -> None:
    """ "Recalibration" and "calibration" share no word: the embedding model still ranks the answer."""
    import numpy as np

    passage = "Sensor > Upkeep\nOpen the app and choose the sensor page. Calibration takes 15 minutes."
    question = "How long does a recalibration run?"

    def embed(texts: list[str]) -> np.ndarray:  # a stand-in that knows "how long" ~ "15 minutes"
        vectors = np.array([[1.0, 0.2] if ("minutes" in t or "long" in t) else [0.1, 1.0] for t in texts])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    assert [e.text for e in rank_sentences(question, [passage])] == []
    assert rank_sentences(question, [passage], embed)[0].text == "Calibration takes 15 minutes."
    # Quoted only beside a sentence that shares a word; found by meaning alone, it is declined.
    assert extractive_answer("How long does a sensor recalibration run?", [passage], embed=embed) is not None
    assert extractive_answer(question, [passage], embed=embed, max_sentences=1) is None


def test_a_question_that_stands_alone_is_not_pulled_off_its_subject_by_the_last_message() -> None:
    """Read with "How heavy is it?", "How long is the warranty?" matched the weight row best; each
    sentence now keeps the better of its scores with and without the earlier message."""
    import numpy as np

    passages = [
        "Specs\nWeight: Aero 500 6.9 kg (15.2 lb).",
        "Warranty\nNew purifiers are covered for 2 years.",
    ]

    def embed(texts: list[str]) -> np.ndarray:  # the earlier message's words dominate a joint query
        def vector(t: str) -> list[float]:
            if "heavy" in t or "Weight" in t:
                return [1.0, 0.1]
            return [0.1, 1.0] if "warranty" in t.lower() or "covered" in t else [0.5, 0.5]

        vectors = np.array([vector(t) for t in texts])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    question, earlier = "How long is the warranty?", ["How heavy is it?"]
    assert rank_sentences(question, passages, embed, earlier)[0].text.startswith("New purifiers")
    # A follow-up that cannot stand alone still finds its subject through the earlier message.
    assert rank_sentences("And the big one?", passages, embed, earlier)[0].text.startswith("Weight")


def test_rank_passages_lifts_the_chunk_whose_sentence_answers() -> None:
    """The retriever put a page's opening first; the chunk with the answering row moves up."""
    import numpy as np

    from agent.grounding import rank_passages

    chunks = [
        "Specs > Overview\nThe Aero comes in two sizes for rooms of every size.",
        "Specs > Dimensions\n| | Aero 300 |\n|---|---|\n| Height | 48 cm |",
        "Warranty\nThe warranty lasts two years from delivery.",
    ]

    def embed(texts: list[str]) -> np.ndarray:  # a stand-in that knows "tall" ~ "height"
        vectors = np.array([[1.0, 0.1] if ("Height" in t or "tall" in t) else [0.1, 1.0] for t in texts])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    question = "How tall is the Aero 300?"
    assert rank_passages(question, chunks, [0.9, 0.8, 0.1], embed)[0] == 1
    # Without the sentences' say (weight 0) the retriever's order stands; nothing in, nothing out.
    assert rank_passages(question, chunks, [0.9, 0.8, 0.1], embed, weight=0.0) == [0, 1, 2]
    assert rank_passages(question, [], [], embed) == []


def test_what_a_sentence_says_about_its_own_page_is_not_read_as_an_answer() -> None:
    """ "This page explains every color and icon" names every topic of its page and answers none: it
    is neither ranked nor quoted; what the same sentence goes on to say after a semicolon is."""
    import numpy as np

    from agent.grounding import about_the_page, extractive_answer, rank_passages, read_sentences

    assert about_the_page("Use this page if your Aero won't turn on.") is None
    assert about_the_page("This page explains every color and icon.") is None
    assert (
        about_the_page(
            "This page summarizes our privacy practices; the full privacy policy is at example.com/privacy."
        )
        == "The full privacy policy is at example.com/privacy."
    )
    kept = "On this page you can see how to pair."  # not a sentence about the page's own contents
    assert about_the_page(kept) == kept
    opening = "LED Indicators\nYour Aero uses a light ring to show what it is doing. This page explains every color and icon."
    colors = "LED Indicators > Air Quality Colors\nGreen: the air is fair. Blue: the air is good."
    assert [c[2] for c in read_sentences([opening])] == [
        "Your Aero uses a light ring to show what it is doing."
    ]

    def embed(texts: list[str]) -> np.ndarray:  # every color word is close to the question
        vectors = np.array(
            [[1.0, 0.2] if ("color" in t.lower() or "colour" in t.lower()) else [0.2, 1.0] for t in texts]
        )
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    question = "Which colors can the light ring show?"
    # The opening's own chunk would win on its "every color" sentence; the colors chunk answers.
    assert rank_passages(question, [opening, colors], [0.9, 0.8], embed)[0] == 1
    quote = extractive_answer(question, [opening], embed=embed)
    assert quote is not None and "This page" not in quote


SPECS = """Product Specifications > Comparison Table

| | Aero 300 | Aero 500 |
|---|---|---|
| Price | $199 | $329 |
| Replacement filter | AF-300 ($39) | AF-500 ($59) or AF-500P Pet & Odor ($69) |"""
CARE = """Halcyon Care > Price

| Purifier | Filter | Monthly price |
|---|---|---|
| Aero 300 | AF-300 Standard | $5.99 |
| Aero 500 | AF-500 Standard | $8.99 |"""


@pytest.mark.parametrize(
    ("question", "sentence", "supported"),
    [
        ("How much does the Aero 500 cost?", "The Aero 500 is priced at $199.", False),  # the 300's column
        ("How much does the Aero 500 cost?", "It costs $199.", False),  # the question names the thing
        ("How much does the Aero 500 cost?", "The Aero 500 costs $329.", True),
        ("How much does the Aero 500 cost?", "It costs $329.", True),
        ("How much does the 500 cost?", "It costs $199.", False),  # named by its number alone
        ("Which filter does the Aero 500 take?", "The Aero 500 uses the AF-300.", False),
        ("Which filter does the Aero 500 take?", "The AF-500 costs $59.", True),
        ("Compare the two", "The Aero 300 costs $199 and the Aero 500 $329.", True),  # each its own
        ("What does Care cost?", "Halcyon Care for the Aero 500 is $5.99 a month.", False),  # a row's owner
        ("What does Care cost?", "Halcyon Care for the Aero 300 is $5.99 a month.", True),
        ("What do the purifiers cost?", "The price is $199.", True),  # no thing named: any column
        # A clause that names a thing speaks of it alone, whatever else the sentence names.
        ("How much does the Aero 500 cost?", "The Aero 500 costs $199, about what an Aero 300 does.", False),
        ("Compare the two", "The Aero 300 costs $199, and the Aero 500 costs $329.", True),
        ("How much is it?", "For the Aero 500, the price is $329.", True),  # the clause names none
    ],
)
def test_a_table_figure_supports_only_the_thing_whose_column_or_row_it_is_in(
    question: str, sentence: str, supported: bool
) -> None:
    sources = Sources([SPECS, CARE, question], conversation=[question], question=question)
    assert (sources.unsupported(sentence) == []) is supported


def test_a_figure_the_prose_also_gives_is_anyone_s() -> None:
    prose = "Upgrading costs the $199 difference."
    question = "How much does the Aero 500 cost?"
    sources = Sources([SPECS, prose, question], conversation=[question], question=question)
    assert sources.unsupported("The Aero 500 costs $199.") == []
    # Unless the prose, too, gives it to the other model (``_other_members``).
    tied = Sources(
        [SPECS, "From an Aero 300 it costs $199.", question], conversation=[question], question=question
    )
    assert tied.unsupported("The Aero 500 costs $199.") == ["199 (the passage gives it for the Aero 300)"]


@pytest.mark.parametrize(
    ("answer", "shown", "failed"),
    [
        ("Yes, you do.", "", True),  # a verdict alone: nothing the check could confirm
        ("Yes, I do. I can connect you with a member of the support team.", "", True),
        (
            "No. Return shipping is free in the US and Canada.",
            "No. Return shipping is free in the US and Canada.",
            False,
        ),
        (
            "Return shipping is free in the US and Canada. Thanks!",
            "Return shipping is free in the US and Canada. Thanks!",
            False,
        ),
    ],
)
def test_a_bare_yes_or_no_waits_for_a_sentence_that_backs_it(answer: str, shown: str, failed: bool) -> None:
    gate = SentenceGate(Sources(["Return shipping is free in the US and Canada.", "Do I pay for returns?"]))
    assert gate.feed("Yes, you do. ", final=False) == 0  # held while streaming
    gate = SentenceGate(Sources(["Return shipping is free in the US and Canada.", "Do I pay for returns?"]))
    assert answer[: gate.feed(answer, final=True)].strip() == shown
    assert bool(gate.failed) is failed


def test_a_sentence_is_read_with_its_section_title() -> None:
    """The shipping table's rows never say "shipping"; their section's title does, so a row is
    quoted for "How long does shipping take?" rather than declined as found by meaning alone."""
    import numpy as np

    passage = (
        "Shipping and Delivery > Shipping Options and Costs\n\n| Destination | Delivery time |\n|---|---|\n"
        "| Contiguous US | 3–5 business days |\n| Canada | 5–8 business days |"
    )

    def embed(texts: list[str]) -> np.ndarray:
        vectors = np.array([[1.0, 0.3] if ("days" in t or "long" in t) else [0.1, 1.0] for t in texts])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    ranked = rank_sentences("How long does shipping take?", [passage], embed)
    assert ranked[0].shares_words
    quoted = extractive_answer("How long does shipping take?", [passage], embed=embed)
    assert quoted is not None and "3–5 business days" in quoted


def test_the_question_said_back_is_not_an_answer() -> None:
    """ "The Aero 300 is dead and the light on its power brick is off." repeats the customer: every
    word is theirs, so every word is "supported". Alone it is not sent; before a sentence that
    states something from the passages, it goes out with it."""
    question = "My Aero 300 is dead and the light on its power brick is off. What does that mean?"
    passage = "If the PA-24 adapter light is off, the adapter may have failed. Replacements cost $19."
    echo = "The Aero 300 is dead and the light on its power brick is off."
    gate = SentenceGate(Sources([passage, question], conversation=[question]))
    assert gate.feed(echo, final=True) == 0 and gate.failed
    backed = f"{echo} The PA-24 adapter may have failed."
    gate = SentenceGate(Sources([passage, question], conversation=[question]))
    assert gate.feed(backed, final=True) == len(backed) and not gate.failed
    asked = "Is the light on the power brick off?"  # a question back claims nothing: not held
    gate = SentenceGate(Sources([passage, question], conversation=[question]))
    assert gate.feed(asked, final=True) == len(asked)


@pytest.mark.parametrize(
    ("sentence", "supported"),
    [
        ("The Aero 500 uses the AF-300.", False),  # every word is there; the passage says it won't fit
        ("The AF-300 will not fit in an Aero 500.", True),
        ("The Aero 500 uses the AF-500.", True),  # the other clause is about the AF-500 and the Aero 300
        ("The Aero 500 takes the AF-500P Pet & Odor filter.", True),  # stated nowhere negated
    ],
)
def test_a_claim_the_passage_states_negated_is_not_supported(sentence: str, supported: bool) -> None:
    passage = (
        "Filters are not interchangeable between models: an AF-300 will not fit in an Aero 500, and "
        "the AF-500 will not fit in an Aero 300. The Aero 500 also takes the AF-500P Pet & Odor filter."
    )
    question = "Which filter does the Aero 500 use?"
    sources = Sources([passage, question], conversation=[question], question=question)
    assert (sources.unsupported(sentence) == []) is supported


def test_a_decline_where_a_passage_answers_is_replaced_by_the_quote(make_agent) -> None:
    """The model says it does not know, but a passage row answers the question well and has its
    words: the customer gets the row, and never sees the decline stream by first."""
    question, decline = "How long does standard delivery to Hawaii take?", "I'm sorry, I don't know that."
    agent = make_agent(ScriptedGenerator([decline]), docs={"shipping": SHIPPING})
    agent.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    ranked = rank_sentences(question, [SHIPPING], agent.knowledge.embed)
    assert ranked[0].score >= agent.config.grounding.quote_over_decline
    items = list(agent.stream("d1", question))
    reply = items[-1]
    shown = "".join(i for i in items if isinstance(i, str))
    assert "6–10 business days" in reply.text and "don't know" not in shown
    assert reply.grounding is not None
    assert (reply.grounding["passed"], reply.grounding["action"]) == (True, "extractive")
    # Trusted with the stricter bar off (0), the model's own decline stands.
    off = make_agent(
        ScriptedGenerator([decline]),
        docs={"shipping": SHIPPING},
        grounding__trust_declines=True,
        grounding__quote_over_decline=0.0,
    )
    off.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    kept = off.reply("d2", question)
    assert kept.text == decline and kept.grounding is not None and kept.grounding["action"] == "sent"


def test_a_trusted_decline_stands_when_the_best_quote_leaves_the_question_s_words_out(make_agent) -> None:
    """With ``trust_declines``, a high-scoring row that does not have most of the question's words
    answers another question ("Is standard delivery to Hawaii insured against theft, ...?" against
    the Hawaii delivery row): the decline is taken as honest, and it is sent. By default the
    decline counts for no more than a failed answer: the fallback quotes the row, as it would
    for an answer that failed the check."""
    question = "Is standard delivery to Hawaii insured against theft, breakage, water damage or loss?"
    decline = "I'm sorry, I don't know that."
    agent = make_agent(
        ScriptedGenerator([decline]), docs={"shipping": SHIPPING}, grounding__trust_declines=True
    )
    agent.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    ranked = rank_sentences(question, [SHIPPING], agent.knowledge.embed)
    assert ranked[0].score >= agent.config.grounding.quote_over_decline  # the score alone would quote
    assert quote_for_decline(question, [SHIPPING], ranked, 0.6, agent.knowledge.embed) is None
    reply = agent.reply("d3", question)
    assert reply.text == decline and reply.grounding is not None and reply.grounding["action"] == "sent"

    default = make_agent(ScriptedGenerator([decline]), docs={"shipping": SHIPPING})
    default.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    assert not default.config.grounding.trust_declines
    items = list(default.stream("d4", question))
    quoted = items[-1]
    shown = "".join(i for i in items if isinstance(i, str))
    assert "6–10 business days" in quoted.text and "don't know" not in shown
    assert quoted.grounding is not None and quoted.grounding["action"] == "extractive"


def test_a_decline_with_no_passage_sentence_over_the_quote_bar_is_sent(make_agent) -> None:
    """By default the model's decline is answered as a failed answer is: when no passage sentence
    clears ``min_quote_score`` there is nothing to quote, and the decline goes out as written."""
    question = "Is standard delivery to Hawaii insured against theft, breakage, water damage or loss?"
    decline = "I'm sorry, I don't know that."
    agent = make_agent(
        ScriptedGenerator([decline]), docs={"shipping": SHIPPING}, grounding__min_quote_score=0.95
    )
    agent.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    ranked = rank_sentences(question, [SHIPPING], agent.knowledge.embed)
    assert 0.6 < ranked[0].score < agent.config.grounding.min_quote_score
    reply = agent.reply("d5", question)
    assert reply.text == decline and reply.grounding is not None and reply.grounding["action"] == "sent"


def test_a_quote_over_decline_bar_outside_its_range_is_a_config_error() -> None:
    from agent.config import GroundingSettings, RetrievalSettings
    from agent.errors import ConfigError

    with pytest.raises(ConfigError, match=r"grounding\.quote_over_decline must be between 0 and 2"):
        GroundingSettings(quote_over_decline=3)
    with pytest.raises(ConfigError, match=r"grounding\.trust_declines must be true or false"):
        GroundingSettings(trust_declines="no")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"retrieval\.one_per_page must be true or false"):
        RetrievalSettings(one_per_page="yes")  # type: ignore[arg-type]


def test_the_retrievers_own_best_chunks_are_shown_beside_the_re_ranked_ones() -> None:
    """The re-rank shows each page once, by the chunk whose sentence answers best. The retriever had
    put the answer in the first page's second chunk ("Refund Timing"): ``keep_retrieved`` shows
    its own best chunks after the re-ranked ``k``, so the re-rank can add a chunk but never drop
    the retriever's first ones; with 0 only the re-ranked ``k`` are shown."""
    from types import SimpleNamespace

    import numpy as np

    from agent.knowledge import ranked_search

    chunks = [
        ("returns", "Returns > The 30-Day Return Window\nYou can return a purifier within 30 days."),
        ("returns", "Returns > Refund Timing\nRefunds reach your card in 5 to 7 business days."),
        ("warranty", "Warranty > How to Make a Claim\nContact us with your card and serial number."),
        ("billing", "Billing > Cards\nWe accept every major card."),
    ]
    hits = [SimpleNamespace(doc_id=d, text=t, score=1.0 - i / 10) for i, (d, t) in enumerate(chunks)]

    class KB:
        def search(self, question, *, k, history=(), distinct=True):
            return hits[:k]

    def embed(texts: list[str]) -> np.ndarray:  # a stand-in that prefers the wrong sentences
        near = ("money", "purifier", "serial")
        vectors = np.array([[1.0, 0.1] if any(w in t for w in near) else [0.1, 1.0] for t in texts])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    question = "How long until the money is back?"

    def shown(keep: int) -> list[str]:
        found = ranked_search(
            KB(), question, [], k=2, candidates=4, embed=embed, one_per_page=True, keep_retrieved=keep
        )
        return [h.text.split("\n")[0] for h in found]

    re_ranked = shown(0)
    assert len(re_ranked) == 2 and "Returns > Refund Timing" not in re_ranked
    kept = shown(2)
    assert kept[:2] == re_ranked and set(kept[2:]) == {
        "Returns > The 30-Day Return Window",
        "Returns > Refund Timing",
    } - set(re_ranked)
    assert "Returns > Refund Timing" in kept
    # Nothing is shown twice; without candidates the retriever's own k stand, nothing added.
    assert len(set(shown(4))) == len(shown(4)) == 4
    plain = ranked_search(KB(), question, [], k=2, candidates=0, embed=embed, keep_retrieved=2)
    assert [h.doc_id for h in plain] == ["returns", "returns"]


def test_keep_retrieved_must_be_a_whole_number() -> None:
    from agent.config import RetrievalSettings
    from agent.errors import ConfigError

    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(
            ConfigError, match=r"retrieval\.keep_retrieved must be a whole number of 0 or more"
        ):
            RetrievalSettings(keep_retrieved=bad)  # type: ignore[arg-type]
    assert RetrievalSettings().keep_retrieved == 0  # off by default: no gain with the 135M model


@pytest.mark.parametrize(
    "answer",
    [
        "Shipping Options and Costs | Destination | Method | Delivery time | Cost | |---|---|---|---|",
        "| Canada | Standard | 5–8 business days | $12 flat |",
    ],
)
def test_a_table_pasted_as_markdown_is_not_an_answer(answer: str) -> None:
    """Every cell is in the passage, but a customer would read pipes and dashes: the sentence
    fails, and the fallback quotes the rows that answer, each as a sentence."""
    question = "How long does shipping to Canada take?"
    sources = Sources([SHIPPING, question], conversation=[question])
    assert sources.unsupported(answer) == ["a Markdown table copied as it is, not an answer"]
    assert sources.unsupported("Standard delivery to Canada takes 5–8 business days.") == []


def test_an_answer_that_gives_no_price_to_a_price_question_is_replaced_by_the_row_that_does(
    make_agent,
) -> None:
    """ "What does shipping to Canada cost?" answered with the delivery time: every figure is in
    the passage, but it is not what was asked. It is held (never shown) and the row with the price
    is quoted instead."""
    question, off_point = (
        "What does shipping to Canada cost?",
        "Standard delivery to Canada takes 5–8 business days.",
    )
    agent = make_agent(ScriptedGenerator([off_point]), docs={"shipping": SHIPPING})
    agent.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    items = list(agent.stream("k1", question))
    reply, shown = items[-1], "".join(i for i in items if isinstance(i, str))
    assert "$12 flat" in reply.text and off_point not in shown
    assert reply.grounding is not None
    assert (reply.grounding["passed"], reply.grounding["action"]) == (False, "extractive")
    assert reply.grounding["unsupported"] == ["it does not give what the question asks for: a price"]
    # An answer that gives a price streams as before; with the check off, the answer stands.
    priced = make_agent(
        ScriptedGenerator(["It is a flat $12. It takes 5–8 business days."]), docs={"shipping": SHIPPING}
    )
    priced.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    sent = priced.reply("k2", question)
    assert sent.text.startswith("It is a flat $12.") and sent.grounding["action"] == "sent"  # type: ignore[index]
    off = make_agent(
        ScriptedGenerator([off_point]), docs={"shipping": SHIPPING}, grounding__match_question=False
    )
    off.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    assert off.reply("k3", question).text == off_point


def test_the_gate_holds_sentences_until_one_gives_what_was_asked() -> None:
    question = "What does shipping to Canada cost?"
    sources = Sources([SHIPPING, question], conversation=[question], question=question)
    gate = SentenceGate(sources, asks=[("price",)])
    first = "Canada gets standard delivery. "
    assert gate.feed(first) == 0  # held: no price yet
    text = first + "It costs $12 flat. It takes 5–8 business days."
    assert text[: gate.feed(text, final=True)].endswith("business days.") and not gate.failed
    never = SentenceGate(sources, asks=[("price",)])
    assert never.feed(first, final=True) == 0
    assert never.failed == ["it does not give what the question asks for: a price"]


def test_a_question_about_a_model_the_passages_do_not_have_is_declined(make_agent) -> None:
    """ "The Aero 700" beside passages on the Aero 300 and 500: the model's answer is stopped at
    its first words and the agent says it has nothing on the Aero 700."""
    question = "How much is the Aero 700?"
    generator = ScriptedGenerator(["The Aero 700 costs $329."])
    agent = make_agent(generator, docs={"specs": SPECS})
    agent.knowledge = MeaningKnowledge({"specs": SPECS})
    items = list(agent.stream("u1", question))
    reply, shown = items[-1], "".join(i for i in items if isinstance(i, str))
    assert "$329" not in shown and "couldn't find anything about Aero 700" in reply.text
    assert reply.grounding is not None and reply.grounding["action"] == "declined"
    known = make_agent(ScriptedGenerator(["The Aero 500 costs $329."]), docs={"specs": SPECS})
    known.knowledge = MeaningKnowledge({"specs": SPECS})
    assert known.reply("u2", "How much is the Aero 500?").text == "The Aero 500 costs $329."


@pytest.mark.parametrize(
    ("question", "thing"),
    [
        (
            "Is there an Apple Watch app or a home-screen widget so I can check the air quality?",
            "an Apple Watch app or a home-screen widget",
        ),
        ("Do you have a student or military discount on the Aero 500?", "a student or military discount"),
        ("If I buy two, do I get a multi-unit discount?", "a multi-unit discount"),
        ("Does the Aero come with a remote control I can use from the couch?", "a remote control"),
        ("Does the Halcyon Home app have a dark mode? the white screen at 2am is brutal", "a dark mode"),
        # What the pages name, or nothing particular, is not absent.
        ("Is there an app for my phone?", None),
        ("Does the Aero 500 have a carbon filter?", None),
        ("Is there a way to kick every other device off my account?", None),
        ("and what do I do with the broken one? is there a deadline?", None),
        ("Can I get the difference back?", None),  # not asked to exist: "the"
        ("How much is the Aero 500?", None),
    ],
)
def test_a_thing_asked_to_exist_that_no_passage_names(question: str, thing: str | None) -> None:
    from agent.grounding import absent_thing

    texts = [
        "The Halcyon Home app on your phone lets you control your Aero purifier. You can control it by voice.",
        "Price: Aero 300 $199; Aero 500 $329. Filtration: pre-filter, H13 HEPA, activated carbon.",
        "Discounts from price drops are refunded within 14 days.",
    ]
    assert absent_thing(question, texts) == thing


def test_a_thing_the_pages_name_elsewhere_is_not_absent() -> None:
    """With every word of the help pages: "a tip-over switch" beside a passage without it is not
    absent when a page says "Tip-Over Protection" and "switch" (the same thing in other words, maybe);
    one word the pages never have keeps "a dark mode" absent."""
    from agent.grounding import absent_thing

    shown = ["Set it upright on a flat floor."]
    question = "Is there a tip-over switch?"
    assert absent_thing(question, shown) == "a tip-over switch"
    assert absent_thing(question, shown, {"tip-over", "protection", "switch"}) is None
    assert absent_thing(question, shown, {"protection"}) == "a tip-over switch"
    assert absent_thing("Does the app have a dark mode?", shown, {"app", "mode", "sleep"}) == "a dark mode"


def test_a_thing_no_page_names_is_declined_naming_it(make_agent) -> None:
    """ "Is there an Apple Watch app?" beside pages on the phone app: the model's "Yes" is not
    shown, and no quote about the phone app stands in for an answer."""
    question = "Is there an Apple Watch app so I can check the air quality?"
    app = "Halcyon Home App\n\nThe Halcyon Home app lets you control your Aero purifier remotely and check air quality."
    agent = make_agent(
        ScriptedGenerator(["Yes, the Halcyon Home app lets you check air quality."]), docs={"app": app}
    )
    agent.knowledge = MeaningKnowledge({"app": app})
    items = list(agent.stream("w1", question))
    reply, shown = items[-1], "".join(i for i in items if isinstance(i, str))
    assert "Yes" not in shown and "couldn't find anything about an Apple Watch app" in reply.text
    assert reply.grounding is not None and reply.grounding["action"] == "declined"
    off = make_agent(
        ScriptedGenerator(["Yes, the Halcyon Home app lets you check air quality."]),
        docs={"app": app},
        grounding__match_question=False,
    )
    off.knowledge = MeaningKnowledge({"app": app})
    assert off.reply("w2", question).text.startswith("Yes")


def test_a_match_question_setting_that_is_not_a_bool_is_a_config_error() -> None:
    from agent.config import GroundingSettings
    from agent.errors import ConfigError

    with pytest.raises(ConfigError, match=r"grounding\.match_question must be true or false"):
        GroundingSettings(match_question="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"grounding\.bind_amounts must be true or false"):
        GroundingSettings(bind_amounts=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"grounding\.focused_quotes must be true or false"):
        GroundingSettings(focused_quotes="no")  # type: ignore[arg-type]


def test_a_question_back_is_not_held_for_what_was_asked() -> None:
    """ "How often should I replace the filter?" answered with "Which model do you have?": asking
    back claims no answer, so it is shown, not held for a frequency it could not give."""
    question = "How often should I replace the filter?"
    passage = "Replace the filter on an Aero 300 or Aero 500 every 6 months."
    sources = Sources([passage, question], conversation=[question], question=question)
    gate = SentenceGate(sources, asks=[("frequency",)])
    text = "Which Aero model do you have?"
    assert gate.feed(text, final=True) == len(text) and not gate.failed


SHIPS_TO = "We currently ship only to the United States and Canada. Our purifiers are built for 120 V power."


@pytest.mark.parametrize(
    ("question", "answer", "passes"),
    [
        ("Do you ship to Australia?", "Yes, we ship to Australia.", False),
        ("do you ship to australia", "Yes, we ship to Australia.", False),  # asked, without a "?"
        ("Do you ship to Australia?", "We ship to the United States and Canada.", True),
        ("Do you ship to Australia?", "No, we don't ship to Australia.", True),  # negated: not read here
        # A statement of the customer's may be said back: "I live in Toronto" is theirs to tell.
        ("I live in Toronto. Do you ship there?", "Yes, we ship to Toronto in Canada.", True),
        # The customer's own name, even in a question: a greeting by name is not a claim.
        ("Hi, I'm Dana, do you ship to Canada?", "Hi Dana, we ship to the United States and Canada.", True),
        # Told word by word: "Certified Refurbished" and "Aero" are both in the passages.
        (
            "How long is the warranty on a Certified Refurbished Aero?",
            "The warranty on a Certified Refurbished Aero lasts 1 year.",
            True,
        ),
    ],
)
def test_a_name_only_the_customer_asked_about_is_no_evidence(
    question: str, answer: str, passes: bool
) -> None:
    """The customer's question names a place the passages never do; an answer that affirms it is
    not supported by the question's own words."""
    passages = [SHIPS_TO, "Aero 300 and Aero 500. Certified Refurbished purifiers: 1 year from delivery."]
    sources = Sources([question, *passages], conversation=[question])
    problems = sources.unsupported(answer)
    assert (not problems) is passes, problems
    if not passes:
        assert problems == ["Australia (only the customer's question names it)"]


def test_yes_we_ship_to_a_place_the_passages_do_not_name_is_replaced_by_the_passage(make_agent) -> None:
    """End to end through the agent: the held "Yes" and its name fail, and the passage that says
    where the company ships is quoted instead."""
    agent = make_agent(
        ScriptedGenerator(["Yes, we ship to Australia. We also ship to the United States and Canada."]),
        docs={"shipping": "# Shipping\n\n## International Orders\n\n" + SHIPS_TO},
    )
    reply = agent.reply("au", "Do you ship to Australia?")
    assert "Australia" not in reply.text
    assert "ship only to the United States and Canada" in reply.text
    assert reply.grounding["passed"] is False and reply.grounding["action"] == "extractive"  # type: ignore[index]


@pytest.mark.parametrize(
    ("answer", "passes"),
    [
        ("The Aero 500 is priced at $130.", False),  # the upgrade's price difference, read as a price
        ("Upgrading to the Aero 500 costs the $130 price difference.", True),
        ("The Aero 500 costs $329.", True),
        ("Shipping costs $50.", False),  # the free-shipping threshold
        ("Shipping is free on orders over $50.", True),
        ("We deduct $20 from the refund if the adapter is missing.", True),
    ],
)
def test_an_amount_the_passage_gives_as_a_difference_or_a_limit_is_not_a_price(
    answer: str, passes: bool
) -> None:
    passages = [
        "| | Aero 300 | Aero 500 |\n|---|---|---|\n| Price | $199 | $329 |",
        "You can upgrade an Aero 300 to an Aero 500 by paying the $130 price difference.",
        "Standard shipping is free on orders over $50. If the adapter is missing, we deduct $20 from the refund.",
    ]
    question = "How much is the Aero 500?"
    problems = Sources([question, *passages], conversation=[question]).unsupported(answer)
    assert (not problems) is passes, problems


RETURNS = (
    "# Returns\n\n## Return Window\n\nYou can return a purifier bought on halcyonhome.com within 30 days of "
    "delivery, for any reason.\n\n## Defective Units\n\nWe ship a replacement first. You return the defective "
    "purifier within 14 days using the prepaid label in the box."
)


@pytest.mark.parametrize(
    ("question", "answer", "passes"),
    [
        # "14 days" is the defective unit's: the return window's sentence shares more of the words.
        (
            "How many days do I have to send back a purifier?",
            "You can return a purifier within 14 days of delivery.",
            False,
        ),
        (
            "How many days do I have to send back a purifier?",
            "You can return a purifier within 30 days of delivery.",
            True,
        ),
        ("How long do I have to send back a defective purifier?", "You have 14 days to return it.", True),
        # "free" is a price: the Canada row's, "$12", is the one the question asks for.
        ("What does shipping to Canada cost?", "Shipping to Canada is free.", False),
        ("What does shipping to Canada cost?", "Shipping to Canada costs $12.", True),
        ("What does shipping to Canada cost?", "Shipping to Canada costs $12. Feel free to ask.", True),
        ("Is return shipping free?", "Yes, return shipping is free.", True),
        # A figure the customer gave is theirs to repeat.
        (
            "I was told 14 days for returns, is that right?",
            "You can return a purifier within 14 days of delivery.",
            True,
        ),
    ],
)
def test_an_amount_from_another_statement_is_not_supported(question: str, answer: str, passes: bool) -> None:
    """The figure and the words are all in the passages, but the figure belongs to a sentence that
    says something else: another sentence with an amount of the same unit shares more of the words."""
    shipping = (
        "# Shipping\n\n## Options and Costs\n\n| Destination | Delivery time | Cost |\n|---|---|---|\n"
        "| Contiguous US | 3–5 business days | Free on orders over $50 |\n| Canada | 5–8 business days | $12 flat |"
    )
    passages = [RETURNS, shipping, "# Returns\n\n## Labels\n\nReturn shipping is free in the US and Canada."]
    sources = Sources([question, *passages], conversation=[question], question=question)
    problems = sources.unsupported(answer)
    assert (not problems) is passes, problems
    if not passes:
        assert any("for this)" in p for p in problems), problems


def test_values_read_amounts_with_units_prices_and_free() -> None:
    from agent.grounding import values

    assert values("Return it within 14 days; a new one is $39 [2].") == {"14 day", "39 $"}
    assert values("Shipping is free.") == {"0 $"}
    assert values("Feel free to ask; payments are interest-free.") == set()


def test_a_return_window_taken_from_the_defective_unit_falls_back_to_the_window(make_agent) -> None:
    """End to end through the agent: the misbound figure fails, and the quote gives the window."""
    agent = make_agent(
        ScriptedGenerator(["You can return a purifier within 14 days of delivery."]),
        docs={"returns": RETURNS},
    )
    reply = agent.reply("rw", "How many days do I have to send back a purifier?")
    assert "30 days of delivery" in reply.text
    assert reply.grounding["action"] == "extractive"  # type: ignore[index]
    assert any("14 days (the passage gives 30 days for this)" in u for u in reply.grounding["unsupported"])  # type: ignore[index]
    off = make_agent(
        ScriptedGenerator(["You can return a purifier within 14 days of delivery."]),
        docs={"returns": RETURNS},
        grounding__bind_amounts=False,
    )
    assert off.reply("rw2", "How many days do I have to send back a purifier?").text.startswith(
        "You can return"
    )


def test_one_per_page_shows_the_chunk_that_gives_what_was_asked() -> None:
    from agent.knowledge import _one_per_page

    pages = ["specs", "specs", "setup", "specs"]
    texts = [
        "Recommended room size: Aero 300 up to 30 m².",
        "Weight: Aero 300 4.8 kg; Aero 500 7.2 kg.",
        "Carry it by the handle from room to room.",
        "Height: Aero 300 48 cm.",
    ]
    order = [0, 2, 1, 3]
    # The specs page keeps its place (first) but is shown by its weight chunk.
    assert _one_per_page("How much does the Aero 300 weigh?", pages, texts, order) == [1, 2]
    # A question that asks for no measurable thing: each page by its best chunk.
    assert _one_per_page("Is the Aero 300 easy to carry?", pages, texts, order) == [0, 2]
    # No chunk of the page gives it: the best one stays.
    assert _one_per_page("How much does it cost?", pages, texts, order) == [0, 2]
    # Only the first page: the setup page is shown by its best chunk whatever it gives.
    lower = ["Height: Aero 300 48 cm.", "Carry it by the handle.", "Leave 20 cm of space on every side."]
    assert _one_per_page("How tall is it?", ["specs", "setup", "setup"], lower, [0, 1, 2]) == [0, 1]
    # A bare count tells nothing: any chunk has a number.
    assert _one_per_page(
        "How many filters come with it?", pages, ["none", "one 2 three", "x", "y"], order
    ) == [0, 2]


def test_a_chunk_gives_what_was_asked_in_its_body_and_for_the_thing_asked_about() -> None:
    """ "How long do I have to return it?" was shown the chunk titled "After 30 Days" ("After the
    return window closes ..., but defects are covered by the 2-year warranty"): its title and the
    warranty's two years counted as the length of time asked for, so the chunk that gives the 30
    days was never shown."""
    from agent import asked
    from agent.knowledge import _one_per_page

    after = (
        "Returns and Refunds > After 30 Days\n\nAfter the return window closes we cannot accept returns, "
        "but defects are covered by the 2-year warranty."
    )
    window = "Returns and Refunds > The 30-Day Return Window\n\nYou can return a purifier within 30 days of delivery."
    pages, texts = ["returns", "returns", "care"], [after, window, "Halcyon Care > Price\n\nCancel any time."]
    assert _one_per_page("How long do I have to return it?", pages, texts, [0, 2, 1]) == [1, 2]
    assert _one_per_page("What is the return window?", pages, texts, [0, 2, 1]) == [1, 2]
    # Asked about the warranty, its two years answer.
    assert _one_per_page("How long is the warranty?", pages, texts, [0, 2, 1]) == [0, 2]
    assert (
        asked.without_others("covered by the 2-year warranty", "What is the return window?")
        == "covered by the "
    )
    assert (
        asked.without_others("the 30-day return window", "What is the return window?")
        == "the 30-day return window"
    )


@pytest.mark.parametrize(
    ("answer", "passes"),
    [
        ("Brush the top grille every 2 weeks.", False),  # the sleeve's; the grille's row says monthly
        ("Brush the top grille monthly.", True),
        ("Vacuum the pre-filter sleeve every 2 weeks.", True),
    ],
)
def test_a_span_of_time_from_another_row_is_not_supported(answer: str, passes: bool) -> None:
    """ "every 2 weeks" and "Monthly" are amounts of one kind: the grille's row says monthly."""
    schedule = (
        "# Cleaning\n\n## Maintenance Schedule\n\n| Task | How often |\n|---|---|\n"
        "| Vacuum the pre-filter sleeve | Every 2 weeks |\n| Brush the top grille | Monthly |"
    )
    question = "How often should I brush the dust off the top grille?"
    problems = Sources([question, schedule], conversation=[question], question=question).unsupported(answer)
    assert (not problems) is passes, problems


def test_lengths_of_time_in_different_units_are_not_rivals() -> None:
    """ "93 days" for a replacement unit is not weighed against a membership's "5 years", though
    that sentence shares more words: only frequencies compare across units."""
    passages = [
        "# Warranty\n\n## Replacements\n\nReplacement units are covered for the rest of the original warranty "
        "period, or 93 days, whichever is longer.",
        "# Halcyon Care\n\n## Members\n\nCoverage stays in effect while your membership is active, up to "
        "5 years from the original delivery date.",
    ]
    question = "How long will that replacement be covered for?"
    answer = "The replacement is covered for the rest of the original warranty period, or 93 days from the delivery date."
    assert Sources([question, *passages], conversation=[question], question=question)._misbound(answer) == []


def test_a_far_weaker_sentence_of_another_passage_is_not_quoted() -> None:
    """ "What time does live chat open on Saturdays?" quoted the chat hours and, from another page,
    "Orders placed before 2 pm ship the same business day": the second sentence was only the
    next best. A sentence of the same passage, or one close to the best, stays."""
    from agent.grounding import QUOTE_GAP, Evidence, focused

    hours = Evidence(1.2, 1, 0, "Live chat with a person: Saturday 9 am–5 pm.")
    orders = Evidence(1.2 - QUOTE_GAP - 0.01, 2, 0, "Orders placed before 2 pm ship the same business day.")
    assert focused([hours, orders]) == [hours]
    close = Evidence(1.2 - QUOTE_GAP + 0.01, 2, 0, orders.text)
    assert focused([hours, close]) == [hours, close]
    same_page = Evidence(0.5, 1, 1, "Phone: Saturday 9 am–5 pm.")
    assert focused([hours, same_page]) == [hours, same_page]
    # The best does not give what was asked (a price) and the other does: it completes the answer.
    plain = Evidence(1.2, 1, 0, "Shipping to Canada uses our standard service.")
    price = Evidence(0.6, 2, 0, "Canada: $12 flat, duties included.")
    assert focused([plain, price], [("price",)]) == [plain, price]
    assert focused([plain, price]) == [plain]
    assert focused([]) == []


def test_a_best_sentence_that_gives_what_was_asked_is_quoted_without_another_pages_next_best() -> None:
    """ "Is the Aero 300 easy to carry? How much does it weigh?" quoted the weight row and, from
    another page and close to it, "The Aero 300 is sized for rooms up to 30 m²": the best already
    gave the weight, so the second only added a figure nobody asked for. Without a measurable ask,
    or when the best lacks it, a close sentence of another page stays; one of the same page does."""
    from agent.grounding import QUOTE_GAP, Evidence, focused

    weight = Evidence(1.2, 1, 0, "Weight: Aero 300 4.8 kg (10.6 lb); Aero 500 6.9 kg (15.2 lb).")
    rooms = Evidence(1.2 - QUOTE_GAP + 0.01, 2, 0, "The Aero 300 is sized for rooms up to 30 m² (320 sq ft).")
    assert focused([weight, rooms], [("weight",)]) == [weight]
    assert focused([weight, rooms]) == [weight, rooms]
    same_page = Evidence(0.5, 1, 1, "Dimensions: Aero 300 24 × 24 × 48 cm.")
    assert focused([weight, same_page], [("weight",)]) == [weight, same_page]
    plain = Evidence(1.2, 1, 0, "The Aero 300 is light enough to carry from room to room.")
    assert focused([plain, weight], [("weight",)]) == [plain, weight]


def test_extractive_answer_leaves_out_a_far_weaker_sentence_when_ranked_by_meaning() -> None:
    from agent.grounding import Evidence

    passages = ["Contact > Hours\n\nLive chat: Saturday 9 am–5 pm.", "Shipping\n\nOrders ship the same day."]
    ranked = [
        Evidence(1.3, 1, 0, "Live chat: Saturday 9 am–5 pm."),
        Evidence(0.7, 2, 0, "Orders ship the same day."),
    ]
    question = "When does live chat open on Saturday?"
    quoted = extractive_answer(question, passages, ranked=ranked, embed=lambda texts: [])
    assert quoted == "Here is what our help pages say: Live chat: Saturday 9 am–5 pm. [1]"
    # grounding.focused_quotes: false quotes both, as before.
    unfocused = extractive_answer(question, passages, ranked=ranked, embed=lambda texts: [], focus=False)
    assert unfocused is not None and "[2]" in unfocused
    # Ranked by shared words alone, the scores are on another scale: both are quoted, as before.
    both = extractive_answer(question, passages, ranked=ranked)
    assert both is not None and "[2]" in both


ERROR_CODES = [
    "Error Codes E1 to E6 > When to Contact Support\n\nContact us if E1, E3, or E5 keeps returning, or if E4 "
    "appears twice in 24 hours.",
    "Error Codes E1 to E6 > E4: Overheating Protection\n\nThe inside of the purifier is too hot, so it has shut "
    "off the fan to protect itself. 1. Unplug the purifier and let it cool for 30 minutes.",
    "Error Codes E1 to E6 > E3: Fan Motor Error\n\nThe fan has stalled or is not spinning at the expected "
    "speed. 1. Unplug the purifier. A motor fault is covered by the 2-year warranty.",
]


def test_the_section_a_code_names_is_found_and_quoted_for_what_it_means() -> None:
    """ "What does E4 mean?" matched the contact section (it mentions E4) better than the section
    "E4: Overheating Protection"; the code's own section is the answer, by its title and first
    sentence."""
    from agent.grounding import definition_quote, titled_by

    assert titled_by("What does E4 mean?", ERROR_CODES) == [1]
    assert titled_by("What does error code E3 mean on my purifier?", ERROR_CODES) == [2]
    assert titled_by("How do I reset the filter?", ERROR_CODES) == []
    assert definition_quote("What does E4 mean?", ERROR_CODES) == (
        "Here is what our help pages say: E4: Overheating Protection. The inside of the purifier is too "
        "hot, so it has shut off the fan to protect itself. [2]"
    )
    assert definition_quote("What is error E3?", ERROR_CODES) is not None
    # No section named by the code: the usual quote.
    assert definition_quote("What does E9 mean?", ERROR_CODES) is None
    assert extractive_answer("What does E4 mean?", ERROR_CODES) == definition_quote(
        "What does E4 mean?", ERROR_CODES
    )


def test_a_message_naming_a_code_gets_its_section_whole_with_what_to_do() -> None:
    """ "My Aero 500 shows E3." got the model's "I'm sorry, I don't have that information.": the
    best sentences by meaning were the LED page's "The Aero 500 shows the code, such as E4", which
    is about another code, and the E3 section's own sentences scored under the quote's bar. A
    message that names a code without asking what it means gets the code's section: what it is,
    then its steps, numbered."""
    from agent.config import GroundingSettings
    from agent.grounding import definition_quote, fallback_answer

    section = (
        "Error Codes E1 to E6 > E3: Fan Motor Error\n\nThe fan has stalled or is not spinning at the expected "
        "speed.\n\n1. Unplug the purifier.\n2. Look through the top grille for anything that has fallen in.\n"
        "3. Wait 10 minutes, then plug it back in.\n\nIf E3 returns, stop using the purifier and contact support."
    )
    passages = [ERROR_CODES[0], section]
    expected = (
        "Here is what our help pages say: E3: Fan Motor Error. The fan has stalled or is not spinning at "
        "the expected speed. 1. Unplug the purifier. 2. Look through the top grille for anything that has "
        "fallen in. 3. Wait 10 minutes, then plug it back in. If E3 returns, stop using the purifier and "
        "contact support. [2]"
    )
    assert definition_quote("My Aero 500 shows E3.", passages) == expected
    assert definition_quote("How do I fix E3?", passages) == expected
    # Asked what it means: the title and first sentence, as before.
    assert definition_quote("What does E3 mean?", passages) == (
        "Here is what our help pages say: E3: Fan Motor Error. The fan has stalled or is not spinning at "
        "the expected speed. [2]"
    )
    # A question about the code that asks something else gets the section too: it has the answer.
    assert definition_quote("How long should E4 cool down?", ERROR_CODES) == (
        "Here is what our help pages say: E4: Overheating Protection. The inside of the purifier is too "
        "hot, so it has shut off the fan to protect itself. 1. Unplug the purifier and let it cool for 30 "
        "minutes. [2]"
    )
    text, action = fallback_answer("My Aero 500 shows E3.", passages, GroundingSettings(), "Halcyon Home")
    assert (text, action) == (expected, "extractive")


def test_a_code_said_to_mean_what_its_section_does_not_say_fails() -> None:
    """ "E3 means that the motor fault is covered by the 2-year warranty": every word is in the E3
    section, but its last sentence, not what E3 is (the title and first sentence)."""
    question = "My purifier keeps stopping with E3 or E4 on the display."
    sources = Sources([question, *ERROR_CODES], conversation=[question], question=question)
    wrong = sources.unsupported("E3 means that the motor fault is covered by the 2-year warranty.")
    assert wrong == ["E3 (its section defines it otherwise)"]
    assert sources.unsupported("E4 is an error.") == ["E4 (its section defines it otherwise)"]
    assert sources.unsupported("E3 means the fan has stalled or is not spinning at the expected speed.") == []
    assert sources.unsupported("E3 is a fan motor error: unplug the purifier.") == []
    assert sources.unsupported("E4 means the purifier is too hot and has shut off the fan.") == []
    # A code with no section of its own, or a sentence that does not define: not this rule's business.
    assert sources.unsupported("Contact us if E1 keeps returning.") == []
    # Asked what it means, the answer must also say what the section calls it: "shut down to
    # protect itself" is true of E4, but the customer is not told it overheated.
    asked = "What does error code E4 mean on my purifier?"
    meaning = Sources([asked, *ERROR_CODES], conversation=[asked], question=asked)
    assert meaning.unsupported("E4 means the purifier has shut down to protect itself.") == [
        "E4 (its section calls it Overheating Protection)"
    ]
    assert meaning.unsupported("E4 means overheating protection: the purifier is too hot.") == []


def test_a_definition_that_lacks_what_else_was_asked_is_not_the_whole_quote() -> None:
    """ "What does E4 mean, and how long should it cool?" asks for a length of time too: the
    definition alone does not answer, so the usual quote (which gives it) is sent."""
    question = "What does E4 mean, and how long should it cool?"
    quoted = extractive_answer(question, ERROR_CODES, asks=[("duration", "length", "clock")])
    assert quoted is not None and "30 minutes" in quoted


BILLING = (
    "Billing and Payments > Accepted Payment Methods\n\n- Visa, Mastercard, American Express, and Discover\n"
    "- PayPal\n- Apple Pay and Google Pay\n\nWe do not accept checks, cash on delivery, or cryptocurrency."
)


def test_a_short_list_item_is_read_and_quoted_with_its_section_title() -> None:
    """ "Do you take PayPal?" was declined: the list item "PayPal" was too short to be a sentence.
    It is one now, read with its section's title; a short sentence of its own is still skipped."""
    ranked = rank_sentences("Do you take PayPal?", [BILLING])
    assert ranked[0].text == "Accepted Payment Methods: PayPal"
    quoted = extractive_answer("Do you take PayPal?", [BILLING], max_sentences=1)
    assert quoted == "Here is what our help pages say: Accepted Payment Methods: PayPal. [1]"
    steps = "Errors > E3\n\n1. Unplug the purifier. 2. Wait 10 minutes, then plug it back in."
    assert [e.text for e in rank_sentences("Can I plug it back in?", [steps])] == [
        "Wait 10 minutes, then plug it back in."
    ]


def test_a_list_lead_in_is_never_quoted_alone() -> None:
    """ "Can I put the purifier in my bathroom?" was answered "If you put the purifier away for a
    season:." -- a lead-in that says nothing without the list after it."""
    storing = (
        "Cleaning > Storing the Purifier\n\nIf you put the purifier away for a season:\n\n"
        "1. Clean the pre-filter and let it dry fully.\n2. Store the purifier upright in a dry place."
    )
    quoted = extractive_answer("Can I put the purifier away?", [storing], max_sentences=1)
    assert quoted is not None and "season:" not in quoted


@pytest.mark.parametrize(
    ("question", "sentence", "says_no"),
    [
        ("Can the Aero join a 5 GHz Wi-Fi network?", "It cannot join a 5 GHz network.", True),
        ("Can I run the purifier outdoors on my patio?", "Where Not to Use It: Not outdoors", True),
        ("Do you accept checks?", "We do not accept checks, cash on delivery, or cryptocurrency.", True),
        ("Can I use a voltage converter?", "Do not use voltage converters or travel adapters.", True),
        (
            "Can I run it in the laundry room?",
            "Not in bathrooms, laundry rooms, or anywhere it could get wet",
            True,
        ),
        ("The ring is pulsing purple, can I unplug it?", "Do not unplug the purifier.", True),
        # The "no" is about something else than what was asked.
        ("Can I change my schedules with Google Home?", "This does not erase your schedules.", False),
        (
            "Is the Aero certified for low ozone?",
            "It has no ionizer, no UV lamp, and no plasma generator.",
            False,
        ),
        ("Can I use an extension cord?", "Do not use the purifier if the cord is damaged.", False),
        ("Can I pause it while I travel?", "No payments are taken while paused.", False),
        # A "no" says no to each thing of the list it opens, up to the clause's end.
        (
            "Can my roommate see my orders if I invite them?",
            "Members can create schedules, but they cannot remove devices, see orders, or manage Halcyon Care.",
            True,
        ),
        (
            "Can a member create schedules?",
            "Members can create schedules, but they cannot remove devices, see orders, or manage Halcyon Care.",
            False,
        ),
        (
            "Can I see my orders in the app?",
            "You cannot remove devices, but see orders under Profile.",
            False,
        ),
        # Asked whether something lasts, told that it ends.
        (
            "If I switch it off and on again, does that timer keep going?",
            "A timer is cancelled if you turn the purifier off and on.",
            True,
        ),
        ("Are my air quality readings kept forever?", "Device readings: 13 months, then deleted.", True),
        ("Will my schedules be kept after a network reset?", "This does not erase your schedules.", False),
        ("Does the timer keep going?", "Wipe the body with a soft cloth.", False),
        # The question asks about ending it: "cancel" is its topic, not a "no".
        (
            "I ordered 40 minutes ago. Can I still cancel it?",
            "You can cancel an order within 1 hour of placing it.",
            False,
        ),
        # Not a yes-or-no question.
        ("How do I join a 5 GHz network?", "It cannot join a 5 GHz network.", False),
        # Asked with a verb that says little ("work"), told no in another verb about all the rest
        # (the chat got "Yes, the Aero connects to 2.4 GHz networks. It cannot join a 5 GHz network.").
        ("Does it work with 5 GHz?", "It cannot join a 5 GHz network.", True),
        ("Does it work with 2.4 GHz?", "It cannot join a 5 GHz network.", False),  # "2.4" is not "5"
        ("Does it work with Alexa?", "It does not work with IFTTT.", False),
        ("Can I put it in the bathroom?", "Do not place it near water.", False),
        # Asked about more than one, told one is the limit.
        (
            "I have a welcome code and one from a friend. Can I use both on the same order?",
            "Only one promo code can be used per order, and it must be entered at checkout.",
            True,
        ),
        (
            "Will one Halcyon Care membership cover both?",
            "Each membership covers one purifier; if you have two purifiers, add a membership for each.",
            True,
        ),
        ("Can I use one promo code on my order?", "Only one promo code can be used per order.", False),
        ("Can I use both filters?", "Only one promo code can be used per order.", False),
        # A table row whose cell says no, about what the question names (or points back to).
        ("Does the Aero work with Apple HomeKit?", "Apple HomeKit / Siri: Supported Not currently.", True),
        (
            "I run my whole house through IFTTT. Is there an integration for it?",
            "IFTTT: Supported Not currently.",
            True,
        ),
        ("I use IFTTT a lot. Does the Aero work with Alexa?", "IFTTT: Supported Not currently.", False),
        ("Does the Aero work with Alexa?", "Amazon Alexa: Supported Yes.", False),
        ("Is my Wi-Fi icon off?", "Wi-Fi icon off: No connection to the router.", False),
    ],
)
def test_a_sentence_says_no_to_a_yes_or_no_question(question: str, sentence: str, says_no: bool) -> None:
    from agent.grounding import says_no_to

    assert says_no_to(question, sentence) is says_no


WIFI = (
    "Wi-Fi and App Pairing > Before You Start\n\nThe Aero connects to 2.4 GHz networks (802.11 b/g/n). It "
    "cannot join a 5 GHz network. Turn on Bluetooth on your phone."
)


class BagKnowledge(KeywordKnowledge):
    """Keyword search plus a bag-of-words embedding over ``VOCAB``."""

    VOCAB: tuple[str, ...] = ()

    def embed(self, texts: list[str]) -> Any:
        import numpy as np

        vectors = np.array([[t.lower().count(w) for w in self.VOCAB] for t in texts], dtype=np.float32) + 1e-3
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class WifiKnowledge(BagKnowledge):
    VOCAB = ("ghz", "join", "network", "bluetooth", "aero", "brightness", "display", "app")


@pytest.mark.parametrize(
    ("answer", "sent"),
    [
        ("Yes, the Aero connects to 5 GHz networks (802.11 b/g/n).", False),  # every word is in the passage
        ("Yes, the Aero connects to 2.4 GHz networks.", False),
        ("No, it cannot join a 5 GHz network. It connects to 2.4 GHz networks.", True),
    ],
)
def test_a_yes_that_a_passage_answers_no_is_not_sent(make_agent, answer: str, sent: bool) -> None:
    """End to end through the agent: "Yes" to "Can the Aero join a 5 GHz network?" beside "It
    cannot join a 5 GHz network." fails, and the quote gives the "no"."""
    agent = make_agent(ScriptedGenerator([answer]), docs={"wifi": WIFI})
    agent.knowledge = WifiKnowledge({"wifi": WIFI})
    reply = agent.reply("ghz", "Can the Aero join a 5 GHz Wi-Fi network?")
    assert reply.grounding is not None
    if sent:
        assert reply.text == answer and reply.grounding["action"] == "sent"
    else:
        assert "cannot join a 5 GHz network" in reply.text and reply.grounding["action"] == "extractive"
        assert any("says no" in u for u in reply.grounding["unsupported"]), reply.grounding  # type: ignore[union-attr]
    # grounding.match_question: false leaves the "Yes" to the rest of the check, as before.
    off = make_agent(ScriptedGenerator([answer]), docs={"wifi": WIFI}, grounding__match_question=False)
    off.knowledge = WifiKnowledge({"wifi": WIFI})
    assert off.reply("ghz-off", "Can the Aero join a 5 GHz Wi-Fi network?").text == answer


def test_the_sentence_that_says_no_leads_the_quote() -> None:
    """ "Can I run the purifier outdoors on my patio?": "Not outdoors" ranked third, under two
    sentences that share more words; the quote now leads with it, under the ranking's best score."""
    from agent.config import GroundingSettings, Persona
    from agent.grounding import Evidence, denial, fallback_answer, turn_gate
    from agent.prompt import Passage

    question = "Can I run the purifier outdoors on my patio?"
    ranked = [
        Evidence(0.53, 2, 0, "Outdoor air quality in the app is not measured by your purifier."),
        Evidence(0.51, 1, 0, "Keep 20 cm (8 in) of space around the purifier."),
        Evidence(0.40, 1, 1, "Where Not to Use It: Not outdoors"),
    ]
    assert denial(question, ranked) == ranked[2]
    assert denial(question, ranked[:2]) is None
    assert denial("How far from the wall should it be?", ranked) is None
    # Below the three best, a "no" with a word of the question no other sentence has.
    bathroom = Evidence(0.3, 1, 2, "Not in bathrooms, laundry rooms, or anywhere it could get wet")
    assert denial("Can I put the purifier in my bathroom?", [*ranked[:2], ranked[2], bathroom]) == bathroom
    assert denial("Can I put the purifier in my bathroom?", [*ranked[:2], ranked[2]]) is None
    # The "no" must have what is most particular to the question ("extension"), not just "cord".
    cords = [
        Evidence(0.7, 1, 0, "Do not use the purifier if the cord, plug, or adapter is damaged."),
        Evidence(0.6, 1, 1, "A heavy-duty extension cord is acceptable."),
        Evidence(0.5, 1, 2, "Do not run the cord under rugs or carpets."),
    ]
    assert denial("Is it ok to run the purifier off an extension cord?", cords) is None
    safety = "Safety > Where Not to Use It\n\n- Not in bathrooms\n- Not outdoors\n\nKeep 20 cm (8 in) of space around the purifier."
    sensor = "Sensor > Outdoor Air\n\nOutdoor air quality in the app is not measured by your purifier."
    passages = [Passage(doc_id="s", source="s", text=safety), Passage(doc_id="o", source="o", text=sensor)]
    words = ("outdoor", "purifier", "space", "air", "bathrooms")

    def embed(texts: list[str]) -> Any:
        import numpy as np

        vectors = np.array([[t.lower().count(w) for w in words] for t in texts], dtype=np.float32) + 1e-3
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    settings = GroundingSettings()
    gate = turn_gate(question, [], passages, settings, Persona(), embed)
    assert gate.denied == "Where Not to Use It: Not outdoors"
    assert gate.ranked is not None and gate.ranked[0].text == gate.denied
    text, action = fallback_answer(
        question, [p.text for p in passages], settings, "Acme", ranked=gate.ranked, embed=embed, gate=gate
    )
    assert action == "extractive" and "Not outdoors" in text


def test_an_answer_read_from_the_sentence_about_the_other_model_fails(make_agent) -> None:
    """ "How do I turn the display brightness down on the Aero 500?" answered with the Aero 300's
    way ("in the app under Device settings > Lights"): every word is in the passage, in the
    sentence about the other model. The fallback quotes the Aero 500's."""
    from agent.grounding import Evidence, read_from_another

    lights = (
        "LED Indicators > Brightness\n\nOn the Aero 500, press the Display button to cycle brightness between "
        "100%, 50%, and off. On the Aero 300, change brightness in the app under Device settings > Lights."
    )
    question = "How do I turn the display brightness down on the Aero 500?"
    wrong = "Change the brightness in the app under Device settings > Lights."
    ranked = [Evidence(1.0, 1, i, s) for i, s in enumerate(passage_sentences(lights))]
    assert read_from_another(question, wrong, ranked) == ranked[1].text
    assert read_from_another(question, "Press the Display button to cycle brightness.", ranked) is None
    # It names the asked model itself, or the question names none: not this rule's business.
    assert read_from_another(question, "On the Aero 500, change brightness in the app.", ranked) is None
    assert read_from_another("How do I change the brightness?", wrong, ranked) is None

    agent = make_agent(ScriptedGenerator([wrong]), docs={"lights": lights})
    agent.knowledge = WifiKnowledge({"lights": lights})
    reply = agent.reply("dim", question)
    assert reply.grounding is not None and reply.grounding["action"] == "extractive", reply.grounding
    assert "press the Display button" in reply.text and "Device settings" not in reply.text


LED_PAGE = (
    "LED Indicators > Patterns\n\n- Purple, blinking 3 times: a firmware update failed and the purifier "
    "went back to its previous version.\n- Purple, pulsing: a firmware update is being installed.\n- Wi-Fi "
    "icon blinking orange: the purifier reached your router but could not get online.\n- Solid white: "
    "connected."
)


def led_sources(question: str) -> Sources:
    """The check's sources for ``question`` asked beside ``LED_PAGE``."""
    return Sources([question, LED_PAGE], conversation=[question], question=question)


def test_a_list_item_s_label_given_another_item_s_meaning_fails() -> None:
    """ "The wifi light is blinking orange. What's wrong?" got "The wifi icon blinking orange is a
    firmware update failure": every word is on the page, the meaning is the purple ring's."""
    question = "The wifi light on my purifier is blinking orange. What's wrong?"
    sources = led_sources(question)
    wrong = sources.unsupported("The wifi icon blinking orange is a firmware update failure.")
    assert wrong and "another item of the list" in wrong[0]
    assert sources.unsupported("The Wi-Fi icon blinking orange means it could not get online.") == []
    assert (
        sources.unsupported("Your purifier reached your router but could not get online.") == []
    )  # no label
    # A row of a table with several columns is not such an item: it is a thing's values, not a meaning.
    table = Sources(
        [question, "Colors\n\n| Color | Ring | Icon |\n|---|---|---|\n| Blinking orange | Off | On |"]
    )
    assert table._items == []


def test_a_quote_keeps_the_list_item_whose_label_the_question_names() -> None:
    """ "The wifi light is blinking orange. What's wrong?" was quoted the purple ring's item beside
    the orange one: both labels share "blinking", the orange one shares three of its words."""
    from agent.grounding import Evidence, named_items

    question = "The wifi light on my purifier is blinking orange. What's wrong?"
    purple = Evidence(0.72, 1, 0, "Purple, blinking 3 times: a firmware update failed.")
    orange = Evidence(0.73, 2, 0, "Wi-Fi icon blinking orange: the purifier could not get online.")
    plain = Evidence(0.5, 2, 1, "Check the password and make sure the network has internet access.")
    assert named_items(question, [orange, purple, plain]) == [orange, plain]
    # No label shares two of the question's words: nothing is left out.
    assert named_items("Why won't it connect?", [orange, purple, plain]) == [orange, purple, plain]
    quoted = extractive_answer(
        question, ["LED\n\nx", "Wi-Fi\n\ny"], ranked=[orange, purple, plain], same_member=True
    )
    assert quoted is not None and "firmware" not in quoted and "could not get online" in quoted


def test_a_list_item_the_question_names_given_a_meaning_it_does_not_have_fails() -> None:
    """ "the ring just blinked purple 3 times, what happened?" got "The ring blinks purple 3 times
    when the purifier is switched on": the question names the item "Purple, blinking 3 times", and
    the answer shares one word ("purifier") with what the item says it means."""
    sources = led_sources("the ring just blinked purple 3 times, what happened?")
    wrong = sources.unsupported("The ring blinks purple 3 times when the purifier is switched on.")
    assert wrong and "not what the pages say it means" in wrong[0]
    assert sources.unsupported("Purple blinking 3 times means a firmware update failed.") == []
    # The question does not name the item: the sentence is read as before (its one shared word is
    # half of what it adds, and no other item says more).
    loose = led_sources("What does the purifier do when it is switched on?")
    assert loose.unsupported("The ring blinks purple 3 times when the purifier is switched on.") == []


DARK = "the little wifi symbol on my aero 300 isn't lit at all. not blinking, not white, not orange, just dark. is it broken?"


def test_what_the_customer_says_not_to_is_ruled_out_clause_by_clause() -> None:
    """Each thing a "not" is about, to the end of its clause, each item of an "or" list on its own;
    a "no" names what the customer lacks and rules nothing out."""
    from agent.grounding import ruled_out

    assert ruled_out(DARK) == [{"lit"}, {"blink"}, {"white"}, {"orang"}]  # "just dark" is affirmed
    assert ruled_out("It isn't blinking orange, it's blinking white.") == [{"blink", "orang"}]
    assert ruled_out("Why is my light not blinking or orange?") == [{"blink"}, {"orang"}]
    assert ruled_out("I have no Wi-Fi at home. How do I use it?") == []


def test_a_list_item_the_customer_said_it_is_not_fails_and_is_not_quoted() -> None:
    """fresh3's f3-015: "not blinking, not white, not orange, just dark" got "It's likely that the
    Wi-Fi icon blinking orange: the purifier reached your router ...", the one item the customer
    ruled out; the quote gave it first too. Neither is sent; the "Off" item is quoted."""
    from agent.grounding import Evidence, named_items

    sources = led_sources(DARK)
    wrong = sources.unsupported(
        "It's likely that the Wi-Fi icon blinking orange: the purifier could not get online."
    )
    assert wrong and "the customer said it is not that" in wrong[0]
    asked = led_sources("The wifi light on my purifier is blinking orange. What's wrong?")
    assert asked.unsupported("The Wi-Fi icon blinking orange means it could not get online.") == []
    orange = Evidence(0.73, 1, 0, "Blinking orange: connected to the router but cannot reach the internet.")
    off = Evidence(0.6, 1, 1, "Off: Wi-Fi has not been set up or was turned off.")
    assert named_items(DARK, [orange, off]) == [off]
    quoted = extractive_answer(DARK, ["LED > Status Icons\n\nx"], ranked=[orange, off], same_member=True)
    assert quoted is not None and "orange" not in quoted and "not been set up" in quoted


def test_a_sentence_that_says_back_wifi_as_wi_fi_is_an_echo() -> None:
    """ "The little Wi-Fi symbol on the aero 300 is not lit at all." says back the customer's "wifi":
    held until something backs it, not sent alone when the next sentence fails."""
    sources = led_sources(DARK)
    assert sources.echoes("The little Wi-Fi symbol on the aero 300 is not lit at all.")
    assert not sources.echoes("The Wi-Fi icon is off when Wi-Fi has not been set up.")


def test_a_figure_a_passage_clause_gives_another_model_fails() -> None:
    """ "What comes in the box with the Aero 500?" got "The Aero 500 comes with the external PA-24
    power adapter": the passage gives the PA-24 in the clause about the Aero 300."""
    box = (
        "Getting Started > What's in the Box\n\n- A power supply: the Aero 300 comes with the external PA-24 "
        "power adapter (24 V DC, 1.5 m cable); the Aero 500 has a built-in power supply and a 1.8 m cord"
    )
    question = "What comes in the box with the Aero 500?"
    sources = Sources([question, box], conversation=[question], question=question)
    wrong = sources.unsupported("The Aero 500 comes with the external PA-24 power adapter and a 1.8 m cord.")
    assert wrong == ["pa-24 (the passage gives it for the Aero 300)"]
    assert sources.unsupported("The Aero 500 has a built-in power supply and a 1.8 m cord.") == []
    assert sources.unsupported("The Aero 300 comes with the external PA-24 power adapter.") == []
    # A clause that names both models gives its figures to either.
    both = "Sleep Mode\n\nSleep runs the fan at its quietest (22 dB on the Aero 300, 20 dB on the Aero 500)."
    quiet = Sources([question, both], conversation=[question], question=question)
    assert quiet.unsupported("The Aero 500 is 22 dB in Sleep mode.") == []


def test_a_figure_given_before_and_the_other_model_is_the_first_model_s() -> None:
    """ "What's the largest room the Aero 500 is meant for?" got "The Aero 500 is designed for rooms
    up to 30 m² (320 sq ft)", beside "The Aero 300 is sized for rooms up to 30 m² (320 sq ft) and
    the Aero 500 for rooms up to 55 m² (590 sq ft)": an "and" that opens a clause about another
    model ends the first one's, so 30 m² is the Aero 300's (a held-out answer; session 38)."""
    question = "What's the largest room the Aero 500 is meant for?"
    spot = (
        "Getting Started > Step 2: Choose a Good Spot\n\n- Do not use it in bathrooms. The Aero 300 is sized "
        "for rooms up to 30 m² (320 sq ft) and the Aero 500 for rooms up to 55 m² (590 sq ft)."
    )
    sources = Sources([question, spot], conversation=[question], question=question)
    wrong = sources.unsupported("The Aero 500 is designed for rooms up to 30 m² (320 sq ft).")
    assert wrong and wrong[0] == "30 (the passage gives it for the Aero 300)"
    assert sources.unsupported("The Aero 500 is designed for rooms up to 55 m² (590 sq ft).") == []
    assert sources.unsupported("The Aero 300 is sized for rooms up to 30 m² (320 sq ft).") == []
    # An "and" inside one model's clause still binds nothing away: "A and B cost $9" names both.
    both = Sources([question, "Parts\n\nThe Aero 300 and the Aero 500 sleeves cost $9."], question=question)
    assert both.unsupported("The Aero 500 sleeve costs $9.") == []
    assert both.unsupported("The Aero 300 sleeve costs $9.") == []


def test_a_decline_gives_way_to_a_quote_that_matches_well_with_few_of_the_customer_s_words() -> None:
    """ "I typed my password wrong a bunch of times and now I'm locked out": the model declined,
    and the row that answers has only "password" and "locked" of the customer's eight words. A best
    sentence scoring ``QUOTE_SURE_SCORE`` or more needs only ``QUOTE_SURE_COVERAGE`` of them."""
    from agent.grounding import QUOTE_SURE_SCORE, Evidence

    page = (
        "Accounts and Login > Locked Account\n\nAfter 5 incorrect password attempts, your account is locked "
        "for 15 minutes. Wait 15 minutes and try again, or reset your password."
    )
    question = "I typed my password wrong a bunch of times and now I'm locked out"
    sentence = "After 5 incorrect password attempts, your account is locked for 15 minutes."
    sure = [Evidence(QUOTE_SURE_SCORE + 0.04, 1, 0, sentence)]
    quoted = quote_for_decline(question, [page], sure, 0.6, None)
    assert quoted is not None and "locked for 15 minutes" in quoted
    # Ranked less surely, the same words are too few: the decline stands.
    unsure = [Evidence(QUOTE_SURE_SCORE - 0.05, 1, 0, sentence)]
    assert quote_for_decline(question, [page], unsure, 0.6, None) is None
    # A yes-or-no question needs its own words in the quote, however close the sentence.
    yes_no = "Is my account locked forever after typing wrong passwords a bunch of times?"
    assert quote_for_decline(yes_no, [page], sure, 0.6, None) is None


def test_a_no_that_goes_on_to_say_what_the_passage_says_yes_to_fails() -> None:
    """ "We had a power cut. Will the purifier go back to what it was doing?" got "No, the purifier
    remembers its last mode and returns to it.": the "No" is the model's, the rest is the page's
    "yes", and no passage sentence says no."""
    from agent.grounding import unbacked_no

    question = "We had a power cut. Will the purifier go back to what it was doing?"
    wrong = "No, the purifier remembers its last mode and returns to it."
    assert unbacked_no(question, wrong, None)
    assert not unbacked_no(question, wrong, "It does not return to its last mode.")  # a "no" backs it
    assert not unbacked_no(question, "No, it does not remember its last mode.", None)  # its own "not"
    assert not unbacked_no(question, "No.", None)  # a bare verdict: held until a sentence backs it
    assert not unbacked_no("How does the purifier come back after a power cut?", wrong, None)
    page = "After a Power Outage\n\nThe purifier remembers its last mode and returns to it when power comes back."
    sources = Sources([page, question], conversation=[question], question=question)
    gate = SentenceGate(sources, same_member=True)
    assert gate.feed(wrong, final=True) == 0
    assert gate.failed == ["it says no, and then what the passage says yes to"]
    off = SentenceGate(sources)  # grounding.match_question: false
    assert off.feed(wrong, final=True) == len(wrong) and not off.failed
    right = SentenceGate(sources, same_member=True)
    text = "Yes, the purifier remembers its last mode and returns to it."
    assert right.feed(text, final=True) == len(text) and not right.failed


PRICE_DROP = (
    "Billing and Payments > Price Adjustment\n\nIf the price of an item you bought on halcyonhome.com drops "
    "within 14 days of your purchase, we will refund the difference once per order. Ask Aria or our support "
    "team with your order number."
)


def test_a_yes_without_the_condition_its_passage_sets_fails() -> None:
    """ "The price dropped a few days after I ordered. Can I get the difference back?" got "Yes, we
    will refund the difference once per order.": the passage says so only "within 14 days". The
    "Yes" is held until a sentence gives the condition's amount; an answer that never does fails."""
    from agent.grounding import Evidence, unstated_condition

    question = "The price dropped a few days after I ordered. Can I get the difference back?"
    rule = (
        "If the price of an item you bought on halcyonhome.com drops within 14 days of your purchase, "
        "we will refund the difference once per order."
    )
    ranked = [
        Evidence(0.67, 1, 0, rule),
        Evidence(0.53, 1, 1, "Ask Aria or our support team with your order number."),
    ]
    bare = "Yes, we will refund the difference once per order."
    assert unstated_condition(question, bare, ranked, set()) == ({"14 day"}, rule)
    assert (
        unstated_condition(question, "Yes, within 14 days we will refund the difference.", ranked, set())
        is None
    )
    assert unstated_condition(question, bare, ranked, {"14 day"}) is None  # the customer said it
    assert unstated_condition("How do price adjustments work?", bare, ranked, set()) is None  # not yes-or-no
    sources = Sources([PRICE_DROP, question], conversation=[question], question=question)
    gate = SentenceGate(sources, ranked=ranked, same_member=True)
    assert gate.feed(bare, final=True) == 0
    assert gate.failed and "without the condition" in gate.failed[0]
    # The condition in a later sentence releases the "Yes" with it.
    later = bare + " This applies within 14 days of your purchase."
    gate = SentenceGate(sources, ranked=ranked, same_member=True)
    assert gate.feed(later, final=True) == len(later) and not gate.failed
    # grounding.match_question: false leaves the "Yes" to the rest of the check, as before.
    off = SentenceGate(sources, ranked=ranked)
    assert off.feed(bare, final=True) == len(bare) and not off.failed


def test_an_amount_given_to_a_thing_its_passage_does_not_name_fails() -> None:
    """ "How much is a replacement cover?" got "The replacement cover is $9": $9 is what the
    passage says a replacement sleeve costs. A name the question has ("Aero") need not be there."""
    sleeve = (
        "Cleaning and Maintenance > Pre-Filter Sleeve\n\nIf the sleeve tears, you can order a replacement "
        "sleeve (PS-300 for the Aero 300 or PS-500 for the Aero 500) for $9."
    )
    question = "I cracked the bottom cover on my Aero 500. How much is a replacement cover?"
    sources = Sources([question, sleeve], conversation=[question], question=question)
    assert sources.unsupported("The replacement cover is $9.") == [
        "$9 (the passage gives it for something else than cover)"
    ]
    # The reason names the question's own words, not the stems they are compared by ("remot").
    remote = "How much is a replacement remote control for my Aero 500?"
    assert Sources([remote, sleeve], conversation=[remote], question=remote).unsupported(
        "A replacement remote control is $9."
    ) == ["$9 (the passage gives it for something else than control, remote)"]
    asked_sleeve = "How much is a replacement sleeve for my Aero 500?"
    right = Sources([asked_sleeve, sleeve], conversation=[asked_sleeve], question=asked_sleeve)
    assert right.unsupported("A replacement sleeve for the Aero 500 is $9.") == []
    off = Sources([question, sleeve], conversation=[question], question=question, bind_amounts=False)
    assert off.unsupported("The replacement cover is $9.") == []


def test_a_clause_without_the_questions_words_speaks_of_the_sentences_subject() -> None:
    """ "What's the version number of the newest Aero firmware?" got "The latest Aero firmware is
    HA3- and HA5-, followed by 10 characters": the 10 characters are the serial number's, and the
    clause that gives them names nothing the question does, so it is read with the sentence's
    subject (the firmware)."""
    serial = (
        "Warranty > Finding Your Serial Number\n\nAero 300 serial numbers start with HA3- and Aero 500 "
        "serial numbers start with HA5-, followed by 10 characters."
    )
    question = "What's the version number of the newest Aero firmware?"
    sources = Sources([question, serial], conversation=[question], question=question)
    assert sources.unsupported("The latest Aero firmware is HA3- and HA5-, followed by 10 characters.") == [
        "10 characters (the passage gives it for something else than firmware)"
    ]
    asked = "What do Aero 500 serial numbers start with?"
    right = Sources([asked, serial], conversation=[asked], question=asked)
    assert right.unsupported("Aero 500 serial numbers start with HA5-, followed by 10 characters.") == []


def test_a_decline_gives_way_to_a_quote_that_gives_what_was_asked_a_little_below_the_bar() -> None:
    """ "How long does a sensor recalibration take?": the model declined, and "Calibration takes
    15 minutes" scored under ``quote_over_decline`` ("recalibration" and "calibration" share no
    stem). A sentence that gives the kind of amount asked for needs only ``ASKED_QUOTE_SCORE``."""
    from agent.asked import asked_kinds
    from agent.grounding import ASKED_QUOTE_SCORE, Evidence

    page = (
        "Troubleshooting the Air Quality Sensor > Recalibrating the Sensor\n\nIf readings still seem off, "
        "recalibrate from the app. Calibration takes 15 minutes, during which the ring breathes white."
    )
    question = "How long does a sensor recalibration take?"
    sentence = "Calibration takes 15 minutes, during which the ring breathes white."
    asks = asked_kinds(question)
    quoted = quote_for_decline(
        question, [page], [Evidence(ASKED_QUOTE_SCORE + 0.02, 1, 1, sentence)], 0.6, None, asks
    )
    assert quoted is not None and "15 minutes" in quoted
    close = [Evidence(ASKED_QUOTE_SCORE + 0.02, 1, 1, sentence)]
    assert quote_for_decline(question, [page], close, 0.6, None) is None  # nothing asked: the bar stands
    lower = [Evidence(ASKED_QUOTE_SCORE - 0.02, 1, 1, sentence)]
    assert quote_for_decline(question, [page], lower, 0.6, None, asks) is None
    # A sentence that does not give a length of time keeps the bar: the decline stands.
    other = [
        Evidence(ASKED_QUOTE_SCORE + 0.02, 1, 0, "If readings still seem off, recalibrate from the app.")
    ]
    assert quote_for_decline(question, [page], other, 0.6, None, asks) is None


def test_a_short_word_and_its_plural_share_a_stem() -> None:
    """ "How long will that take?" and "An update takes up to 10 minutes" share "take": a word of
    four or five letters loses its plural "s" before it is cut to five letters ("less", "plus" and
    "this" keep theirs), so the quote over a decline sees the question's word."""
    from agent.grounding import _stem, _stems

    assert _stem("takes") == _stem("take") == "take"
    assert _stem("days") == _stem("day") and _stem("minutes") == _stem("minute") == "minut"
    assert [_stem(w) for w in ("less", "plus", "this", "yes")] == ["less", "plus", "this", "yes"]
    assert _stems("An update takes up to 10 minutes.") >= {"updat", "take", "minut"}


def test_a_yes_that_gives_what_was_asked_is_still_held_for_its_condition() -> None:
    """A "Yes" that gives the kind of amount asked for is not released before the limit its
    passage sets: "Can I get a refund, and how much?" answered "Yes, you get $20 back."."""
    from agent.asked import asked_kinds
    from agent.grounding import Evidence

    page = "Returns > Refunds\n\nIf you return it within 30 days, we refund $20 to your card."
    question = "Can I get a refund, and how much do I get back?"
    ranked = [Evidence(0.7, 1, 0, "If you return it within 30 days, we refund $20 to your card.")]
    sources = Sources([page, question], conversation=[question], question=question)
    answer = "Yes, we refund $20 to your card."
    gate = SentenceGate(sources, ranked=ranked, asks=asked_kinds(question), same_member=True)
    assert gate.feed(answer, final=True) == 0 and gate.failed


CASES_LIST = (
    "Warranty > Coverage Period\n - **New purifiers:** 2 years from the delivery date. - **Halcyon Care "
    "members:** coverage continues for as long as the membership stays active, up to 5 years from the "
    "original delivery date. - **Certified Refurbished purifiers:** 1 year from the delivery date. - "
    "**Replacement units** sent under warranty are covered for the rest of the original warranty "
    "period, or 90 days, whichever is longer. It is not transferable to a new owner."
)
SPEC_LIST = (
    "Product Specifications > Aero 500\n- **Filtration:** pre-filter, H13 HEPA (at least 99.95% of "
    "particles down to 0.3 microns), activated carbon\n- **Power input:** 120 V, 60 Hz\n- **Wi-Fi:** "
    "2.4 GHz\n- **Operating conditions:** 5 to 35 °C, up to 85% relative humidity\n- **Warranty:** 2 years"
)


def test_a_list_of_labelled_cases_is_read_item_by_item() -> None:
    from agent.grounding import labelled_lists

    (items,) = labelled_lists([SHIPPING, CASES_LIST])
    assert [label for label, _, _ in items] == [
        "New purifiers",
        "Halcyon Care members",
        "Certified Refurbished purifiers",
        "Replacement units",
    ]
    assert items[0][1] == "New purifiers: 2 years from the delivery date." and items[0][2] == 2
    assert items[3][1].startswith("Replacement units sent under warranty")


@pytest.mark.parametrize(
    ("question", "sentence", "case"),
    [
        # One case's amount given as the whole answer: the special case, last in the list.
        (
            "How long is the warranty?",
            "The warranty is covered for the rest of the original warranty period, or 90 days.",
            "Replacement units",
        ),
        (
            "How long is the warranty?",
            "The warranty lasts 1 year from the delivery date.",
            "Certified Refurbished purifiers",
        ),
        # "purifier" is in two labels: it names neither case.
        (
            "How long is the warranty on my purifier?",
            "Your purifier is covered for 90 days.",
            "Replacement units",
        ),
        # The list's first item is the general case.
        ("How long is the warranty?", "The warranty lasts 2 years from the delivery date.", None),
        # The question, or the answer, names the case.
        ("How long are replacement units covered?", "They are covered for 90 days.", None),
        ("How long is the warranty?", "Refurbished purifiers are covered for 1 year.", None),
        # Nothing asked for an amount of this kind, or no amount given.
        ("Is the warranty transferable?", "The warranty lasts 1 year from the delivery date.", None),
        ("How long is the warranty?", "It depends on the purifier.", None),
    ],
)
def test_one_case_of_a_list_given_as_the_whole_answer_fails(question: str, sentence: str, case: Any) -> None:
    from agent import asked
    from agent.grounding import labelled_lists, one_case

    assert one_case(question, sentence, labelled_lists([CASES_LIST]), asked.asked_kinds(question)) == case


def test_a_list_of_specifications_is_not_a_list_of_cases() -> None:
    """A percentage, a voltage, a frequency and a duration are not cases of one thing: no
    answer fails for reading one of them, and no quote of the list stands in for one."""
    from agent import asked
    from agent.grounding import Evidence, labelled_lists, list_quote, one_case

    lists = labelled_lists([SPEC_LIST])
    assert len(lists) == 1
    question = "How many grams of activated carbon are in the filter?"
    asks = asked.asked_kinds(question)
    assert one_case(question, "It holds 85% carbon.", lists, asks) is None
    best = Evidence(score=0.9, passage=1, order=0, text=lists[0][0][1])
    assert list_quote(question, lists, [best], asks, 0.5) is None


class WarrantyKnowledge(MeaningKnowledge):
    VOCAB = ("warranty", "long", "years", "year", "days", "replacement", "units", "delivery", "new")


def test_a_special_case_given_as_the_answer_is_replaced_by_every_case(make_agent) -> None:
    """The browser check of session 36: after another question, "How long is the warranty?" got
    the replacement units' "90 days", copied without its subject. The check fails it, and the
    fallback quotes each case of the list, not only the one sentence that matches the question
    best (the replacement units' sentence, which says "warranty" twice)."""
    question = "How long is the warranty?"
    copied = "The warranty is covered for the rest of the original warranty period, or 90 days, whichever is longer."
    agent = make_agent(ScriptedGenerator([copied]), docs={"warranty": CASES_LIST})
    agent.knowledge = WarrantyKnowledge({"warranty": CASES_LIST})
    ranked = rank_sentences(question, [CASES_LIST], agent.knowledge.embed)
    assert ranked[0].text.startswith("Replacement units")  # the best match alone would mislead
    reply = agent.reply("w1", question)
    assert reply.grounding is not None
    assert (reply.grounding["passed"], reply.grounding["action"]) == (False, "extractive")
    assert "New purifiers: 2 years from the delivery date. [1]" in reply.text
    assert "1 year" in reply.text and "90 days" in reply.text
    # The general case, as a model says it in a new conversation, is sent as written (figures
    # from any sentence: this stand-in embedding ranks the general case too low for evidence).
    general = make_agent(
        ScriptedGenerator(["The warranty lasts 2 years from the delivery date."]),
        docs={"warranty": CASES_LIST},
        grounding__evidence_sentences=0,
    )
    general.knowledge = WarrantyKnowledge({"warranty": CASES_LIST})
    sent = general.reply("w2", question)
    assert sent.text == "The warranty lasts 2 years from the delivery date."
    assert sent.grounding is not None and sent.grounding["action"] == "sent"


class PagedKnowledge(MeaningKnowledge):
    """``MeaningKnowledge`` with every word of its pages, as ``KnowledgeBase.words`` gives them."""

    def __init__(self, docs: dict[str, str], elsewhere: str = ""):
        super().__init__(docs)
        self._elsewhere = elsewhere  # a page that is never shown, whose words the help pages still have

    def words(self) -> frozenset[str]:
        from knowledge.base import words_of

        return words_of([*self.docs.values(), self._elsewhere])


def test_an_answer_affirming_a_name_no_page_has_falls_back_saying_so(make_agent) -> None:
    """ "How long does shipping to Puerto Rico take?" answered "Shipping to Puerto Rico takes 3–5
    business days": the quote of the shipping table that stands in for it does not answer for
    Puerto Rico, so the reply says first that the pages say nothing about it, then quotes them and
    offers a person; the benchmark reads that as a decline."""
    from agent.evaluate import says_unknown

    question = "How long does standard delivery to Puerto Rico take?"
    answer = "Standard delivery to Puerto Rico takes 6–10 business days."
    agent = make_agent(ScriptedGenerator([answer]), docs={"shipping": SHIPPING})
    agent.knowledge = PagedKnowledge({"shipping": SHIPPING})
    reply = agent.reply("nf1", question)
    lead = (
        "I'm sorry, I couldn't find anything about Puerto Rico in our help pages. Here is what they do say: "
    )
    assert reply.text.startswith(lead) and "business days" in reply.text, reply.text
    assert reply.text.endswith("support team if you'd like.") and says_unknown(reply.text)
    assert reply.grounding is not None and reply.grounding["action"] == "extractive"
    assert "Puerto Rico (only the customer's question names it)" in reply.grounding["unsupported"]
    # The quote is cited like any quote: the sources it gives are shown with it.
    assert [c.doc_id for c in reply.citations] == ["shipping"]
    # A page that is not shown names it: the passages shown leave it out, the help pages do not.
    named = make_agent(ScriptedGenerator([answer]), docs={"shipping": SHIPPING})
    named.knowledge = PagedKnowledge({"shipping": SHIPPING}, elsewhere="Puerto Rico orders ship by sea.")
    text = named.reply("nf2", question).text
    assert text.startswith("Here is what our help pages say: ") and "business days" in text
    # Without the pages' words (a knowledge base that cannot give them) the quote is plain too.
    plain = make_agent(ScriptedGenerator([answer]), docs={"shipping": SHIPPING})
    plain.knowledge = MeaningKnowledge({"shipping": SHIPPING})
    assert plain.reply("nf3", question).text.startswith("Here is what our help pages say: ")


PROMO = (
    "Billing and Payments > Promo Codes\n"
    "Only one promo code can be used per order, and it must be entered at checkout. Codes cannot be "
    "added to an order after it has been placed."
)


def test_a_message_typed_in_lower_case_with_no_question_mark_is_checked_as_written(make_agent) -> None:
    """Customers type "ive got a welcome code ... can i use both on the same order" and "do you deliver to
    puerto rico": read as typed, the message's last sentence was not a question (no "?"), so the
    "Yes" the pages say no to was sent, and a name typed in lower case was not one, so the quote
    did not say that nothing was found about it (``agent.written``, ``grounding.read_as_written``)."""
    question = "ive got a welcome code from my email signup and another one from a friend. can i use both on the same order"
    answer = "Yes, you can use both promo codes for the same order."
    agent = make_agent(ScriptedGenerator([answer]), docs={"billing": PROMO})
    agent.knowledge = PagedKnowledge({"billing": PROMO})
    reply = agent.reply("typed1", question)
    assert reply.text.startswith("Here is what our help pages say: Only one promo code"), reply.text
    assert agent.store.turns("typed1")[0].text == question  # the log keeps the customer's words
    as_typed = make_agent(
        ScriptedGenerator([answer]), docs={"billing": PROMO}, grounding__read_as_written=False
    )
    as_typed.knowledge = PagedKnowledge({"billing": PROMO})
    assert as_typed.reply("typed2", question).text == answer

    shipping = make_agent(
        ScriptedGenerator(["Standard delivery to Puerto Rico takes 6–10 business days."]),
        docs={"shipping": SHIPPING},
    )
    shipping.knowledge = PagedKnowledge({"shipping": SHIPPING})
    text = shipping.reply("typed3", "how long does standard delivery to puerto rico take").text
    assert text.startswith("I'm sorry, I couldn't find anything about Puerto Rico in our help pages."), text


RETURN_WINDOW = (
    "Returns and Refunds > The 30-Day Return Window\n"
    "You can return a purifier bought on halcyonhome.com within 30 days of delivery, for any reason. It "
    "must include all parts: the purifier, the bottom cover, the filter, and the power adapter. The "
    "original box is helpful but not required."
)


def test_a_sentence_giving_what_was_asked_under_a_title_naming_the_question_is_quoted() -> None:
    """ "What is the return window?": the sentence with "within 30 days" scored 0.44 by meaning, under
    the quote's bar (0.5), below three sentences about what to pack; the turn was declined. Its
    section's title names every word the question has, and it gives the length of time asked."""
    from agent.grounding import Evidence, extractive_answer, titled_answer

    asks = [("duration", "length", "clock")]
    ranked = [
        Evidence(0.6, 1, 1, "It must include all parts: the purifier, the bottom cover, the filter, and the power adapter."),
        Evidence(0.57, 1, 2, "The original box is helpful but not required."),
        Evidence(0.44, 1, 0, "You can return a purifier bought on halcyonhome.com within 30 days of delivery, for any reason."),
    ]  # fmt: skip
    for question in ("What is the return window?", "How long is the return window?"):
        quote = extractive_answer(
            question, [RETURN_WINDOW], embed=lambda t: [], ranked=ranked, min_score=0.5, asks=asks
        )
        assert quote is not None and "within 30 days of delivery" in quote, question
    assert titled_answer("What is the return window?", ranked[2], [RETURN_WINDOW], asks)
    # The title does not name the question's other words; or the sentence does not give what is asked.
    assert not titled_answer("What is the return window for filters?", ranked[2], [RETURN_WINDOW], asks)
    assert not titled_answer("What is the return window?", ranked[0], [RETURN_WINDOW], asks)
    too_low = [Evidence(0.3, 1, 0, ranked[2].text)]
    assert extractive_answer("What is the return window?", [RETURN_WINDOW], embed=lambda t: [], ranked=too_low,
                             min_score=0.5, asks=asks) is None  # fmt: skip


def test_a_name_no_page_has_is_named_in_the_decline_when_nothing_is_quoted() -> None:
    from agent.config import GroundingSettings, Persona
    from agent.grounding import fallback_answer, turn_gate, unpaged_words
    from agent.prompt import Passage

    assert unpaged_words("Can I pay with my HSA or FSA card, or with Apple Pay?", {"apple", "pay"}) == {
        "hsa",
        "fsa",
    }
    assert unpaged_words("I live in Calgary.", {"calgary"}) == frozenset()
    assert unpaged_words("When does chat open on Saturdays?", {"saturday"}) == frozenset()
    question = "Can I pay for the Aero with my HSA card?"
    passages = [Passage(doc_id="billing", source="", text="We accept Visa, Mastercard and PayPal.")]
    settings = GroundingSettings(fallback="decline")
    gate = turn_gate(
        question, [], passages, settings, Persona(), None, {"we", "accept", "visa", "card", "pay"}
    )
    gate.feed("Yes, you can pay with your HSA card.", final=True)
    assert gate.not_found == ("HSA",)
    text, action = fallback_answer(question, [passages[0].text], settings, "Halcyon Home", gate=gate)
    assert action == "declined" and text.startswith(
        "I'm sorry, I couldn't find anything about HSA in our help pages."
    )


PRICE_ADJUSTMENT = (
    "Billing and Payments > Price Adjustment\n"
    "If the price of an item you bought on halcyonhome.com drops within 14 days of your purchase, we will "
    "refund the difference once per order. Price adjustments do not apply to purchases from other "
    "retailers, to promo code discounts, or to clearance items. The purifier works fully without an app."
)


@pytest.mark.parametrize(
    ("sentence", "contradicts"),
    [
        ("Yes, the price adjustment applies to purchases from other retailers.", True),
        ("Price adjustments apply to purchases from other retailers too.", True),
        # What the passage affirms, or says not itself, or says with "without" (which only narrows).
        ("The price adjustment applies to purchases on halcyonhome.com.", False),
        ("No, price adjustments do not apply to purchases from other retailers.", False),
        ("The purifier works fully on its own.", False),
        ("Yes, it applies.", False),  # too few words to be the passage's clause
    ],
)
def test_an_answer_saying_what_a_passage_clause_says_not_fails(sentence: str, contradicts: bool) -> None:
    """ "Does your price adjustment cover that?" (a clearance purchase), answered "Yes, the price
    adjustment applies to purchases from other retailers": every word of its clause is in the
    passage's "do not apply to purchases from other retailers" (the third fresh set, f3-004)."""
    question = "Does your price adjustment thing cover that?"
    sources = Sources([PRICE_ADJUSTMENT, question], conversation=[question], question=question)
    said = [p for p in sources.unsupported(sentence) if p.startswith("it says what the passage says not")]
    assert bool(said) is contradicts, sources.unsupported(sentence)
    if contradicts:
        assert said == [
            "it says what the passage says not: Price adjustments do not apply to purchases from other retailers"
        ]


LED_TABLE = (
    "LED Indicators and Light Ring > Air Quality Colors (Light Ring)\n"
    "The ring color shows the PM2.5 level the sensor measures:\n\n"
    "| Ring color | Air quality | PM2.5 (µg/m³) |\n|---|---|---|\n| Blue | Good | 0–12 |\n"
    "| Green | Fair | 13–35 |\n| Orange | Poor | 36–55 |\n| Red | Very poor | 56 and above |"
)
FILTER_TABLE = (  # as the index gives it: the breadcrumb ran into the table's heading row
    "Filters and Filter Replacement > Which Filter Do I Need? | Filter | Fits | Price |\n|---|---|---|\n"
    "| AF-300 Standard Filter | Aero 300 only | $39 |\n| AF-500 Standard Filter | Aero 500 only | $59 |\n"
    "| AF-500P Pet & Odor Filter | Aero 500 only | $69 |"
)
PAYMENTS = BILLING.replace(
    "- Apple Pay", "- Klarna: split orders of $100 or more into 4 payments\n- Apple Pay"
)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Which colors can the light ring show?", ("color",)),
        ("What payment methods do you accept?", ("metho",)),
        ("What are your support channels?", ("chann",)),
        ("What do the different ring colors mean?", ("color",)),
        ("can you list every payment option you take?", ()),
        ("Before I file a claim, I'd like the full list of stuff your warranty does NOT cover.", ()),
        (
            "so there are some things the bot can't do, right? tell me all the situations where it hands over",
            (),
        ),
        ("What does the orange ring mean?", None),  # one item, not a list
        ("What time does live chat open?", None),  # "does" is no kind of item
        ("Which email address do I write to?", None),  # one of them
        ("It's showing me a list of backup codes now. How many should there be?", None),  # not asked for
        ("Returning it, everything's in the box. Will you take anything off my refund?", None),
        ("We have 3 purifiers. do I have to make the same schedule on each one?", None),
        ("Should I vacuum it every 2 weeks?", None),
        ("My Aero reads 40 all night which seems crazy", None),
    ],
)
def test_a_question_asking_for_every_item_of_a_kind_is_read(question: str, kind: Any) -> None:
    from agent.grounding import asks_for_list

    assert asks_for_list(question) == kind


def test_lists_are_read_from_tables_and_bullets_as_chunks_give_them() -> None:
    from agent.grounding import passage_lists

    ((names, rows),) = passage_lists(FILTER_TABLE)
    assert names == ("Which Filter Do I Need?", "Filter")
    assert rows[0] == "AF-300 Standard Filter: Fits Aero 300 only; Price $39."
    ((names, items),) = passage_lists(PAYMENTS)
    assert names[0] == "Accepted Payment Methods" and items[1:3] == [
        "PayPal",
        "Klarna: split orders of $100 or more into 4 payments",
    ]
    ((names, cases),) = passage_lists(CASES_LIST)  # four items the chunk ran onto one line
    assert names[0] == "Coverage Period" and len(cases) == 4 and cases[2].startswith("Certified Refurbished")


def test_a_question_asking_for_a_list_gets_the_whole_list() -> None:
    """Session 38's browser check: "Which colors can the light ring show?" got two of the colour
    table's four rows, the two closest to the question."""
    from agent.grounding import whole_list

    quoted = whole_list("Which colors can the light ring show?", [FILTER_TABLE, LED_TABLE])
    assert quoted is not None and quoted.endswith("[2]")
    assert all(f"{colour}: Air quality" in quoted for colour in ("Blue", "Green", "Orange", "Red"))
    paying = whole_list("What payment methods do you accept?", [PAYMENTS])
    assert paying == (
        "Here is what our help pages say: Visa, Mastercard, American Express, and Discover; PayPal; "
        "Klarna: split orders of $100 or more into 4 payments; Apple Pay and Google Pay. [1]"
    )
    # Words some items have and others do not choose among them.
    fitting = whole_list("What filters fit the Aero 500?", [FILTER_TABLE])
    assert (
        fitting is not None
        and "AF-300" not in fitting
        and "AF-500 Standard" in fitting
        and "AF-500P" in fitting
    )
    assert whole_list("What colors does the filter come in?", [FILTER_TABLE]) is None  # no list of colours
    assert whole_list("What does the orange ring mean?", [LED_TABLE]) is None  # not a list question
    assert (
        whole_list(
            "Which icons are there?",
            [BILLING.replace("- Visa, Mastercard, American Express, and Discover\n", "")],
        )
        is None
    )


def test_a_chunk_with_the_list_asked_for_is_shown_first() -> None:
    from agent.grounding import rank_passages

    prose = "Filters and Filter Replacement > Which Filter Do I Need?\nFilters are not interchangeable between models."
    order = rank_passages("Which filters do you sell?", [prose, FILTER_TABLE], [1.0, 0.5], _unit_embed)
    assert order == [1, 0]
    assert (
        rank_passages("Are filters interchangeable?", [prose, FILTER_TABLE], [1.0, 0.5], _unit_embed)[0] == 0
    )


def _unit_embed(texts: list[str]) -> Any:
    import numpy as np

    return np.ones((len(texts), 4)) / 2.0


@pytest.mark.parametrize(
    ("answer", "sent"),
    [
        ("We sell the AF-500 Standard Filter and the AF-500P Pet & Odor Filter for the Aero 500.", True),
        ("The Aero 500 takes the AF-500 Standard Filter.", False),  # one of the two
        ("The filters are:", False),  # a lead-in without its list
    ],
)
def test_an_answer_to_a_list_question_must_name_every_item(make_agent, answer: str, sent: bool) -> None:
    question = "Which filters fit the Aero 500?"
    agent = make_agent(
        ScriptedGenerator([answer]), docs={"filters": FILTER_TABLE}, grounding__evidence_sentences=0
    )
    reply = agent.reply("l1", question)
    assert reply.grounding is not None
    assert reply.grounding["action"] == ("sent" if sent else "extractive"), reply.grounding
    if not sent:
        assert "AF-500 Standard Filter: Fits Aero 500 only; Price $59." in reply.text
        assert "AF-500P Pet & Odor Filter" in reply.text and "AF-300" not in reply.text


def test_a_client_stop_sequence_releases_a_list_answer_held_for_its_items() -> None:
    gate = SentenceGate(Sources([FILTER_TABLE]), listed=[{"af300"}, {"af500"}])
    assert gate.feed("The AF-300 Standard Filter fits the Aero 300. ") == 0  # held: the AF-500 not named yet
    gate.cut_by_client()
    assert gate.feed("The AF-300 Standard Filter fits the Aero 300.", final=True) > 0 and not gate.failed


def test_a_list_lead_in_alone_is_not_sent() -> None:
    gate = SentenceGate(Sources(["Accepted Payment Methods: you can pay with PayPal or Visa."]))
    assert gate.feed("You can pay with:", final=True) == 0
    assert gate.failed == ["a list's lead-in without its list"]
    held = SentenceGate(Sources(["Accepted Payment Methods: you can pay with PayPal or Visa."]))
    assert held.feed("You can pay with: PayPal.", final=True) == len("You can pay with: PayPal.")


def test_a_list_of_what_the_question_says_not_to_is_not_the_list_asked_for() -> None:
    """A "Yes" list is no answer to "the full list of stuff your warranty does NOT cover"."""
    from agent.grounding import whole_list

    covered = (
        "Warranty > What Is Covered\nDefects in materials and workmanship, for example:\n"
        "- A fan motor that fails\n- A sensor that keeps showing E1\n- Buttons that do not work"
    )
    not_covered = (
        "Warranty > What Is Not Covered\n- Filters, which are consumables\n- Damage from drops\n"
        "- Cosmetic wear such as scratches"
    )
    question = "Before I file a claim, I'd like the full list of stuff your warranty does NOT cover."
    quoted = whole_list(question, [covered, not_covered])
    assert quoted is not None and "Damage from drops" in quoted and "fan motor" not in quoted
    assert whole_list(question, [covered]) is None
    assert whole_list("Can you list everything the warranty covers?", [covered]) is not None


LIGHT_RING = """Light Ring Colors > What Each Color Means
| Color | Air quality | PM2.5 (µg/m³) |
|---|---|---|
| Blue | Good | 0–12 |
| Green | Fair | 13–35 |
| Orange | Poor | 36–55 |
| Red | Very poor | 56 and above |
"""


@pytest.mark.parametrize(
    ("answer", "row"),
    [
        ("The light ring turns green when the air quality is good.", "Green"),  # blue's meaning
        ("Green means the air quality is fair.", None),  # its own row's
        ("Green means fair air; blue means good air.", None),  # names two rows: each may have its own
        ("The ring is red when the air is very poor.", None),
        ("The light ring shows the air quality.", None),  # names no row
    ],
)
def test_a_sentence_giving_one_row_of_a_table_another_rows_word_fails(answer: str, row: str | None) -> None:
    from agent.grounding import crossed_row, passage_tables

    tables = passage_tables([LIGHT_RING])
    assert len(tables) == 1 and len(tables[0]) == 4
    question = "What does it mean when the light ring turns green?"
    assert crossed_row(question, answer, tables) == row
    # A word the customer said is theirs: "Is green good?" answered "Green is good enough" is read
    # by the other checks, not as a crossed row.
    assert crossed_row("Is green good?", "Green is good enough.", tables) is None


def test_the_agent_does_not_send_a_colour_with_another_colours_meaning(make_agent) -> None:
    agent = make_agent(
        ScriptedGenerator(["The light ring turns green when the air quality is good."]),
        docs={"ring": LIGHT_RING},
    )
    reply = agent.reply("ring", "What does it mean when the light ring turns green?")
    assert reply.grounding is not None and reply.grounding["action"] == "extractive", reply.grounding
    assert "Fair" in reply.text and "turns green when" not in reply.text
    assert any("Green" in u for u in reply.grounding["unsupported"])


def test_a_table_whose_header_follows_its_breadcrumb_still_owns_its_cells() -> None:
    """The chunker can run a section's breadcrumb into its table's header line; the cells still
    belong to their rows: "The AF-500 is $69" gives the AF-500P's price (seen in `make run`)."""
    chunk = (
        "Filters and Filter Replacement > Which Filter Do I Need? | Filter | Fits | Price |\n"
        "|---|---|---|\n"
        "| AF-500 Standard Filter | Aero 500 only | $59 |\n"
        "| AF-500P Pet & Odor Filter | Aero 500 only | $69 |"
    )
    question = "How much is the AF-500 filter?"
    sources = Sources([chunk], conversation=[question], question=question)
    assert sources.unsupported("The AF-500 is $59.") == []
    assert sources.unsupported("The AF-500P is $69.") == []
    assert any("AF-500P" in problem for problem in sources.unsupported("The AF-500 is $69."))


FILTER_ROWS = (
    "Filters and Filter Replacement > Which Filter Do I Need?\n\n| Filter | Fits | Price |\n|---|---|---|\n"
    "| AF-500 Standard Filter | Aero 500 only | $59 |\n| AF-500P Pet & Odor Filter | Aero 500 only | $69 |"
)
FILTER_REPLY = "Here is what our help pages say: AF-500 Standard Filter: Fits Aero 500 only; Price $59. [1]"
RETURN_SHIPPING = (
    "Returns and Refunds > How to Return\n\nReturn shipping is free in the US and Canada. Drop the package at "
    "any UPS location within 14 days of starting the return."
)
COVERAGE = (
    "Warranty > Coverage Period\n\n- **New purifiers:** 2 years from the delivery date.\n"
    "- **Certified Refurbished purifiers:** 1 year from the delivery date."
)


def test_a_quote_that_answers_the_earlier_question_is_not_sent_for_a_new_one() -> None:
    """The ranking reads a follow-up with the message before it: "Is it safe for the bird?" after
    the AF-500's price was quoted the filter rows a second time, and "Is it safe for my cat?" after
    return shipping got "Return shipping is free". Such a quote has none of the message's words;
    it says again what was said, or the message names what no page has: the agent declines."""
    from agent.grounding import answers_earlier

    replied = [FILTER_REPLY]
    assert answers_earlier(FILTER_REPLY, "Is it safe for the bird?", replied, [FILTER_ROWS])
    shipping = "Here is what our help pages say: Return shipping is free in the US and Canada. [1]"
    cat = "Is it safe for my cat?"
    assert answers_earlier(shipping, cat, ["We cover return shipping."], [RETURN_SHIPPING], {"cat"})
    # Not said before and nothing unpaged: a follow-up in the customer's own words about the same
    # thing ("what about the bigger model?") often shares no word with its answer.
    assert not answers_earlier(shipping, cat, ["We cover return shipping."], [RETURN_SHIPPING])
    # A first message, a message of asking words only, or a quote with the message's words (or
    # its section's title with them: "shipping" for "Shipping Options and Costs") is not.
    assert not answers_earlier(FILTER_REPLY, "Is it safe for the bird?", [], [FILTER_ROWS])
    assert not answers_earlier(FILTER_REPLY, "How much is it?", replied, [FILTER_ROWS])
    assert not answers_earlier(FILTER_REPLY, "And the AF-500?", replied, [FILTER_ROWS])
    assert not answers_earlier(FILTER_REPLY, "Which filter is that again?", replied, [FILTER_ROWS])


def test_the_fallback_declines_a_quote_that_answers_the_earlier_question() -> None:
    import re
    import zlib

    import numpy as np

    from agent.config import GroundingSettings, Persona
    from agent.grounding import fallback_answer, turn_gate
    from agent.prompt import Passage

    def embed(texts: list[str]) -> np.ndarray:  # bag of words: the earlier question finds the rows
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9-]+", text.lower()):
                vectors[row, zlib.crc32(word.encode()) % 64] += 1.0
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    history = [("customer", "How much is the AF-500 filter?"), ("agent", FILTER_REPLY)]
    passages = [Passage(doc_id="filters", source="", text=FILTER_ROWS)]
    settings = GroundingSettings(min_quote_score=0)
    bird = "Is it safe for the bird?"
    gate = turn_gate(bird, history, passages, settings, Persona(), embed)
    assert gate.replied == (FILTER_REPLY,) and gate.ranked
    assert gate.quote is None  # the rows, quoted again, would answer the earlier question
    text, action = fallback_answer(
        bird, [FILTER_ROWS], settings, "Halcyon Home", ranked=gate.ranked, gate=gate
    )
    assert action == "declined" and text.startswith("I'm sorry"), text
    # The same rows for a follow-up that names what they are about are quoted.
    again = "Is the AF-500 filter safe for the bird?"
    gate = turn_gate(again, history, passages, settings, Persona(), embed)
    text, action = fallback_answer(
        again, [FILTER_ROWS], settings, "Halcyon Home", ranked=gate.ranked, gate=gate
    )
    assert action == "extractive" and "$59" in text, text


def test_a_figure_given_to_a_thing_the_conversation_named_needs_a_passage_about_that_kind() -> None:
    """After the AF-500's price, "How long is the warranty?" got "The warranty for the AF-500
    Standard Filter is 2 years from the delivery date.": the 2 years are a new purifier's, and
    filters are consumables the warranty does not cover. The kind a model's name ends with
    ("Filter") is the amount's subject as much as the question's own words are."""
    history = ["How much is the AF-500 filter?", FILTER_REPLY]
    question = "How long is the warranty?"
    sources = Sources(
        [question, *history, COVERAGE, FILTER_ROWS], conversation=[question, *history], question=question
    )
    assert sources.unsupported(
        "The warranty for the AF-500 Standard Filter is 2 years from the delivery date."
    ) == ["2 years (the passage gives it for something else than filter)"]
    assert sources.unsupported("New purifiers are covered for 2 years from the delivery date.") == []
    assert sources.unsupported("The Aero 500 has a 2-year warranty from the delivery date.") == []
    # The filter's own figure, from the passage about filters, is the filter's.
    assert sources.unsupported("The AF-500 Standard Filter is $59.") == []


SHIPPING_TABLE = (
    "Shipping and Delivery > Shipping Options and Costs\n\n| Destination | Method | Delivery time | Cost |\n"
    "|---|---|---|---|\n| Contiguous US | Standard | 3–5 business days | Free on orders over $50, otherwise $5.95 |\n"
    "| Contiguous US | Express | 1–2 business days | $14.95 |\n| Canada | Standard | 5–8 business days | $12 flat |"
)


@pytest.mark.parametrize(
    ("sentence", "problems"),
    [
        ("Shipping to Canada is free.", ["free (its table gives Canada $12)"]),
        (
            "Shipping to Canada takes 3-5 business days.",
            ["3 business days (its table gives Canada 5 business days, 8 business days)"],
        ),
        ("Shipping to Canada costs $12 and takes 5 to 8 business days.", []),
        # Named by a cell no other row has in its column: the Express row.
        (
            "Express shipping is free on orders over $50.",
            [
                "free (its table gives Contiguous US Express $14.95)",
                "$50 (its table gives Contiguous US Express $14.95)",
            ],
        ),
        ("Express shipping costs $14.95.", []),
        # "Standard" is two rows' method, and the first column's "Contiguous US" two rows' too.
        ("Standard shipping in the contiguous US is free on orders over $50.", []),
        # Two rows named (Express and Canada's), or a word of another passage that gives the amount.
        ("Express shipping to Canada is $12.", []),
        ("Return shipping from Canada is free.", []),
    ],
)
def test_an_amount_a_table_row_gives_otherwise_fails(sentence: str, problems: list[str]) -> None:
    from agent.grounding import heading, passage_tables, row_amounts

    returns = "Returns and Refunds > How to Start a Return\n\nReturn shipping is free in the US and Canada."
    question = "How much is shipping?"
    sources = Sources([question, SHIPPING_TABLE, returns], conversation=[question], question=question)
    tables = passage_tables([SHIPPING_TABLE, returns])
    assert row_amounts(sentence, tables, sources, [heading(SHIPPING_TABLE)]) == problems


def test_a_question_mark_inside_a_sentence_does_not_end_it() -> None:
    """ "I forgot my password" was quoted "on the sign-in screen and enter your email.": the
    button's name "Forgot password?" had ended a sentence."""
    from agent.grounding import sentences

    text = "Accounts and Login > Forgot Your Password\n\nTap **Forgot password?** on the sign-in screen and enter your email."
    assert passage_sentences(text) == ["Tap Forgot password? on the sign-in screen and enter your email."]
    assert [s.strip() for s in sentences("Is it on? Yes! It is. ok then.")] == [
        "Is it on?",
        "Yes!",
        "It is.",
        "ok then.",
    ]


def test_a_closing_quote_stays_with_its_sentence() -> None:
    """ "I want to buy an air purifier for my bedroom" was quoted '"Turn on the bedroom purifier.".
    [2] "What's the air quality in the bedroom? [2]': the closing quote went with the space."""
    from agent.grounding import sentences

    said = 'Say "Turn on the bedroom purifier." Or ask "What\'s the air quality in the bedroom?" Done.'
    assert sentences(said) == [
        'Say "Turn on the bedroom purifier."',
        'Or ask "What\'s the air quality in the bedroom?"',
        "Done.",
    ]
    quoted = extractive_answer(
        "What do I say to turn on the bedroom purifier?", [f"Voice > Commands\n\n{said}"]
    )
    assert quoted is not None and '"Turn on the bedroom purifier." [1]' in quoted, quoted


def test_a_sentence_pieced_together_from_several_passage_sentences_fails() -> None:
    """ "Is my purifier covered by the warranty?" got "Yes, the warranty applies to purifiers bought
    from halcyonhome.com, the Halcyon Care Filter Subscription, and your subscription for the rest
    of the original warranty period": every word is on the pages, taken from three sentences."""
    warranty = (
        "Warranty > Coverage Period\n\n- **Replacement units** sent under warranty are covered for the rest of the "
        "original warranty period, or 90 days, whichever is longer.\n\nThe warranty applies to purifiers bought "
        "from halcyonhome.com, the Halcyon Home app, or an authorized retailer."
    )
    care = "Halcyon Care Filter Subscription > What You Get\n\n- A new filter delivered every 6 months, with free shipping"
    question = "Is my purifier covered by the warranty?"
    sources = Sources([question, warranty, care], conversation=[question], question=question)
    pieced = (
        "Yes, the warranty applies to purifiers bought from halcyonhome.com, the Halcyon Care Filter "
        "Subscription, and your subscription for the rest of the original warranty period."
    )
    (problem,) = sources.unsupported(pieced)
    assert problem.startswith("pieced together: at most ")
    # One sentence's words, in the answer's own order, or with the question's words: it passes.
    assert (
        sources.unsupported(
            "The warranty applies to purifiers bought from halcyonhome.com or an authorized retailer."
        )
        == []
    )
    assert (
        sources.unsupported("Replacement units are covered for the rest of the original warranty period.")
        == []
    )
    # Off (``single_source=0``), as before.
    off = Sources([question, warranty, care], conversation=[question], question=question, single_source=0)
    assert off.unsupported(pieced) == []


@pytest.mark.parametrize(
    ("question", "thing"),
    [
        ("I cracked the bottom cover. How much is a replacement cover?", ["cover"]),
        ("What does the Halcyon Care membership cost each month?", ["Halcyon", "Care", "membership"]),
        ("What's the price of the AF-500P?", ["AF-500P"]),
        ("How much is a refurbished Aero 500 compared with a new one?", ["refurbished", "Aero"]),
        ("How much does it cost?", []),  # a pronoun
        ("How much is a new one? I have the 500", []),  # "one" is the thing the conversation named
        ("How much is their entrance fee?", ["entrance"]),  # a fee is the price itself
        ("How much is the price for that?", []),
        ("What is the price of the ticket and departure time?", ["ticket"]),
        ("What's the price of your purifier?", []),  # the product itself: its price row need not say so
        ("How much does the Aero 500 weigh?", []),  # asks no price
    ],
)
def test_the_thing_a_price_question_prices(question: str, thing: list[str]) -> None:
    from agent.grounding import priced_thing

    assert priced_thing(question) == thing


def test_a_quote_never_prices_another_thing_than_the_one_asked_about() -> None:
    """ "How much is a replacement cover?" is not answered by the replacement sleeve's $9, though
    it is the best match: with no sentence pricing a cover, the fallback has no quote. A sentence
    whose section path names the thing prices it ("Halcyon Care Filter Subscription > Price")."""
    from agent.asked import asked_kinds
    from agent.grounding import about_what_was_asked, extractive_answer, rank_sentences

    sleeve = (
        "Cleaning and Maintenance > Pre-Filter Sleeve\nRemove the bottom cover and pull out the filter. "
        "If the sleeve tears, you can order a replacement sleeve (PS-300 or PS-500) for $9."
    )
    question = "I cracked the bottom cover on my Aero 500. How much is a replacement cover?"
    assert extractive_answer(question, [sleeve], asks=asked_kinds(question), same_member=False) is not None
    assert extractive_answer(question, [sleeve], asks=asked_kinds(question), same_member=True) is None
    care = (
        "Halcyon Care Filter Subscription > Price\n"
        "| Purifier | Filter | Monthly price |\n|---|---|---|\n| Aero 500 | AF-500 Standard | $8.99 |"
    )
    question = "What does the Halcyon Care membership cost each month?"
    kept = about_what_was_asked(question, rank_sentences(question, [care]), [care])
    assert [e.text for e in kept] == ["Aero 500: Filter AF-500 Standard; Monthly price $8.99."]


def test_a_price_asked_in_another_currency_is_not_answered_with_the_pages_dollars(make_agent) -> None:
    """The pages give the Aero 300's price in US dollars. Asked for it in Canadian dollars, the
    model's "$199" does not give what was asked: the reply says the pages have no prices in
    Canadian dollars, then quotes the price they do give, and offers a person."""
    docs = {"specs": "Price: what does the Aero cost? The Aero 300 is $199 and the Aero 500 is $329."}
    agent = make_agent(ScriptedGenerator(["The Aero 300 costs $199."]), docs=docs)
    reply = agent.reply("g-cad", "What does the Aero 300 cost in Canadian dollars?")
    assert reply.text.startswith("I'm sorry, I couldn't find anything about prices in Canadian dollars")
    assert "$199" in reply.text and "support team" in reply.text
    assert reply.grounding is not None and reply.grounding["passed"] is False
    assert reply.grounding["unsupported"] == [
        "it does not give what the question asks for: a price in Canadian dollars"
    ]
    asked_in_dollars = make_agent(ScriptedGenerator(["The Aero 300 costs $199."]), docs=docs).reply(
        "g-usd", "What does the Aero 300 cost?"
    )
    assert asked_in_dollars.text == "The Aero 300 costs $199."


def test_an_answer_that_prices_another_thing_is_not_sent(make_agent) -> None:
    """ "The replacement sleeve is $9." is supported by the passage, but the customer asked what a
    replacement cover costs: the answer is not sent, and with no sentence pricing a cover the
    reply declines. An answer that names the thing, or says "it", is read as usual."""
    from agent.grounding import another_priced

    question = "I cracked the bottom cover. How much is a replacement cover?"
    assert another_priced(question, "The replacement sleeve is $9.") == "replacement sleeve"
    assert another_priced(question, "A replacement cover is $12.") is None
    assert another_priced(question, "It is $9.") is None
    assert another_priced("How much is the Aero 300?", "The Aero 300 is $199.") is None
    docs = {"cleaning": "Remove the bottom cover to reach the sleeve. A replacement sleeve costs $9."}
    agent = make_agent(ScriptedGenerator(["The replacement sleeve is $9."]), docs=docs)
    reply = agent.reply("g-cover", question)
    assert "$9" not in reply.text and "support team" in reply.text
    assert reply.text.startswith(
        "I'm sorry, I couldn't find a price for a replacement cover in our help pages."
    )
    assert reply.grounding is not None and reply.grounding["action"] == "declined"
    assert reply.grounding["unsupported"] == ["it gives the price of another thing: replacement sleeve"]


@pytest.mark.parametrize(
    ("question", "phrase"),
    [
        ("I cracked the bottom cover. How much is a replacement cover?", "a replacement cover"),
        ("How much is their entrance fee?", "their entrance fee"),
        ("What is the price of the ticket and departure time?", "the ticket"),
        ("How much does Halcyon Care cost?", "Halcyon Care"),
        ("How much does it cost?", None),
        ("What's the price of your purifier?", None),
    ],
)
def test_a_decline_names_the_thing_whose_price_the_pages_do_not_give(
    question: str, phrase: str | None
) -> None:
    from agent.grounding import decline_text, priced_phrase

    assert priced_phrase(question) == phrase
    assert decline_text("Halcyon Home", unpriced="gift wrapping") == (
        "I'm sorry, I couldn't find a price for gift wrapping in our help pages. "
        "I can connect you with a member of the Halcyon Home support team if you'd like."
    )


def test_a_figure_read_from_a_sentence_about_another_setting_fails() -> None:
    from agent.grounding import Evidence, off_setting

    question = "How many watts does the Aero 500 draw when it's running on speed 3?"
    standby = (
        "When the purifier is switched off but still plugged in, it uses less than 1 W "
        "(0.8 W for the Aero 300 and 0.9 W for the Aero 500), which keeps the Wi-Fi connection working."
    )
    daily = "Running an Aero 300 on speed 1 for 24 hours uses about 0.1 kWh, and an Aero 500 about 0.15 kWh."
    ranked = [Evidence(0.6, 1, 0, daily), Evidence(0.5, 2, 0, standby)]
    # "1" is given only by sentences about standby and about speed 1
    assert off_setting(question, "The Aero 500 runs on speed 3 and uses about 1 W.", ranked) in {
        daily,
        standby,
    }
    # The figures the question typed are not read; a sentence giving the setting supports its figure.
    assert off_setting(question, "The Aero 500 on speed 3 draws power.", ranked) is None
    on_three = Evidence(0.7, 1, 1, "On speed 3 the Aero 500 draws 24 W.")
    assert off_setting(question, "It draws 24 W on speed 3.", [on_three, *ranked]) is None
    # A question that names no numbered setting is not read this way.
    assert off_setting("How much power does it use in standby?", "It uses less than 1 W.", ranked) is None
