"""The compiler's records: what every reader yields, before redaction and row building.

A ``SourceConversation`` is any input conversation (a file row, a CSV group, a reviewed
conversation of the log store) as ``(role, text)`` turns with what is known about each answer:
the passages it was shown, its feedback, rated alternatives. A ``PassThroughRow`` is a row read
from a file already in TRL format. Records are frozen: redaction and grounding return new ones.

An answer's question is the customer's last message before it; agent turns in between (a hand-off
note before a human's answer) are left out of that prompt (``question_and_history``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.prompt import Passage

# A retriever takes the customer's question and the earlier turns, and returns passages.
Retriever = Callable[[str, Sequence[tuple[str, str]]], list[Passage]]
Row = dict[str, Any]

ANSWER_ROLES = ("agent", "human")


@dataclass(frozen=True)
class TurnFeedback:
    """Feedback on one answer, merged over every piece of feedback it received."""

    rating: float | None = None
    thumbs: int | None = None
    correction: str | None = None
    labels: tuple[str, ...] = ()
    mark_for_training: bool = False

    @property
    def negative(self) -> bool:
        return self.thumbs == -1 or (self.rating is not None and self.rating <= 2)

    @property
    def positive(self) -> bool:
        return self.thumbs == 1 or (self.rating is not None and self.rating >= 4)


@dataclass(frozen=True)
class Alternative:
    """One of several rated responses to the same prompt."""

    text: str
    rating: float
    source: str = ""


@dataclass(frozen=True)
class SourceConversation:
    """A conversation as read from any input, before redaction and row building.

    ``passages``, ``feedback`` and ``alternatives`` are keyed by the index in ``turns`` of the
    answer they belong to; an alternative may sit at ``len(turns)`` (responses to a conversation
    that ends on the customer).
    """

    id: str
    turns: tuple[tuple[str, str], ...]
    origin: str  # "path:line" or "store:<id>"
    passages: dict[int, tuple[Passage, ...]] = field(default_factory=dict)
    context: tuple[Passage, ...] = ()  # conversation-level passages (mtrag contexts)
    gold_doc_ids: tuple[str, ...] = ()
    feedback: dict[int, TurnFeedback] = field(default_factory=dict)
    alternatives: dict[int, tuple[Alternative, ...]] = field(default_factory=dict)
    trusted_answers: bool = True  # imported history: every answer is a reference answer
    public_id: str | None = None  # the id written to rows (set by redaction)
    # From the log store: each turn's id, and when a reviewer last gave feedback on a position.
    turn_ids: tuple[str, ...] = ()
    reviewed_at: dict[int, datetime] = field(default_factory=dict)
    # Answers that give no row of any kind: their passages quote a document the knowledge index no
    # longer holds and no reviewer re-reviewed them since (``training.data.provenance``).
    left_out: frozenset[int] = frozenset()

    def answer_positions(self) -> list[int]:
        """Positions that may give rows: answers and alternatives, less those ``left_out``."""
        positions = {i for i, (role, _) in enumerate(self.turns) if role in ANSWER_ROLES}
        return sorted((positions | set(self.alternatives)) - self.left_out)


@dataclass(frozen=True)
class PassThroughRow:
    """A row read from a file already in TRL format (sft, preference or kto)."""

    kind: str
    row: Row
    split_key: str
    origin: str


def question_and_history(
    turns: Sequence[tuple[str, str]], position: int
) -> tuple[str, list[tuple[str, str]]] | None:
    """The customer message an answer at ``position`` replies to, and the turns before it
    (as the runtime passes them: system notes excluded). None if no customer spoke first."""
    for q in range(min(position, len(turns)) - 1, -1, -1):
        if turns[q][0] == "customer":
            return turns[q][1], [t for t in turns[:q] if t[0] != "system"]
    return None
