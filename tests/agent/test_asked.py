"""What a question asks for, and names the passages do not have (``agent.asked``). Pure."""

from __future__ import annotations

import pytest

from agent.asked import (
    asked_kinds,
    describe,
    families,
    gives,
    members,
    missing,
    names_another_member,
    unknown_names,
)


@pytest.mark.parametrize(
    ("question", "first"),
    [
        ("How much does the Aero 500 weigh?", ["weight"]),
        ("What does the Aero 500 weigh?", ["weight"]),
        ("How heavy is it?", ["weight"]),
        ("How much does the Aero 500 cost?", ["price"]),
        ("What does shipping to Canada cost?", ["price"]),
        ("Will it fit under my desk? How tall is it?", ["length"]),
        ("How long is the warranty?", ["duration"]),
        ("What is the return window?", ["duration"]),  # a window or a period is a length of time
        ("What happens when the return window ends?", []),
        ("Can I put it near a window?", []),
        ("How often should I change the filter?", ["frequency"]),
        ("On Turbo, how many times an hour does it change the air?", ["frequency"]),
        ("what time does live chat open on saturdays?", ["clock"]),
        ("How many decibels is it in Sleep mode?", ["loudness"]),  # not a count as well
        ("How many purifiers can I add to one Home?", ["count"]),
        ("What number do I dial to reach support?", ["phone"]),
        ("Which email address do I write to with a privacy request?", ["email"]),
        ("How long does shipping to Hawaii take, and what does it cost?", ["price", "duration"]),
        ("Why is my purifier making a rattling noise?", []),
        ("Can I return a purifier I bought on Amazon?", []),
        ("How do I reset the filter light?", []),
    ],
)
def test_what_a_question_asks_for(question: str, first: list[str]) -> None:
    assert [kinds[0] for kinds in asked_kinds(question)] == first


@pytest.mark.parametrize(
    ("question", "answer", "answers"),
    [
        ("How much does the Aero 300 weigh?", "The Aero 300 weighs 4.8 kg (10.6 lb).", True),
        ("How much does the Aero 300 weigh?", "The Aero 300 suits rooms up to 30 m² (320 sq ft).", False),
        ("What does shipping to Canada cost?", "Shipping to Canada is a flat $12.", True),
        ("What does shipping to Canada cost?", "Shipping to Canada is free.", True),
        ("What does shipping to Canada cost?", "It takes 5–8 business days.", False),
        ("How long is the warranty?", "New purifiers: two years.", True),
        ("How often do the payments come out?", "Payments are taken every 2 weeks.", True),
        ("How often do the payments come out?", "You can pause for up to 3 months at a time.", True),
        ("How many times a year can I pause?", "You can pause for up to 3 months at a time.", False),
        ("What time does chat open on Saturdays?", "Saturday: 9 am to 5 pm ET.", True),
        ("What time does chat open on Saturdays?", "Chat is open on Saturdays.", False),
        ("Why is it rattling?", "A rattle is usually packing foam.", True),  # asks for no kind
        ("What number do I dial?", "Call 1-800-555-0142, Monday to Friday.", True),
        ("What number do I dial?", "Write to Customer Care, 400 Meridian Way, Columbus, OH 43215.", False),
    ],
)
def test_an_answer_gives_what_was_asked_or_not(question: str, answer: str, answers: bool) -> None:
    assert (missing(asked_kinds(question), answer) == []) is answers


def test_describe_names_what_an_answer_lacked() -> None:
    asks = asked_kinds("How long does shipping to Hawaii take, and what does it cost?")
    assert describe(asks) == "a price and a length of time"
    assert gives("$12 flat", asks[0]) and not gives("$12 flat", asks[1])


PASSAGES = [
    "Product Specifications > Comparison Table\nPrice: Aero 300 $199; Aero 500 $329.",
    "Error Codes E1 to E6 > E4: Overheating Protection\nUnplug the purifier and let it cool.",
    "After 30 days, returns close. Wait 10 minutes. Your order number starts with HLC-.",
    "| Plan | Payments |\n| Klarna | Every 2 weeks |\n| Affirm | Every 4 weeks |\nPaid every month.",
    "Supported networks: WPA2 and WPA3. The Halcyon Home app runs on iOS 15 or later, and on Android 9 or later.",
]


def test_families_are_named_things_with_numbers_not_sentence_openings() -> None:
    known = families(PASSAGES)
    assert known["Aero"] == {"300", "500"}
    assert known["E"] == {"1", "2", "3", "4", "5", "6"}  # the range counts its members
    assert "After" not in known and "Wait" not in known  # a sentence's first word
    assert "Every" not in known  # a table cell, but the texts also write "every": a word, not a name


@pytest.mark.parametrize(
    ("question", "unknown"),
    [
        ("How much is the Aero 700, and how big a room does it cover?", ["Aero 700"]),
        ("What does E9 mean on my purifier?", ["E9"]),
        ("What does E4 mean?", []),
        ("Does it support WPA1?", ["WPA1"]),
        ("My order HLC-204817 has not arrived.", []),  # an order number: no family with members
        ("After 10 minutes it stops. Why?", []),
        ("Does the app run on Android 8?", []),  # one member: a version floor, not a family
        ("Is the Aero 300 quieter than the Aero 500?", []),
    ],
)
def test_a_name_the_passages_do_not_have(question: str, unknown: list[str]) -> None:
    assert unknown_names(question, PASSAGES) == unknown


@pytest.mark.parametrize(
    ("question", "sentence", "other"),
    [
        (
            "How many decibels is the Aero 300 on fan speed 2?",
            "Lowest fan speed (1): Aero 300 28 dB; Aero 500 26 dB.",
            True,
        ),
        (
            "How many decibels is the Aero 300 on fan speed 2?",
            "Speed 1 / 2 / 3: 28 / 35 / 44 dB.",
            False,
        ),  # has the 2
        ("What does E4 mean?", "E3: Fan Motor Fault. The fan is blocked.", True),
        ("What does E4 mean?", "If E4 appears twice within 24 hours, contact support.", False),
        ("How loud is the Aero 300 on Turbo?", "Turbo: Aero 500 52 dB.", True),
        ("How loud is the Aero 300 on Turbo?", "Turbo: Aero 300 50 dB; Aero 500 52 dB.", False),
        (
            "Can I return it after 45 days?",
            "You can return it within 30 days of delivery.",
            False,
        ),  # quantities
        ("Why is my purifier loud?", "Fan speed 4 is the loudest.", False),  # the question names no member
        # A letter after the number makes another member: the AF-500P is not the AF-500.
        ("How much does the AF-500P cost?", "Aero 500: Filter AF-500 Standard; Monthly price $8.99.", True),
        ("How much does the AF-500P cost?", "Aero 500 AF-500 ($59) or AF-500P Pet & Odor ($69).", False),
        ("How much is the AF-500?", "Aero 500: Filter AF-500P Pet & Odor; Monthly price $10.49.", False),
    ],
)
def test_a_sentence_about_another_member_of_what_was_asked(question: str, sentence: str, other: bool) -> None:
    assert names_another_member(question, sentence) is other
    assert ("speed", "2") in members("fan speed 2") and not members("within 30 days, 4.8 kg")
    assert members("AF-500P and AF-500") == {("af", "500p"), ("af", "500")}


@pytest.mark.parametrize(
    ("text", "recurs"),
    [
        ("Aero 500: Filter AF-500 Standard; Monthly price $8.99.", True),
        ("The plan is $8.99 a month.", True),
        ("AF-500 Standard Filter: Fits Aero 500 only; Price $59.", False),
        ("Price $59; Monthly price $8.99.", False),  # one of its prices is one-time
        ("You are billed monthly on the same date you signed up.", False),  # no price at all
    ],
)
def test_a_price_that_recurs(text: str, recurs: bool) -> None:
    from agent.asked import recurring_price

    assert recurring_price(text) is recurs


def test_a_one_time_price_is_quoted_over_a_subscriptions_unless_the_question_asks_for_that() -> None:
    """ "What is the price of the AF-500?" asks what the filter costs: the quote gives the filter
    row's $59, not the subscription row that matches the question as well; a question about the
    plan or its page's name keeps the subscription's price."""
    from agent.asked import asked_kinds
    from agent.grounding import extractive_answer

    passages = [
        "Halcyon Care Filter Subscription > Price\n"
        "| Purifier | Filter | Monthly price |\n|---|---|---|\n| Aero 500 | AF-500 Standard | $8.99 |",
        "Filters and Filter Replacement > Which Filter Do I Need?\n"
        "| Filter | Fits | Price |\n|---|---|---|\n| AF-500 Standard Filter | Aero 500 only | $59 |",
    ]
    for question in ("What is the price of the AF-500 standard filter?", "How much does the AF-500 cost?"):
        quote = extractive_answer(question, passages, max_sentences=1, asks=asked_kinds(question))
        assert quote is not None and "$59" in quote and "$8.99" not in quote, question
    for question in ("How much is the AF-500 a month?", "How much is Halcyon Care with the AF-500?"):
        quote = extractive_answer(question, passages, max_sentences=1, asks=asked_kinds(question))
        assert quote is not None and "$8.99" in quote, question


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        ("What does the Aero 300 cost in Canadian dollars?", [("price_cad",)]),
        ("What are the monthly prices in CAD?", [("price_cad",)]),
        ("How much is the filter in euros?", [("price_eur",)]),
        ("What does the Aero 500 cost in pounds?", [("price_gbp",)]),
        ("How much does the Aero 500 weigh in pounds?", [("weight",)]),  # pounds of weight
        ("How much is the Aero 300 in US dollars?", [("price",)]),  # dollars with no country: any price
        ("What currency will I pay in? I'm in Calgary.", []),  # asks no price
        ("What's the version number of the newest firmware?", [("version",)]),
        ("What Bluetooth version is in the Aero?", [("version",)]),
        ("What's the oldest iOS version the app runs on?", [("version",)]),
        ("What firmware version am I on?", []),  # the pages say where to look, not what it is
        ("Which version of the Aero should I get for my bedroom?", []),  # a model, not a version
        ("how do I check what firmware version I have", []),  # where to look
        ("Can I roll it back to the older firmware version?", []),
    ],
)
def test_a_price_in_a_named_currency_and_a_version_are_kinds_of_their_own(
    question: str, kinds: list[tuple[str, ...]]
) -> None:
    assert asked_kinds(question) == kinds


@pytest.mark.parametrize(
    ("question", "answer", "answers"),
    [
        ("What does the Aero 300 cost in Canadian dollars?", "Price: Aero 300 $199; Aero 500 $329.", False),
        ("What does the Aero 300 cost in Canadian dollars?", "In Canada the Aero 300 is C$269.", True),
        ("What does the Aero 300 cost in Canadian dollars?", "The Aero 300 is 269 CAD.", True),
        (
            "What does the Aero 300 cost in Canadian dollars?",
            "Prices are in US dollars for US orders and Canadian dollars for Canadian orders.",
            False,
        ),  # names the currency, gives no price
        ("How much is the filter in euros?", "The AF-300 is €39.", True),
        ("How much is the filter in euros?", "The AF-300 is $39.", False),
        ("What Bluetooth version is in the Aero?", "Bluetooth: Bluetooth Low Energy 5.0.", True),
        ("What's the oldest iOS version the app runs on?", "The app needs iOS 15 or later.", True),
        (
            "What's the version number of the newest firmware?",
            "Aero 300 serial numbers start with HA3-.",
            False,
        ),
        (
            "What's the version number of the newest firmware?",
            "The Aero connects to 2.4 GHz networks.",
            False,
        ),
        ("What's the version number of the newest firmware?", "The plan is $8.99 a month.", False),
    ],
)
def test_an_answer_gives_a_price_in_the_currency_or_a_version_asked_for(
    question: str, answer: str, answers: bool
) -> None:
    assert (missing(asked_kinds(question), answer) == []) is answers
    assert describe(asked_kinds("How much is it in Canadian dollars?")) == "a price in Canadian dollars"


@pytest.mark.parametrize(
    ("question", "sentence", "misses"),
    [
        (
            "How many decibels is the Aero 300 on fan speed 2?",
            "Press the Sleep button to run the fan at its quietest setting (22 dB on the Aero 300).",
            True,
        ),  # another setting, though it names no other speed
        ("How many decibels is the Aero 300 on fan speed 2?", "Fan speeds: Sleep, 1, 2, 3, Turbo.", False),
        ("How loud is it on level 3?", "Level 3: 44 dB.", False),
        # A yes-or-no question is answered by a sentence on what it asks about.
        ("Can I schedule it to run at speed 2 on weekdays?", "You can save up to 10 schedules.", False),
        ("How much is the Aero 300?", "Price: $199.", False),  # a name is not a setting
        ("How long is the warranty? I've had it 45 days.", "New purifiers: 2 years.", False),
    ],
)
def test_a_sentence_that_never_numbers_the_setting_asked_about(
    question: str, sentence: str, misses: bool
) -> None:
    from agent.asked import misses_setting

    assert misses_setting(question, sentence) is misses


@pytest.mark.parametrize(
    ("question", "sentence", "another"),
    [
        (
            "What percentage of 0.1-micron particles does the H13 filter catch?",
            "H13 HEPA: captures at least 99.95% of particles down to 0.3 microns.",
            True,
        ),
        (
            "What percentage of 0.3-micron particles does the H13 filter catch?",
            "H13 HEPA: captures at least 99.95% of particles down to 0.3 microns.",
            False,
        ),
        ("What percentage of 0.1-micron particles does it catch?", "It captures 99.95% of particles.", False),
        # A yes-or-no question: "No, the window is 30 days" answers it.
        ("Is there a 60-day return window?", "You can return it within 30 days.", False),
        ("How long is the 30-day window counted from?", "Within 30 days of delivery.", False),
        # A length of time names a policy: the refurbished units' "1 year" answers this one.
        ("How long is the 2-year warranty for refurbished units?", "Refurbished purifiers: 1 year.", False),
    ],
)
def test_a_sentence_about_another_amount_of_a_quantity_the_question_names(
    question: str, sentence: str, another: bool
) -> None:
    from agent.asked import another_quantity

    assert another_quantity(question, sentence) is another
