"""Row augmentations that teach a small model to *read* its passages. Pure; seeded.

Each function takes a compiled SFT row (TRL conversational prompt-completion, built by
``agent.prompt`` exactly as served) and returns a new row, or None when it does not apply:

* ``with_distractors``: one or more passages that do not answer are mixed in with the ones
  that do, in random order, as retrieval serves them (RAFT, Zhang et al. 2024);
* ``declined``: the passages that answer are replaced by plausible ones that do not, and the
  target becomes the persona's "I don't know, shall I get a person?": the model learns to
  decline when the passages are silent instead of answering from memory;
* ``counterfactual``: every figure the answer copies from its passages is changed, in the
  passages and in the answer alike, so the answer can only be right by reading;
* ``asks_back``: whether a row's answer is a question back to the customer (the mix can copy
  such rows, few in any source, so that asking back on an ambiguous question is learned).

Invariants: the system message, the worked example and the customer's words never change; the
passage block is rebuilt with ``agent.prompt.user_message``, so the row stays a serving prompt.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Sequence
from typing import Any

from agent.citations import says_unknown
from agent.prompt import Passage, user_message
from training.heldout import split_user_message

Row = dict[str, Any]

DECLINE = (
    "I'm sorry, I don't have that information. I can connect you with a member of the support "
    "team who can help."
)
_BLOCK_LINE = re.compile(r"^\[(\d{1,2})\] \(([^)]*)\) (.*)$")
_FIGURE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w])")
_WORD = re.compile(r"[^\W_]{4,}")


def standard_decline(row: Row, text: str = DECLINE) -> Row:
    """``row`` with a declining target replaced by the one decline the agent is taught."""
    if not says_unknown(row["completion"][-1]["content"]):
        return row
    return {**row, "completion": [{"role": "assistant", "content": text}]}


def asks_back(row: Row) -> bool:
    """Whether the row's answer asks the customer a question back instead of answering (as
    ``agent.evaluate.behaviour`` reads a reply: ends on a question, or asks to clarify)."""
    from agent.evaluate import behaviour

    answer = row["completion"][-1]["content"].strip()
    return bool(answer) and behaviour(answer, escalated=False, refused=False) == "clarify"


def split_user(content: str) -> tuple[list[Passage], str] | None:
    """(passages, question) of a serving user message; None if it is not one."""
    if "\n\nCustomer: " not in content or not content.startswith("Passages:\n"):
        return None
    block, question = split_user_message(content)
    passages = []
    for line in block.split("\n"):
        match = _BLOCK_LINE.match(line)
        if match:
            label, text = match.group(2), match.group(3)
            passages.append(Passage(doc_id=label, source=label, text=text, title=label))
    return passages, question


def _with_user(row: Row, passages: Sequence[Passage], question: str) -> Row:
    out = copy.deepcopy(row)
    out["prompt"][-1]["content"] = user_message(question, passages)
    return out


def _overlap(a: str, b: str) -> int:
    return len({w.lower() for w in _WORD.findall(a)} & {w.lower() for w in _WORD.findall(b)})


def hard_negatives(question: str, pool: Sequence[Passage], exclude: set[str], n: int) -> list[Passage]:
    """The ``n`` passages of ``pool`` (labels not in ``exclude``) sharing most words with the question."""
    candidates = [p for p in pool if (p.title or p.doc_id) not in exclude]
    candidates.sort(key=lambda p: -_overlap(question, p.text))
    return candidates[:n]


def with_distractors(row: Row, pool: Sequence[Passage], rng: random.Random, k: int = 2) -> Row | None:
    """``row`` with passages from ``pool`` added until it shows ``k``, shuffled."""
    parsed = split_user(row["prompt"][-1]["content"])
    if parsed is None or len(parsed[0]) >= k:
        return None
    passages, question = parsed
    labels = {p.title or p.doc_id for p in passages}
    if passages:
        extra = [p for p in rng.sample(list(pool), min(len(pool), 8)) if (p.title or p.doc_id) not in labels]
    else:  # nothing was found: show what retrieval would, related passages that do not answer
        extra = hard_negatives(question, rng.sample(list(pool), min(len(pool), 400)), labels, k)
    mixed = passages + extra[: k - len(passages)]
    rng.shuffle(mixed)
    return _with_user(row, mixed, question)


def declined(row: Row, pool: Sequence[Passage], k: int = 2, text: str = DECLINE) -> Row | None:
    """``row`` with its passages swapped for ``k`` that do not answer, and a decline as target.

    A hard negative that shares a figure with the original answer might answer after all: such
    rows are skipped rather than taught a wrong decline."""
    parsed = split_user(row["prompt"][-1]["content"])
    if parsed is None:
        return None
    passages, question = parsed
    answer = row["completion"][-1]["content"]
    labels = {p.title or p.doc_id for p in passages}
    negatives = hard_negatives(question, pool, labels, k)
    figures = set(_FIGURE.findall(answer))
    if len(negatives) < k or any(figures & set(_FIGURE.findall(p.text)) for p in negatives):
        return None
    out = _with_user(row, negatives, question)
    out["completion"] = [{"role": "assistant", "content": text}]
    return out


def _changed(value: str, rng: random.Random) -> str:
    """Another positive figure of the same shape (integer or the same number of decimals)."""
    decimals = len(value.split(".")[1]) if "." in value else 0
    number = float(value)
    step = max(10**-decimals, round(number * rng.uniform(0.2, 0.6), decimals))
    new = number - step if rng.random() < 0.5 and number - step > 0 else number + step
    return f"{new:.{decimals}f}"


def counterfactual(row: Row, rng: random.Random) -> Row | None:
    """``row`` with every figure shared by its answer and passages changed in both."""
    parsed = split_user(row["prompt"][-1]["content"])
    if parsed is None:
        return None
    passages, question = parsed
    answer = row["completion"][-1]["content"]
    block = " ".join(p.text for p in passages)
    shared = sorted(set(_FIGURE.findall(answer)) & set(_FIGURE.findall(block)))
    if not shared:
        return None
    mapping = {value: _changed(value, rng) for value in shared}

    def swap(text: str) -> str:
        return _FIGURE.sub(lambda m: mapping.get(m.group(1), m.group(1)), text)

    changed = [Passage(p.doc_id, p.source, swap(p.text), p.title) for p in passages]
    out = _with_user(row, changed, question)
    out["completion"] = [{"role": "assistant", "content": swap(answer)}]
    return out
