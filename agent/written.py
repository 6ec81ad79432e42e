"""A customer's message as the help pages would write it, for the agent to read. Pure.

Customers type "whats the return window", "what does e4 mean" and "can i use both codes" with no
capitals, no apostrophes and no question mark. The answer check reads questions by their form:
"Can I ...?" is a yes-or-no question whose "Yes" must be backed, "E4" is an error code whose
section answers, "What's the ... window?" asks for a length of time. Replayed over 954 stored
answers with each question lower-cased and its "?" dropped (the model's answers held as they
were), 19 right answers and 7 declines were lost. The agent reads the message as written here
(retrieval, the model and the check); the log keeps the customer's own words.

- a curly apostrophe is a straight one ("What’s" -> "What's");
- a contraction typed without its apostrophe gets it ("whats" -> "what's", "dont" -> "don't");
  "i" is "I";
- a word the help pages only ever write with capitals is written so ("aero" -> "Aero", "e4" ->
  "E4", "hepa" -> "HEPA", ``knowledge.base.cased_words``), and so is a code of a family the pages
  have ("e7" -> "E7" beside "E1" to "E6", "af-700" -> "AF-700");
- the message opens with a capital;
- a last sentence that asks and ends with no mark gets a "?": it opens with a question word or an
  auxiliary verb ("can i ..."), has one after a comma ("it came 10 days ago, can you still send
  one"), ends in ", right", or opens with "ok if".

A name no page has stays as typed ("puerto rico"): nothing says it is one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Contractions that customers type without the apostrophe. "cant" and "wont" are read as
# contractions (as words they are too rare in a support chat to matter); "ill", "id", "its" and
# "were" are words, and stay.
_CONTRACTIONS = {
    **{w: w[:-1] + "'s" for w in ("whats", "hows", "wheres", "whens", "whos", "thats", "theres", "heres")},
    **{w: w[:-2] + "n't" for w in ("dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent")},
    **{w: w[:-2] + "n't" for w in ("hasnt", "havent", "couldnt", "shouldnt", "wouldnt")},
    "cant": "can't",
    "wont": "won't",
    "im": "I'm",
    "ive": "I've",
    "i": "I",
}
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’-][A-Za-z0-9]+)*")
# A code: letters, an optional hyphen, digits ("E4", "AF-500", "HA3").
_CODE = re.compile(r"([A-Za-z]{1,3})(-?)(\d{1,4})")
# What a sentence that asks opens with (after "and", "so", "ok", "also", "but" or "then").
_ASKING = re.compile(
    r"^(?:(?:and|so|ok|okay|also|but|then|hi|hello|hey|thanks)\b[,\s]*)*"
    r"(?:what|what's|whats|how|how's|hows|why|when|where|which|who|whose|whom|can|could|do(?! not)|does"
    r"|did|is|are|was|were|will|would|should|shall|may|might|(?:have|has) (?:you|i|we|they|it|my|the)"
    r"|am|isn't|aren't|doesn't|didn't|won't|can't|any|anything)\b",
    re.I,
)
# ... or has after a comma ("it came 10 days ago, can you still send one"), or ends with ("That's
# fine, right"), or opens with "ok if".
_ASKS_WITHIN = re.compile(
    r",\s*(?:(?:can|could|do|does|is|are|will|would|should)\s+(?:you|i|we|it|they|there|that|this)|what|how|why)\b"
    r"|,\s*(?:right|correct|ok|okay)$|^(?:ok|okay|is it ok|is it okay|alright) if\b",
    re.I,
)
# What ends a sentence (a closing quote or bracket may follow the mark).
_ENDS = re.compile(r"[.!?…:;)\]\"']\s*$")


def _families(cased: Mapping[str, str]) -> dict[str, str]:
    """The letters of the codes in ``cased`` as written, by their lower-cased form ("af" -> "AF")."""
    out: dict[str, str] = {}
    for form in cased.values():
        code = _CODE.fullmatch(form)
        if code is not None and code.group(1).isupper():
            out[code.group(1).lower()] = code.group(1)
    return out


def as_written(message: str, cased: Mapping[str, str] | None = None) -> str:
    """``message`` as the help pages would write it (see the module's docstring); ``cased``: the
    pages' words that are only written with capitals (``cased_words``), or None."""
    cased = cased or {}
    families = _families(cased)
    text = message.replace("’", "'").replace("‘", "'")

    def word(match: re.Match[str]) -> str:
        typed = match.group(0)
        low = typed.lower()
        if low in _CONTRACTIONS and typed in (low, low.capitalize()):
            meant = _CONTRACTIONS[low]
            return meant if typed == low else meant[0].upper() + meant[1:]
        if typed != low:
            return typed  # the customer chose the case
        if low in cased:
            return cased[low]
        code = _CODE.fullmatch(low)
        if code is not None and code.group(1) in families:
            return families[code.group(1)] + code.group(2) + code.group(3)
        return typed

    text = _WORD.sub(word, text)
    stripped = text.rstrip()
    if not stripped:
        return message
    text = stripped[0].upper() + stripped[1:]
    last = re.split(r"(?<=[.!?])\s+", text)[-1]
    if not _ENDS.search(text) and (_ASKING.match(last) or _ASKS_WITHIN.search(last)):
        text += "?"
    return text
