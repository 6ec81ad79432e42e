"""Text normalisation for lexical matching: pure functions, no state.

Invariants:
- Queries and passages go through the same ``tokenize``, so their tokens always agree.
- Matching is case- and accent-insensitive; apostrophes never split a word ("Rosa's" -> "rosas").
- Scripts without spaces between words (CJK) are cut into character bigrams.
"""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = re.compile(r"['’ʼ`´]")
_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")

_STOPWORD_TEXT = """a about above after again all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def fold(text: str) -> str:
    """Case-folded, accent-stripped, apostrophe-free text."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _APOSTROPHES.sub("", stripped)


def words(text: str) -> list[str]:
    """Folded word tokens, stopwords included; CJK runs become character bigrams."""
    out: list[str] = []
    for word in _WORD.findall(fold(text)):
        if _CJK.search(word):
            out.extend(_bigrams(word))
        else:
            out.append(word)
    return out


def tokenize(text: str) -> list[str]:
    """Lexical-index tokens: folded words without stopwords or single letters, lightly stemmed."""
    return [
        stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit() or _CJK.match(w))
    ]


def stem(word: str) -> str:
    """A light English suffix stripper (plurals, -ing, -ed), enough to match "cleaned" and "clean"."""
    if len(word) <= 3 or not word.isalpha() or not word.isascii():
        return word
    for suffix, replacement, keep in (("ies", "y", 3), ("sses", "ss", 3), ("ing", "", 4), ("ed", "", 4)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            return word[: -len(suffix)] + replacement
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _bigrams(word: str) -> list[str]:
    return [word] if len(word) < 2 else [word[i : i + 2] for i in range(len(word) - 1)]
