"""Grounding: the passages each answer is shown, as serving would show them.

Passages for an answer, first that applies: the passages logged with that turn (what the model was
actually shown), else the conversation's gold documents (mtrag ``contexts``, or ``gold_doc_ids``
looked up in ``docs``), else the ``retriever``, else none. Gold documents apply to *every* answer of
the conversation, not only the last: they are the conversation's topic, and at serving time the
agent always sees the passages retrieved for that topic, relevant to the current turn or not. A
long gold document is cut to its window that best matches the turn (``focus_passage``), as serving
shows retrieved chunks, and gold or retrieved passages are cleaned like the runtime cleans them.

Every row names the passages of its prompt (``provenance``): each one's document (``doc_id``,
``source``), the index chunk it was retrieved as (``chunk_id``, a content hash made by
``knowledge.chunking``; null when it did not come from the index) and ``hash``, the same content
hash of its text as compiled (``passage_hash``: whitespace collapsed), so a row says which version
of each document it quotes.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import Counter
from collections.abc import Iterable

from agent.guardrails import clean_passage
from agent.prompt import Passage
from knowledge.chunking import content_hash
from training.data.records import Retriever, SourceConversation, question_and_history

PASSAGE_CHARS = 900  # agent.prompt.format_passages cuts each passage to this many characters
_WORDS = re.compile(r"[^\W_]{3,}")


def focus_passage(passage: Passage, query: str, max_chars: int = PASSAGE_CHARS) -> Passage:
    """A long document cut to the window of paragraphs that shares most words with ``query``.

    At serving time the model sees retrieved *chunks*; a whole gold document would be cut after
    ``max_chars`` by the prompt builder, often before the part that answers the question.
    """
    if len(" ".join(passage.text.split())) <= max_chars:
        return passage
    pieces = [p for p in re.split(r"\n\s*\n|(?<=[.!?])\s+(?=[A-Z#*-])", passage.text) if p.strip()]
    windows, current = [], ""
    for piece in pieces:
        if current and len(current) + len(piece) + 1 > max_chars:
            windows.append(current)
            current = ""
        current = f"{current}\n{piece}" if current else piece
    windows.append(current)
    wanted = {w.lower() for w in _WORDS.findall(query)}
    best = max(windows, key=lambda w: len(wanted & {x.lower() for x in _WORDS.findall(w)}))
    return dataclasses.replace(passage, text=best.strip())


# The same gold document is shown for every answer of a conversation, and cleaning is regex-heavy.
_clean_passage = functools.lru_cache(maxsize=65_536)(clean_passage)


def as_served(passages: Iterable[Passage]) -> tuple[Passage, ...]:
    """Passages as the runtime shows them: injection-like sentences removed, empty ones dropped.
    (Logged passages were already cleaned when they were served.)"""
    cleaned = (dataclasses.replace(p, text=_clean_passage(p.text)) for p in passages)
    return tuple(p for p in cleaned if p.text)


def passage_hash(text: str) -> str:
    """The content hash of a passage's text, whitespace collapsed (the runtime's cleaning joins
    sentences with single spaces, so the same text always hashes the same)."""
    return content_hash(" ".join(text.split()))


def provenance(passages: Iterable[Passage]) -> list[dict[str, str | None]]:
    """The ``provenance`` field of a row: one entry per passage of its prompt, in order."""
    return [
        {"doc_id": p.doc_id, "source": p.source, "chunk_id": p.chunk_id, "hash": passage_hash(p.text)}
        for p in passages
    ]


def resolve_passages(
    conv: SourceConversation,
    docs: dict[str, Passage] | None,
    retriever: Retriever | None,
    stats: Counter[str],
) -> SourceConversation:
    """``conv`` with passages for every answer position (see the module docstring for the order)."""
    gold = list(conv.context)
    if not gold and conv.gold_doc_ids and docs is not None:
        gold = [docs[d] for d in conv.gold_doc_ids if d in docs]
        stats["missing_doc_ids"] += sum(d not in docs for d in conv.gold_doc_ids)
    resolved = {}
    for position in conv.answer_positions():
        if position in conv.passages:
            resolved[position], source = conv.passages[position], "logged"
        elif gold:
            query = " ".join(text for _, text in conv.turns[max(0, position - 1) : position + 1])
            resolved[position], source = as_served(focus_passage(p, query) for p in gold), "gold"
        elif retriever is not None and (qh := question_and_history(conv.turns, position)) is not None:
            resolved[position], source = as_served(retriever(*qh)), "retrieved"
        else:
            resolved[position], source = (), "none"
        stats[source] += 1
    return dataclasses.replace(conv, passages=resolved)
