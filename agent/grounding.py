"""The answer check: is what the model wrote supported by the passages it was given? Pure.

A sentence passes when every figure in it (numbers, prices, codes such as ``E4`` or ``AF-300``),
every name (a capitalised word inside a sentence) and most of its content words also appear in
the sources: the passages, the conversation so far, and the persona's own names. A figure with a
unit is one fact: "5 days" needs a source that says "5 days" (or "3-5 days", "5-day"), not
"5 months" and a "days" elsewhere. And the answer must answer the question asked: its figures
must come from the passage sentences (a table row is one) that best match the question
(``rank_sentences``, ``grounding.evidence_sentences``), or the conversation; a sentence without
figures must share some of their words. "$69" is in the passages, but the row the customer asked
about says "$10.49". A figure from a table cell that a named thing owns (its column's header or
its row's first cell has letters and digits: "Aero 300", "E4") supports a sentence about that
thing only: "The Aero 500 costs $199" fails where $199 is the Aero 300's column (``owned_cells``).
A claim that ties two figures together fails where every passage clause that has them both is
negated: "The Aero 500 uses the AF-300" against "an AF-300 will not fit in an Aero 500".
A sentence that declines ("I don't know", "connect you with a member of the support team") always
passes: saying so is honest, whatever it cites. A bare "Yes, you do." says nothing the passages
could confirm, and a sentence that only says the customer's words back ("The Aero 300 is dead")
adds nothing: either is held until a sentence that states something passes, and alone it fails.
A table pasted as Markdown ("| Canada | Standard | 5–8 business days |") fails: the fallback quotes
its rows as sentences. When the model says it does not know but a passage answers (a strong quote
that has most of the question's words, ``quote_for_decline``), the decline is held and the quote
is sent instead. The answer must give what the question asks for (``agent.asked``): a question
that asks for a weight, a price or a time of day holds the answer until a sentence gives one, and
one that never does falls back to the passage sentences that give it (``giving``). A question
that asks for a whole list ("Which colors can the light ring show?") holds the answer until it
has named every item of the list its passages name so, and the fallback quotes that list whole
(``whole_list``); a list's lead-in ("The payment options are:") is never sent alone. A question
naming a thing no passage has ("Aero 700" beside the Aero 300 and 500) is declined unanswered.
A name only the customer's question has is no evidence ("Yes, we ship to Australia."), and an
amount the passages give only as a difference or a limit ("the $130 price difference", "orders
over $50") is not a price. An amount taken from another statement is not supported either: "You
can return a purifier within 14 days of delivery" fails where "within 30 days of delivery" is the
return window and "14 days" is how long a defective unit has to go back; another passage sentence
with an amount of the same unit shares more of the answer's and the question's words
(``Sources._misbound``; "free" is a price).

The agent streams an answer one checked sentence at a time (``SentenceGate``): a sentence is
shown only once it is complete and has passed. At the first sentence that fails, generation
stops; the answer is what passed before it, or, when nothing did, the fallback: an extractive
answer (the passage sentences that best match the question, quoted) or a decline that offers a
person. A generation cut by its token or time limit never ends mid-sentence: the unfinished
tail is dropped the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from agent import asked
from agent.citations import content_words, says_unknown
from knowledge.chunking import TABLE_RULE

SENT = "sent"
EXTRACTIVE = "extractive"
DECLINED = "declined"
ACTIONS = (SENT, EXTRACTIVE, DECLINED)

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "fifteen": "15", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50",
    "sixty": "60", "ninety": "90", "hundred": "100",
}  # fmt: skip
_FIGURE = re.compile(r"[A-Za-z]*-?\d+(?:[.,:]\d+)*[A-Za-z]*")
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][A-Za-z]+(?:[- ][A-Z0-9][A-Za-z0-9]*)*")
# A "?" or "!" before a lower-case word ends no sentence: "Tap **Forgot password?** on the sign-in
# screen" is one (read as two, a quote began "on the sign-in screen and enter your email.").
# A closing quote, bracket or bold mark stays with its sentence ('"Turn on the bedroom purifier."').
_SENTENCE_END = re.compile(
    r"(?:(?<=\.)|(?<=\.[\"')\]]))\s+|(?:(?<=[!?])|(?<=[!?][\"')\]])|(?<=[!?]\*\*))\s+(?![a-z])|\n+"
)
_CITATION = re.compile(r"\s*\[\d{1,2}\]")
_CLOSERS = "\"')]*"  # what may close a sentence after its full stop
_LEAD_IN = re.compile(r":(?:\s*\[\d{1,2}\])*\s*$")  # "The payment options are:" (its list to follow)
_LIST_MARKER = re.compile(r"(?:\d{1,2}[.)]|[-*\u2022])")
_LEADING_MARKER = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022])\s+")
# An amount the passages give only relative to another ("the $130 price difference", "we deduct
# $20", "orders over $50"): an answer that states it as a plain price misreads it.
_MONEY = re.compile(r"\$\s?\d[\d,]*(?:\.\d+)?")
_RELATIVE_BEFORE = re.compile(
    r"\b(?:over|under|above|below|up to|at least|at most|deduct(?:s|ed)?|sav(?:e|es|ed|ing)|extra|additional)"
    r"\s+(?:of\s+|the\s+|an?\s+)?$",
    re.I,
)
_RELATIVE_AFTER = re.compile(
    r"^\s*(?:price\s+)?(?:difference|more|less|off|extra|or more|or less|discount)\b", re.I
)
_RELATIVE_WORD = re.compile(
    r"\b(?:difference|more|less|off|extra|additional|over|under|above|below|up to|at least|at most"
    r"|deduct\w*|sav(?:e|es|ed|ing)|discount\w*|upgrad\w*|minimum|maximum)\b",
    re.I,
)


def relative_amounts(texts: Sequence[str]) -> set[str]:
    """Amounts (normalised, ``$130`` -> ``130``) that ``texts`` give only relative to another."""
    relative: set[str] = set()
    plain: set[str] = set()
    for text in texts:
        for m in _MONEY.finditer(text):
            before, after = text[max(0, m.start() - 30) : m.start()], text[m.end() : m.end() + 30]
            is_relative = _RELATIVE_BEFORE.search(before) or _RELATIVE_AFTER.match(after)
            (relative if is_relative else plain).add(_normal(m.group(0)))
    return relative - plain


# A sentence that asks: it ends with "?", or opens as a question does ("do you ship to australia").
_ASKING = re.compile(
    r".*\?[\"')\]]*$|(?:do|does|did|can|could|will|would|is|are|was|were|should|shall|may|have|has"
    r"|what|when|where|which|who|whom|whose|why|how)\b",
    re.I | re.S,
)
# The customer's own name, told even inside a question ("Hi, I'm Dana, can you help?").
_INTRODUCED = re.compile(r"\b(?:I'?m|I am|my name is|this is|name's)\s+([A-Z][a-z]+)", re.I)
_ALWAYS_NAMES = {"I", "I'm", "I'll", "I've", "I'd", "OK", "Yes", "No", "Please", "Thanks", "Sorry"}


@dataclass(frozen=True)
class Grounding:
    """The check's verdict on one answer, logged with the turn and returned to clients."""

    passed: bool
    action: str = SENT  # sent | extractive | declined
    checked: bool = True  # False: the answer had no passages to check against (small talk...)
    unsupported: tuple[str, ...] = ()  # what the failing sentence had that no source has
    dropped_tail: bool = False  # an unfinished sentence at the token/time limit was cut

    def to_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "action": self.action,
            "checked": self.checked,
            "unsupported": list(self.unsupported),
            "dropped_tail": self.dropped_tail,
        }


def _normal(token: str) -> str:
    token = token.lower().strip(".,:;!?()[]\"'").replace(",", "")
    return _NUMBER_WORDS.get(token, token.removeprefix("$"))


def figures(text: str) -> list[str]:
    """Numbers and codes in ``text``, normalised (``$39`` -> ``39``, ``two`` -> ``2``)."""
    found = [_normal(m.group(0)) for m in _FIGURE.finditer(_CITATION.sub("", text))]
    words = [_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS]
    return found + words


_UNIT_NAMES = {
    "business day": "business day", "day": "day", "week": "week", "month": "month", "year": "year",
    "hour": "hour", "hr": "hour", "minute": "minute", "min": "minute", "second": "second",
    "sec": "second", "db": "db", "kg": "kg", "lb": "lb", "cm": "cm", "mm": "mm", "m²": "m²",
    "m2": "m²", "sq ft": "sq ft", "kwh": "kwh", "%": "%", "percent": "%", "character": "character",
}  # fmt: skip
_NUMBER = r"\d+(?:[.,]\d+)?|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
_UNIT = "|".join(sorted((re.escape(u) + ("s?" if u[-1].isalpha() and u not in ("db", "kwh") else "")
                        for u in _UNIT_NAMES), key=len, reverse=True))  # fmt: skip
_QUANTITY = re.compile(
    rf"(?<![\w.])({_NUMBER})(?:\s*(?:-|–|—|to|or)\s*({_NUMBER}))?[\s-]*({_UNIT})(?![\w²])", re.IGNORECASE
)


def quantities(text: str) -> set[str]:
    """Figures with their unit, normalised: "3–5 business days" -> {"3 business day", "5 business
    day"}; "a 30-day window" -> {"30 day"}; "two years" -> {"2 year"}."""
    out = set()
    for match in _QUANTITY.finditer(_CITATION.sub("", text)):
        unit = match.group(3).lower()
        unit = _UNIT_NAMES.get(unit) or _UNIT_NAMES.get(unit[:-1], unit)
        for number in match.group(1, 2):
            if number:
                out.add(f"{_normal(number)} {unit}")
    return out


_FREE = re.compile(r"(?<![-\w])(?<!feel )free\b(?!-)", re.I)  # a price: "shipping is free", not "feel free"


def values(text: str) -> set[str]:
    """``quantities``, prices ("$39" -> "39 $", "free" -> "0 $") and frequencies ("every 2 weeks"
    -> "2 week often", "monthly" -> "1 month often"): the amounts ``text`` states with a unit."""
    found = quantities(text)
    text = _CITATION.sub("", text)
    found |= {f"{_normal(m.group(0))} $" for m in _MONEY.finditer(text)}
    if _FREE.search(text):
        found.add("0 $")
    # How often: "every 2 weeks" and "monthly" are amounts of one kind, not lengths of time.
    found |= {f"1 {_EVERY[m.group(1).lower()]} often" for m in _EVERY_WORD.finditer(text)}
    for m in _EVERY_SPAN.finditer(text):
        unit = m.group(3).lower()
        unit = _UNIT_NAMES.get(unit) or _UNIT_NAMES.get(unit[:-1], unit)
        found |= {f"{_normal(n)} {unit} often" for n in m.group(1, 2) if n} or {f"1 {unit} often"}
    return found


_EVERY = {"daily": "day", "weekly": "week", "monthly": "month", "yearly": "year", "annually": "year", "hourly": "hour"}  # fmt: skip
_EVERY_WORD = re.compile(r"\b(daily|weekly|monthly|yearly|annually|hourly)\b", re.I)
_EVERY_SPAN = re.compile(
    rf"\bevery\s+(?:({_NUMBER})(?:\s*(?:-|–|to)\s*({_NUMBER}))?\s*)?"
    r"(business days?|days?|weeks?|months?|years?|hours?|minutes?)\b",
    re.I,
)


def _dimension(unit: str) -> str:
    """What an amount measures: its unit, and for how often, that it is how often ("every 2
    weeks" against "monthly"); "2 weeks" and "1 month" as lengths of time are not compared."""
    return "often" if unit.endswith(" often") else unit


_COUNTED = {"business day", "day", "week", "month", "year", "hour", "minute", "second", "character"}


def _shown(value: str) -> str:
    """A ``values`` entry as a customer reads it: "30 day" -> "30 days", "12 $" -> "$12"."""
    number, unit = value.split(" ", 1)
    if unit.endswith(" often"):
        unit = unit.removesuffix(" often")
        return f"every {unit}" if number == "1" else f"every {number} {unit}s"
    if unit == "$":
        return "free" if number == "0" else f"${number}"
    return f"{number} {unit}s" if unit in _COUNTED and number != "1" else value


def claimed_figures(text: str) -> list[str]:
    """The figures ``text`` states (``figures`` without the bare words among them)."""
    return [f for f in figures(text) if not f.isalpha()]


def _figure_set(text: str) -> set[str]:
    out = set(figures(text))
    for figure in list(out):  # "AF-300" also covers "300"; "2.4GHz" covers "2.4"
        out.update(re.findall(r"\d+(?:\.\d+)?", figure))
    return out


_NEGATION = re.compile(
    r"\b(?:not|no|never|cannot|without|neither|nor|none)\b|n't\b|\b(?:isnt|dont|doesnt|wont|cant)\b", re.I
)
# A clause that denies what it says ("do not apply", "never", "cannot"); "without" only narrows
# ("works fully without an app"), so it does not count here (``Sources._contradicted``).
_DENIES = re.compile(r"\b(?:not|no|never|cannot)\b|n't\b|\b(?:isnt|dont|doesnt|wont|cant)\b", re.I)
_ITEM = re.compile(r"^([A-Za-z][^:;.]{2,40}):\s+(\S.*)$")  # "Blinking orange: connected to the router ..."
_TERM = re.compile(r"[A-Z]{1,3}-?\d{1,4}[A-Z]?")  # a code a section is named by: "E3", "AF-500P"
_TERM_IN = re.compile(rf"\b{_TERM.pattern}\b")
# "E3 means ...", "Error E4 is ...": a short subject, a verb that defines, what it is said to mean.
_DEFINES = re.compile(
    r"^((?:\S+\s+){0,4}?\S+)\s+(?:means|indicates|signals|stands for|refers to|is)\b(.+)$", re.I
)
_CLAUSE = re.compile(r"[,;:]\s+|\s+(?:and|but|while|whereas)\s+")
# A table's rule ("|---|---|") or a row of three or more cells: the model pasted the passage's
# Markdown instead of answering. The fallback quotes the rows that answer, each as a sentence.
_COPIED_TABLE = re.compile(r"\|\s*:?-{3,}|\|[^|\n]+\|[^|\n]+\|[^|\n]+\|")
_OWNER_CLAUSE = re.compile(r"[,;:]\s+|\s+(?:but|while|whereas|which|so)\s+")  # not "and": "A $1 and B $2"
# A passage clause that speaks of one member: "the Aero 300 comes with ...; the Aero 500 has ..."
_MEMBER_CLAUSE = re.compile(r";\s+|\s+(?:whereas|while)\s+")
_LABEL = re.compile(r"(?=.*[A-Za-z])(?=.*\d)")  # a thing's name has letters and digits: "Aero 300", "E4"


def split_breadcrumb(line: str) -> tuple[str, str]:
    """(breadcrumb, table row) of a chunk line where the chunker ran the section's breadcrumb into
    its table's first row ("Filters > Which Filter Do I Need? | Filter | Fits | Price |"); else
    ("", line). Every reader of the passages' tables cuts it the same way."""
    if " > " in line and "|" in line and not line.startswith("|"):
        return line[: line.index("|")], line[line.index("|") :]
    return "", line


@dataclass(frozen=True)
class OwnedCell:
    """A table cell that belongs to a named thing: its column's header or its row's first cell
    has letters and digits ("Aero 300" over "$199"). ``labels``: the table's every such name."""

    figures: frozenset[str]
    owners: tuple[str, ...]
    labels: tuple[str, ...]


def owned_cells(text: str) -> tuple[list[OwnedCell], str]:
    """The cells of ``text``'s Markdown tables (each with its header row) that a named thing
    owns, and the rest of ``text``: its prose and every other cell, whose figures anyone may use."""
    lines, cells, free = text.splitlines(), [], []
    i = 0
    while i < len(lines):
        crumb, line = split_breadcrumb(lines[i].strip())
        if crumb:
            free.append(crumb)
            lines[i] = line
        rule = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if not (line.startswith("|") and TABLE_RULE.match(rule)):
            free.append(lines[i])
            i += 1
            continue
        header = _cells(line)
        j = i + 2
        rows = []
        while j < len(lines) and lines[j].strip().startswith("|"):
            rows.append(_cells(lines[j]))
            j += 1
        columns = {c: h for c, h in enumerate(header) if c > 0 and _LABEL.match(h)}
        firsts = [row[0] for row in rows if row and _LABEL.match(row[0])]
        labels = tuple(dict.fromkeys([*columns.values(), *firsts]))
        free.append(" ".join(header))
        for row in rows:
            for c, cell in enumerate(row):
                owners = tuple(
                    o for o in (columns.get(c), row[0] if c > 0 and _LABEL.match(row[0]) else None) if o
                )
                if owners and len(row) == len(header):
                    cells.append(OwnedCell(frozenset(_figure_set(cell)), owners, labels))
                else:
                    free.append(cell)
        i = j
    return cells, "\n".join(free)


def _member_clauses(part: str, next_member: re.Pattern[str] | None) -> list[str]:
    """``part`` cut where an "and" opens a clause about another member of a family, once the clause
    before it gives a figure: "The Aero 300 is sized for rooms up to 30 m² and the Aero 500 for
    rooms up to 55 m²" -> two clauses; "The Aero 300 and the Aero 500 sleeves cost $9" stays one."""
    if next_member is None:
        return [part]
    out: list[str] = []
    for piece in next_member.split(part):
        if out and not set(figures(out[-1])) - {n for _, n in asked.members(out[-1])}:
            out[-1] = f"{out[-1]} and {piece}"
        else:
            out.append(piece)
    return out


def _names(text: str, labels: Sequence[str]) -> set[str]:
    """The labels ``text`` names: in full ("Aero 500") or by their figure ("the 500")."""
    low, said = text.lower(), set(figures(text))
    return {
        label
        for label in labels
        if re.search(rf"(?<!\w){re.escape(label.lower())}(?!\w)", low) or set(figures(label)) <= said
    }


@dataclass
class Sources:
    """What an answer may draw on, indexed once per turn."""

    texts: Sequence[str]
    min_support: float = 0.5
    evidence: Sequence[str] | None = None  # the sentences that answer the question; None: any
    conversation: Sequence[str] = ()  # the customer's figures count as evidence too
    evidence_support: float = 0.3
    # Of a sentence's *new* content words (the conversation did not say them), the share the
    # answering sentences must have: "the red blinking light means the filter is reset" repeats
    # the question and adds "filter" and "reset", only one of which the answering sentence has.
    new_word_support: float = 0.5
    # A figure of a table cell that a named thing owns ("$199" in the Aero 300's column) supports a
    # sentence about that thing, not one about its neighbour ("The Aero 500 costs $199"). The thing
    # is what the sentence names, else what ``question`` names; with neither, any column will do.
    question: str = ""
    bind_amounts: bool = True  # an amount from another statement fails (``_misbound``)
    # Of a sentence's new content words (at least ``SINGLE_SOURCE_WORDS``), the share one passage
    # sentence (with its section's title) must have; 0 turns it off (``_patched``).
    single_source: float = 0.6
    _figures: set[str] = field(init=False)
    _quantities: set[str] = field(init=False)
    _words: set[str] = field(init=False)
    _lower: str = field(init=False)
    _common: set[str] = field(init=False)
    _evidence: tuple[set[str], set[str], set[str]] | None = field(init=False)
    _said_words: set[str] = field(init=False)
    _said_figures: set[str] = field(init=False)
    _cells: list[OwnedCell] = field(init=False)
    _free_figures: set[str] = field(init=False)
    _labels: tuple[str, ...] = field(init=False)
    _clauses: list[tuple[set[str], bool]] = field(init=False)
    _valued: list[tuple[set[str], set[str]]] = field(init=False)
    _passages: list[tuple[set[str], set[str]]] = field(init=False)
    said_values: set[str] = field(init=False)  # the amounts the conversation gave
    _asking: set[str] = field(init=False)  # the question's "how long", "how much": stems that ask
    _told: str = field(init=False)
    _relative: set[str] = field(init=False)
    _definitions: dict[str, set[str]] = field(init=False)
    _titles: dict[str, str] = field(init=False)
    _items: list[tuple[set[str], set[str]]] = field(init=False)
    _owned: list[tuple[set[str], set[tuple[str, str]]]] = field(init=False)
    _families: set[str] = field(init=False)
    _denied: list[tuple[set[str], str]] = field(init=False)
    _affirmed: list[set[str]] = field(init=False)
    _excluded: list[set[str]] = field(init=False)  # what the question says "not" to (``ruled_out``)
    _sentence_stems: list[set[str]] = field(init=False)  # each passage sentence's, with its title's
    _passage_stems: set[str] = field(init=False)  # all of them

    def __post_init__(self) -> None:
        joined = "\n".join(self.texts)
        self._figures = _figure_set(joined)
        self._quantities = quantities(joined)
        self._words = set(content_words(joined))
        self._lower = joined.lower()
        self._common = set(re.findall(r"\b[a-z]+\b", joined))  # the words written in lower case
        self._evidence = None
        if self.evidence is not None:
            told, said = "\n".join(self.evidence), "\n".join([*self.evidence, *self.conversation])
            self._evidence = (_figure_set(said), quantities(said), set(content_words(told)))
        self._said_words = set(content_words("\n".join(self.conversation)))
        self.said_values = values("\n".join(self.conversation))
        self._asking = {_stem(m.group(1)) for m in _HOW.finditer(self.question.lower())}
        self._said_figures = _figure_set("\n".join(self.conversation))
        self._cells, free = [], []
        for text in self.texts:
            cells, rest = owned_cells(text) if "|" in text else ([], text)
            self._cells += cells
            free.append(rest)
        self._free_figures = _figure_set("\n".join(free)) if self._cells else set()
        self._labels = tuple(dict.fromkeys(label for cell in self._cells for label in cell.labels))
        conversation = set(self.conversation)
        self._relative = relative_amounts([t for t in self.texts if t not in conversation])
        # What the passages and the conversation's statements say; what the customer only asked
        # about ("Do you ship to Australia?") is not evidence about it.
        stated = [s for t in self.conversation for s in sentences(t) if not _ASKING.match(s.strip())]
        stated += [m.group(1) for t in self.conversation for m in _INTRODUCED.finditer(t)]  # "Hi Dana"
        self._told = "\n".join([*(t for t in self.texts if t not in conversation), *stated]).lower()
        self._definitions = {}  # "e3": the stems of "Fan Motor Error" and its section's first sentence
        self._titles = {}  # "e3": "Fan Motor Error"
        for text in self.texts:
            term, title = _section_term(text)
            body = passage_sentences(text) if term else []
            if body:
                self._definitions[term.lower()] = _stems(f"{title} {body[0]}")
                self._titles[term.lower()] = title
        known = [t for t in self.texts if t not in conversation]  # the passages
        self._families = {w.lower() for w, numbers in asked.families(known).items() if len(numbers) >= 2}
        self._items = []  # each "Label: what it means" list item: the label's stems, the rest's
        self._excluded = ruled_out(self.question)
        self._clauses = []  # each passage clause's figures, and whether it is negated
        # Each negated passage clause's word stems and text ("Price adjustments do not apply to
        # purchases from other retailers"), and each other clause's stems (``_contradicted``).
        self._denied, self._affirmed = [], []
        # Each passage clause's figures and the family members it names ("the Aero 300 comes with
        # the external PA-24 power adapter"): a figure only clauses about another member give is
        # that member's (``_other_members``).
        self._owned = []
        # "The Aero 300 is sized for rooms up to 30 m² and the Aero 500 for rooms up to 55 m²": an
        # "and" that opens a clause about another member ends the first one's.
        families = "|".join(re.escape(f) for f in sorted(self._families))
        next_member = re.compile(rf"\s+and\s+(?=(?:the\s+)?(?:{families})\s+\d)", re.I) if families else None
        self._valued = []  # each passage sentence's amounts with a unit, and its word stems
        self._sentence_stems = [
            _stems(f"{sentence} {heading(text)}") for text in known for sentence in passage_sentences(text)
        ]
        self._passage_stems = set().union(*self._sentence_stems)
        self._passages = []  # each passage's amounts and word stems
        for text in known:
            for sentence in passage_sentences(text):
                if (item := list_item(sentence)) is not None:
                    self._items.append(item)
                for part in _MEMBER_CLAUSE.split(sentence):
                    for clause in _member_clauses(part, next_member):
                        if found := set(figures(clause)):
                            self._owned.append((found, asked.members(clause)))
                for clause in _CLAUSE.split(sentence):
                    negated = bool(_NEGATION.search(clause))
                    self._clauses.append((set(figures(clause)), negated))
                    stems = _claim_stems(clause)
                    if _DENIES.search(clause):
                        self._denied.append((stems, clause.strip().rstrip(".")))
                    else:
                        self._affirmed.append(stems)
                if found := values(sentence):
                    self._valued.append((found, _word_stems(f"{sentence} {heading(text)}")))
            self._passages.append((values(text), _word_stems(text)))

    def giving(self, value: str) -> list[set[str]]:
        """The word stems (with their section's) of each passage sentence that states ``value``
        (a ``values`` entry)."""
        return [stems for found, stems in self._valued if value in found]

    def unsupported(self, sentence: str) -> list[str]:
        """What ``sentence`` states that the sources do not (empty: supported)."""
        if says_unknown(sentence):
            return []
        text = _LEADING_MARKER.sub("", _CITATION.sub("", sentence))  # "2. Press..." claims no "2"
        if _COPIED_TABLE.search(text):
            return ["a Markdown table copied as it is, not an answer"]
        missing = [f for f in claimed_figures(text) if f not in self._figures]
        missing += sorted(
            q for q in quantities(text) if q not in self._quantities and q.split()[0] in self._figures
        )
        named = [n for n in _NAME.findall(text) if n not in _ALWAYS_NAMES]
        names = [n for n in named if n.lower() not in self._lower]
        words = [] if text.rstrip().endswith("?") else content_words(text)  # asking back claims nothing
        if words and sum(w in self._words for w in words) / len(words) < self.min_support:
            missing.append(f"support {sum(w in self._words for w in words)}/{len(words)} words")
        if self._cells and not missing:
            missing += self._other_things(text)
        if not missing and self._families:
            missing += self._other_members(text)
        if not missing and not names:
            missing += self._heard_only(text, named)
        if not missing and self._relative and not _RELATIVE_WORD.search(text):
            amounts = [_normal(m.group(0)) for m in _MONEY.finditer(text)]
            missing += [
                f"${a} (the passage gives it as a difference or a limit)"
                for a in amounts
                if a in self._relative
            ]
        if not missing:
            missing += self._negated(text)
        if not missing and self._denied:
            missing += self._contradicted(text)
        if not missing and self._definitions:
            missing += self._misdefined(text)
        if not missing and self._items:
            missing += self._mislabelled(text)
        if not missing and self._items and self._excluded:
            missing += self._ruled_out(text)
        if not missing and self.bind_amounts:
            missing += self._misbound(text)
        if not missing and self.bind_amounts:
            missing += self._moved(text)
        if not missing and self.single_source:
            missing += self._patched(text)
        if self._evidence is not None and not missing:
            missing += self._off_evidence(text, words)
        return missing + names

    def _patched(self, text: str) -> list[str]:
        """A sentence pieced together from several passage sentences: of its content words that
        the conversation did not say (at least ``SINGLE_SOURCE_WORDS``, and ``SINGLE_SOURCE_PAGE_WORDS``
        of them the passages'), no one passage sentence, read with its section's title, has
        ``single_source``. "Yes, the warranty applies to
        purifiers bought from halcyonhome.com, the Halcyon Care Filter Subscription, and your
        subscription for the rest of the original warranty period" takes its words from three
        sentences of two pages; "The error code is a firmware update failure" from two."""
        new = _word_stems(text) - _stems("\n".join(self.conversation))
        # A sentence with few of the passages' words pieces nothing together ("Feel free to ask more.").
        if len(new) < SINGLE_SOURCE_WORDS or len(new & self._passage_stems) < SINGLE_SOURCE_PAGE_WORDS:
            return []
        best = max(len(new & stems) for stems in self._sentence_stems)
        if best / len(new) >= self.single_source:
            return []
        return [f"pieced together: at most {best}/{len(new)} of its words from one passage sentence"]

    def echoes(self, sentence: str) -> bool:
        """The sentence only says back what the conversation said ("The Aero 300 is dead and the
        light on its power brick is off."): a finished sentence whose every content word and
        figure the customer or an earlier answer already gave. (A fragment a stop sequence cut
        is not one.)"""
        text = _CITATION.sub("", sentence).rstrip()
        if not self.conversation or says_unknown(text) or not text.endswith((".", "!")):
            return False
        words = content_words(text)
        said = {w.replace("-", "") for w in self._said_words}  # "Wi-Fi" says back "wifi"
        return (
            bool(words)
            and all(w in self._said_words or w.replace("-", "") in said for w in words)
            and set(figures(text)) <= self._said_figures
        )

    def _heard_only(self, text: str, named: Sequence[str]) -> list[str]:
        """Names the sentence affirms that only the customer's questions have: "Yes, we ship to
        Australia." for "Do you ship to Australia?", beside "We currently ship only to the United
        States and Canada". A question is no evidence about what it asks; a statement ("My Aero
        300 is dead") may be said back. A negated sentence ("We don't ship to Australia") is not
        read here; the other checks still read it."""
        return [f"{n} (only the customer's question names it)" for n in self._heard(text, named)]

    def heard_names(self, sentence: str) -> list[str]:
        """The names ``sentence`` affirms that only the customer's questions have (``_heard_only``)."""
        text = _LEADING_MARKER.sub("", _CITATION.sub("", sentence))
        return self._heard(text, [n for n in _NAME.findall(text) if n not in _ALWAYS_NAMES])

    def _heard(self, text: str, named: Sequence[str]) -> list[str]:
        if not self.conversation or _NEGATION.search(text):
            return []
        heard = [  # word by word: "Certified Refurbished Aero" is told in parts
            n for n in named if any(w not in self._told for w in n.lower().replace("-", " ").split())
        ]
        return list(dict.fromkeys(heard))

    def _negated(self, text: str) -> list[str]:
        """A claim that ties two or more figures together ("The Aero 500 uses the AF-300") where
        every passage sentence that has them all says the opposite ("an AF-300 will not fit in an
        Aero 500"): the words are all there, the meaning is not."""
        claimed = set(claimed_figures(text))
        if len(claimed) < 2 or _NEGATION.search(text):
            return []
        holders = [negated for stated, negated in self._clauses if claimed <= stated]
        if holders and all(holders):
            return [f"{' and '.join(sorted(claimed))} (the passage says not)"]
        return []

    def _contradicted(self, text: str) -> list[str]:
        """A clause that says what a passage clause says not, word for word: "Yes, the price
        adjustment applies to purchases from other retailers" beside "Price adjustments do not
        apply to purchases from other retailers". Every word stem of the answer's clause (three or
        more) is in one passage clause that denies it (``_DENIES``), and no passage clause without
        a denial has them all ("A price adjustment applies to purchases on halcyonhome.com" is not
        read as one)."""
        off = []
        for clause in _CLAUSE.split(text):
            stems = _claim_stems(clause)
            if len(stems) < 3 or _NEGATION.search(clause):
                continue
            denying = [said for denied, said in self._denied if stems <= denied]
            if denying and not any(stems <= affirmed for affirmed in self._affirmed):
                off.append(f"it says what the passage says not: {denying[0]}")
        return off

    def _misdefined(self, text: str) -> list[str]:
        """A code defined the way its own section does not: "E3 means that the motor fault is
        covered by the 2-year warranty", where the section "E3: Fan Motor Error" opens with "The fan
        has stalled or is not spinning at the expected speed" (the warranty sentence closes it).
        What a sentence says a term means or is ("E4 is an error") must share at least half its
        word stems with the title and first sentence of the section named "<term>: <title>"; and
        when the question asks what the term means, it must have the title's words too."""
        match = _DEFINES.search(text.strip())
        if not match:
            return []
        terms = [t for t in _TERM_IN.findall(match.group(1)) if t.lower() in self._definitions]
        meaning = _stems(re.split(r"[;:]|\.\s", match.group(2))[0])
        if len(terms) != 1 or not meaning:
            return []
        defined = self._definitions[terms[0].lower()]
        title = self._titles[terms[0].lower()]
        asked_for = _MEANING.search(self.question) and terms[0].lower() in _terms_in(self.question)
        if asked_for and not _stems(title) <= _stems(text):
            # "What does E4 mean?" answered "E4 means the purifier has shut down to protect
            # itself": true, but not what the section calls it (Overheating Protection); the
            # section's title and first sentence are quoted instead (``definition_quote``).
            return [f"{terms[0]} (its section calls it {title})"]
        if len(meaning & defined) * 2 >= len(meaning):
            return []
        return [f"{terms[0]} (its section defines it otherwise)"]

    def _mislabelled(self, text: str) -> list[str]:
        """A list item's label given another item's meaning: "The Wi-Fi icon blinking orange is a
        firmware update failure", where "Blinking orange: connected to the router but cannot reach
        the internet" and "Purple, blinking 3 times: a firmware update failed". The sentence names
        a label (all its word stems, at least two); what it says besides the label and the
        question must share at least half its stems with that item, unless no other item shares
        more (and at least two)."""
        stems = _bare_stems(text)
        named = [(label, body) for label, body in self._items if label <= stems]
        if not named:
            return []
        asked_for = _bare_stems(self.question)
        rest = stems - set().union(*(label for label, _ in named)) - asked_for
        if len(rest) < 2:
            return []
        own = max(len(rest & body) for _, body in named)
        if own < 2 and any(label <= asked_for for label, _ in named):
            # The question names the item ("the ring just blinked purple 3 times, what happened?")
            # and the sentence gives it a meaning its item does not have ("... when the purifier
            # is switched on"): one shared word ("purifier") is not the item's meaning.
            return [f"{' '.join(sorted(rest))} (not what the pages say it means)"]
        if own * 2 >= len(rest):
            return []
        others = [len(rest & body) for label, body in self._items if (label, body) not in named]
        if max(others, default=0) >= max(own + 1, 2):
            return [f"{' '.join(sorted(rest))} (another item of the list says that)"]
        return []

    def _ruled_out(self, text: str) -> list[str]:
        """A list item the customer said it is not: "not blinking, not white, not orange, just dark"
        answered "The Wi-Fi icon blinking orange: the purifier reached your router but ...", the
        "Blinking orange" item. The sentence names the item's label (all its word stems, at least
        two), and one thing the question says "not" to is all in that label."""
        stems = _bare_stems(text)
        for label, _ in self._items:
            if label <= stems and any(out <= label for out in self._excluded):
                return [f"{' '.join(sorted(label))} (the customer said it is not that)"]
        return []

    def _misbound(self, text: str) -> list[str]:
        """An amount taken from another statement: "You can return a purifier within 14 days of
        delivery" where "within 30 days of delivery" is the return window and "14 days" is how
        long a defective unit has to go back. For each amount with a unit (or a price) the
        sentence states and the conversation did not, the passage sentences that give it are
        weighed against those that give another amount of the same kind (the same unit; any two
        frequencies: "every 2 weeks" against "Monthly" for the top grille), by the word stems they
        share with the sentence's clause and the question: when one of the others shares at least
        ``MISBOUND_MARGIN`` more (and at least two), the amount belongs to another statement."""
        said = self.said_values
        # "How long is the warranty?": "long" asks; it does not say what the amount is about.
        question = _word_stems(self.question) - self._asking
        off = []
        for clause in _CLAUSE.split(text):
            words = _word_stems(clause) | question
            for value in sorted(values(clause) - said):
                unit = _dimension(value.split(" ", 1)[1])
                holders = [len(w & words) for found, w in self._valued if value in found]
                rivals = [
                    (len(w & words), other)
                    for found, w in self._valued
                    if value not in found
                    for other in sorted(found)
                    if _dimension(other.split(" ", 1)[1]) == unit
                ]
                if not holders or not rivals:
                    continue
                best, other = max(rivals, key=lambda r: r[0])
                if best >= 2 and best >= max(holders) + MISBOUND_MARGIN:
                    off.append(f"{_shown(value)} (the passage gives {_shown(other)} for this)")
        return off

    def _moved(self, text: str) -> list[str]:
        """An amount given to the question's thing that the passages give only to another: "The
        replacement cover is $9" for "How much is a replacement cover?", where $9 is what "a
        replacement sleeve" costs, and "A replacement remote control is $9" where no passage
        names a remote. Of the word stems the sentence's clause shares with the question (its
        common words, not the words that ask: "how long"), one that no passage giving the amount
        has fails it. A right answer in the customer's own words ("the link is good for 30
        minutes") fails too, and the fallback quotes the passage ("valid for 30 minutes")."""
        said = self.said_values
        # The question's common nouns and verbs: a name ("Aero", "Halcyon") is the product's or
        # the company's, which a passage need not repeat ("New purifiers: 2 years").
        lower = " ".join(w for w in re.findall(r"[\w'-]+", self.question) if w[:1].islower())
        question = _word_stems(lower) - self._asking - _AMOUNT_VERBS
        written: dict[str, str] = {}
        for word in content_words(lower):
            written.setdefault(_stem(word), word)
        off = []
        clauses = _CLAUSE.split(text)
        subjects = [(_word_stems(clause) & question) - _VERDICT_STEMS for clause in clauses]
        lead = next((s for s in subjects if s), set())
        for clause, subject in zip(clauses, subjects, strict=True):
            # A clause with no word of the question's own speaks of the sentence's subject:
            # "The latest Aero firmware is HA3- and HA5-, followed by 10 characters".
            kinds = self._kinds_named(clause)
            subject = (subject or lead) | set(kinds)
            written.update({stem: word for stem, word in kinds.items() if stem not in written})
            for value in sorted(values(clause) - said):
                holders = [w for found, w in self._passages if value in found]
                if not holders:
                    continue
                moved = sorted(s for s in subject if not any(s in w for w in holders))
                if moved:
                    # Named as the question wrote them ("warranty"), not by their stems ("warra").
                    named = ", ".join(written.get(s, s) for s in moved)
                    off.append(f"{_shown(value)} (the passage gives it for something else than {named})")
        return off

    def _kinds_named(self, clause: str) -> dict[str, str]:
        """The kinds of thing a model's name in ``clause`` ends with (by stem), where the
        passages use the word as a common noun: "filter" for "the AF-500 Standard Filter". A name
        the conversation brought ("The warranty for the AF-500 Standard Filter is 2 years", after
        a talk about filters) is as much the amount's subject as the question's words are, and the
        warranty's "New purifiers: 2 years" is not about filters (``_moved``)."""
        kinds = [head.lower() for head in _MODEL_KIND.findall(clause)]
        return {_stem(kind): kind for kind in kinds if kind in self._common}

    def _other_members(self, text: str) -> list[str]:
        """Figures that the passages give only in clauses about another member of the family
        the sentence's clause names: "The Aero 500 comes with the external PA-24 power adapter",
        where "the Aero 300 comes with the external PA-24 power adapter ...; the Aero 500 has a
        built-in power supply". The table cells' version is ``_other_things``."""
        sentence_named = {m for m in asked.members(text) if m[0] in self._families}
        off = []
        for clause in _OWNER_CLAUSE.split(text):
            named = {m for m in asked.members(clause) if m[0] in self._families} or sentence_named
            if not named:
                continue
            own = {n for _, n in named}
            kinds = {w for w, _ in named}
            for f in claimed_figures(clause):
                if f in own or f in self._said_figures:
                    continue
                holders = [
                    {m for m in members if m[0] in kinds} for found, members in self._owned if f in found
                ]
                if holders and all(h and not h & named for h in holders):
                    others = sorted({f"{w.capitalize()} {n}" for h in holders for w, n in h})
                    off.append(f"{f} (the passage gives it for the {' / '.join(others)})")
        return off

    def _other_things(self, text: str) -> list[str]:
        """Figures that only cells of another named thing have: "$199" for the Aero 500, where
        the table gives the Aero 500 $329 and the Aero 300 $199."""
        named = _names(text, self._labels) or _names(self.question, self._labels)
        if not named:
            return []
        off = []
        # A clause that names a thing speaks of it alone: in "The Aero 500 weighs 4.8 kg, and it
        # fits an Aero 300" the weight is the Aero 500's. A clause that names none speaks of what
        # the sentence names.
        for clause in _OWNER_CLAUSE.split(text):
            owners_here = _names(clause, self._labels) or named
            naming = {f for label in owners_here for f in figures(label)}
            for f in claimed_figures(clause):
                if f in naming or f in self._free_figures:
                    continue
                cells = [c for c in self._cells if f in c.figures]
                if cells and not any(owners_here & set(c.owners) for c in cells):
                    owners = sorted({o for c in cells for o in c.owners})
                    off.append(f"{f} (the {' / '.join(owners)} figure)")
        return off

    def _off_evidence(self, text: str, words: list[str]) -> list[str]:
        """What a sentence the sources support takes from outside the sentences that answer the
        question: a figure ("$69" when the question's row says "$10.49"); with no figure, most of
        its words (an answer to another question); or, of the words the conversation did not
        say (what the sentence adds), fewer than ``new_word_support`` ("the filter is reset")."""
        assert self._evidence is not None
        told_figures, told_quantities, told_words = self._evidence
        claimed = claimed_figures(text)
        off = [f"{f} (not in the answering passage)" for f in claimed if f not in told_figures]
        off += [f"{q} (not in the answering passage)" for q in sorted(quantities(text) - told_quantities)]
        if not claimed and words and sum(w in told_words for w in words) / len(words) < self.evidence_support:
            off.append(f"answering passage {sum(w in told_words for w in words)}/{len(words)} words")
        new = [w for w in words if w not in self._said_words]
        if not off and new and sum(w in told_words for w in new) / len(new) < self.new_word_support:
            off.append(f"answering passage {sum(w in told_words for w in new)}/{len(new)} new words")
        return off


_VERDICT = re.compile(
    r"^\W*(?:yes|no|yeah|yep|nope|sure|absolutely|definitely|certainly|correct|of course|not really)\b", re.I
)
_VERDICT_WORDS = {"yes", "no", "yeah", "yep", "nope", "sure", "absolutely", "definitely", "certainly", "correct", "course", "really"}  # fmt: skip


def bare_verdict(sentence: str) -> bool:
    """ "Yes, you do." or "No." alone: an answer's polarity with nothing the check could confirm."""
    if not _VERDICT.match(sentence) or claimed_figures(sentence):
        return False
    return not [w for w in content_words(sentence) if w not in _VERDICT_WORDS]


_YES = re.compile(r"^\W*(?:yes|yeah|yep|sure|absolutely|definitely|certainly|of course)\b", re.I)
_YES_NO = re.compile(r"^\W*(?:can|could|is|are|am|does|do|did|will|would|should|may|has|have)\b", re.I)
_SAYS_NO = re.compile(r"^(?:not|no|never|cannot|can't|won't|don't|doesn't|isn't|aren't|shouldn't|mustn't)$")
_BROAD_VERBS = {"use", "have", "has", "get", "put", "make", "need", "take", "go", "work", "do", "run", "keep", "let"}  # fmt: skip
_LINKING = {"while", "when", "where", "after", "befor", "still", "also", "just", "i'm", "it's", "you'r", "there", "here"}  # fmt: skip


# Asked whether something lasts ("does the timer keep going?", "are my schedules saved?") ...
_KEEPS = re.compile(
    r"\b(?:keeps?|kept|keeping|continues?|stays?|remains?|survives?|saved?|remembers?)\b", re.I
)
# ... and told that it ends ("A timer is cancelled if ...", "To erase all settings, including schedules").
_ENDS = re.compile(r"\b(?:cancel(?:s|led|ed)?|erase[sd]?|delete[sd]?|wipe[sd]?|clear(?:s|ed)|lost)\b", re.I)


_NO = re.compile(r"^\W*(?:no|nope)\b[,.!]?", re.I)


def unbacked_no(question: str, sentence: str, denied: str | None) -> bool:
    """Whether ``sentence``, the first of an answer to a yes-or-no question, opens with "No" and
    goes on with a claim of no "not" of its own ("No, the purifier remembers its last mode and
    returns to it" for "Will the purifier go back to what it was doing?"), where no passage
    sentence says no (``denied`` is None). The gate asks only of a sentence the passages support,
    so the claim is theirs and the "No" the model's."""
    found = _NO.match(sentence)
    if denied is not None or not found or not yes_no_question(question):
        return False
    rest = sentence[found.end() :]
    return bool(content_words(rest)) and not _NEGATION.search(rest) and not says_unknown(rest)


# A condition a passage puts on what it says yes to: "If the price ... drops within 14 days of
# your purchase, we will refund the difference".
_CONDITION = re.compile(
    r"\b(?:if|within|as long as|provided|only|unless|up to|until|at least|no later than)\b", re.I
)


def unstated_condition(
    question: str, sentence: str, ranked: Sequence[Evidence] | None, said: set[str]
) -> tuple[set[str], str] | None:
    """The amounts of the condition a "Yes" leaves out, and the passage sentence that sets it, or
    None. "The price dropped a few days after I ordered. Can I get the difference back?" answered
    "Yes, we will refund the difference once per order", beside "If the price ... drops within 14
    days of your purchase, we will refund the difference once per order": the customer hears a
    yes with no limit. The passage sentence is the one of the three best that has the most of the
    answer's word stems (at least two, and half of them); the amounts of its clauses that open
    with a condition word ("if", "within", "up to" ...) must be in the answer or the conversation
    (``said``): "Yes, we refund $20" does not give "If you return it within 30 days"."""
    if ranked is None or not _YES.match(sentence) or not yes_no_question(question):
        return None
    own = _word_stems(sentence) - _VERDICT_STEMS
    if len(own) < 2:
        return None
    best = max(ranked[:3], key=lambda e: len(own & _word_stems(e.text)), default=None)
    if best is None or len(shared := own & _word_stems(best.text)) < 2 or len(shared) * 2 < len(own):
        return None
    found: set[str] = set()
    for match in _CONDITION.finditer(best.text):  # the amounts of each condition's clause
        found |= values(re.split(r"[,;]\s|\.\s|\.$", best.text[match.start() :], maxsplit=1)[0])
    if not found or found & (values(sentence) | said):
        return None
    return found, best.text


def says_it_ends(question: str, sentence: str) -> bool:
    """Whether ``sentence`` says that what a yes-or-no ``question`` asks to last ends: "If I switch
    it off and on again, does that timer keep going?" and "A timer is cancelled if you turn the
    purifier off and on"; "Are my readings kept forever?" and "Device readings: 13 months, then
    deleted". Not when the question itself asks about ending it ("Can I still cancel it?")."""
    if not yes_no_question(question) or _ENDS.search(question):
        return False
    asked_part = _asked_sentence(question)
    ends = _ENDS.search(sentence)
    if not _KEEPS.search(asked_part) or not ends:
        return False
    if _NEGATION.search(" ".join(sentence[: ends.start()].split()[-3:])):
        return False  # "This does not erase your schedules": it lasts
    thing = _stems(asked_part) - _LINKING - _stems(" ".join(_KEEPS.findall(asked_part)))
    return bool((thing - {_stem(w) for w in _BROAD_VERBS}) & _stems(sentence))


def _asked_sentence(question: str) -> str:
    """The last sentence of ``question`` that asks ("...?"), or the whole message."""
    return ([s for s in sentences(question) if s.rstrip().endswith("?")] or [question])[-1]


def yes_no_question(question: str) -> bool:
    """Whether the last sentence the customer asks, or its last clause, is a yes-or-no question
    ("Can the Aero join a 5 GHz network?"; "The ring is pulsing purple, can I unplug it?")."""
    asked_part = _asked_sentence(question)
    clause = re.split(r"[,;:]\s+", asked_part)[-1]
    return bool(_YES_NO.match(asked_part) or _YES_NO.match(clause))


def says_no_to(question: str, sentence: str) -> bool:
    """Whether ``sentence`` says no to the yes-or-no ``question``: a "not", "no", "can't" ... whose
    next content word is one the question has. "Can I change my schedules with Google
    Home?" and "Voice assistants can't change schedules": it does; "Is the Aero certified for
    low ozone?" and "it has no ionizer": it does not. Also a limit of one where more are asked
    about (``_limits_to_one``) and a table row whose cell says no (``_row_says_no``)."""
    if not yes_no_question(question):
        return False
    asked_part = _asked_sentence(question)
    wanted = _stems(asked_part) - _LINKING
    if says_it_ends(question, sentence):
        return True
    if _limits_to_one(asked_part, sentence, wanted) or _row_says_no(question, asked_part, sentence):
        return True
    words = re.findall(r"[A-Za-z0-9]+(?:['’][a-z]+)?", sentence.replace("’", "'"))
    if (words and words[0] == "Not") or ": Not " in sentence[:60]:
        # A list item that opens with "Not" ("Not in bathrooms, laundry rooms, or anywhere it
        # could get wet") says no to all it names.
        named = _stems(sentence.split(": Not ", 1)[-1]) - {"not"}
        if named & (wanted - {_stem(w) for w in _BROAD_VERBS}):
            return True
    for i, word in enumerate(words):
        if _SAYS_NO.match(word.lower()):
            for after in _negated_items(words, sentence, i):  # what the "no" is about
                if not _stems(after[0]) & wanted:
                    # "Does it work with 5 GHz?" and "It cannot join a 5 GHz network": asked with a
                    # verb that says little, the "no" is about the question when it names all
                    # the question's other words.
                    specific = wanted - {_stem(w) for w in _BROAD_VERBS}
                    if wanted - specific and specific and specific <= _stems(" ".join(after)):
                        return True
                    continue
                # "Do not use the purifier if the cord is damaged" does not answer "Can I use an
                # extension cord?": after a verb that says little, the next word must be asked too.
                if after[0].lower() not in _BROAD_VERBS or (len(after) > 1 and _stems(after[1]) & wanted):
                    return True
    return False


# Asked about more than one ("Can I use both codes?", "Will one membership cover both?") ...
_MANY = re.compile(r"\b(?:both|two|multiple|several|more than one|each of|all of)\b", re.I)
# ... and told one is the limit: "Only one promo code can be used per order", "Each membership
# covers one purifier".
_ONE_ONLY = re.compile(
    r"\b(?:only|just)\s+(?:one|1|a single)\b|\b(?:one|1|a single)\s+(?:[\w-]+\s+){0,3}?(?:per|at a time)\b"
    r"|\beach\s+[\w-]+\s+(?:covers?|includes?|allows?|is for|applies to)\s+(?:one|1|a single)\b",
    re.I,
)
# A two-column table's row whose cell says no: "IFTTT: Supported Not currently." (the row's
# label, its column's header, the cell).
_ROW_NO = re.compile(r"^([^:;.]{2,60}):\s+(?:[A-Z][\w/-]*\s+){0,2}?(?:Not\b|None\b|No(?=[.;]|$))")
_REFERS = re.compile(r"\b(?:it|that|this|them|those|these)\b", re.I)


def _limits_to_one(asked_part: str, sentence: str, wanted: set[str]) -> bool:
    """Whether ``sentence`` says one is the limit where the question asks about more than one,
    and shares a word with it: "Can I use both on the same order?" and "Only one promo code can
    be used per order"."""
    broad = {_stem(w) for w in _BROAD_VERBS}
    return bool(
        _MANY.search(asked_part) and _ONE_ONLY.search(sentence) and (wanted - broad) & _stems(sentence)
    )


def _row_says_no(question: str, asked_part: str, sentence: str) -> bool:
    """Whether ``sentence`` is a table row that says no to the thing the question asks about: its
    label named by the asked sentence, or by the message when the asked sentence points back ("I
    run my house through IFTTT. Is there an integration for it?" and "IFTTT: Supported Not
    currently."). At least half of the label's words must be named."""
    row = _ROW_NO.match(sentence)
    if not row or not (label := _stems(row.group(1))):
        return False
    named = _stems(question) if _REFERS.search(asked_part) else _stems(asked_part)
    return len(label & named) * 2 >= len(label)


_SCOPE_END = re.compile(r"[.;:!?]|\b(?:but|because|so|if|unless|when|while|which|until)\b", re.I)
_LIST_SEP = re.compile(r",\s*(?:(?:or|and|nor)\s+)?|\s+(?:or|nor)\s+", re.I)


def _negated_items(words: list[str], sentence: str, index: int) -> list[list[str]]:
    """The first two content words of each thing the "no" at ``words[index]`` (``sentence``'s
    words) is about: the words after it and, where a list follows ("they cannot remove devices,
    see orders, or manage Halcyon Care"), each of its items, up to the end of the clause ("but",
    a full stop)."""
    first = [w for w in words[index + 1 :] if content_words(w)][:2]
    out = [first] if first else []
    # Where the "no" ends in the text (the words were read with "’" as "'", one character each).
    ends = [m.end() for m in re.finditer(r"[A-Za-z0-9]+(?:['’][a-z]+)?", sentence.replace("’", "'"))]
    tail = sentence[ends[index] :]
    scope = _SCOPE_END.split(tail, maxsplit=1)[0]
    parts = _LIST_SEP.split(scope)
    for part in parts[1:]:
        item = [w for w in re.findall(r"[A-Za-z0-9]+(?:['’][a-z]+)?", part) if content_words(w)][:2]
        if item:
            out.append(item)
    return out


# "Is there a ...?", "Do you have a ...?", "Does the Aero come with a ...?", "Do I get a ...?": the
# question asks whether a thing exists; what follows the article names it.
_EXISTS = re.compile(
    r"\b(?:is there|are there|do you(?: guys)? (?:have|offer|sell|make|carry|run|provide)|"
    r"does (?:\w+ ){1,4}?(?:have|offer|come with|include|support)|do I get)\s+((?:an?|any|some)\s+.+)",
    re.I,
)
# Where the thing's name ends: a preposition, a clause, a pronoun ("a remote control I can use").
_THING_END = re.compile(
    r"\s+(?:so|for|that|to|which|where|if|when|in|on|at|with|from|like|by|i|you|we|they|it|my|your|"
    r"because|since|as|than|of)\b|[?,.!;:]",
    re.I,
)
# Words that say nothing of which thing: "a quick way to ...", "a deadline" (an amount is its answer).
_THING_FILLER = {
    "way", "option", "thing", "anything", "something", "kind", "sort", "type", "lot", "place", "one",
    "ones", "quick", "easy", "simple", "good", "best", "little", "small", "big", "other", "special",
    "different", "new", "extra", "better", "cheap", "cheaper", "official", "specific", "separate",
    "real", "actual", "proper", "similar", "certain", "particular", "free", "deadline", "limit", "fee",
    "charge", "cost", "price", "minimum", "maximum", "window", "time",
}  # fmt: skip


def absent_thing(question: str, texts: Iterable[str], vocabulary: Iterable[str] | None = None) -> str | None:
    """What a question asks to exist, when ``texts`` (the passages shown, their titles, the
    conversation) do not name it: "Is there an Apple Watch app or a home-screen widget ...?" against
    pages on the phone app -> "an Apple Watch app or a home-screen widget". At least half of its
    words must be missing from ``texts`` ("Is there a way to kick every other device off?" and "Is
    there a deadline?" name nothing particular), and with ``vocabulary`` (every word of the help
    pages) one of them must be in no page at all: "a tip-over switch" beside pages that say
    "Tip-Over Protection" elsewhere, or "a price match" beside "Price Adjustment", may be the same
    thing in other words. No page can say yes to it, and a quote would answer something else, so
    the agent says it found nothing about it (as for ``asked.unknown_names``)."""
    found = _EXISTS.search(_asked_sentence(question))
    if not found:
        return None
    thing = _THING_END.split(found.group(1), maxsplit=1)[0].strip()
    words = {_stem(w) for w in content_words(thing) if w.lower() not in _THING_FILLER}
    words -= {_stem(w) for w in _BROAD_VERBS}
    have: set[str] = set()
    for text in texts:  # "pre-filter" names a filter too
        have |= _stems(text) | _stems(text.replace("-", " "))
    missing = words - have
    if not missing or len(missing) * 2 < len(words):
        return None
    if vocabulary is not None and missing <= _vocabulary_stems(frozenset(vocabulary)):
        return None
    return thing


def _name_words(name: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", name.lower()))


def unpaged_words(question: str, vocabulary: Iterable[str]) -> frozenset[str]:
    """The words of the names in ``question`` that no page of the help pages has, in any form
    (``vocabulary``, ``KnowledgeBase.words``, compared by stem: "Saturdays" is on a page that says
    "Saturday"): "How long does shipping to Puerto Rico take?" -> {"puerto", "rico"}."""
    names = [n for n in _NAME.findall(question) if n not in _ALWAYS_NAMES]
    return unpaged_said(" ".join(names), vocabulary)


def unpaged_said(question: str, vocabulary: Iterable[str]) -> frozenset[str]:
    """Every word of ``question`` that no page of the help pages has, a name or not: "how long does
    shipping to puerto rico take" -> {"puerto", "rico"}, typed in lower case."""
    have = _vocabulary_stems(frozenset(vocabulary))
    return frozenset(w for w in _name_words(question) if _stem(w) not in have)


@lru_cache(maxsize=4)
def _vocabulary_stems(words: frozenset[str]) -> frozenset[str]:
    """The stems of a knowledge base's words, hyphenated ones also by their parts: once per
    version of the index (``KnowledgeBase.words`` returns the same set until it changes)."""
    return frozenset(s for word in words for s in (_stem(word), *(_stem(part) for part in word.split("-"))))


def denial(question: str, ranked: Sequence[Evidence] | None, same_member: bool = False) -> Evidence | None:
    """The sentence among the three that best answer a yes-or-no ``question`` (or one with a word
    of the question no other sentence has) that says no to it (``says_no_to``), or None: an
    answer that opens with "Yes" beside it is not sent, and a quote leads with it ("Can I run it
    outdoors on my patio?" -> "Where Not to Use It: Not outdoors")."""
    ranked = list(ranked or [])
    # Below the three best, one that alone has a word of the question ("bathroom", which only
    # "Not in bathrooms, laundry rooms ..." has) still answers.
    counts: dict[str, int] = {}
    for e in ranked:
        for w in _stems(e.text):
            counts[w] = counts.get(w, 0) + 1
    broad = {_stem(w) for w in _BROAD_VERBS}
    had = {w: counts[w] for w in _stems(question) - broad if w in counts}
    rarest = {w for w, n in had.items() if n == min(had.values())} if had else set()
    for rank, e in enumerate(ranked):
        other = same_member and asked.names_another_member(question, e.text)
        if rank < 3 and e.shares_words and not other and says_it_ends(question, e.text):
            return e  # what was asked to last ends: its word for it is the answer's, not the question's
        if not rarest & _stems(e.text) or (rank >= 3 and min(had.values()) > 1):
            # The "no" must be about what is most particular to the question: "Is it ok to run
            # the purifier off an extension cord?" is not answered by "Do not run the cord under
            # rugs", which lacks "extension".
            continue
        if not e.shares_words or (same_member and asked.names_another_member(question, e.text)):
            continue
        if says_no_to(question, e.text):
            return e
    return None


def read_from_another(question: str, sentence: str, ranked: Sequence[Evidence]) -> str | None:
    """The passage sentence ``sentence`` was read from, when that one is about another member of a
    family the question names and ``sentence`` does not name the asked one itself, else None.
    "How do I turn the brightness down on the Aero 500?" answered "Cycle brightness in the app
    under Device settings > Lights" reads "On the Aero 300, change brightness in the app under
    Device settings > Lights". Read from: the passage sentences sharing the most of its word
    stems (at least three, and half of them); all of them must be about another member."""
    named = asked.members(question)
    if not named or asked.members(sentence) & named:
        return None
    stems = _stems(sentence)
    shared = [(len(stems & _stems(e.text)), e.text) for e in ranked]
    most = max((n for n, _ in shared), default=0)
    if most < 3 or most < len(stems) / 2:
        return None
    sources = [text for n, text in shared if n == most]
    if all(asked.names_another_member(question, text) for text in sources):
        return sources[0]
    return None


def list_item(sentence: str) -> tuple[set[str], set[str]] | None:
    """The word stems of a "Label: what it means" list item's label and of its meaning ("Blinking
    orange: connected to the router ..."), or None: not such an item, a label of fewer than two
    stems, or a row of a table with several columns ("Turbo: Aero 300 52 dB; Aero 500 56 dB")."""
    item = _ITEM.match(sentence)
    if not item or "; " in sentence or len(label := _bare_stems(item.group(1))) < 2:
        return None
    return label, _bare_stems(item.group(2))


_NOT = re.compile(r"\b(?:not|never|cannot|(?:is|are|was|were|does|do|did|has|have|wo|ca)n['’]?t)\b", re.I)
# Where what a customer says "not" to ends: "not orange, just dark", "isn't lit at all. not ...".
_NOT_END = re.compile(r"[.,;:!?]|\b(?:but|and|just|only|because|so|if|when|while|it|it's|i|i'm)\b", re.I)


def ruled_out(question: str) -> list[set[str]]:
    """The word stems of each thing ``question`` says "not" to, up to the end of its clause, each
    of an "or" list on its own: "the wifi symbol isn't lit at all. not blinking, not white, not
    orange, just dark" -> {lit}, {blink}, {white}, {orang}; "it isn't blinking orange" -> {blink,
    orang}. A "no" is left out: "I have no Wi-Fi" names what the customer lacks."""
    out = []
    for found in _NOT.finditer(question):
        scope = _NOT_END.split(question[found.end() :], maxsplit=1)[0]
        for part in re.split(r"\s+(?:or|nor)\s+", scope):
            if stems := _bare_stems(" ".join(content_words(part)[:2])):
                out.append(stems)
    return out


def named_items(question: str, ranked: Sequence[Evidence]) -> list[Evidence]:
    """``ranked`` less the "Label: meaning" list items whose label the question names less of
    than another item's: "The wifi light is blinking orange. What's wrong?" is answered by "Wi-Fi
    icon blinking orange: ...", not by "Purple, blinking 3 times: ...", which shares "blinking".
    Only when the best label shares at least two of the question's word stems. What the question
    says "not" to (``ruled_out``) names no item, and an item whose label has all of such a thing is
    left out: "not blinking, not orange" is not "Blinking orange"."""
    excluded = ruled_out(question)
    if excluded:
        ranked = [
            e for e in ranked
            if (item := list_item(e.text)) is None or not any(out <= item[0] for out in excluded)
        ]  # fmt: skip
    asked_for = _bare_stems(question) - set().union(*excluded)
    shared = {id(e): len(item[0] & asked_for) for e in ranked if (item := list_item(e.text)) is not None}
    most = max(shared.values(), default=0)
    if most < 2:
        return list(ranked)
    return [e for e in ranked if shared.get(id(e), most) == most]


_BOLD_ITEM = re.compile(r"(?:^|\s)[-*]\s+\*\*([^*\n]{2,60}?)\*\*")  # "- **New purifiers:** 2 years ..."
LIST_QUOTE_ITEMS = 4  # a quote of a list's cases gives at most this many


def labelled_lists(passages: Sequence[str]) -> list[list[tuple[str, str, int]]]:
    """Each passage's bulleted items that open with a bold label ("- **New purifiers:** 2 years
    from the delivery date."), in page order: (label, the item's sentence as
    ``passage_sentences`` gives it, the passage's number). A passage with fewer than three such
    items has no list of cases."""
    out = []
    for number, text in enumerate(passages, 1):
        labels = [m.group(1).strip().rstrip(":").strip() for m in _BOLD_ITEM.finditer(text)]
        if len(labels) < 3:
            continue
        said = passage_sentences(text)
        items = []
        for label in labels:
            sentence = next((s for s in said if s.startswith(label)), None)
            if sentence is not None:
                items.append((label, sentence, number))
        if len(items) >= 3:
            out.append(items)
    return out


def _names_a_case(cases: Sequence[tuple[str, str, int]], stems: set[str]) -> bool:
    """Whether ``stems`` name at least half of one case's label, counting only the label's own
    words: "purifier" is in "New purifiers" and in "Certified Refurbished purifiers", so it names
    neither."""
    labels = [_bare_stems(label) for label, _, _ in cases]
    seen: dict[str, int] = {}
    for own in labels:
        for stem in own:
            seen[stem] = seen.get(stem, 0) + 1
    for own in labels:
        distinct = {stem for stem in own if seen[stem] == 1} or own
        if len(distinct & stems) * 2 >= len(distinct):
            return True
    return False


def _cases(items: list[tuple[str, str, int]], asks: Sequence[tuple[str, ...]]) -> list[tuple[str, str, int]]:
    """The items that give what was asked, when at least two of them, and at least half, give an
    amount in the same unit (cases of one thing: "2 years", "1 year", "up to 5 years"); else none
    (a list of specifications gives a percentage, a voltage and a frequency: not cases)."""
    cases = [item for item in items if any(asked.gives(item[1], kinds) for kinds in asks)]
    units: dict[str, int] = {}
    for _, text, _ in cases:
        for unit in {q.split(" ", 1)[1] for q in quantities(text) if " " in q}:
            units[unit] = units.get(unit, 0) + 1
    most = max(units.values(), default=0)
    return cases if most >= 2 and most * 2 >= len(cases) else []


def one_case(
    question: str,
    sentence: str,
    lists: Sequence[list[tuple[str, str, int]]],
    asks: Sequence[tuple[str, ...]],
) -> str | None:
    """The label of the list item whose amount ``sentence`` gives as the whole answer, or None.
    "How long is the warranty?" answered "The warranty is covered for the rest of the original
    warranty period, or 90 days" takes the last of the list "New purifiers: 2 years ...;
    Refurbished: 1 year ...; Replacement units ...: 90 days": a special case. Only when the
    list gives what was asked for at least two cases, neither the question nor the sentence
    names any of them, and the amount is in one item, not the list's first (the general case
    comes first: "The warranty lasts 2 years" stands)."""
    have = quantities(sentence)
    if not have or not asks:
        return None
    named = _bare_stems(question) | _bare_stems(sentence)
    for items in lists:
        cases = _cases(items, asks)
        if len(cases) < 2 or _names_a_case(cases, named):
            continue
        given = [label for label, text, _ in cases if quantities(text) & have]
        if len(given) == 1 and given[0] != cases[0][0]:
            return given[0]
    return None


def list_quote(
    message: str,
    lists: Sequence[list[tuple[str, str, int]]],
    ranked: Sequence[Evidence],
    asks: Sequence[tuple[str, ...]],
    min_score: float,
) -> str | None:
    """The quote of a list's cases, or None: when the best sentence is one item of a list whose
    items give what was asked for several cases and the question names none of them, each case
    is quoted, in page order ("How long is the warranty?": new purifiers 2 years, refurbished 1
    year, replacement units the rest of the period or 90 days), not the one that happens to
    match the question best."""
    if not asks or not ranked or ranked[0].score < min_score:
        return None
    asked_for = _bare_stems(message)
    for items in lists:
        cases = _cases(items, asks)
        if len(cases) < 2 or ranked[0].text not in [text for _, text, _ in cases]:
            continue
        if _names_a_case(cases, asked_for):
            return None
        quoted = " ".join(f"{text} [{number}]" for _, text, number in cases[:LIST_QUOTE_ITEMS])
        return f"Here is what our help pages say: {quoted}"
    return None


# A question that asks for every item of a kind. In so many words: "can you list every payment
# option you take?", "tell me all the situations where ...", "the full list of stuff your
# warranty does NOT cover" (``_LIST_CUE``, in a sentence that asks: a question, or a request).
# Or by its kind, plural: "Which colors can the light ring show?", "What are your support
# channels?" (``_LIST_ASK``; group 1, 2 or 3: the kind, its last word plural).
_LIST_CUE = re.compile(
    r"\blist(?:s|ed)?\b"
    r"|\b(?:all|every)\s+(?:of\s+)?(?:the\s+|your\s+|its\s+|my\s+|those\s+|these\s+)?(?:\w+\s+)?\w+s\b"
    r"|\bevery(?:thing|\s+(?!(?:day|week|month|year|night|morning|time|hour|minute|single|other|\d)\b)[a-z]\w*)\b"
    r"|\b(?:full|complete|whole)\s+(?:list|set|rundown|routine|range)\b",
    re.I,
)
_PLURAL = r"((?:[a-z][\w-]*\s+)?[a-z][\w-]*[a-rt-z]s)\b"
_LIST_ASK = re.compile(
    r"\b(?:which|what)\s+(?:(?:kinds?|types?|sorts?)\s+of\s+|different\s+|other\s+)?"
    + _PLURAL
    + r"|\bwhat\s+(?:are|were)\s+(?:the|your|all\s+the)\s+(?:different\s+|other\s+|available\s+)?"
    + _PLURAL
    + r"|\bwhat\s+do\s+(?:the|all\s+the|your)\s+(?:different\s+)?"
    + _PLURAL
    + r"\s+mean\b",
    re.I,
)
_NOT_ITEMS = {"does", "has", "was", "happens", "means", "comes", "goes", "costs", "takes", "needs", "seems", "always"}  # fmt: skip
_EVERY_TIME = re.compile(  # "every 2 weeks", "all night", "every so often": not a list
    r"\b(?:all|every)\s+(?:the\s+)?(?:so\b|day|days|week|weeks|month|months|year|years|night|time|times|hours?|\d+)\b",
    re.I,
)
_REQUEST = re.compile(
    r"^\W*(?:tell|give|list|explain|walk|run|go|show|name|describe|send|share)\b"
    r"|\b(?:i'?d like|i want|i need|can you|could you|would you|will you|please|tell me|give me|show me)\b",
    re.I,
)
# A yes-or-no question that is not a request (``_YES_NO`` less "Can you ...?", "Could you ...?").
_YES_NO_ASK = re.compile(
    r"^\W*(?:do|does|did|is|are|was|were|will|would|should|has|have|can i|could i|may i|am i|can it)\b", re.I
)
_WH = re.compile(r"^\W*(?:what|which|how|where|when|who)\b", re.I)
# Words of a question that name no list: what any request for one says.
_LIST_WORDS = (
    "thing stuff one get use know tell give need want like make list everything every possible "
    "different kind type way full complete whole exactly set off turn come go put take keep"
)
WHOLE_LIST_ITEMS = (3, 10)  # a list quoted whole has this many items, at least and at most
_BULLET = re.compile(r"^[-*\u2022]\s+(\S.*)$")
# "... date. - **Halcyon Care ...": a chunk's items run onto one line
_JOINED_BULLET = re.compile(r"\s+(?=[-*\u2022]\s+(?:\*\*|[A-Z]))")


def asks_for_list(question: str) -> tuple[str, ...] | None:
    """Whether the question asks for every item of a kind: None when it does not; else the kind's
    word stems when it names one by a plural ("Which colors ..." -> ("color",)), or () when it
    asks in so many words ("can you list every payment option you take?"). Only a sentence that
    asks counts (a question, a request, or one opening with what, which, how ...): "It's showing
    me a list of backup codes now" does not; a yes-or-no question only with "list" ("Do I have to
    make the same schedule on each one?" does not)."""
    found: tuple[str, ...] | None = None
    for sentence in re.split(r"(?<=[.!?])\s+", question.strip()):
        if not (sentence.rstrip().endswith("?") or _REQUEST.search(sentence) or _WH.match(sentence)):
            continue
        text = _EVERY_TIME.sub(" ", sentence)
        for match in _LIST_ASK.finditer(text):
            phrase = next(g for g in match.groups() if g).lower().split()
            if phrase[-1] not in _NOT_ITEMS and phrase[0] not in ("else", "about"):
                return tuple(_bare_stems(phrase[-1]))
        cue = _LIST_CUE.search(text)
        if cue and (not _YES_NO_ASK.match(sentence) or cue.group(0).lower().startswith("list")):
            found = ()
    return found


def passage_lists(passage: str) -> list[tuple[tuple[str, str], list[str]]]:
    """A passage's lists, in page order: (what names the list, its items). A table is named by its
    section's title and its first column's heading ("Ring color"), its items its rows as
    ``passage_sentences`` reads them; a bulleted list by its section's title and the line that
    leads into it when that is a heading or ends with a colon ("**Filter icon**", "Common
    reasons:"), its items the bullets' text."""
    title = heading(passage).split(" > ")[-1]
    lines = [line.strip() for line in passage.splitlines()]
    if lines:
        lines[0] = split_breadcrumb(lines[0])[1]
    out: list[tuple[tuple[str, str], list[str]]] = []
    i = 0
    while i < len(lines):
        j = i
        if lines[i].startswith("|"):
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            block = lines[i:j]
            header = _cells(block[0])[0] if len(block) > 1 and TABLE_RULE.match(block[1]) else ""
            out.append(((title, header), _table_sentences(block)))
        elif _BULLET.match(lines[i]):
            while j < len(lines) and _BULLET.match(lines[j]):
                j += 1
            lead = next((line for line in reversed(lines[:i]) if line), "").replace("**", "")
            named = " > " not in lead and (lead.endswith(":") or (len(lead) <= 60 and ". " not in lead))
            bullets = [part for line in lines[i:j] for part in _JOINED_BULLET.split(line)]
            items = [_BULLET.sub(r"\1", part).replace("**", "").strip() for part in bullets]
            out.append(((title, lead.lstrip("#").strip() if named else ""), items))
        i = max(j, i + 1)
    return out


def whole_list(question: str, passages: Sequence[str]) -> str | None:
    """The quote of a whole list, or None: when the question asks for every item of a kind
    (``asks_for_list``) and a list of the passages is named by it (``asked_list``), its items are
    quoted in page order: "Which colors can the light ring show?" gets each row of the colour
    table, not the two that match the question best."""
    listed = asked_list(question, passages)
    if listed is None:
        return None
    number, items, _ = listed
    if all(":" in item or item.endswith(".") for item in items):  # rows: sentences of their own
        quoted = " ".join(item if item.endswith((".", "!", "?")) else item + "." for item in items)
    else:
        quoted = "; ".join(item.rstrip(".") for item in items) + "."
    return f"Here is what our help pages say: {quoted} [{number}]"


def asked_list(question: str, passages: Sequence[str]) -> tuple[int, list[str], list[set[str]]] | None:
    """The list a question asks for (``asks_for_list``): its passage's number, its items the
    question asks for, and what names each of them (``item_names``, read against the whole list).
    A list counts when its name (``passage_lists``) has the kind's plural when the question names
    one ("What colors does the filter come in?" is not the filter table), else a word of the
    question that may name a list (``_list_words``); of those, the one whose name has most of the
    question's words, then the first passage's. A list of fewer or more items than
    ``WHOLE_LIST_ITEMS`` does not count. A model the question names leaves out the items about
    another one ("What filters fit the Aero 500?": not the AF-300's row)."""
    kind = asks_for_list(question)
    if kind is None:
        return None
    wanted = _list_words(question)
    found = [
        (shared, number, items)
        for number, p in enumerate(passages, 1)
        for shared, items in _lists_of(question, kind, wanted, p)
    ]
    if not found:
        return None
    _, number, items = max(found, key=lambda f: (f[0], -f[1]))
    chosen = [item for item in items if not asked.names_another_member(question, item)] or items
    names = dict(zip(items, item_names(items), strict=True))
    return number, chosen, [names[item] for item in chosen if names[item]]


def _list_words(question: str) -> set[str]:
    """The question's words that may name a list: not a request's own (``_LIST_WORDS``)."""
    return _bare_stems(question) - _bare_stems(_LIST_WORDS)


def item_names(items: Sequence[str]) -> list[set[str]]:
    """What names each item of a list, as word stems: a row's or a labelled item's label
    ("Klarna" of "Klarna: split orders of $100 ..."), or a short item itself ("PayPal"), less
    the stems every item's label has ("filter" in "AF-300 Standard Filter" and "AF-500 Standard
    Filter"), a word with a digit whole (``_naming_stems``); empty for an item whose label has
    no stem of its own."""
    labels = [_naming_stems(item.split(":", 1)[0] if ":" in item[:60] else item) for item in items]
    common = set.intersection(*labels) if labels else set()
    return [own - common for own in labels]


def _naming_stems(text: str) -> set[str]:
    """``_bare_stems``, but a word with a digit whole: "AF-500P" is not "AF-500"."""
    words = content_words(text.replace("-", ""))
    return {w if any(c.isdigit() for c in w) else _stem(w) for w in words}


def _lists_of(
    question: str, kind: tuple[str, ...], wanted: set[str], passage: str
) -> list[tuple[int, list[str]]]:
    """The passage's lists short enough to quote whole whose names have the ``kind``, or when the
    question names none, a ``wanted`` word (``_list_words``): (how many ``wanted`` words their
    names have, one more when both they and the question say "not" and one fewer when only they
    do, their items). "... your warranty does NOT cover" is "What Is Not Covered", not "Coverage
    Period", and a list named by what the question says "not" to, without a "not" of its own,
    does not count ("What Is Covered")."""
    negative = bool(_DENIES.search(question))
    refused = set().union(*ruled_out(question))  # "... does NOT cover": not "What Is Covered"
    out = []
    low, high = WHOLE_LIST_ITEMS
    for names, items in passage_lists(passage):
        named = _bare_stems(" ".join(names))
        negated = bool(_DENIES.search(" ".join(names)))
        if refused & named and not negated:
            continue
        if (set(kind) <= named if kind else wanted & named) and low <= len(items) <= high:
            out.append((len(wanted & named) + (negated and negative) - (negated and not negative), items))
    return out


def claims(sentence: str) -> bool:
    """The sentence states something the check read: a figure or a content word, and not a decline."""
    if says_unknown(sentence):
        return False
    return bool(content_words(sentence) or claimed_figures(sentence))


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def complete_prefix(text: str) -> int:
    """Length of the longest prefix of ``text`` that ends a sentence (0 if none yet)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return ends[-1] if ends else 0


def passage_tables(passages: Sequence[str]) -> list[list[list[str]]]:
    """Each Markdown table of ``passages`` with a header and at least two rows, as its rows'
    cells (the header left out): the rows ``crossed_row`` reads."""
    out: list[list[list[str]]] = []
    for passage in passages:
        block: list[str] = []
        for raw in [*passage.splitlines(), ""]:
            line = split_breadcrumb(raw.strip())[1]
            if line.startswith("|"):
                block.append(line)
                continue
            if len(block) > 2 and TABLE_RULE.match(block[1]):
                rows = [_cells(row) for row in block[2:] if not TABLE_RULE.match(row)]
                rows = [cells for cells in rows if len(cells) >= 2 and cells[0]]
                if len(rows) >= 2:
                    out.append(rows)
            block = []
    return out


def crossed_row(question: str, sentence: str, tables: Sequence[list[list[str]]]) -> str | None:
    """A table row whose label ``sentence`` names while it gives a word that only other rows
    have, and none of that row's own, or None: "The light ring turns green when the air quality
    is good" beside "| Blue | Good |" and "| Green | Fair |" gives green the blue row's meaning
    (-> "Green"). Words, not figures (an amount from another row fails as unsupported already);
    the sentence must name exactly one row, and a word the question says is the customer's."""
    said = _word_stems(sentence)
    asked_for = _stems(question)
    for rows in tables:
        labels = [_word_stems(cells[0]) for cells in rows]
        values = [_word_stems(" ".join(cells[1:])) for cells in rows]
        shared = set.intersection(*values) | set().union(*labels)  # the columns' own words
        own = [v - shared for v in values]
        named = [i for i, label in enumerate(labels) if label and label <= said]
        if len(named) != 1:
            continue
        i = named[0]
        others = set().union(*(own[j] for j in range(len(rows)) if j != i)) - own[i] - asked_for
        if said & others and not said & own[i]:
            return rows[i][0]
    return None


def row_amounts(
    sentence: str,
    tables: Sequence[list[list[str]]],
    sources: Sources,
    titles: Sequence[str] = (),
) -> list[str]:
    """Amounts ``sentence`` gives a table row's thing that its row gives otherwise: the sentence
    names one row of a table (by its first cell, or by a cell no other row has in its column:
    ``_rows_named_by_a_cell``) and states an amount (``values``, less those the conversation
    said) of a kind the row has a cell of, but none of the row's amounts of that kind. "Shipping
    to Canada is free." beside the shipping table's "| Canada | Standard | 5–8 business days |
    $12 flat |" read "free" from the returns page ("Return shipping is free in the US and
    Canada"), which tied with the row for the amount's words (``Sources._misbound``); "Express
    shipping is free on orders over $50" read the Standard row's. A sentence with a word that
    neither the table nor its page's title (``titles``, one per table) has, and a passage
    sentence giving the amount does, speaks of that: "Return shipping from Canada is free"."""
    said = _word_stems(sentence)
    stated = values(sentence) - sources.said_values
    for number, rows in enumerate(tables if stated else ()):
        labels = [_word_stems(cells[0]) for cells in rows]
        by_label = [i for i, label in enumerate(labels) if label and label <= said]
        by_cell = _rows_named_by_a_cell(rows, said)
        named = [i for i in by_label if i in by_cell] if by_label and by_cell else by_cell or by_label
        if len({rows[i][0] for i in named}) != 1 or (by_cell and len(named) != 1):
            continue
        title = titles[number] if number < len(titles) else ""
        table_words = _word_stems(" ".join([title, *(cell for cells in rows for cell in cells)]))
        rest = said - table_words
        own = set().union(*(values(" ".join(rows[i][1:])) for i in named))
        # Named by a cell: the row's cells that give no amount ("Contiguous US Express").
        name = " ".join(c for c in rows[named[0]] if not values(c)) if by_cell else rows[named[0]][0]
        off = []
        for value in sorted(stated - own):
            kind = _dimension(value.split(" ", 1)[1])
            given = sorted(v for v in own if _dimension(v.split(" ", 1)[1]) == kind)
            if given and not (rest and any(rest & stems for stems in sources.giving(value))):
                off.append(f"{_shown(value)} (its table gives {name} {', '.join(map(_shown, given))})")
        if off:
            return off
    return []


def _rows_named_by_a_cell(rows: Sequence[list[str]], said: set[str]) -> list[int]:
    """The rows of a table that ``said`` (a sentence's word stems) names by a cell after the first
    that gives no amount and that no other row has in its column: "Express" in the shipping
    table, whose first column says "Contiguous US" for both the Standard and the Express row."""
    named = []
    for i, cells in enumerate(rows):
        for j, cell in enumerate(cells[1:], start=1):
            stems = _word_stems(cell)
            if not stems or values(cell) or not stems <= said:
                continue
            if all(
                len(other) <= j or _word_stems(other[j]) != stems for k, other in enumerate(rows) if k != i
            ):
                named.append(i)
                break
    return named


class SentenceGate:
    """Releases streamed text one checked sentence at a time.

    ``feed(text)`` takes the whole text so far and returns how much of it may be shown;
    ``failed`` holds what the first failing sentence lacked (generation should stop then)."""

    def __init__(
        self,
        sources: Sources,
        ranked: Sequence[Evidence] | None = None,
        quote: str | None = None,
        asks: Sequence[tuple[str, ...]] = (),
        unknown: Sequence[str] = (),
        same_member: bool = False,
        denied: str | None = None,
        lists: Sequence[list[tuple[str, str, int]]] = (),
        unpaged: Iterable[str] = (),
        unpaged_said: Iterable[str] = (),
        listed: Sequence[set[str]] = (),
        tables: Sequence[list[list[str]]] = (),
        replied: Sequence[str] = (),
        table_titles: Sequence[str] = (),
    ):
        self.sources = sources
        self.table_titles = list(table_titles)  # each table's page title ("Shipping Options and Costs")
        # This conversation's earlier replies: a quote with none of the question's words that
        # says one of them again answers the earlier question and is not sent (``answers_earlier``).
        self.replied = tuple(replied)
        # The passages' tables (``passage_tables``): a sentence that names one row and gives
        # another row's word for it fails (``crossed_row``).
        self.tables = list(tables)
        # The items of the list a question asks to have listed (``asked_list``, as ``item_names``
        # names them): the answer is held until it has named every one; one that never does is
        # not sent, and the fallback quotes the list whole ("What payment methods do you accept?").
        self._unlisted = [set(names) for names in listed]
        # The question's words that no help page has (``unpaged_words``): an answer that fails
        # for affirming a name made of them ("Yes, we ship to Puerto Rico") leaves the customer's
        # question about it unanswered, and the fallback says so (``not_found``).
        self.unpaged = frozenset(unpaged)
        self.unpaged_said = frozenset(unpaged_said)  # every word of the question no page has
        self.not_found: tuple[str, ...] = ()
        # The passages' lists of labelled cases (``labelled_lists``): an amount read from one case
        # that the answer gives as the whole answer fails (``one_case``).
        self.lists = list(lists)
        self.ranked = ranked  # the turn's passage sentences, best first: the fallback quotes them
        # The quote that stands in for the model's own "I don't know": the fallback's
        # (``list_quote`` or ``extractive_answer``), or with ``trust_declines`` one that clears
        # ``quote_for_decline``'s bars. With one, a decline the model opens with is held, not shown.
        self.quote = quote
        # What the question asks for (``agent.asked``): the answer is held until a sentence gives
        # it ("How much does it weigh?" -> a weight); an answer that never does is not sent.
        self.asks = tuple(asks)
        self._wanting = list(asks)
        # Names in the question that no passage has ("Aero 700" beside the Aero 300 and 500): no
        # answer can be checked, so nothing the model writes is shown and the fallback declines.
        self.unknown = tuple(unknown)
        self.same_member = same_member  # the fallback quotes no sentence about another member
        # The passage sentence that says no to a yes-or-no question (``denial``): an answer
        # that opens with "Yes" is not sent.
        self.denied = denied
        self.cleared = 0  # shown
        self.checked = 0  # checked; past ``cleared``: a bare "Yes." waiting for what backs it
        self.failed: list[str] = (
            [f"the question names {', '.join(unknown)}, which no passage has"] if unknown else []
        )
        self._declined = False  # a decline is among the held sentences
        self._final = False
        # A "Yes" whose passage sets a condition the answer has not given yet
        # (``unstated_condition``): held until a sentence gives one of its amounts.
        self._condition: tuple[set[str], str] | None = None

    @property
    def held_decline(self) -> bool:
        """The answer ended with nothing shown but the model's own decline, held because
        ``quote`` answers: the caller sends the quote instead."""
        return self._final and self._declined and not self.failed and self.cleared < self.checked

    def cut_by_client(self) -> None:
        """The client's own stop sequence ended the answer: it asked for a prefix, so the answer
        is not held for what the question asks for, nor for every item of a list (sentences already
        held are released)."""
        if (self._wanting or self._unlisted) and self.cleared == 0:
            self.cleared = self.checked
        self._wanting, self._unlisted = [], []

    def feed(self, text: str, final: bool = False) -> int:
        if self.failed:
            return self.cleared
        end = len(text) if final else complete_prefix(text)
        while self.checked < end and not self.failed:
            rest = text[self.checked : end]
            match = _SENTENCE_END.search(rest)
            stop = self.checked + (match.end() if match else len(rest))
            while _LIST_MARKER.fullmatch(text[self.checked : stop].strip()) and stop < end:
                match = _SENTENCE_END.search(text[stop:end])  # a list number goes with its item
                stop = stop + (match.end() if match else end - stop)
            sentence = text[self.checked : stop]
            if _LIST_MARKER.fullmatch(sentence.strip()):
                break  # "2." alone: shown with its item, never as the last thing on screen
            problems = self.sources.unsupported(sentence) if sentence.strip() else []
            if not problems and self.denied and self.checked == 0 and _YES.match(sentence):
                problems = [f"it says yes where the passage says no: {self.denied}"]
            first = self.checked == 0 and self.same_member  # under grounding.match_question
            if not problems and first and unbacked_no(self.sources.question, sentence, self.denied):
                problems = ["it says no, and then what the passage says yes to"]
            if not problems and first and self._condition is None:
                self._condition = unstated_condition(
                    self.sources.question, sentence, self.ranked, self.sources.said_values
                )
            if not problems and self.lists:
                case = one_case(self.sources.question, sentence, self.lists, self.asks)
                if case is not None:
                    problems = [f"it gives one case of a list as the whole answer: {case}"]
            if not problems and self.same_member and self.ranked:
                other = read_from_another(self.sources.question, sentence, self.ranked)
                if other is not None:
                    problems = [f"it reads a sentence about another one: {other}"]
            if not problems and self.same_member and self.ranked:
                off = off_setting(self.sources.question, sentence, self.ranked)
                if off is not None:
                    problems = [f"it reads a figure from a sentence about another setting: {off}"]
            if not problems and self.same_member:
                priced = another_priced(self.sources.question, sentence)
                if priced is not None:
                    problems = [f"it gives the price of another thing: {priced}"]
            if not problems and self.tables:
                row = crossed_row(self.sources.question, sentence, self.tables)
                if row is not None:
                    problems = [f"it gives {row} a word of another row of its table"]
            if not problems and self.tables:
                problems = row_amounts(sentence, self.tables, self.sources, self.table_titles)
            if problems:
                self.failed = problems
                if self.unpaged or self.unpaged_said:
                    # A name the customer typed in lower case ("puerto rico") is not among
                    # ``unpaged``; the answer that fails names it ("Yes, we ship to Puerto Rico").
                    self.not_found = tuple(
                        n
                        for n in self.sources.heard_names(sentence)
                        if _name_words(n) & (self.unpaged | self.unpaged_said)
                    )
                break
            self.checked = stop
            if self.quote is not None and self.cleared == 0 and says_unknown(sentence):
                self._declined = True  # "I don't know" where a passage answers: held
                continue
            if (self._wanting or self._unlisted) and self.cleared == 0:
                if says_unknown(sentence) or sentence.rstrip().endswith("?"):
                    # a decline, or a question back: neither claims to answer
                    self._wanting, self._unlisted = [], []
                else:
                    self._wanting = asked.missing(self._wanting, sentence) if self._wanting else []
                    said = _naming_stems(sentence)
                    self._unlisted = [names for names in self._unlisted if not names & said]
                    if not self._wanting and not self._unlisted and self._condition is None:
                        self.cleared = stop  # what was asked is given: the held sentences go with it
                    continue
            if self._condition is not None:
                if not self._condition[0] & values(sentence):
                    continue  # the "Yes" and what follows it, held until the condition is given
                self._condition = None
            if bare_verdict(sentence) or self.sources.echoes(sentence) or _LEAD_IN.search(sentence):
                # "Yes, you do.", the question said back, or a list's lead-in ("The payment
                # options are:"): held until something backs it, or the list's first item
                continue
            if self.cleared == self.checked - len(sentence) or claims(sentence):
                self.cleared = stop  # a held verdict goes out with the sentence that backs it
        self._final = final
        if final and not self.failed and self._condition is not None:
            self.failed = [f"it says yes without the condition the passage sets: {self._condition[1]}"]
        elif final and not self.failed and self._wanting and self.cleared == 0 and not self._declined:
            if self.checked:
                self.failed = [
                    f"it does not give what the question asks for: {asked.describe(self._wanting)}"
                ]
        elif final and not self.failed and self._unlisted and self.cleared == 0 and not self._declined:
            if self.checked:
                self.failed = [
                    f"it does not name every item the question asks for: {len(self._unlisted)} left out"
                ]
        elif final and not self.failed and self.cleared < self.checked and not self._declined:
            self.failed = [
                "a list's lead-in without its list"
                if _LEAD_IN.search(text[self.cleared : self.checked])
                else "a bare yes or no, or the question said back, that nothing from the passages backs"
            ]
        return self.cleared


def _cells(row: str) -> list[str]:
    return [c.strip().replace("**", "") for c in row.strip().strip("|").split("|")]


def _row_sentence(cells: list[str], header: list[str] | None) -> str | None:
    """A table row as a sentence: "Canada: Method Standard; Delivery time 5–8 business days; ..."."""
    if len([c for c in cells if c]) < 2:
        return None
    first, rest = cells[0], cells[1:]
    if header is not None and len(header) == len(cells):
        parts = [f"{h} {c}" if h else c for h, c in zip(header[1:], rest, strict=True) if c]
    else:
        parts = [c for c in rest if c]
    return f"{first}: {'; '.join(parts)}." if first else f"{'; '.join(parts)}."


def _table_sentences(lines: list[str]) -> list[str]:
    """Rows of a Markdown table (its header row, when the passage has it, names each cell); a row
    the chunker ran together with the next (``... | | next row | ...``) is split back."""
    header: list[str] | None = None
    if len(lines) > 1 and TABLE_RULE.match(lines[1].strip()):
        header, lines = _cells(lines[0]), lines[2:]
    out = []
    for line in lines:
        if TABLE_RULE.match(line.strip()):
            continue
        rows = re.split(r"\s\|\s+\|\s", line) if header is None else [line]
        out += [s for row in rows if (s := _row_sentence(_cells(row), header))]
    return out


def passage_sentences(passage: str) -> list[str]:
    """The sentences of a passage, each table row as one sentence; Markdown headings and
    breadcrumbs left out."""
    out: list[str] = []
    table: list[str] = []
    lines = passage.splitlines()
    if lines and " > " in lines[0]:  # the breadcrumb ("Page > Section?") leads the first line
        lead = sentences(lines[0])
        while lead and " > " in lead[0]:
            lead.pop(0)
        lines[0] = " ".join(lead)
    elif len(lines) > 1 and not lines[0].rstrip().endswith((".", "!", "?", ":", "|")):
        lines[0] = ""  # the page's title
    for raw in [*lines, ""]:
        line = split_breadcrumb(raw.strip())[1]
        if line.startswith("|") or (table and TABLE_RULE.match(line)) or (line.count(" | ") >= 2):
            table.append(line)
            continue
        if table:
            out += _table_sentences(table)
            table = []
        line = _LEADING_MARKER.sub("", line).replace("**", "")  # "- **New:** 2 years" -> "New: 2 years"
        if not line or line.startswith("#") or (" > " in line and not line.endswith(".")):
            continue
        out += [_LEADING_MARKER.sub("", " ".join(s.split())) for s in sentences(line) if s.strip()]
    return out


Embed = Callable[[list[str]], Any]  # texts -> L2-normalised vectors (``KnowledgeBase.embed``)


class CachedEmbed:
    """``embed`` with its vectors kept: the same passages come back turn after turn, so ranking
    their sentences costs one embedding call for the question alone. Thread-safe; bounded."""

    def __init__(self, embed: Embed, size: int = 20_000):
        import threading

        self._embed, self._size = embed, size
        self._vectors: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> Any:
        import numpy as np

        with self._lock:  # read what is known in one go: another thread may clear the cache
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            fresh = np.asarray(self._embed(missing), dtype=np.float32)
            with self._lock:
                if len(self._vectors) + len(missing) > self._size:
                    self._vectors.clear()
                self._vectors.update(zip(missing, fresh, strict=True))
            known.update(zip(missing, fresh, strict=True))
        return np.stack([known[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)


EVIDENCE_MARGIN = 0.15  # a sentence this close to the best one is evidence too: near-ties are noise


def evidence(ranked: Sequence[Evidence], k: int) -> list[str]:
    """The sentences an answer's figures must come from: the best ``k``, and any of the next ``k``
    that scores within ``EVIDENCE_MARGIN`` of the best (the ranking cannot tell them apart)."""
    if not ranked or k <= 0:
        return []
    top = ranked[0].score
    return [e.text for i, e in enumerate(ranked[: 2 * k]) if i < k or e.score >= top - EVIDENCE_MARGIN]


_STEP = re.compile(r"(?:^|(?<=\s))(\d{1,2})[.)]\s+(?=\S)")
_HOW_TO = re.compile(r"^\W*(?:how (?:do|can|should|would) (?:i|we|you)|how to|what are the steps)\b", re.I)
MAX_STEPS = 8  # a longer procedure is quoted as its best sentences, like any other passage


def procedure(passage: str) -> list[str]:
    """The steps of the passage's numbered procedure ("1. Plug in ... 2. Press and hold ..."),
    each as its text, from step 1 to the passage's end (a passage is one section); [] without a
    run of two or more steps."""
    starts, expected = [], 1
    for m in _STEP.finditer(passage):
        if int(m.group(1)) == 1:
            starts, expected = [m], 2
        elif starts and int(m.group(1)) == expected:
            starts.append(m)
            expected += 1
    if len(starts) < 2:
        return []
    ends = [m.start() for m in starts[1:]] + [len(passage)]
    return [
        " ".join(passage[m.end() : end].replace("**", "").split())
        for m, end in zip(starts, ends, strict=True)
    ]


def heading(passage: str) -> str:
    """The passage's section path ("Warranty > Coverage Period"), or its title line; else ""."""
    first = passage.split("\n", 1)[0].strip()
    if " > " in first:
        lead = sentences(first.split(" | ")[0])
        return " ".join(s for s in lead if " > " in s).strip() or first
    if "\n" in passage and not first.endswith((".", "!", "?", ":", "|")):
        return first
    return ""


def _bare_stems(text: str) -> set[str]:
    """``_stems`` with hyphens dropped: "Wi-Fi" and "wifi" meet."""
    return _stems(text.replace("-", ""))


# A model's name that ends with the kind of thing it is: "AF-500 Standard Filter", "Aero 500
# Purifier" (a code with a digit, then capitalised words; the last is the kind).
_MODEL_KIND = re.compile(r"\b[A-Z][A-Za-z]*[- ]?\d[\w-]*(?: +(?:& +)?[A-Z][a-z]+)* +([A-Z][a-z]{2,})\b")


def _stem(word: str) -> str:
    """A word cut to its first 5 letters, a short word's plural "s" first: "takes" and "take",
    "days" and "day", "dry" and "drying" meet ("less", "plus" and "this" keep theirs)."""
    if 3 < len(word) <= 5 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return word[:5]


def _stems(text: str) -> set[str]:
    """Content words as ``_stem`` cuts them."""
    return {_stem(w) for w in content_words(text)}


def _plain_stems(text: str) -> set[str]:
    """Content words cut to five letters, plurals kept: the lexical part of ``rank_sentences``,
    which the retrieval re-rank reads too, was tuned with these; with ``_stems`` it showed the
    dev set's "Where do you ship orders from?" another chunk (session 27). Hyphens dropped:
    "wifi" is "Wi-Fi"."""
    return {w.replace("-", "")[:5] for w in content_words(text)}


_UNIT_STEMS = {
    _stem(u) for u in ("business", "day", "week", "month", "year", "hour", "minute", "second", "free")
}
_VERDICT_STEMS = {_stem(w) for w in _VERDICT_WORDS}


def _claim_stems(text: str) -> set[str]:
    """``_stems`` without "yes" and "no", a final "y" read as "i" ("apply" and "applies")."""
    return {s[:-1] + "i" if s.endswith("y") else s for s in _stems(text) - _VERDICT_STEMS}


def _word_stems(text: str) -> set[str]:
    """``_stems`` without bare numbers and units: the words that say what an amount is about (a
    code such as "af-50" stays: it names the thing)."""
    return {s for s in _stems(text) - _UNIT_STEMS if not re.fullmatch(r"[\d.,:–-]+", s)}


# Verbs that say what kind of amount is asked ("how much does it cost", "how long does it take"),
# not what it is about.
_AMOUNT_VERBS = {_stem(w) for w in ("cost", "take", "last", "weigh", "charge", "pay", "price")}
_HOW = re.compile(r"\bhow (long|often|soon|much|many|far|big|large|tall|high|heavy|loud)\b")
SINGLE_SOURCE_WORDS = 3  # a sentence with fewer new content words is not read by ``_patched``
SINGLE_SOURCE_PAGE_WORDS = 2  # ... nor one with fewer of them that the passages have
MISBOUND_MARGIN = 1  # how many more shared word stems make another amount's sentence the one meant

LEXICAL_WEIGHT = 0.3  # a shared rare word ("Hawaii", "E6") counts beside the embedding's similarity


@dataclass(frozen=True)
class Evidence:
    """A passage sentence (a table row is one) and how well it matches the question."""

    score: float
    passage: int  # 1-based, as the prompt numbers passages
    order: int  # its place in the passage
    text: str
    shares_words: bool = True  # it has a word stem of the question (else: found by meaning alone)


# A sentence about the page itself ("This page explains Auto mode, Sleep mode, Night Auto ...",
# "Use this page if your Aero won't turn on"): it names every topic of its page, so it matches any
# question on them, and it answers none.
_ABOUT_PAGE = re.compile(r"^(?:(?:use|see|read) )?this (?:page|article|guide|section|document)\b", re.I)


def about_the_page(sentence: str) -> str | None:
    """``sentence`` less what it says about its own page: None for "Use this page if your Aero
    won't turn on", the rest for "This page summarizes our privacy practices; the full privacy
    policy is at halcyonhome.com/privacy" ("The full privacy policy is at ..."), ``sentence`` as
    it is for any other."""
    if not _ABOUT_PAGE.match(sentence):
        return sentence
    rest = sentence.partition("; ")[2].strip()
    return rest[0].upper() + rest[1:] if len(rest) > 20 else None


def read_sentences(passages: Sequence[str]) -> list[tuple[int, int, str, str]]:
    """Each passage sentence long enough to answer (over 20 characters, or a short list item read
    with its section's title): its passage's number (1-based), its place in the passage, its text,
    and its text under the section heading, as the embedding model reads it. What a sentence says
    about its own page is not read (``about_the_page``): it is not an answer, to rank a chunk by or
    to quote."""
    out = []
    for number, passage in enumerate(passages, start=1):
        path = heading(passage)
        title = path.split(" > ")[-1]
        for order, sentence in enumerate(passage_sentences(passage)):
            content = about_the_page(sentence.replace("**", "").strip())
            if content is None:
                continue
            clean = content
            if len(clean) <= 20:
                # A short sentence rarely answers ("Unplug the purifier."); a short list item
                # does, read under its section's title: "Accepted Payment Methods: PayPal".
                if not title or clean.endswith((".", "!", "?")) or not re.search(r"[A-Za-z]{3}", clean):
                    continue
                clean = f"{title}: {clean}"
            out.append((number, order, clean, f"{path}: {clean}" if path else clean))
    return out


def rank_sentences(
    question: str, passages: Sequence[str], embed: Embed | None = None, context: Sequence[str] = ()
) -> list[Evidence]:
    """The passages' sentences, best first as answers to the question.

    A sentence's score is the share of the question's word stems it has, each weighted by how
    rare it is among the candidate sentences (against the weight of a word no sentence has),
    plus, with ``embed`` (the knowledge base's own embedding model), its cosine similarity to the
    question, which finds an answer worded differently ("send back" -> "return window").
    ``context``: the customer's earlier messages, read with the question so that a follow-up
    ("and the bigger one?") finds its subject. Ranked by meaning, each sentence keeps the better of
    its scores with and without them, so that a question that stands alone is not pulled off its
    subject by the last one ("How long is the warranty?" after "How heavy is it?")."""
    ranked = _rank_for(" ".join([*context[-1:], question]), passages, embed)
    if not context or embed is None:
        return ranked
    alone = {(e.passage, e.order): e for e in _rank_for(question, passages, embed)}
    best = [max(e, alone.get((e.passage, e.order), e), key=lambda x: x.score) for e in ranked]
    return sorted(best, key=lambda e: (-e.score, e.passage, e.order))


def _rank_for(query: str, passages: Sequence[str], embed: Embed | None) -> list[Evidence]:
    import math

    wanted = _plain_stems(query)
    headings = {number: heading(passage) for number, passage in enumerate(passages, start=1)}
    # With the embedding model every sentence is a candidate ("how long does a recalibration
    # take?" -> "Calibration takes 15 minutes"); without it, one that shares a word stem with the
    # question.
    read = [c for c in read_sentences(passages) if embed is not None or wanted & _plain_stems(c[2])]
    candidates = [c[:3] for c in read]
    if not candidates or not wanted:
        return []
    # A sentence is read with its section's own title ("E4: Overheating Protection", "Shipping
    # Options and Costs"): a terse row or step rarely repeats the words its section is named by.
    sections = {n: _plain_stems(h.split(" > ")[-1]) for n, h in headings.items()}
    words = [_plain_stems(c[2]) | sections[c[0]] for c in candidates]
    idf = {w: math.log(1 + len(candidates) / (1 + sum(w in ws for ws in words))) for w in wanted}
    # Each word weighs its idf against the most a word can weigh, so a word that every candidate
    # has ("warranty" on the warranty page) lifts them all a little, not by the full weight, and
    # the meaning decides: "How long is the warranty?" -> "New purifiers: 2 years".
    total = len(wanted) * math.log(1 + len(candidates))
    scores = [LEXICAL_WEIGHT * sum(idf[w] for w in wanted & ws) / total for ws in words]
    if embed is not None:
        import numpy as np

        # Each sentence is read under its section ("Warranty > Coverage Period: New purifiers:
        # 2 years ..."), which names what a terse list item is about.
        vectors = np.asarray(embed([query, *(c[3] for c in read)]), dtype=np.float32)
        scores = [s + float(v) for s, v in zip(scores, vectors[1:] @ vectors[0], strict=True)]
    ranked = sorted(range(len(candidates)), key=lambda i: (-scores[i], candidates[i][:2]))
    return [Evidence(scores[i], *candidates[i], shares_words=bool(wanted & words[i])) for i in ranked]


def sentence_relevance(question: str, passages: Sequence[str], embed: Embed) -> float | None:
    """The best cosine similarity of ``question`` and a passage sentence (a table row is one), read
    under its section heading as ``rank_sentences`` reads it (the embeddings are shared through a
    ``CachedEmbed``). A row that answers ("Live chat with a person: Hours ... Saturday 9 am–5 pm")
    is close to the question where its whole chunk, a table of every channel, is not; a question
    the pages do not cover ("the boiling point of tungsten") is close to none. None: no sentence."""
    import numpy as np

    texts = [c[3] for c in read_sentences(passages)]
    if not texts:
        return None
    vectors = np.asarray(embed([question, *texts]), dtype=np.float32)
    return float((vectors[1:] @ vectors[0]).max())


def titled_by(question: str, passages: Sequence[str]) -> list[int]:
    """Indices of the passages whose section is named by a code the question names: "What does E4
    mean?" -> the chunk under "E4: Overheating Protection", not the "When to Contact Support" one
    that mentions E4 in passing and matches the short question better."""
    terms = {t.lower() for t in _TERM_IN.findall(question)}
    if not terms:
        return []
    return [i for i, passage in enumerate(passages) if _section_term(passage)[0].lower() in terms]


def _section_term(passage: str) -> tuple[str, str]:
    """(code, title) of a passage whose section is named "<code>: <title>" ("E4", "Overheating
    Protection"); ("", "") for any other passage."""
    term, _, title = heading(passage).split(" > ")[-1].partition(": ")
    return (term, title) if title and _TERM.fullmatch(term) else ("", "")


def _terms_in(text: str) -> set[str]:
    """The codes ``text`` names, lower-cased ("e4", "af-500")."""
    return {t.lower() for t in _TERM_IN.findall(text)}


_MEANING = re.compile(r"\bwhat\b[^?]*\b(?:mean|means|stand for)\b|\bwhat(?:'s|\s+is|\s+are)\b", re.I)


def definition_quote(question: str, passages: Sequence[str]) -> str | None:
    """For "What does E4 mean?" (or "What is error E6?"), the section named by the code, quoted by
    its title and first sentence: "E4: Overheating Protection. The inside of the purifier is too
    hot, so it has shut off the fan to protect itself. [1]". A message that names the code
    without asking what it means ("My Aero 500 shows E3.", "How do I fix E4?") gets the section
    whole (``_whole_section``). None when no passage is a section the question's code names."""
    meaning = bool(_MEANING.search(question))
    for i in titled_by(question, passages):
        term, title = _section_term(passages[i])
        if body := passage_sentences(passages[i]):
            said = body[0] if meaning else _whole_section(passages[i], body)
            return f"Here is what our help pages say: {term}: {title}. {said} [{i + 1}]"
    return None


MAX_SECTION_SENTENCES = 8  # a code's section quoted whole up to this many sentences


def _whole_section(passage: str, body: Sequence[str]) -> str:
    """A code's section, for a message that names the code without asking what it means ("My
    Aero 500 shows E3."): what it is, then what to do, its steps numbered. The section's first
    sentence alone told the customer what had happened and nothing about what to do; the best
    sentences by meaning were the other page's "The Aero 500 shows the code, such as E4"."""
    steps = procedure(passage)
    if steps and len(steps) <= MAX_STEPS:
        lead = [s for s in body if not any(s in step for step in steps)][:1]
        return " ".join([*lead, *(f"{i}. {step}" for i, step in enumerate(steps, start=1))])
    return " ".join(body[:MAX_SECTION_SENTENCES])


RERANK_WEIGHT = 2.0  # the best sentence weighs twice the retriever's own score (both min-max; chosen on dev)


def rank_passages(
    question: str,
    passages: Sequence[str],
    scores: Sequence[float],
    embed: Embed,
    context: Sequence[str] = (),
    weight: float = RERANK_WEIGHT,
    lists: bool = True,
) -> list[int]:
    """Indices of ``passages`` (retrieved chunks), best first: the retriever's ``scores`` plus
    ``weight`` times the score of each passage's best sentence as an answer (``rank_sentences``),
    each min-max normalised over the passages. The chunk of a long page that holds the answer (the
    spec table's height row, the contact table's email row) moves above the page's opening. A
    chunk holding a list of what the question asks to have listed (``whole_list``) goes first,
    with ``lists``."""
    if not passages:
        return []
    best = [float("-inf")] * len(passages)
    for e in rank_sentences(question, passages, embed, context):
        best[e.passage - 1] = max(best[e.passage - 1], e.score)
    floor = min((b for b in best if b != float("-inf")), default=0.0)
    best = [floor if b == float("-inf") else b for b in best]

    def minmax(values: Sequence[float]) -> list[float]:
        low, high = min(values), max(values)
        return [(v - low) / (high - low) if high - low > 1e-9 else 0.0 for v in values]

    total = [s + weight * b for s, b in zip(minmax(list(scores)), minmax(best), strict=True)]
    kind = asks_for_list(question) if lists else None
    wanted = _list_words(question)
    # "Which filters do you sell?": the chunk with the filter table
    listing = [kind is not None and bool(_lists_of(question, kind, wanted, p)) for p in passages]
    return sorted(range(len(passages)), key=lambda i: (not listing[i], -total[i], i))


# The thing a price question prices: "How much is a replacement cover?" -> "a replacement cover";
# "What does the Aero 300 cost in Canadian dollars?" -> "the Aero 300".
_PRICED_END = r"(?= (?:cost|costs|run|be|go|for|in|on|if|with|to|per|each|now|today|again|compared|versus|vs)\b|\s*[?.,!;]|$)"
_PRICED = re.compile(
    rf"\bhow much (?:is|are|was|would|will|does|do) (?:an? |the |one |another |each |your )?((?:[\w-]+ ){{0,3}}?[\w-]+){_PRICED_END}"
    rf"|\bwhat (?:is|does|do|would|will) (?:an? |the |one |another |each |your )?((?:[\w-]+ ){{0,3}}?[\w-]+) cost\b"
    rf"|\b(?:price|cost) (?:of|for) (?:an? |the |one |another |each |your )?((?:[\w-]+ ){{0,3}}?[\w-]+){_PRICED_END}",
    re.I,
)
# Words of a priced thing that say which one, not what it is ("a replacement cover", "a new one").
_PRICED_QUALIFIERS = {"replacement", "new", "spare", "extra", "second", "another", "single", "whole"}
_PRONOUNS = frozenset(
    ("i", "it", "you", "we", "they", "that", "this", "these", "those", "one", "my", "its", "he", "she")
)


_POSSESSIVES = frozenset(("their", "our", "your", "his", "her", "its", "my"))
# The words for a price itself: "the entrance fee" prices the entrance.
_PRICE_WORDS = frozenset(
    ("price", "prices", "cost", "costs", "fee", "fees", "charge", "charges", "rate", "fare")
)


# Words for the product itself, which a page's price row need not repeat ("the purifier": "Price:
# Aero 300 $199"); a question pricing one of them names no particular thing.
_GENERIC_THINGS = frozenset(
    ("purifier", "purifiers", "unit", "units", "device", "devices", "product", "model", "item", "order")
)


@lru_cache(maxsize=256)
def _priced(question: str) -> tuple[str, tuple[str, ...]] | None:
    """The thing ``question`` asks the price of: its words as the question has them (cut at "and"
    or "or") and those that name it (numbers, possessives and the words for a price itself left
    out); None when it asks no price or names no thing. Read once per question: the check asks
    for it sentence by sentence."""
    if not any(kinds[0].startswith("price") for kinds in asked.asked_kinds(question)):
        return None
    for match in _PRICED.finditer(question):
        thing = next(g for g in match.groups() if g is not None)
        span = re.split(r"\s+(?:and|or|plus|as well as)\s+", thing, flags=re.I)[0]
        words = span.split()
        if words[0].lower() in _PRONOUNS or words[0].lower() in {"much", "more", "less"}:
            continue
        words = [w for w in words if not w.isdigit() and w.lower() not in _POSSESSIVES | _PRICE_WORDS]
        named = [w for w in words if w.lower() not in _PRICED_QUALIFIERS]
        if named and _stems(named[-1]) and named[-1].lower() not in _GENERIC_THINGS | _PRONOUNS:
            return span, tuple(words)
    return None


def priced_thing(question: str, qualified: bool = False) -> list[str]:
    """The words of the thing ``question`` asks the price of, its head last ("replacement cover"
    -> ["cover"], "Halcyon Care membership" -> ["Halcyon", "Care", "membership"], "their entrance
    fee" -> ["entrance"]); empty when it asks no price, or of a pronoun ("How much does it
    cost?") or of the product itself ("How much is the purifier?"). It ends at "and" or "or"
    ("the ticket and departure time" -> ["ticket"]). Left out: numbers, possessives, the words
    for a price itself ("fee", "price"), and, unless ``qualified``, the words that say which one
    ("a replacement", "a new")."""
    found = _priced(question)
    if found is None:
        return []
    return [w for w in found[1] if qualified or w.lower() not in _PRICED_QUALIFIERS]


def another_priced(question: str, sentence: str) -> str | None:
    """What ``sentence`` gives the price of in the question's words for which one, when it is
    another thing than the one asked about: "How much is a replacement cover?" answered "The
    replacement sleeve is $9." -> "replacement sleeve". None when the sentence names the thing
    asked about, gives no price, or does not say which one the question's way ("It is $9.")."""
    words = priced_thing(question, qualified=True)
    if not words or not asked.gives(sentence, ("price",)) or _stems(words[-1]) & _stems(sentence):
        return None
    for qualifier in (w.lower() for w in words[:-1] if w.lower() in _PRICED_QUALIFIERS):
        said = re.search(rf"\b{qualifier}\s+([a-z][\w-]*)", sentence, re.I)
        if said and _stems(said.group(1)):
            return f"{qualifier} {said.group(1)}"
    return None


def priced_phrase(question: str) -> str | None:
    """The thing ``question`` asks the price of, in its own words and with its article, for a
    reply that says its price was not found: "How much is a replacement cover?" -> "a
    replacement cover"; "How much is their entrance fee?" -> "their entrance fee". None when it
    names no thing (``priced_thing``)."""
    found = _priced(question)
    if found is None:
        return None
    thing = found[0]
    article = re.search(rf"\b(an?|the|your|another|each)\s+{re.escape(thing)}\b", question, re.I)
    return f"{article.group(1).lower()} {thing}" if article else thing


def unpriced(question: str, ranked: Sequence[Evidence] | None, passages: Sequence[str]) -> str | None:
    """The thing ``question`` asks the price of (``priced_phrase``) when no sentence of
    ``ranked`` gives a price and names it: the decline says its price was not found ("I'm sorry,
    I couldn't find a price for a replacement cover in our help pages.")."""
    phrase = priced_phrase(question)
    if phrase is None:
        return None
    for e in ranked if ranked is not None else rank_sentences(question, passages):
        if asked.gives(e.text, ("price",)) and not (
            0 < e.passage <= len(passages) and prices_another_thing(question, e.text, passages[e.passage - 1])
        ):
            return None
    return phrase


_BARE_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def off_setting(question: str, sentence: str, ranked: Sequence[Evidence]) -> str | None:
    """The passage sentence a figure of ``sentence`` was read from, when ``question`` names a
    numbered setting ("on speed 3", ``asked.misses_setting``) that no passage sentence giving the
    figure gives: "It uses about 1 W", read from the sentence on standby power, does not answer
    "How many watts does the Aero 500 draw when it's running on speed 3?". A figure the question
    typed ("500", "3") is not read; one that a passage sentence gives with the setting is fine."""
    if not asked.misses_setting(question, ""):
        return None
    typed = set(_BARE_NUMBER.findall(question))
    for figure in dict.fromkeys(f for f in _BARE_NUMBER.findall(sentence) if f not in typed):
        given = re.compile(rf"(?<![\d.]){re.escape(figure)}(?!\d|\.\d)")
        sources = [e.text for e in ranked if given.search(e.text)]
        if sources and all(asked.misses_setting(question, text) for text in sources):
            return sources[0]
    return None


def prices_another_thing(question: str, sentence: str, passage: str) -> bool:
    """Whether ``sentence`` gives a price of another thing than the one ``question`` asks the
    price of: read with its passage's section path, it has not the thing's head word, nor, for a
    thing of several words, all the others ("Halcyon Care" in "Halcyon Care Filter Subscription >
    Price" names the membership). "If the sleeve tears, you can order a replacement sleeve ...
    for $9" does not price the replacement cover asked for."""
    thing = priced_thing(question)
    if not thing or not asked.gives(sentence, ("price",)):
        return False
    have = _stems(f"{sentence} {heading(passage)}")
    if _stems(thing[-1]) & have:
        return False
    others = _stems(" ".join(thing[:-1]))
    return not (others and others <= have)


def about_what_was_asked(
    question: str, ranked: Sequence[Evidence], passages: Sequence[str]
) -> list[Evidence]:
    """``ranked`` less the sentences about another thing than the one asked about: another
    member of a family the question names ("fan speed (1)" for speed 2, "E3" for E4), a
    sentence that never numbers the setting asked about, another amount of a quantity the
    question names ("0.3 microns" for 0.1-micron particles), or a price of another thing."""
    return [
        e
        for e in ranked
        if not asked.names_another_member(question, e.text)
        and not asked.misses_setting(question, e.text)
        and not asked.another_quantity(question, e.text)
        and not (
            0 < e.passage <= len(passages) and prices_another_thing(question, e.text, passages[e.passage - 1])
        )
    ]


def extractive_answer(
    question: str,
    passages: Sequence[str],
    max_sentences: int = 2,
    embed: Embed | None = None,
    context: Sequence[str] = (),
    ranked: Sequence[Evidence] | None = None,
    min_score: float = 0.0,
    asks: Sequence[tuple[str, ...]] = (),
    same_member: bool = False,
    focus: bool = True,
) -> str | None:
    """The passage sentences that best match the question (``rank_sentences``), quoted in their
    passages' order with their passage number; None (the caller declines) when none of them
    shares a word with the question (a quote found by meaning alone is too likely beside it) or,
    ranked by meaning (``embed``), the best scores under ``min_score``. A "how do I ...?"
    question whose best sentences include a step of a numbered procedure gets the procedure.
    ``asks``: what the question asks for (``agent.asked.asked_kinds``); when the best sentences
    give none of it, the best that do are quoted, under the same bars (``giving``).
    ``same_member``: a sentence about another member of a family the question names ("fan speed
    (1)" for a question on speed 2, "E3" for one on E4) is not quoted (``agent.asked``). ``focus``:
    ranked by meaning, a second sentence far below the best from another passage is left out
    (``focused``)."""
    defined = definition_quote(question, passages)
    if defined is not None and not (asks and asked.missing(asks, defined)):
        return defined  # "What does E4 mean?" (and it gives whatever else the question asks for)
    if ranked is None:
        ranked = rank_sentences(question, passages, embed, context)
    if same_member:
        ranked = about_what_was_asked(question, ranked, passages)
    ranked = [e for e in ranked if not e.text.endswith(":")]  # a list's lead-in says nothing alone
    if same_member:
        ranked = named_items(question, ranked)
    ranked = giving(one_time_prices(question, ranked, passages, asks), asks, max_sentences)
    if not ranked:
        return None
    top = focused(ranked[:max_sentences], asks) if focus and embed is not None else ranked[:max_sentences]
    best = sorted(top, key=lambda e: (e.passage, e.order))
    if not any(e.shares_words for e in best):
        return None
    if (
        embed is not None
        and ranked[0].score < min_score
        and not (ranked[0].score >= TITLED_QUOTE_SCORE and titled_answer(question, ranked[0], passages, asks))
    ):
        return None
    for e in ranked[:max_sentences] if _HOW_TO.match(question) else ():
        steps = procedure(passages[e.passage - 1])
        if any(e.text in step for step in steps) and len(steps) <= MAX_STEPS:
            # "How do I ...?" and one of the best sentences is a step: the procedure answers.
            numbered = " ".join(f"{i}. {step}" for i, step in enumerate(steps, start=1))
            return f"Here is what our help pages say: {numbered} [{e.passage}]"
    quoted = " ".join(
        f"{e.text if e.text.rstrip(_CLOSERS).endswith(('.', '!', '?')) else e.text + '.'} [{e.passage}]"
        for e in best
    )
    return f"Here is what our help pages say: {quoted}"


# A sentence that gives what was asked, in a section whose title names every word of the question
# ("What is the return window?": "The 30-Day Return Window > You can return a purifier ... within
# 30 days of delivery"), is quoted from this score, under ``min_quote_score``.
TITLED_QUOTE_SCORE = 0.35


def titled_answer(
    question: str, e: Evidence, passages: Sequence[str], asks: Sequence[tuple[str, ...]]
) -> bool:
    """``e`` gives what the question asks for (``asks``: a measurable kind) and the title of its
    section has every word stem of the question but those that only ask ("how long"): the section
    is about the thing asked, and its sentence giving the asked kind answers however little its
    words match the question's."""
    if not asks or asked.missing(asks, e.text) or e.passage > len(passages):
        return False
    wanted = _stems(question)
    title = _stems(heading(passages[e.passage - 1]).split(" > ")[-1])
    return bool(wanted & title) and wanted - title <= _stems(asked.asking_words(question))


QUOTE_GAP = 0.15  # another passage's sentence is quoted beside the best only this close (chosen on dev)


def focused(best: Sequence[Evidence], asks: Sequence[tuple[str, ...]] = ()) -> list[Evidence]:
    """The best sentences (``best``, best first) less those that would only add noise to a quote: a
    sentence of another passage that scores more than ``QUOTE_GAP`` under the best one, unless the
    best does not give what the question asks for and it does. When the best already gives what
    the question asks for, no sentence of another passage is added however close it scores. "What
    time does live chat open on Saturdays?" quotes the chat hours, not also "Orders placed before 2
    pm ship the same business day"; "How much does the Aero 300 weigh?" the weight row, not also a
    room size; two rows of one table ("Contiguous US: ... Canada: $12 flat") stay together."""
    if not best:
        return []
    first, kept = best[0], [best[0]]
    answers = bool(asks) and not asked.missing(asks, first.text)
    for e in best[1:]:
        completes = (
            bool(asks)
            and asked.missing(asks, first.text)
            and not asked.missing(asks, f"{first.text} {e.text}")
        )
        close = first.score - e.score <= QUOTE_GAP and not answers
        if e.passage == first.passage or close or completes:
            kept.append(e)
    return kept


QUOTE_COVERAGE = 0.5  # of the question's word stems, the share a quote over a decline must have
# ... or this share when the best sentence matches the question this well and it is not a
# yes-or-no question: a customer's own words ("It's showing me a list of backup codes now. How
# many should there be?") rarely repeat the page's.
QUOTE_SURE_SCORE, QUOTE_SURE_COVERAGE = 0.7, 0.2
# A quote that gives the kind of amount the question asks for ("how long": "Calibration takes 15
# minutes") stands in for the model's decline from this score, when it is below the configured
# ``quote_over_decline``; 0.45 and 0.55 changed the same replayed answers (session 27).
ASKED_QUOTE_SCORE = 0.55
ASKED_DEPTH = 8  # a sentence that gives what was asked is looked for among this many of the best


def one_time_prices(
    question: str, ranked: Sequence[Evidence], passages: Sequence[str], asks: Sequence[tuple[str, ...]]
) -> list[Evidence]:
    """``ranked`` less the sentences whose every price recurs ("Aero 500: Filter AF-500 Standard;
    Monthly price $8.99"), when the question asks for a price and says nothing of a recurring
    charge, and one of the best ``ASKED_DEPTH`` gives a one-time price ("AF-500 Standard Filter:
    ...; Price $59"): "What is the price of the AF-500?" asks what the filter costs, not its
    subscription. A question that names a word of the recurring price's page title that the
    other's lacks ("How much is Halcyon Care for the Aero 500?") asks for the recurring one."""
    if not any("price" in kinds for kinds in asks) or asked.asks_recurring(question):
        return list(ranked)
    recurring = {id(e) for e in ranked if asked.gives(e.text, ("price",)) and asked.recurring_price(e.text)}
    recurs = [e for e in ranked[:ASKED_DEPTH] if id(e) in recurring]
    once = [e for e in ranked[:ASKED_DEPTH] if id(e) not in recurring and asked.gives(e.text, ("price",))]
    if not recurs or not once:
        return list(ranked)

    def title(e: Evidence) -> set[str]:
        return (
            _stems(heading(passages[e.passage - 1]).split(" > ")[0]) if e.passage <= len(passages) else set()
        )

    named = _stems(question)
    own = set().union(*(title(e) for e in once))
    if any((title(e) - own) & named for e in recurs):
        return list(ranked)
    return [e for e in ranked if id(e) not in recurring]


def giving(ranked: Sequence[Evidence], asks: Sequence[tuple[str, ...]], k: int = 2) -> list[Evidence]:
    """``ranked`` as it is when its best ``k`` sentences give what the question asks for (or it
    asks for no measurable thing); else those of its best ``ASKED_DEPTH`` that give some of it,
    best first, and none when no sentence does. "How much does the Aero 300 weigh?": the quote is
    the weight row, not the room-size row that matches the question's words better."""
    if not asks or not asked.missing(asks, " ".join(e.text for e in ranked[:k])):
        return list(ranked)
    return _typed(ranked, asks)


def _typed(ranked: Sequence[Evidence], asks: Sequence[tuple[str, ...]]) -> list[Evidence]:
    """Of the best ``ASKED_DEPTH`` sentences, those that give some of what was asked, best first."""
    return [e for e in ranked[:ASKED_DEPTH] if any(asked.gives(e.text, kinds) for kinds in asks)]


def quote_for_decline(
    message: str,
    passages: Sequence[str],
    ranked: Sequence[Evidence],
    min_score: float,
    embed: Embed | None,
    asks: Sequence[tuple[str, ...]] = (),
    same_member: bool = False,
    focus: bool = True,
) -> str | None:
    """The quote that stands in for the model's "I don't know", or None: the passage sentences
    the fallback would quote, when the best scores at least ``min_score`` and, read with their
    sections' titles, they have at least ``QUOTE_COVERAGE`` of the question's word stems (or
    ``QUOTE_SURE_COVERAGE`` when the best scores ``QUOTE_SURE_SCORE`` or more, for a question
    that is not a yes-or-no one). "What
    are your support hours?" gets the hours row; "Does the warranty cover water damage?" keeps the
    decline, though "The warranty lasts 2 years" scores high: "water" and "damage" are not there.
    ``asks``: the quote must give what the question asks for (``giving``); when the best
    sentences fail these bars, the best of those that give it are tried ("how often do those
    payments come out?" -> "... paid every 2 weeks"); a best sentence that gives it needs only
    ``ASKED_QUOTE_SCORE`` when that is lower than ``min_score``."""
    if min_score <= 0:
        return None
    defined = definition_quote(message, passages)
    if defined is not None and not (asks and asked.missing(asks, defined)):
        return defined  # "What does E4 mean?" and the section "E4: ..." is shown: it answers
    if same_member:  # as ``extractive_answer`` reads it
        ranked = about_what_was_asked(message, ranked, passages)
    ranked = one_time_prices(message, ranked, passages, asks)
    tries = [giving(ranked, asks)]
    if asks and tries[0] != (typed := _typed(ranked, asks)):
        tries.append(typed)  # the best sentences give it but fail the bars: those that give it
    for candidates in tries:
        bar = min_score
        if asks and candidates and not asked.missing(asks, candidates[0].text):
            bar = min(min_score, ASKED_QUOTE_SCORE)
        if not candidates or candidates[0].score < bar:
            continue
        wanted = _stems(message)
        if asks and not asked.missing(asks, " ".join(e.text for e in candidates[:2])):
            wanted -= _stems(asked.asking_words(message))  # "how often": "every 2 weeks" answers it
        have: set[str] = set()
        for e in candidates[:2]:
            have |= _stems(e.text) | _stems(heading(passages[e.passage - 1]).split(" > ")[-1])
        cover = len(wanted & have) / len(wanted) if wanted else 0.0
        # A yes-or-no question is answered only by a sentence with its own words: "Is delivery to
        # Hawaii insured against theft?" is not answered by the Hawaii delivery row, however close.
        sure = (
            candidates[0].score >= QUOTE_SURE_SCORE
            and cover >= QUOTE_SURE_COVERAGE
            and not yes_no_question(message)
        )
        if wanted and (cover >= QUOTE_COVERAGE or sure):
            return extractive_answer(
                message, passages, embed=embed, ranked=candidates, min_score=bar, focus=focus
            )
    return None


def turn_gate(
    message: str,
    history: Sequence[tuple[str, str]],
    passages: Sequence[Any],
    settings: Any,
    persona: Any,
    embed: Embed | None,
    vocabulary: Iterable[str] | None = None,
) -> SentenceGate:
    """The sentence gate of one turn, as the agent checks its answer: ``passages`` as shown (each
    with ``text`` and ``title``), ``settings`` the config's ``grounding``, ``persona`` its persona
    (its names count as sources), ``embed`` the knowledge base's embedding model or None,
    ``vocabulary`` every word of the knowledge base (``KnowledgeBase.words``) or None."""
    said = [message, *(t for _, t in history)]
    texts = [*said, *(p.text for p in passages)]
    texts += [persona.company, persona.product, persona.agent_name, *(p.title or "" for p in passages)]
    earlier = [t for role, t in history if role == "customer"]
    # Only a ranking by meaning is good enough to hold an answer to: word overlap alone is not.
    # Without it nothing is ranked up front; the fallback ranks only if it is needed.
    ranked, chosen = None, None
    if embed is not None and settings.evidence_sentences > 0:
        ranked = rank_sentences(message, [p.text for p in passages], embed, earlier)
        chosen = evidence(ranked, settings.evidence_sentences)
    sources = Sources(
        texts,
        min_support=settings.min_support,
        evidence=chosen,
        conversation=said,
        new_word_support=settings.new_word_support,
        question=message,
        bind_amounts=settings.bind_amounts,
    )
    asks: list[tuple[str, ...]] = []
    unknown: list[str] = []
    unpaged: frozenset[str] = frozenset()
    unpaged_typed: frozenset[str] = frozenset()
    if settings.match_question:
        if vocabulary is not None:
            unpaged = unpaged_words(message, vocabulary)
            unpaged_typed = unpaged_said(message, vocabulary)
        asks = asked.asked_kinds(message)
        shown = [*(p.text for p in passages), *(p.title or "" for p in passages)]
        unknown = asked.unknown_names(message, shown)
        names = [persona.company, persona.product, persona.agent_name]
        thing = absent_thing(message, [*shown, *(t for _, t in history), *names], vocabulary)
        if thing is not None and not unknown:
            unknown = [thing]
    quote = None
    if ranked is not None and settings.fallback == "extractive" and settings.trust_declines:
        quote = quote_for_decline(
            message,
            [p.text for p in passages],
            ranked,
            settings.quote_over_decline,
            embed,
            asks,
            same_member=settings.match_question,
            focus=settings.focused_quotes,
        )
    denied = denial(message, ranked, same_member=True) if settings.match_question else None
    if denied is not None and ranked is not None:
        # It leads the quote; the quote's bar stays the ranking's best score.
        lead = replace(denied, score=ranked[0].score)
        ranked = [lead, *(e for e in ranked if e is not denied)]
    lists = labelled_lists([p.text for p in passages]) if settings.match_question else []
    whole = (
        asked_list(message, [p.text for p in passages])
        if settings.match_question and settings.whole_lists
        else None
    )
    listed = whole[2] if whole is not None else []
    if ranked is not None and settings.fallback == "extractive" and not settings.trust_declines:
        # The model's "I don't know" counts for no more than an answer that failed: the quote
        # the fallback would send stands in for it (sessions 16-32: the 135M model's decline
        # does not tell answerable questions from unanswerable ones).
        quote = fallback_quote(
            message, [p.text for p in passages], settings, ranked, embed, asks, lists, settings.match_question
        )
    replied = [text for role, text in history if role != "customer"]
    shown = [p.text for p in passages]
    # The passages' tables (each with its page's title) for ``crossed_row`` and ``row_amounts``.
    titled = (
        [(heading(t), rows) for t in shown for rows in passage_tables([t])] if settings.match_question else []
    )
    if quote is not None and answers_earlier(quote, message, replied, shown, unpaged):
        quote = None
    return SentenceGate(
        sources,
        ranked=ranked,
        quote=quote,
        asks=asks,
        unknown=unknown,
        same_member=settings.match_question,
        denied=denied.text if denied is not None else None,
        lists=lists,
        unpaged=unpaged,
        unpaged_said=unpaged_typed,
        listed=listed,
        tables=[rows for _, rows in titled],
        replied=replied,
        table_titles=[title for title, _ in titled],
    )


def fallback_answer(
    message: str,
    passages: Sequence[str],
    settings: Any,
    company: str,
    *,
    ranked: Sequence[Evidence] | None = None,
    embed: Embed | None = None,
    gate: SentenceGate | None = None,
) -> tuple[str, str]:
    """(text, action) sent when nothing the model wrote passed the check: a quote of the passage
    sentences that answer (``EXTRACTIVE``), or the decline (``DECLINED``), as ``settings.fallback``
    and ``settings.min_quote_score`` say. With the turn's ``gate``: the quote gives what the
    question asks for, and a question naming what no passage has is declined, naming it."""
    if gate is not None and gate.unknown:
        return decline_text(company, about=gate.unknown), DECLINED
    if settings.fallback == "extractive":
        if (
            gate is not None
            and gate.ranked is not None
            and ranked is gate.ranked
            and not settings.trust_declines
        ):
            quoted = gate.quote  # ``turn_gate`` found it already, for a decline
        elif gate is not None:
            quoted = fallback_quote(
                message, passages, settings, ranked, embed, gate.asks, gate.lists, gate.same_member
            )
        else:
            quoted = fallback_quote(message, passages, settings, ranked, embed)
        if (
            quoted is not None
            and gate is not None
            and answers_earlier(quoted, message, gate.replied, passages, gate.unpaged)
        ):
            quoted = None
        if quoted is not None and gate is not None and gate.not_found:
            return not_found_quote(company, gate.not_found, quoted), EXTRACTIVE
        if quoted is None and gate is not None and (currency := asked.in_currency(gate.asks)):
            # "What does it cost in Canadian dollars?" and the pages give their prices in US
            # dollars: it says so, then quotes those.
            quoted = fallback_quote(
                message,
                passages,
                settings,
                ranked,
                embed,
                asked.in_any_currency(gate.asks),
                gate.lists,
                gate.same_member,
            )
            if quoted is not None:
                return not_found_quote(company, currency, quoted), EXTRACTIVE
        if quoted is not None:
            return quoted, EXTRACTIVE
    if gate is not None and not gate.not_found and gate.same_member:
        thing = unpriced(message, gate.ranked, passages)
        if thing is not None:  # "How much is a replacement cover?": its price is what is missing
            return decline_text(company, unpriced=thing), DECLINED
    return decline_text(company, about=gate.not_found if gate is not None else ()), DECLINED


def fallback_quote(
    message: str,
    passages: Sequence[str],
    settings: Any,
    ranked: Sequence[Evidence] | None,
    embed: Embed | None,
    asks: Sequence[tuple[str, ...]] = (),
    lists: Sequence[list[tuple[str, str, int]]] = (),
    same_member: bool = False,
) -> str | None:
    """The extractive fallback's quote, or None: every item of the list the question asks for
    (``whole_list``, with ``settings.whole_lists``), every case of a list (``list_quote``), or the
    passage sentences that best answer (``extractive_answer``), under ``settings.min_quote_score``."""
    quoted = whole_list(message, passages) if settings.match_question and settings.whole_lists else None
    if quoted is not None:
        return quoted
    if lists and ranked:
        quoted = list_quote(message, lists, ranked, asks, settings.min_quote_score)
        if quoted is not None:
            return quoted
    return extractive_answer(
        message,
        passages,
        embed=embed,
        ranked=ranked,
        min_score=settings.min_quote_score,
        asks=asks,
        same_member=same_member,
        focus=settings.focused_quotes,
    )


# The pieces of ``decline_text`` and ``not_found_quote``, which ``strip_lead`` takes apart again.
_NOT_FOUND = "I'm sorry, I couldn't find anything about "
_IN_PAGES = " in our help pages."
_SAID_NEARBY = f"{_IN_PAGES} Here is what they do say: "
_OFFER = " I can connect you with a member of the "


def strip_lead(answer: str) -> str:
    """``answer`` without the extractive fallback's lead-in (citations are read from the rest);
    for ``not_found_quote``, the quote alone, without what was not found and the offer of a person."""
    if answer.startswith(_NOT_FOUND) and _SAID_NEARBY in answer:
        quoted = answer.split(_SAID_NEARBY, 1)[1]
        return quoted.rsplit(_OFFER, 1)[0] if _OFFER in quoted else quoted
    return answer.removeprefix("Here is what our help pages say: ")


# Words of a follow-up that ask for more of the same or acknowledge ("How much?", "Really?", "Can
# you say that again?"): a message of only these may be quoted what the conversation is about.
_ASKING_STEMS = {
    _stem(w)
    for w in (
        *("much", "many", "long", "often", "soon", "far", "big", "really", "repeat", "again"),
        *("ok", "okay", "thanks", "thank", "please", "sorry", "sure", "yes", "one", "more"),
        *("tell", "explain", "mean", "meant", "said", "say"),
    )
}


def answers_earlier(
    quote: str, message: str, replied: Sequence[str], passages: Sequence[str], unpaged: Iterable[str] = ()
) -> bool:
    """Whether ``quote``, a fallback's on a follow-up (the conversation has earlier replies,
    ``replied``), answers the earlier question and not ``message``: it has none of the message's
    content words (besides those that only ask: "how long"), nor do the titles of the
    ``passages`` it quotes ("Shipping Options and Costs"), and it says again what an
    earlier reply said, or the message names what no help page has (``unpaged``, from
    ``unpaged_words``). The ranking reads a follow-up with the message before it, so "Is it safe
    for the bird?" after the filter's price was quoted the filter table's rows a second time, and
    "Is it safe for my cat?" after "Who pays for return shipping?" got "Return shipping is free in
    the US and Canada"; the fallback declines instead. A follow-up in the customer's own words
    about the same thing ("what about the bigger model?") often shares no word with its answer,
    so sharing none is not enough by itself (replayed over the stored answers of thirteen sets,
    it declined 10 right ones; with either condition beside it, none)."""
    asked = _stems(message) - _ASKING_STEMS
    body = _CITATION.sub("", strip_lead(quote))
    cited = {int(n) for n in re.findall(r"\[(\d{1,2})\]", quote) if 0 < int(n) <= len(passages)}
    titles = " ".join(heading(passages[n - 1]) for n in cited)
    if not replied or not asked - _AMOUNT_VERBS or asked & _stems(f"{body} {titles}"):
        return False
    said = [" ".join(_CITATION.sub("", strip_lead(r)).lower().split()) for r in replied]
    parts = [" ".join(s.lower().split()) for s in sentences(body) if s.strip()]
    return bool(set(unpaged)) or any(part in text for part in parts for text in said)


def not_found_quote(company: str, names: Sequence[str], quote: str) -> str:
    """The fallback's quote after an answer that affirmed a name no help page has: it says first
    that the pages say nothing about it, then what they say nearby, and offers a person. "How long
    does shipping to Puerto Rico take?" -> "I'm sorry, I couldn't find anything about Puerto Rico
    in our help pages. Here is what they do say: Contiguous US: ... I can connect you with ..."."""
    return f"{_NOT_FOUND}{' or '.join(names)}{_SAID_NEARBY}{strip_lead(quote)}{_offer(company)}"


def _offer(company: str) -> str:
    return f"{_OFFER}{company} support team if you'd like."


def decline_text(company: str, about: Sequence[str] = (), unpriced: str | None = None) -> str:
    """The decline that offers a person; ``about``: names the help pages do not have;
    ``unpriced``: a thing whose price they do not give."""
    lead = "I'm sorry, I don't have that information."
    if about:
        lead = f"{_NOT_FOUND}{' or '.join(about)}{_IN_PAGES}"
    elif unpriced:
        lead = f"I'm sorry, I couldn't find a price for {unpriced}{_IN_PAGES}"
    return f"{lead}{_offer(company)}"
