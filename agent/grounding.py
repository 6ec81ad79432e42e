"""The answer check: is what the model wrote supported by the passages it was given? Pure.

A sentence passes when every figure in it (numbers, prices, codes such as ``E4`` or ``AF-300``),
every name (a capitalised word inside a sentence) and most of its content words also appear in
the sources: the passages, the conversation so far, and the persona's own names. A sentence
that declines ("I don't know", "connect you with a member of the support team") always passes:
saying so is honest, whatever it cites.

The agent streams an answer one checked sentence at a time (``SentenceGate``): a sentence is
shown only once it is complete and has passed. At the first sentence that fails, generation
stops; the answer is what passed before it, or, when nothing did, the fallback: an extractive
answer (the passage sentences that best match the question, quoted) or a decline that offers a
person. A generation cut by its token or time limit never ends mid-sentence: the unfinished
tail is dropped the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.citations import content_words, says_unknown

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
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
_CITATION = re.compile(r"\s*\[\d{1,2}\]")
_LIST_MARKER = re.compile(r"(?:\d{1,2}[.)]|[-*\u2022])")
_LEADING_MARKER = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022])\s+")
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


def _figure_set(text: str) -> set[str]:
    out = set(figures(text))
    for figure in list(out):  # "AF-300" also covers "300"; "2.4GHz" covers "2.4"
        out.update(re.findall(r"\d+(?:\.\d+)?", figure))
    return out


@dataclass
class Sources:
    """What an answer may draw on, indexed once per turn."""

    texts: Sequence[str]
    min_support: float = 0.5
    _figures: set[str] = field(init=False)
    _words: set[str] = field(init=False)
    _lower: str = field(init=False)

    def __post_init__(self) -> None:
        joined = "\n".join(self.texts)
        self._figures = _figure_set(joined)
        self._words = set(content_words(joined))
        self._lower = joined.lower()

    def unsupported(self, sentence: str) -> list[str]:
        """What ``sentence`` states that the sources do not (empty: supported)."""
        if says_unknown(sentence):
            return []
        text = _LEADING_MARKER.sub("", _CITATION.sub("", sentence))  # "2. Press..." claims no "2"
        missing = [f for f in figures(text) if f not in self._figures and not f.isalpha()]
        names = [n for n in _NAME.findall(text) if n not in _ALWAYS_NAMES and n.lower() not in self._lower]
        words = [] if text.rstrip().endswith("?") else content_words(text)  # asking back claims nothing
        if words and sum(w in self._words for w in words) / len(words) < self.min_support:
            missing.append(f"support {sum(w in self._words for w in words)}/{len(words)} words")
        return missing + names


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def complete_prefix(text: str) -> int:
    """Length of the longest prefix of ``text`` that ends a sentence (0 if none yet)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return ends[-1] if ends else 0


class SentenceGate:
    """Releases streamed text one checked sentence at a time.

    ``feed(text)`` takes the whole text so far and returns how much of it may be shown;
    ``failed`` holds what the first failing sentence lacked (generation should stop then)."""

    def __init__(self, sources: Sources):
        self.sources = sources
        self.cleared = 0
        self.failed: list[str] = []

    def feed(self, text: str, final: bool = False) -> int:
        if self.failed:
            return self.cleared
        end = len(text) if final else complete_prefix(text)
        while self.cleared < end and not self.failed:
            rest = text[self.cleared : end]
            match = _SENTENCE_END.search(rest)
            stop = self.cleared + (match.end() if match else len(rest))
            while _LIST_MARKER.fullmatch(text[self.cleared : stop].strip()) and stop < end:
                match = _SENTENCE_END.search(text[stop:end])  # a list number goes with its item
                stop = stop + (match.end() if match else end - stop)
            sentence = text[self.cleared : stop]
            if _LIST_MARKER.fullmatch(sentence.strip()):
                break  # "2." alone: shown with its item, never as the last thing on screen
            problems = self.sources.unsupported(sentence) if sentence.strip() else []
            if problems:
                self.failed = problems
            else:
                self.cleared = stop
        return self.cleared


def passage_sentences(passage: str) -> list[str]:
    """The prose sentences of a passage: Markdown headings, breadcrumbs and table rows left out."""
    out = []
    for line in passage.splitlines():
        line = (
            line.strip().lstrip("-*0123456789. ").strip()
            if line.strip()[:2] in ("- ", "* ")
            else line.strip()
        )
        if not line or line.startswith(("#", "|")) or (" > " in line and not line.endswith(".")):
            continue
        out += [" ".join(s.split()) for s in sentences(line) if s.strip()]
    return out


Embed = Callable[[list[str]], Any]  # texts -> L2-normalised vectors (``KnowledgeBase.embed``)


def extractive_answer(
    question: str, passages: Sequence[str], max_sentences: int = 2, embed: Embed | None = None
) -> str | None:
    """The passage sentences that best match the question, quoted with their passage number;
    None when no sentence shares a content word with it.

    With ``embed`` (the knowledge base's own embedding model) sentences are ranked by cosine
    similarity to the question, which finds an answer worded differently from the question
    ("send back" -> "return window"); without it, by the content words they share."""
    wanted = set(content_words(question))
    candidates = []
    for number, passage in enumerate(passages, start=1):
        for order, sentence in enumerate(passage_sentences(passage)):
            clean = sentence.replace("**", "").strip()
            if len(clean) > 20 and wanted & set(content_words(clean)):
                candidates.append((number, order, clean))
    if not candidates:
        return None
    if embed is not None:
        import numpy as np

        vectors = np.asarray(embed([question, *(c[2] for c in candidates)]), dtype=np.float32)
        scores = [float(v) for v in vectors[1:] @ vectors[0]]
    else:
        scores = [float(len(wanted & set(content_words(c[2])))) for c in candidates]
    ranked = sorted(range(len(candidates)), key=lambda i: (-scores[i], candidates[i][:2]))
    best = sorted(candidates[i] for i in ranked[:max_sentences])
    quoted = " ".join(f"{s if s.endswith(('.', '!', '?')) else s + '.'} [{n}]" for n, _, s in best)
    return f"Here is what our help pages say: {quoted}"


def strip_lead(answer: str) -> str:
    """``answer`` without the extractive fallback's lead-in (citations are read from the rest)."""
    return answer.removeprefix("Here is what our help pages say: ")


def decline_text(company: str) -> str:
    return (
        "I'm sorry, I don't have that information. I can connect you with a member of the "
        f"{company} support team if you'd like."
    )
