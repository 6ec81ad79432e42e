"""Which passages an answer actually used. Pure.

An answer cites passage n when it says ``[n]``; small models rarely do, so an answer also cites
every passage it shares a content trigram with, or most of its content words. Passages the
answer does not draw on are never cited, and an answer that says it does not know cites none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.prompt import Passage, cited_numbers

_STOP = set(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "so",
        "to",
        "of",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "you",
        "your",
        "yours",
        "we",
        "our",
        "ours",
        "i",
        "me",
        "my",
        "he",
        "she",
        "they",
        "them",
        "their",
        "there",
        "here",
        "can",
        "could",
        "will",
        "would",
        "should",
        "may",
        "might",
        "must",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "not",
        "no",
        "yes",
        "please",
        "thanks",
        "thank",
        "hi",
        "hello",
        "about",
        "into",
        "out",
        "up",
        "down",
        "over",
        "under",
        "again",
        "more",
        "most",
        "some",
        "any",
        "all",
        "each",
        "other",
        "such",
        "than",
        "too",
        "very",
        "just",
        "also",
        "only",
        "own",
        "same",
        "what",
        "which",
        "who",
        "whom",
        "when",
        "where",
        "why",
        "how",
    ]
)
_DONT_KNOW = re.compile(
    r"\b(?:i (?:do not|don't|dont) know|i'm not sure|i am not sure|i (?:do not|don't) have (?:that|any|enough)|"
    r"(?:cannot|can't|couldn't|could not) find|no information|not (?:covered|mentioned) in|"
    r"i'm unable to|i am unable to|connect you with|member of (?:the|our) support team)\b",
    re.IGNORECASE,
)


def content_words(text: str) -> list[str]:
    return [
        w for w in re.findall(r"[a-z0-9]+(?:[.'-][a-z0-9]+)*", text.lower()) if w not in _STOP and len(w) > 1
    ]


def groundedness(answer: str, passages_text: str) -> float | None:
    """Share of the answer's content words that occur in its passages (None: nothing to judge);
    the evaluation's metric and the shadow's score of a served answer."""
    words = content_words(answer)
    if not words or not passages_text.strip():
        return None
    vocab = set(content_words(passages_text))
    return sum(w in vocab for w in words) / len(words)


def says_unknown(answer: str) -> bool:
    """Whether the answer declines (does not know, hands over)."""
    return bool(_DONT_KNOW.search(answer))


def used_passages(answer: str, passages: Sequence[Passage], min_share: float = 0.5) -> list[int]:
    """1-based numbers of the passages the answer drew on, best first."""
    if not passages or says_unknown(answer):
        return []
    explicit = cited_numbers(answer, len(passages))
    if explicit:
        return explicit
    words = content_words(answer)
    if not words:
        return []
    grams = {tuple(words[i : i + 3]) for i in range(len(words) - 2)}
    scored: list[tuple[float, int]] = []
    for number, passage in enumerate(passages, start=1):
        source = content_words(passage.text)
        vocab = set(source)
        share = sum(w in vocab for w in words) / len(words)
        trigram = bool(grams & {tuple(source[i : i + 3]) for i in range(len(source) - 2)})
        if trigram or (share >= min_share and len(set(words) & vocab) >= 3):
            scored.append((share + trigram, number))
    return [number for _, number in sorted(scored, key=lambda s: (-s[0], s[1]))]
