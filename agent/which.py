"""Asking back which one: a question that names none of the models the documents compare answers
for each of them and asks which the customer has, instead of guessing. Pure.

"How loud is it on Sleep?" beside a table whose columns are the Aero 300 and the Aero 500 has two
answers. A 135M model picks one, or mixes them ("PS-300 for the Aero 500"), and the answer check
cannot tell which the customer meant. The agent instead says what each one is, from the passage,
and asks:

    It depends on the model. Sleep: Aero 300 22 dB; Aero 500 20 dB. [1] Which one do you have:
    the Aero 300 or the Aero 500?

The customer's next message that names one of them ("the 500") gets that one's value from the
same row, and so does a later question about "it" once the customer has named one model ("How
heavy is it?" after "I have the Aero 500").

- **Variants** (``knowledge.variants.infer_variants``) are what a knowledge base compares side by
  side: the column headings (after the first column) of Markdown tables, kept when one heading
  heads a column in tables of at least two documents and its table has at least two such columns.
  The Halcyon sample gives "Aero 300" and "Aero 500" (the specification and the noise tables); its
  shipping table's "Delivery time" and "Cost" head columns of one document only. A configured list
  wins.
- **A split** (``split``) is a table row that gives a different value for each of two or more
  variants: a row under variant columns ("Price: Aero 300 $199; Aero 500 $329."), or rows of one
  table keyed by variant ("Aero 300: ... Monthly price $5.99." and "Aero 500: ... $8.99."). A
  sentence of running text that names two variants is not one: it is rarely the answer to the
  question asked ("Running an Aero 300 ... 0.1 kWh, and an Aero 500 about 0.15 kWh" came up for
  the fan motor's lifespan).
- **Named** (``named``): a variant is named by its whole name ("Aero 500"), or by the part that
  only it has ("the 500", "an AF-500 filter"), not followed by a unit ("500 sq ft").

The agent takes this path only when the message names no variant, and the sentence that best
answers the question (``agent.grounding.rank_sentences``, over passages retrieved for the question
with the variants' names added) is a split that shares a word with the question or gives the kind
of value it asks for (``agent.asked``), and that no word of the question settles by itself ("the
pet filter": only the Aero 500 has a Pet & Odor filter). It asks back when the customer has named
no variant, and answers for the one they named when they have named one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent import asked
from agent.citations import content_words
from agent.grounding import Evidence, yes_no_question

# A question that asks when, why, where or how to do something does not look up a model's value
# ("ok and when does the new price kick in?" beside the price row).
_NOT_A_VALUE = re.compile(r"\b(?:when|why|where|how (?:do|does|did|can|could|should|would|will|to))\b", re.I)
DEPTH = 2  # the split must be among this many of the best sentences for the question
_UNIT_AFTER = re.compile(asked._UNIT_AFTER, re.I)


def _distinct_parts(variants: Sequence[str]) -> dict[str, list[str]]:
    """Each variant's words that no other variant's name has ("300" of "Aero 300")."""
    words = {v: re.findall(r"[a-z0-9]+", v.lower()) for v in variants}
    return {
        v: [w for w in ws if not any(w in words[o] for o in variants if o != v)] for v, ws in words.items()
    }


def named(text: str, variants: Sequence[str]) -> list[str]:
    """The variants ``text`` names, by whole name or by the part only that one has."""
    low = text.lower()
    out = []
    for variant, parts in _distinct_parts(variants).items():
        if re.search(rf"(?<![\w-]){re.escape(variant.lower())}(?![\w-])", low):
            out.append(variant)
            continue
        for part in parts:
            for m in re.finditer(rf"(?<![\w$€£.,]){re.escape(part)}(?![\w-]|[.,]\d)", low):
                if not _UNIT_AFTER.match(low, m.end()):
                    out.append(variant)
                    break
            if variant in out:
                break
    return out


@dataclass(frozen=True)
class Split:
    """A sentence (or a table's rows keyed by variant) that answers differently per variant."""

    text: str  # as quoted, with its passage number
    passage: int
    values: dict[str, str]  # variant -> what the sentence says of it
    label: str = ""  # the row's label ("Price"), when it is a table row


def _row_values(sentence: str, variants: Sequence[str]) -> tuple[str, dict[str, str]] | None:
    """ "Price: Aero 300 $199; Aero 500 $329." -> ("Price", {"Aero 300": "$199", ...})."""
    label, sep, rest = sentence.partition(": ")
    if not sep:
        return None
    values = {}
    for part in rest.rstrip(".").split("; "):
        for variant in variants:
            if part.startswith(variant + " "):
                values[variant] = part[len(variant) + 1 :].strip()
    return (label, values) if len(values) >= 2 else None


def _keyed(sentence: str, variants: Sequence[str]) -> str | None:
    """The variant a table row is keyed by ("Aero 300: Filter AF-300 Standard; ...")."""
    return next((v for v in variants if sentence.startswith(v + ": ")), None)


def split(ranked: Sequence[Evidence], at: int, variants: Sequence[str]) -> Split | None:
    """The split that ``ranked[at]`` is, or None."""
    text, passage = ranked[at].text, ranked[at].passage
    if (parsed := _row_values(text, variants)) is not None:
        label, values = parsed
        if len(set(values.values())) >= 2:
            return Split(f"{text} [{passage}]", passage, values, label)
        return None
    if _keyed(text, variants) is None:
        return None
    # Every row of the table keyed by a variant, in the table's order ("Aero 500" may key two).
    rows = sorted(
        (e for e in ranked if e.passage == passage and _keyed(e.text, variants)), key=lambda e: e.order
    )
    keyed: dict[str, str] = {}
    for e in rows:
        key = _keyed(e.text, variants) or ""
        value = e.text[len(key) + 2 :]
        keyed[key] = f"{keyed[key]} {value}" if key in keyed else value
    if len(keyed) < 2 or len(set(keyed.values())) < 2:
        return None
    ordered = {v: keyed[v] for v in variants if v in keyed}
    return Split(" ".join(e.text for e in rows) + f" [{passage}]", passage, ordered)


def _settled(message: str, values: dict[str, str]) -> bool:
    """A word of the message that one variant's value has and the others' do not names it."""
    words = set(content_words(message))
    own = {v: set(content_words(text)) for v, text in values.items()}
    telling = [v for v, ws in own.items() if words & (ws - set().union(*(own[o] for o in own if o != v)))]
    return len(telling) == 1


def probe(message: str, variants: Sequence[str]) -> str:
    """The message with the variants' names added, so that retrieval and the ranking find the
    sentence that compares them ("How heavy is it?" -> the weight row)."""
    return f"{message} ({' or '.join(variants)})"


def ask_which(
    message: str,
    conversation: Sequence[str],
    ranked: Sequence[Evidence],
    variants: Sequence[str],
) -> Split | None:
    """The split to ask back with, or None (answer as usual): neither the message nor the
    customer's earlier messages (``conversation``) name a variant, and ``best_split`` finds one."""
    if named_already(message, conversation, variants):
        return None
    return best_split(message, ranked, variants)


def names_another(message: str, variants: Sequence[str]) -> list[str]:
    """The names in ``message`` of the variants' family that are none of them: "How much is the
    Aero 700?" beside the Aero 300 and Aero 500 -> ["Aero 700"]. Asked back which of the two, the
    customer was offered models they did not ask about; the usual way declines, naming it."""
    return asked.unknown_names(message, [f"the {variant}" for variant in variants])


def named_already(message: str, conversation: Sequence[str], variants: Sequence[str]) -> bool:
    """Whether the message or one of the customer's earlier messages names a variant."""
    return bool(named(message, variants)) or any(named(t, variants) for t in conversation)


def earlier_choice(message: str, conversation: Sequence[str], variants: Sequence[str]) -> str | None:
    """The one variant the customer's earlier messages named ("I have the Aero 500"), when the
    message names none: "How heavy is it?" then asks about that one."""
    if named(message, variants):
        return None
    names = {v for text in conversation for v in named(text, variants)}
    return names.pop() if len(names) == 1 else None


def best_split(message: str, ranked: Sequence[Evidence], variants: Sequence[str]) -> Split | None:
    """The split among the ``DEPTH`` best sentences (``ranked``: the passages retrieved for the
    ``probe``, best first as answers to the message itself) that answers the message, or None. A
    yes-or-no question is answered as usual ("Will Auto mode ever switch to Turbo?": never, on
    either model), and so are one that asks when, why, where or how to, and one that a word of one
    variant's value settles ("the pet filter")."""
    if len(variants) < 2 or yes_no_question(message) or _NOT_A_VALUE.search(message):
        return None
    asks = asked.asked_kinds(message)
    question = set(content_words(message)) - {w for v in variants for w in content_words(v)}
    for at in range(min(DEPTH, len(ranked))):
        found = split(ranked, at, variants)
        if found is None:
            continue
        text = " ".join(found.values.values()) + " " + found.label
        fits = bool(question & set(content_words(text))) or (
            bool(asks) and any(asked.gives(text, kinds) for kinds in asks)
        )
        if asks and asked.missing(asks, text):
            return None  # it compares something else than what was asked ("how many speeds": dB)
        if fits and not _settled(message, found.values):
            return found
        return None
    return None


# Words that say what kind of amount is asked for, not what it is of ("How much does it cost?").
_AMOUNT_WORDS = {
    "cost",
    "costs",
    "price",
    "prices",
    "priced",
    "charge",
    "fee",
    "pay",
    "weigh",
    "take",
    "last",
}
ELSEWHERE_DEPTH = 8  # the best sentences of the other pages looked at for the message's own words


def about_another(
    message: str,
    found: Split,
    elsewhere: Sequence[Evidence],
    variants: Sequence[str],
    title: str = "",
    own_names: Sequence[str] = (),
) -> bool:
    """Whether ``found`` gives the asked kind of value for something else than the message asks
    about: the message's own words (less those that ask, "how much", the variants' names and
    ``own_names``, the company's and the product's) are none of the split's or of its page's
    ``title``, and one of the best sentences of the other pages (``elsewhere``:
    the sentences of the pages retrieved for the message alone, less the split's page, best
    first) has one. "How much is express shipping?" beside "Price: Aero 300 $199; Aero 500
    $329" asks about the shipping table's Express row, not about the purifier. "How many watts
    does it draw at most?" has words no other page's best sentences have, and is asked back."""
    named = {w for name in [*variants, *own_names] for w in content_words(name)}
    own = (
        set(content_words(message)) - named - set(content_words(asked.asking_words(message))) - _AMOUNT_WORDS
    )
    if not own or own & set(content_words(" ".join([*found.values.values(), found.label, title]))):
        return False
    return any(own & set(content_words(e.text)) for e in elsewhere[:ELSEWHERE_DEPTH])


def which_text(found: Split) -> str:
    """The reply that asks back: what each variant has, and the question."""
    names = [f"the {v}" for v in found.values]
    options = ", ".join(names[:-1]) + f" or {names[-1]}"
    return f"It depends on the model. {found.text} Which one do you have: {options}?"


CHOICE_WORDS = 2  # a reply that names one variant and says at most this many other words


def chosen(message: str, variants: Sequence[str]) -> str | None:
    """The variant a reply to "Which one do you have?" names ("the 500", "I have the Aero 300"),
    or None: it names none or several, asks something ("I have the 500, does it have a timer?"),
    or says more than a choice."""
    names = named(message, variants)
    if len(names) != 1 or "?" in message:
        return None
    own = {w for v in variants for w in content_words(v)} | set(_distinct_parts(variants)[names[0]])
    rest = [w for w in content_words(message) if w not in own and not any(w.endswith(p) for p in own)]
    return names[0] if len(rest) <= CHOICE_WORDS else None


def answer_for(found_values: dict[str, str], label: str, variant: str, passage: int) -> str:
    """The reply once the customer has said which: that variant's value, cited."""
    value = found_values[variant]
    if value.endswith("."):
        value = value[:-1]
    return f"For the {variant}: {f'{label} ' if label else ''}{value}. [{passage}]"
