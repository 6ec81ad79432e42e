"""PII detection and redaction for training data. Pure: strings in, strings out; no I/O.

Each detected span is replaced by a typed placeholder (``[EMAIL]``, ``[PHONE]``, ``[CARD]``,
``[IBAN]``, ``[ADDRESS]``, ``[IP]``, ``[NATIONAL_ID]``) so the model still learns where such a
value sits in a reply without ever seeing one.

Invariants:
* Redaction is idempotent: placeholders contain no digits, ``@`` or street words, and ``redact``
  repeats until nothing is found, so ``redact(redact(t)) == redact(t)`` (a property test checks it).
* Spans never overlap. Detectors run in a fixed priority order (email, IBAN, card, IP,
  national id, phone, address) and a later detector's span is dropped where it touches an
  earlier one, so the digits of a card or IBAN are never half-redacted as a phone number.
* Validators do the precision work: cards must pass Luhn, IBANs mod-97 and their country's
  length, IPv4 octets must be <= 255. Phone candidates must look like a phone (international
  prefix, national trunk ``0``, or North-American 3-3-4 grouping); a bare digit run counts only
  after a word like "call" or "phone". Prices, dates, times, versions, quantities and order
  numbers fail those checks (see the labelled corpus in ``tests/training/pii_corpus.py``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

KINDS: tuple[str, ...] = ("EMAIL", "IBAN", "CARD", "IP", "NATIONAL_ID", "PHONE", "ADDRESS")


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


# --- putting it together -----------------------------------------------------------------------

_DETECTORS: tuple[tuple[str, Callable[[str], Iterator[tuple[int, int]]]], ...] = (
    ("EMAIL", _emails),
    ("IBAN", _ibans),
    ("CARD", _cards),
    ("IP", _ips),
    ("NATIONAL_ID", _national_ids),
    ("PHONE", _phones),
    ("ADDRESS", _addresses),
)


def find_pii(text: str) -> list[PiiSpan]:
    """Non-overlapping PII spans in ``text``, in order of position."""
    taken: list[PiiSpan] = []
    for kind, detect in _DETECTORS:
        for start, end in detect(text):
            if not any(start < span.end and span.start < end for span in taken):
                taken.append(PiiSpan(kind, start, end, text[start:end]))
    return sorted(taken, key=lambda span: span.start)


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
