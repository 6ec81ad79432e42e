"""Held-out examples and the prompts each evaluation setting shows the models.

An ``EvalExample`` is one held-out answer: its serving prompt (with the gold passages compiled
into it) and the reference answer. From it, ``setting_prompts`` builds what every model sees:
``gold`` keeps the compiled prompt; ``retrieved`` asks a retriever again for the same question
and history and rebuilds the prompt around the new passages with the same system prompt. The
few-shot baseline's prompts carry ``pick_shots``'s short exchanges from the training split in
place of the built-in worked example. Pure, apart from ``load_eval_rows`` (it reads a file) and
the retrieved setting (it calls the retriever).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.citations import says_unknown
from agent.config import Persona
from agent.errors import DataError
from agent.prompt import Message, build_messages, without_default_examples
from training.data import Retriever

SETTINGS = ("gold", "retrieved")
FEW_SHOT = 3


@dataclass(frozen=True)
class EvalExample:
    """One held-out answer: its serving prompt (gold passages) and the reference answer."""

    prompt: tuple[Message, ...]
    reference: str
    conversation_id: str = ""
    expected: str | None = None  # "answer" or "decline" when known

    @property
    def system(self) -> str:
        return self.prompt[0]["content"] if self.prompt and self.prompt[0]["role"] == "system" else ""

    @property
    def question(self) -> str:
        return split_user_message(self.prompt[-1]["content"])[1]

    @property
    def slices(self) -> dict[str, str]:
        """The groups the gate compares models within: answerability (answer / decline), the
        source of the first passage shown (the topic), first turn or follow-up."""
        passages = split_user_message(self.prompt[-1]["content"])[0] if self.prompt else ""
        first = _FIRST_SOURCE.search(passages)
        return {
            "answerability": self.expected or "unknown",
            "source": first.group(1) if first else "none",
            "turn": "follow-up" if self.history else "first",
        }

    @property
    def history(self) -> list[tuple[str, str]]:
        roles = {"user": "customer", "assistant": "agent"}
        messages = without_default_examples(self.prompt)[1:-1]
        return [(roles[m["role"]], m["content"]) for m in messages if m["role"] in roles]


_FIRST_SOURCE = re.compile(r"^\[1\] \(([^)\n]*)\)", re.MULTILINE)


def split_user_message(content: str) -> tuple[str, str]:
    """(passages block, customer question) of a serving user message (``agent.prompt``)."""
    head, sep, question = content.rpartition("\n\nCustomer: ")
    if not sep:
        return "", content.strip()
    return head.removeprefix("Passages:\n"), question.strip()


def examples_from_rows(rows: Sequence[Mapping[str, Any]]) -> list[EvalExample]:
    """SFT rows (TRL prompt-completion) as evaluation examples."""
    out = []
    for row in rows:
        reference = row["completion"][-1]["content"]
        expected = row.get("expected") or ("decline" if says_unknown(reference) else "answer")
        out.append(
            EvalExample(tuple(row["prompt"]), reference, str(row.get("conversation_id", "")), expected)
        )
    return out


def load_eval_rows(
    path: Path, *, docs: Path | None = None, persona: Persona | None = None, val_fraction: float = 0.2
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(held-out rows, training rows) from any importable file (``training.data.read_rows``).

    A file of compiled SFT rows is all held out (its ``sft_train.jsonl`` sibling, if any, gives
    the few-shot pool); a conversation file is compiled and its stable validation split is held
    out, exactly the rows ``supportloop train sft`` on the same file does not train on.
    """
    from training.data import load_rows, read_rows

    rows, val, _source = read_rows(path, "sft", docs=docs, persona=persona, val_fraction=val_fraction)
    if val is None:
        sibling = path.with_name("sft_train.jsonl")
        return rows, load_rows(sibling) if sibling.is_file() and sibling != path else []
    if not val:
        raise DataError("no held-out SFT rows (the validation split is empty)", path=str(path))
    return val, rows


def pick_shots(
    pool: Sequence[Mapping[str, Any]], k: int = FEW_SHOT, max_chars: int = 320, seed: int = 0
) -> list[tuple[str, str]]:
    """``k`` short (customer question, agent answer) pairs from distinct conversations."""
    candidates = []
    for row in pool:
        question = split_user_message(row["prompt"][-1]["content"])[1]
        answer = row["completion"][-1]["content"]
        if len(question) + len(answer) <= max_chars and not says_unknown(answer):
            candidates.append((str(row.get("conversation_id", "")), question, answer))
    random.Random(seed).shuffle(candidates)
    shots, seen = [], set()
    for conversation_id, question, answer in candidates:
        if conversation_id not in seen:
            seen.add(conversation_id)
            shots.append((question, answer))
        if len(shots) == k:
            break
    if len(shots) < k:
        raise DataError(f"the few-shot baseline needs {k} short training examples; found {len(shots)}")
    return shots


def with_shots(prompt: Sequence[Message], shots: Sequence[tuple[str, str]]) -> list[Message]:
    """The prompt with few-shot exchanges after the system message, replacing the built-in worked
    example (``build_messages(examples=shots)`` layout)."""
    stripped = without_default_examples(prompt)
    head, rest = stripped[:1], stripped[1:]
    for customer, agent in shots:
        head += [{"role": "user", "content": customer}, {"role": "assistant", "content": agent}]
    return head + rest


def retrieved_prompt(
    example: EvalExample, retriever: Retriever, shots: Sequence[tuple[str, str]] = ()
) -> list[Message]:
    """The example's question and history with freshly retrieved passages, same system prompt."""
    passages = retriever(example.question, example.history)
    persona = Persona(system_prompt=example.system or None)
    return build_messages(example.question, passages, persona, example.history, examples=shots or None)


def setting_prompts(
    examples: Sequence[EvalExample],
    setting: str,
    retriever: Retriever | None,
    shots: Sequence[tuple[str, str]] = (),
) -> list[list[Message]]:
    if setting == "gold":
        return [with_shots(e.prompt, shots) for e in examples]
    if retriever is None:
        raise DataError("the retrieved setting needs a retriever (a knowledge index or --docs)")
    return [retrieved_prompt(e, retriever, shots) for e in examples]
