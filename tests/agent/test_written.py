"""A customer's message read as the help pages would write it (``agent.written``)."""

from __future__ import annotations

import pytest

from agent.written import as_written
from knowledge.base import cased_words

PAGES = [
    "Filters and Filter Replacement\n\nEvery Halcyon Aero uses a 3-stage filter. The Aero 300 takes the AF-300"
    " and the Aero 500 takes the AF-500. Unplug the purifier first.\n\n## Shipping Options and Costs\n\n"
    "Air quality: Good\nThe Aero 500 shows E1 to E6; the Aero 300 shows E4 or E6. Pair it with an iPhone.",
    "If E4 appears twice, contact support. Halcyon Care covers the Aero for as long as you pay.",
]


def test_the_pages_names_are_the_words_they_only_write_capitalised_mid_sentence() -> None:
    cased = cased_words(PAGES)
    assert cased["aero"] == "Aero" and cased["af-300"] == "AF-300" and cased["e4"] == "E4"
    assert cased["iphone"] == "iPhone"  # a capital past the first letter: a name written once
    # A word that only opens a sentence, a heading's title case, a label written once: not names.
    assert not {"unplug", "options", "costs", "good", "filter", "every"} & set(cased)


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("whats the return window", "What's the return window?"),
        ("What’s the return window?", "What's the return window?"),
        ("Whats the price", "What's the price?"),
        ("what does e4 mean", "What does E4 mean?"),
        ("can i use both promo codes on the same order", "Can I use both promo codes on the same order?"),
        ("my aero 500 shows e7", "My Aero 500 shows E7"),  # a code of a family the pages have
        ("how much is the af-700", "How much is the AF-700?"),
        ("it came 10 days ago, can you still send me one", "It came 10 days ago, can you still send me one?"),
        ("that's fine, right", "That's fine, right?"),
        ("ok if i rinse it with soap", "Ok if I rinse it with soap?"),
        ("i dont have the box", "I don't have the box"),
        ("the light is red", "The light is red"),
        ("have a nice day", "Have a nice day"),  # opens like a question, asks nothing
        ("do not email me", "Do not email me"),
        ("have you shipped it", "Have you shipped it?"),
        ("do you ship to puerto rico", "Do you ship to puerto rico?"),  # no page says it is a name
        ("What does E4 mean? It beeps.", "What does E4 mean? It beeps."),
        ("AERO 500 BROKEN", "AERO 500 BROKEN"),  # the customer's own capitals stay
        ("x2 is my code", "X2 is my code"),  # no family "x" on the pages: only the first letter
        ("", ""),
    ],
)
def test_a_message_typed_as_customers_type_is_read_as_the_pages_write(typed: str, read: str) -> None:
    assert as_written(typed, cased_words(PAGES)) == read


def test_without_the_pages_names_only_the_form_changes() -> None:
    assert as_written("what does e4 mean") == "What does e4 mean?"
