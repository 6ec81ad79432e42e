"""What a question asks for, and whether a text gives it. Pure.

Two checks the answer check (``agent.grounding``) runs beside its support check:

- **The kind of answer asked for.** "How much does it weigh?" asks for a weight, "What time does
  chat open?" for a clock time, "How often ...?" for a frequency. An answer that is supported by
  the passages but gives none ("The Aero 300 is a good size for rooms up to 30 m²") does not
  answer: the agent quotes a passage sentence that gives it, or says it does not know.
- **A name the passages do not have.** "How much is the Aero 700?" names a member of a family the
  passages know ("Aero 300", "Aero 500") that they never mention: no passage can answer it, and
  the agent says so instead of answering about the models it has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from agent.citations import content_words

_COUNT_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|fifty|hundred"
_AMOUNT = rf"(?:\d+(?:[.,]\d+)?|{_COUNT_WORDS}|a|an)"
_SPAN = r"(?:days?|weeks?|months?|years?|hours?|hrs?|minutes?|mins?|seconds?|secs?)"

# What gives each kind of answer.
GIVES = {
    "price": re.compile(r"[$€£]\s?\d|\b\d+(?:\.\d+)?\s?(?:dollars|usd|cad|eur)\b|\bfree\b|\bno (?:charge|cost)\b", re.I),
    "weight": re.compile(r"\b\d+(?:\.\d+)?\s?(?:kg|kilograms?|lbs?|pounds?|g|grams?)\b", re.I),
    "length": re.compile(
        r"\b\d+(?:\.\d+)?\s?(?:cm|mm|m|in|inch(?:es)?|ft|feet|foot|meters?|metres?)\b|\d\s?(?:\"|″)", re.I
    ),
    "area": re.compile(r"\d\s?(?:m²|m2|sq\.? ?ft|square (?:feet|foot|metres|meters))", re.I),
    "loudness": re.compile(r"\d\s?db\b", re.I),
    "duration": re.compile(
        rf"\b{_AMOUNT}(?:\s?(?:-|–|to|or)\s?{_AMOUNT})?[\s-]?(?:business |working )?{_SPAN}\b"
        r"|\b(?:immediately|right away|instantly|same day|overnight)\b",
        re.I,
    ),
    "clock": re.compile(r"\b\d{1,2}(?::\d\d)?\s?(?:am|pm|a\.m\.|p\.m\.)|\b(?:noon|midnight)\b|\b\d{1,2}:\d\d\b", re.I),
    "percent": re.compile(r"\d\s?(?:%|percent)", re.I),
    "frequency": re.compile(
        rf"\bevery\b|\b(?:daily|weekly|monthly|yearly|annually|hourly|once|twice)\b|\b(?:\d+|{_COUNT_WORDS}) times\b"
        r"|\b(?:a|per) (?:day|week|month|year|hour)\b",
        re.I,
    ),
    "phone": re.compile(r"(?<!\d)(?:\+?1[-. ])?\(?\d{3}\)?[-. ]\d{3}[-. ]\d{4}(?!\d)"),
    "email": re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b"),
    "count": re.compile(rf"\b(?:\d+|{_COUNT_WORDS})\b", re.I),
    # A version: "5.0", "iOS 15", "v2"; not an amount ("2.4 GHz", "$8.99", "4.8 kg").
    "version": re.compile(
        r"(?<![$€£\d.])\b\d+\.\d+(?:\.\d+)*\b(?!\s?(?:%|°|kg|lbs?|g|cm|mm|m|in|ft|db|w|kwh|ghz|mhz|v|microns?)\b)"
        r"|\b(?:ios|ipados|android|macos|windows|version|v)\s?\d+\b",
        re.I,
    ),
}  # fmt: skip

# A price asked for in a named currency ("What does it cost in Canadian dollars?") is given only
# by an amount in that currency: the pages' "$199" is not one. Each kind: the words that ask for
# it, the amounts that give it, and what the grounding record calls it. A price in dollars, with
# no country, is any price.
_CURRENCIES = {
    "price_cad": (
        r"\bcanadian dollars?\b|\bcad\b|\bca?\$",
        r"(?-i:\b(?:C|CA)\$)\s?\d|\d[\d.,]*\s?(?:CAD|Canadian dollars?)\b|\bCAD\s?\$?\s?\d",
        "a price in Canadian dollars",
    ),
    "price_aud": (
        r"\baustralian dollars?\b|\baud\b|\bau\$|(?-i:\bA\$)",
        r"(?-i:\b(?:A|AU)\$)\s?\d|\d[\d.,]*\s?(?:AUD|Australian dollars?)\b|\bAUD\s?\$?\s?\d",
        "a price in Australian dollars",
    ),
    "price_eur": (
        r"\beuros?\b|\beur\b|€",
        r"€\s?\d|\d[\d.,]*\s?(?:€|EUR\b|euros?\b)|\bEUR\s?\d",
        "a price in euros",
    ),
    "price_gbp": (
        r"\b(?:british )?pounds? sterling\b|\bgbp\b|£|\bin (?:british )?pounds\b|\bquid\b",
        r"£\s?\d|\d[\d.,]*\s?(?:GBP|pounds? sterling)\b|\bGBP\s?\d",
        "a price in pounds sterling",
    ),
    "price_jpy": (r"\b(?:japanese )?yen\b|\bjpy\b|¥", r"¥\s?\d|\d[\d.,]*\s?(?:JPY|yen)\b", "a price in yen"),
    "price_mxn": (
        r"\b(?:mexican )?pesos?\b|\bmxn\b",
        r"\d[\d.,]*\s?(?:MXN|pesos?)\b|\bMXN\s?\$?\s?\d",
        "a price in pesos",
    ),
    "price_inr": (r"\brupees?\b|\binr\b|₹", r"₹\s?\d|\d[\d.,]*\s?(?:INR|rupees?)\b", "a price in rupees"),
}
for _kind, (_, _given, _) in _CURRENCIES.items():
    GIVES[_kind] = re.compile(_given, re.I)
_CURRENCY_ASKED = [(kind, re.compile(asked, re.I)) for kind, (asked, _, _) in _CURRENCIES.items()]

# What a question asks for: each pattern with the kinds that answer it (any one of them does).
_ASKS = [
    (r"\bhow (?:big|large) (?:a |of a )?room\b|\b(?:largest|biggest|what size) room\b", ("area",)),
    (r"\bhow (?:loud|noisy|quiet)\b|\bhow many (?:decibels|db)\b", ("loudness",)),
    (r"\bhow heavy\b|\bhow much\b[^.?]{0,40}\bweigh|\bwhat(?:'s| is| does)\b[^.?]{0,30}\bweight\b"
     r"|\bwhat (?:does|do|did|will)\b[^.?]{0,30}\bweigh\b", ("weight",)),
    (
        r"\bhow much (?:do|does|did|will|would|is|are|was|were)\b(?![^.?]*\bweigh)"
        r"|\bwhat(?:'s| is| are| does| do| will)?\b[^.?]{0,40}\b(?:cost|price|fee|charge)s?\b"
        r"|\bhow much\b[^.?]{0,30}\b(?:cost|charge|pay)\b|\bhow expensive\b",
        ("price",),
    ),
    (r"\bhow (?:tall|high|wide|deep)\b|\bwhat(?:'s| is| are)\b[^.?]{0,30}\b(?:height|width|depth|dimensions)\b", ("length",)),
    (r"\bhow long\b|\bhow many (?:days|weeks|months|years|hours|minutes)\b|\bhow soon\b"
     # "What is the return window?": a window or a period is a length of time
     r"|\bwhat(?:'s| is| are)(?: the| your| my)? (?:[a-z-]+ )?(?:return|refund|cancellation|trial|grace|warranty)"
     r" (?:window|period)s?\b(?! (?:ends?|is over|closes?)\b)", ("duration", "length", "clock")),
    (r"\bhow many times\b", ("frequency",)),
    (r"\bhow often\b", ("frequency", "duration")),
    (r"\bwhat time\b|\bwhen (?:do|does) [^.?]{0,30}\b(?:open|close)\b", ("clock",)),
    (r"\bwhat percent(?:age)?\b", ("percent",)),
    (r"\b(?:what|which) (?:phone )?number (?:do|should|can) (?:i|we) (?:dial|call|ring)\b|\bphone number\b"
     r"|\bwhat(?:'s| is) (?:your|the) (?:support |customer care |helpline )?number\b", ("phone",)),
    (r"\b(?:what|which)(?:'s| is)? (?:the |your )?(?:[a-z]+ )?e-?mail(?: address)?\b|\be-?mail address\b", ("email",)),
    (r"\bhow many\b", ("count",)),
    # "What's the version number of the newest firmware?", "What Bluetooth version is in it?":
    # not "Which version am I on?" (the pages say where to look, not what it is)
    (r"\bversion numbers?\b|\b(?:what|which)(?:'s| is| are)?(?: the)? (?:[a-z0-9.-]+ ){0,3}versions?\b"
     r"|\b(?:oldest|newest|latest|current|minimum|earliest|lowest|highest) (?:[a-z0-9.-]+ ){0,2}versions?\b",
     ("version",)),
]  # fmt: skip
_ASKED = [(re.compile(pattern, re.I), kinds) for pattern, kinds in _ASKS]
# A version asked of the customer's own purifier or app ("What firmware version am I on?", "how
# do I check what firmware version I have"): the pages say where to look, not what it is. Nor is a version to choose one: "Which version of the
# Aero should I get?" asks for a model.
_OWN_VERSION = re.compile(
    r"\b(?:do i have|am i (?:on|running|using)|i'?m (?:on|running|using)|is (?:on|installed on) my|"
    r"my (?:current )?(?:[a-z]+ )?version|versions? (?:i|we) (?:have|am on|run|got)|"
    r"how (?:do|can|would|will) (?:i|we) (?:check|find|see|tell|know))\b"
    r"|\bversions?\b[^.?]*\b(?:should|would|recommend|better|best|suits?|right for|buy|choose|get)\b",
    re.I,
)
# Kinds that a "how many" question asking for them does not also ask as a bare count
# ("how many decibels", "how many days").
_SPECIFIC = frozenset({"area", "loudness", "duration", "frequency", "clock"})

_NAMES = {
    "price": "a price", "weight": "a weight", "length": "a length", "area": "a room size",
    "loudness": "a noise level", "duration": "a length of time", "clock": "a time of day",
    "percent": "a percentage", "frequency": "how often", "count": "a number",
    "phone": "a phone number", "email": "an email address", "version": "a version number",
    **{kind: name for kind, (_, _, name) in _CURRENCIES.items()},
}  # fmt: skip


def asked_kinds(question: str) -> list[tuple[str, ...]]:
    """What ``question`` asks for, each item the kinds of answer that give it, the likeliest kind
    first: "Which filter does the Aero 300 take and what does it cost?" -> [(price,)]; "How long
    does shipping to Hawaii take, and what does it cost?" -> [(price,), (duration, length,
    clock)]. Empty when it asks for no measurable thing ("Why is it loud?", "Can I return it?")."""
    return list(_asked_kinds(question))


@lru_cache(maxsize=256)
def _asked_kinds(question: str) -> tuple[tuple[str, ...], ...]:
    """``asked_kinds``, read once per question: the check asks sentence by sentence."""
    out: list[tuple[str, ...]] = []
    for pattern, kinds in _ASKED:
        if kinds == ("version",) and _OWN_VERSION.search(question):
            continue
        if pattern.search(question) and not (
            kinds == ("count",) and any(_SPECIFIC.intersection(k) for k in out)
        ):
            out.append(kinds)
    currency = next((kind for kind, pattern in _CURRENCY_ASKED if pattern.search(question)), None)
    if currency is not None and ("price",) in out:
        out[out.index(("price",))] = (currency,)  # "What does it cost in Canadian dollars?"
    return tuple(out)


def asking_words(question: str) -> str:
    """The words of ``question`` that ask for a kind ("how often", "how much ... weigh"): a
    sentence that gives the kind answers them, though it does not repeat them."""
    return " ".join(m.group(0) for pattern, _ in _ASKED for m in pattern.finditer(question))


# A length of time written as a compound before the noun it is of: "the 2-year warranty".
_COMPOUND_SPAN = re.compile(
    rf"\b{_AMOUNT}-(?:business-|working-)?(?:day|week|month|year|hour|minute)\s+([a-z][a-z-]*)", re.I
)


def without_others(text: str, question: str) -> str:
    """``text`` less the lengths of time it gives, as a compound, to a noun ``question`` does not
    name: for "What is the return window?", "defects are covered by the 2-year warranty" gives
    no length of the return window ("30-day return window" would)."""
    asked = {w[:5] for w in content_words(question)}
    return _COMPOUND_SPAN.sub(lambda m: m.group(0) if m.group(1).lower()[:5] in asked else "", text)


def gives(text: str, kinds: Iterable[str]) -> bool:
    """Whether ``text`` gives an answer of one of ``kinds``."""
    return any(GIVES[kind].search(text) for kind in kinds)


# A price that recurs: "Monthly price $8.99", "$8.99 a month", "$59/year".
_RECURS = re.compile(
    r"\b(?:monthly|yearly|annual|weekly)\b|[$€£]\s?\d+(?:\.\d+)?\s?(?:/\s?|per |an? |each )(?:mo|month|yr|year|week)\b"
    r"|\bper (?:month|year|week)\b",
    re.I,
)
# A question about a recurring charge says so: "How much is the filter subscription a month?"
_ASKS_RECURRING = re.compile(
    r"\b(?:month|months|monthly|year|yearly|annual|annually|week|weekly|subscriptions?|subscribe|plans?|"
    r"memberships?|members?|billed|billing|recurring|renewals?|renew)\b",
    re.I,
)


def recurring_price(text: str) -> bool:
    """Whether every price ``text`` gives recurs ("Aero 500: Filter AF-500 Standard; Monthly price
    $8.99"): read clause by clause, so "Price $59; Monthly price $8.99" gives a one-time price."""
    priced = [c for c in re.split(r"[;\n]", text) if GIVES["price"].search(c)]
    return bool(priced) and all(_RECURS.search(c) for c in priced)


def asks_recurring(question: str) -> bool:
    """Whether ``question`` asks about a recurring charge (a month, a subscription, a plan)."""
    return bool(_ASKS_RECURRING.search(question))


def in_currency(asks: Sequence[tuple[str, ...]]) -> list[str]:
    """What the pages lack when nothing gives ``asks``' prices in a named currency: ["prices in
    Canadian dollars"]; empty when ``asks`` names no currency."""
    return [
        _CURRENCIES[kinds[0]][2].replace("a price", "prices", 1) for kinds in asks if kinds[0] in _CURRENCIES
    ]


def in_any_currency(asks: Sequence[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """``asks`` with a price in a named currency read as any price: what the pages give instead."""
    return [("price",) if kinds[0] in _CURRENCIES else kinds for kinds in asks]


def missing(asks: Sequence[tuple[str, ...]], text: str) -> list[tuple[str, ...]]:
    """The items of ``asks`` that ``text`` does not give."""
    return [kinds for kinds in asks if not gives(text, kinds)]


def describe(asks: Sequence[tuple[str, ...]]) -> str:
    """ "a price and a length of time": what an answer lacked, for the grounding record."""
    return " and ".join(_NAMES[kinds[0]] for kinds in asks)


_CODE = re.compile(r"(?<![\w-])([A-Z][A-Za-z]{0,11})[- ]?(\d{1,4})(?![\w.,]\d|\w)")
_RANGE = re.compile(
    r"(?<![\w-])([A-Z][A-Za-z]{0,11})[- ]?(\d{1,3})\s*(?:to|–|-|through)\s*\1?[- ]?(\d{1,3})\b"
)
_SENTENCE_START = re.compile(r"(?:^|[.!?\n])[\s\"'*#>(\[-]*$")  # a table cell ("| Aero 300 |") is not


def families(texts: Iterable[str]) -> dict[str, set[str]]:
    """The named families in ``texts``, each with the numbers it has: "Aero 300 ... Aero 500" ->
    {"Aero": {"300", "500"}}; "E1 to E6" -> {"E": {"1", ..., "6"}}. A capitalised word counts
    only where it is not a sentence's first word ("After 30 days" is not a family), and a word
    the texts also write in lower case is a word, not a name ("| Every 2 weeks |")."""
    texts = list(texts)
    out: dict[str, set[str]] = {}
    for text in texts:
        for match in _CODE.finditer(text):
            if not _SENTENCE_START.search(text[: match.start()]):
                out.setdefault(match.group(1), set()).add(match.group(2))
        for match in _RANGE.finditer(text):
            low, high = int(match.group(2)), int(match.group(3))
            if 0 <= high - low <= 30:
                out.setdefault(match.group(1), set()).update(str(n) for n in range(low, high + 1))
    words = {w for text in texts for w in re.findall(r"\b[a-z]{3,}\b", text)}
    return {name: members for name, members in out.items() if name.lower() not in words}


def unknown_names(question: str, texts: Iterable[str]) -> list[str]:
    """The names in ``question`` that belong to a family ``texts`` know (two or more members) but
    are not among its members: "How much is the Aero 700?" against passages on the Aero 300 and
    Aero 500 -> ["Aero 700"]; "What does E9 mean?" against "E1 to E6" -> ["E9"]. An order number
    ("HLC-204817") belongs to no family with members, so it never counts."""
    known = families(texts)
    out = []
    for match in _CODE.finditer(question):
        members = known.get(match.group(1), set())
        if len(members) >= 2 and match.group(2) not in members:
            out.append(match.group(0))
    return out


_UNIT_AFTER = (
    r"\s*(?:%|°|x\b|(?:business |working )?(?:days?|weeks?|months?|years?|hours?|minutes?|seconds?|"
    r"kg|lbs?|cm|mm|m|in|ft|db|w|kwh|m²|sq|am|pm|gb|ghz|mhz|v)\b)"
)
# A number may end in one capital letter that makes it another member: "AF-500P" is not "AF-500".
_MEMBER = re.compile(
    rf"\b([A-Za-z]{{2,}}|[A-Z])[- ]?\(?(\d{{1,4}}(?:[A-Z](?![A-Za-z0-9]))?)\)?(?!\d|[.,]\d)(?!{_UNIT_AFTER})"
)


def members(text: str) -> set[tuple[str, str]]:
    """(thing, number) pairs that name one member of a numbered family: "fan speed 2" -> {("speed",
    "2")}, "the Aero 500" -> {("aero", "500")}, "E4" -> {("e", "4")}, "AF-500P" -> {("af",
    "500p")}; a quantity is not one ("30 days", "4.8 kg"), nor a number after a function word
    ("within 30")."""
    out = set()
    for match in _MEMBER.finditer(text):
        word = match.group(1).lower()
        if len(word) <= 2 and match.group(1).islower():
            continue  # "up 2", "is 6": a short lower-case word is not a thing's name
        if len(word) > 2 and not content_words(word):
            continue
        out.add((word, match.group(2).lower()))
    return out


def names_another_member(question: str, sentence: str) -> bool:
    """Whether ``sentence`` is about another member of a family the question names, and never
    mentions the one asked about: "How many decibels is the Aero 300 on fan speed 2?" against
    "Lowest fan speed (1): Aero 300 28 dB" (speed 1, not 2). A sentence that has the question's
    number anywhere ("Speed 1 / 2 / 3: 28 / 35 / 44 dB") is not."""
    asked_for = members(question)
    if not asked_for:
        return False
    numbers = set(re.findall(r"\d+", sentence))
    named = members(sentence)
    for word, number in asked_for:
        others = {n for w, n in named if w == word and n != number}
        if others and number not in numbers and (word, number) not in named:
            return True  # "AF-500P" asked, "Filter AF-500 Standard" said: another member
    return False


# The words that number a setting or a step: "speed 2", "level 3", "step 4".
_SETTINGS = frozenset({"speed", "setting", "level", "step", "stage", "gear", "tier", "channel", "position"})


def misses_setting(question: str, sentence: str) -> bool:
    """Whether ``question`` names a numbered setting or step in lower case ("fan speed 2", "step
    3") whose number ``sentence`` never gives: "Press the Sleep button to run the fan at its
    quietest setting (22 dB on the Aero 300)" is about another setting than "How many decibels
    is the Aero 300 on fan speed 2?", though it names no other speed. Only a question that asks
    for a measurable thing (``asked_kinds``): "Can I schedule it to run at speed 2?" is answered by
    a sentence on schedules. A name ("Aero 300", "E4") is not a setting: a sentence about it often
    does not repeat it."""
    if not asked_kinds(question):
        return False
    settings = {match.group(2).lower() for match in _MEMBER.finditer(question) if match.group(1) in _SETTINGS}
    numbers = {n.lower() for n in re.findall(r"\d+[A-Za-z]?", sentence)} | set(re.findall(r"\d+", sentence))
    return bool(settings - numbers)


# A quantity written as a compound before the noun it qualifies: "0.1-micron particles".
_TIME_UNITS = frozenset(("day", "week", "month", "year", "hour", "minut", "secon"))
_COMPOUND_QUANTITY = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)-([a-z]{3,})\b", re.I)


def another_quantity(question: str, sentence: str) -> bool:
    """Whether ``question``, asking for a measurable thing, qualifies it by a quantity written as a
    compound ("What percentage of 0.1-micron particles does it catch?") that ``sentence`` gives
    for another amount only ("at least 99.95% of particles down to 0.3 microns"): the sentence
    is about another size. A sentence without the unit is not read this way, nor a length of
    time: "the 2-year warranty" names a policy, and "How long is the 2-year warranty for
    refurbished units?" is answered by their "1 year"."""
    if not asked_kinds(question):
        return False
    for match in _COMPOUND_QUANTITY.finditer(question):
        amount, unit = match.group(1), match.group(2).lower()[:5]
        if unit.rstrip("s") in _TIME_UNITS:
            continue
        near = re.findall(rf"(\d+(?:\.\d+)?)[\s-]?{unit}", sentence, re.I)
        if near and amount not in near:
            return True
    return False
