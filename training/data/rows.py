"""Rows: grounded, redacted records -> TRL's conversational rows (SFT, preference, KTO; their
shapes are listed in ``training.data``), deduplicated and split.

Invariants: every prompt is ``prompt_for``, i.e. ``agent.prompt.build_messages`` with the history
the runtime passes, so training sees the serving prompt; a conversation's side of the split is a
stable hash of its original id (``is_validation``), so all its rows land on one side in every run.

Which answers are SFT targets: in imported files every agent answer is a reference answer (they are
the support team's history), except those with negative feedback and no correction. From the log
store, answers are model outputs, so only trusted ones are used: human turns, corrected turns (the
correction is the target), turns marked for training and positively rated ones. A correction
always replaces the reply as the SFT target; the history of later turns keeps what was said.

Hand-off outcomes: a person's answer after a hand-off (a ``human`` turn) is an SFT target, from
reviewed and unreviewed conversations alike (``readers.from_store``); an agent answer a reviewer
labelled "should have handed off" (``agent.feedback_reasons.should_hand_off``) and did not
correct becomes a hand-off example: an SFT row whose target is the runtime's hand-off reply
(``handoff_text``) and a preference pair of that reply over the answer given.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from agent.config import Persona
from agent.feedback_reasons import should_hand_off
from agent.prompt import Message, build_messages
from training.data.passages import provenance
from training.data.records import (
    ANSWER_ROLES,
    Row,
    SourceConversation,
    TurnFeedback,
    question_and_history,
)


@dataclass(frozen=True)
class PromptOptions:
    persona: Persona = field(default_factory=Persona)
    budget_tokens: int | None = None
    count_tokens: Callable[[str], int] | None = None


def prompt_for(conv: SourceConversation, position: int, options: PromptOptions) -> list[Message] | None:
    """The serving prompt for the answer at ``position``, or None without a customer question."""
    qh = question_and_history(conv.turns, position)
    if qh is None:
        return None
    question, history = qh
    return build_messages(
        question,
        conv.passages.get(position, ()),
        options.persona,
        history,
        budget_tokens=options.budget_tokens,
        count_tokens=options.count_tokens,
    )


def _assistant(text: str) -> list[Message]:
    return [{"role": "assistant", "content": text}]


def handoff_text(persona: Persona) -> str:
    """What the runtime says when it hands a conversation to a person it cannot answer for."""
    from agent.runtime import HANDOFF

    return HANDOFF["low_confidence"].format(company=persona.company)


def is_handoff_example(conv: SourceConversation, position: int) -> bool:
    """Whether the agent answer at ``position`` was labelled "should have handed off" and not
    corrected (a correction says what to answer instead)."""
    if position >= len(conv.turns) or conv.turns[position][0] != "agent":
        return False
    feedback = conv.feedback.get(position)
    return feedback is not None and not feedback.correction and should_hand_off(feedback.labels)


def sft_target(conv: SourceConversation, position: int) -> str | None:
    """The answer to learn at ``position``, or None when it is not a trusted answer."""
    if position >= len(conv.turns) or conv.turns[position][0] not in ANSWER_ROLES:
        return None
    role, text = conv.turns[position]
    feedback = conv.feedback.get(position, TurnFeedback())
    if feedback.correction:
        return feedback.correction
    if feedback.mark_for_training:
        return text
    if feedback.negative:
        return None
    if conv.trusted_answers or role == "human" or feedback.positive:
        return text
    return None


def sft_rows(conv: SourceConversation, options: PromptOptions, turns: str = "all") -> list[Row]:
    """TRL conversational prompt-completion rows, one per trusted answer (``turns="last"``:
    only the conversation's last answer)."""
    positions = [p for p in conv.answer_positions() if p < len(conv.turns)]
    if turns == "last":
        positions = positions[-1:]
    rows = []
    for position in positions:
        handoff = is_handoff_example(conv, position)
        target = handoff_text(options.persona) if handoff else sft_target(conv, position)
        prompt = prompt_for(conv, position, options)
        if target is not None and prompt is not None:
            rows.append(
                {
                    "prompt": prompt,
                    "completion": _assistant(target),
                    "conversation_id": conv.public_id or conv.id,
                    "turn_index": position,
                    "provenance": provenance(conv.passages.get(position, ())),
                }
            )
    return rows


def preference_pairs(conv: SourceConversation, position: int) -> list[tuple[str, str]]:
    """(chosen, rejected) texts at one position: correction over the reply; then every pair of
    alternatives with different ratings, higher over lower (ties dropped)."""
    pairs = []
    feedback = conv.feedback.get(position)
    if feedback and feedback.correction and position < len(conv.turns):
        original = conv.turns[position][1]
        if feedback.correction.strip() != original.strip():
            pairs.append((feedback.correction, original))
    alternatives = conv.alternatives.get(position, ())
    for i, a in enumerate(alternatives):
        for b in alternatives[i + 1 :]:
            if round(a.rating, 6) != round(b.rating, 6) and a.text.strip() != b.text.strip():
                pairs.append((a.text, b.text) if a.rating > b.rating else (b.text, a.text))
    return pairs


def count_ties(conv: SourceConversation) -> int:
    return sum(
        round(a.rating, 6) == round(b.rating, 6)
        for alts in conv.alternatives.values()
        for i, a in enumerate(alts)
        for b in alts[i + 1 :]
    )


def preference_rows(conv: SourceConversation, options: PromptOptions) -> list[Row]:
    rows = []
    for position in conv.answer_positions():
        prompt = prompt_for(conv, position, options)
        pairs = preference_pairs(conv, position)
        if is_handoff_example(conv, position):
            handoff, given = handoff_text(options.persona), conv.turns[position][1]
            pairs = [(handoff, given)] if handoff.strip() != given.strip() else []
        for chosen, rejected in pairs if prompt else ():
            rows.append(
                {
                    "prompt": prompt,
                    "chosen": _assistant(chosen),
                    "rejected": _assistant(rejected),
                    "conversation_id": conv.public_id or conv.id,
                    "provenance": provenance(conv.passages.get(position, ())),
                }
            )
    return rows


def kto_label(feedback: TurnFeedback) -> bool | None:
    """Thumbs decide; without thumbs, a rating >= 4 is desirable and <= 2 undesirable (3: none)."""
    if feedback.thumbs is not None:
        return feedback.thumbs == 1
    if feedback.rating is not None and feedback.rating != 3:
        return feedback.rating >= 4
    return None


def kto_rows(conv: SourceConversation, options: PromptOptions) -> list[Row]:
    rows = []
    for position, feedback in sorted(conv.feedback.items()):
        if position in conv.left_out:
            continue
        label = kto_label(feedback)
        prompt = prompt_for(conv, position, options) if label is not None else None
        if prompt is not None and position < len(conv.turns):
            rows.append(
                {
                    "prompt": prompt,
                    "completion": _assistant(conv.turns[position][1]),
                    "label": label,
                    "conversation_id": conv.public_id or conv.id,
                    "provenance": provenance(conv.passages.get(position, ())),
                }
            )
    return rows


def dedupe(rows: Iterable[tuple[str, Row]], keys: Sequence[str]) -> tuple[list[tuple[str, Row]], int]:
    """(split key, row) pairs with identical ``keys`` fields kept once (the first), and the
    number dropped."""
    seen: set[str] = set()
    kept, dropped = [], 0
    for split_key, row in rows:
        fingerprint = json.dumps([row[k] for k in keys], sort_keys=True, ensure_ascii=False)
        if fingerprint in seen:
            dropped += 1
        else:
            seen.add(fingerprint)
            kept.append((split_key, row))
    return kept, dropped


def is_validation(conversation_id: str, fraction: float, salt: str | None = None) -> bool:
    """Stable split: the same id lands on the same side in every run, on every machine.

    ``salt`` draws a different split of the same size (for cross-validation, or to check that a
    result is not an accident of one split): the hash is taken of ``"{salt}:{id}"``."""
    key = f"{salt}:{conversation_id}" if salt else conversation_id
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % 10_000
    return bucket < round(fraction * 10_000)
