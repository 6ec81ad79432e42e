"""Asking back which model (``agent.which``): pure parts."""

from __future__ import annotations

from agent.grounding import Evidence
from agent.which import answer_for, ask_which, named, split, which_text

VARIANTS = ("Aero 300", "Aero 500")


def ranked(*texts: str, passage: int = 1) -> list[Evidence]:
    return [Evidence(1.0 - i / 10, passage, i, t) for i, t in enumerate(texts)]


def test_a_variant_is_named_by_its_name_or_the_part_only_it_has() -> None:
    assert named("How loud is the Aero 500?", VARIANTS) == ["Aero 500"]
    assert named("mine's a 300", VARIANTS) == ["Aero 300"]
    assert named("I have the AF-500 filter", VARIANTS) == ["Aero 500"]
    assert named("Is 300 sq ft too big?", VARIANTS) == []  # an area, not the model
    assert named("It cost $500", VARIANTS) == []
    assert named("How loud is it?", VARIANTS) == []


def test_a_row_under_variant_columns_is_a_split() -> None:
    found = split(ranked("Price: Aero 300 $199; Aero 500 $329."), 0, VARIANTS)
    assert found is not None
    assert found.values == {"Aero 300": "$199", "Aero 500": "$329"} and found.label == "Price"
    # The same value for each: nothing to ask.
    assert split(ranked("Warranty: Aero 300 2 years; Aero 500 2 years."), 0, VARIANTS) is None
    # Running text naming both is not a split.
    assert split(ranked("We ship the Aero 500 first, and you send the Aero 300 back."), 0, VARIANTS) is None


def test_rows_keyed_by_variant_in_one_passage_are_one_split() -> None:
    rows = ranked(
        "Aero 300: Monthly price $5.99.",
        "Shipping is free.",
        "Aero 500: Monthly price $8.99.",
        "Aero 500: Pet filter, monthly price $10.49.",
    )
    found = split([rows[2], rows[0], rows[1], rows[3]], 0, VARIANTS)  # best first: the Aero 500 row
    assert found is not None
    assert found.values == {
        "Aero 300": "Monthly price $5.99.",
        "Aero 500": "Monthly price $8.99. Pet filter, monthly price $10.49.",
    }
    # Quoted in the table's order, every keyed row.
    assert found.text.startswith(
        "Aero 300: Monthly price $5.99. Aero 500: Monthly price $8.99. Aero 500: Pet"
    )
    assert found.text.endswith("[1]")


def test_a_question_naming_no_variant_is_asked_back_with_each_value() -> None:
    rows = ranked("Sleep: Aero 300 22 dB; Aero 500 20 dB.", "Press Sleep for the quietest setting.")
    found = ask_which("How loud is it on sleep mode?", [], rows, VARIANTS)
    assert found is not None
    text = which_text(found)
    assert "22 dB" in text and "20 dB" in text and text.endswith("the Aero 300 or the Aero 500?")
    assert (
        answer_for(found.values, found.label, "Aero 500", found.passage)
        == "For the Aero 500: Sleep 20 dB. [1]"
    )


def test_no_ask_back_when_the_customer_said_which_or_the_question_does_not_turn_on_it() -> None:
    rows = ranked("Sleep: Aero 300 22 dB; Aero 500 20 dB.")
    assert ask_which("How loud is the Aero 300 on sleep?", [], rows, VARIANTS) is None
    assert ask_which("How loud is it on sleep?", ["I have an Aero 500."], rows, VARIANTS) is None
    assert ask_which("Is it quiet on sleep?", [], rows, VARIANTS) is None  # yes or no: answered as usual
    # The best row compares something else than what was asked.
    assert ask_which("How much does it weigh on sleep?", [], rows, VARIANTS) is None
    # The split is not among the best sentences for the question.
    late = ranked(
        "Sleep mode dims the lights.",
        "Sleep uses the lowest speed.",
        "Sleep: Aero 300 22 dB; Aero 500 20 dB.",
    )
    assert ask_which("How loud is it on sleep mode?", [], late, VARIANTS) is None
    assert ask_which("How loud is it on sleep mode?", [], rows, ("Aero 300",)) is None


def test_a_word_only_one_variants_value_has_settles_which() -> None:
    rows = ranked(
        "Replacement filter: Aero 300 AF-300 ($39); Aero 500 AF-500 ($59) or AF-500P Pet & Odor ($69)."
    )
    assert ask_which("How much is a replacement filter?", [], rows, VARIANTS) is not None
    assert ask_which("How much is the pet filter?", [], rows, VARIANTS) is None


def test_a_reply_that_only_says_which_is_a_choice() -> None:
    from agent.which import chosen

    assert chosen("the 500", VARIANTS) == "Aero 500"
    assert chosen("I have the Aero 300", VARIANTS) == "Aero 300"
    assert chosen("mine's a 300", VARIANTS) == "Aero 300"
    assert chosen("I have the 500, does it have a timer?", VARIANTS) is None  # a new question
    assert chosen("both, the 300 and the 500", VARIANTS) is None
    assert chosen("not sure", VARIANTS) is None
    assert chosen("the 500, bought it last spring from a store near my office", VARIANTS) is None


def test_the_model_named_earlier_is_the_one_asked_about() -> None:
    from agent.which import best_split, earlier_choice

    assert earlier_choice("How heavy is it?", ["I just bought the Aero 500."], VARIANTS) == "Aero 500"
    assert earlier_choice("How heavy is it?", ["the 300", "and the 500?"], VARIANTS) is None  # both
    assert earlier_choice("How heavy is the 300?", ["I have the Aero 500."], VARIANTS) is None
    rows = ranked("Price: Aero 300 $199; Aero 500 $329.")
    found = best_split("What does it cost?", rows, VARIANTS)
    assert found is not None
    assert (
        answer_for(found.values, found.label, "Aero 300", found.passage)
        == "For the Aero 300: Price $199. [1]"
    )
    # When, why, where or how to: not a look-up of a model's value.
    assert best_split("ok and when does the new price kick in?", rows, VARIANTS) is None
    assert best_split("How do I pay the price?", rows, VARIANTS) is None


def test_a_split_that_gives_the_asked_kind_for_something_else_is_not_asked_back() -> None:
    """ "How much is express shipping?" was asked "It depends on the model. Price: Aero 300 $199;
    Aero 500 $329. Which one do you have?": the price row gives a price, but the question is about
    the shipping table's Express row, which the other pages' best sentences name."""
    from agent.which import about_another

    price = split(ranked("Price: Aero 300 $199; Aero 500 $329."), 0, VARIANTS)
    assert price is not None
    shipping = ranked("Contiguous US: Method Express; Delivery time 1–2 business days; Cost $14.95.")
    names = ("Halcyon Home", "Halcyon Aero air purifier")
    assert about_another("How much is express shipping?", price, shipping, VARIANTS, "", names)
    # The message's words are the split's or its page's, or no other page has them: asked back.
    assert not about_another("How much is it?", price, shipping, VARIANTS, "", names)
    assert not about_another("How much does it cost?", price, shipping, VARIANTS, "", names)  # "Cost $14.95"
    assert not about_another("What's the price of your purifier?", price, shipping, VARIANTS, "", names)
    care = split(
        ranked(
            "Aero 300: Filter AF-300 Standard; Monthly price $5.99.",
            "Aero 500: Filter AF-500; Monthly price $8.99.",
        ),
        0,
        VARIANTS,
    )
    assert care is not None
    title = "Halcyon Care Filter Subscription > Price"
    care_elsewhere = ranked("Cancel Halcyon Care any time in Account > Subscriptions.")
    assert not about_another("How much does Halcyon Care cost?", care, care_elsewhere, VARIANTS, title, names)
    assert not about_another("How many watts does it draw?", price, shipping, VARIANTS, "", names)


def test_a_model_of_the_family_that_is_neither_variant_is_not_asked_back() -> None:
    """ "How much is the Aero 700?" was asked "Which one do you have: the Aero 300 or the Aero
    500?" with both prices; it names a model no page has, and the usual way declines it."""
    from agent.which import names_another

    variants = ["Aero 300", "Aero 500"]
    assert names_another("How much is the Aero 700?", variants) == ["Aero 700"]
    assert names_another("How much is the Aero 300?", variants) == []
    assert names_another("How much does it cost?", variants) == []
