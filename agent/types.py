"""Types the agent, training, UI and HTTP API share.

Frozen dataclasses with no I/O. Roles follow `../shared/data`: ``customer`` and ``agent``, plus
``human`` for a support-team member answering an escalated conversation and ``system`` for
notes. ``Turn.id``/``Reply.turn_id`` are the log store's ids (strings, stable across databases).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from agent.errors import InputError

Role = Literal["customer", "agent", "human", "system"]
ROLES: tuple[str, ...] = ("customer", "agent", "human", "system")
ConversationStatus = Literal["open", "escalated", "resolved", "closed"]


def _plain(value: Any) -> Any:
    if isinstance(value, _Serializable):
        return value.to_dict()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Serializable:
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601, tuples as lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class Citation(_Serializable):
    """A passage the answer used: ``index`` is its number in the prompt ([1], [2], ...)."""

    doc_id: str
    source: str
    snippet: str
    index: int = 0
    score: float | None = None
    chunk_id: str | None = None


@dataclass(frozen=True)
class RetrievedChunk(_Serializable):
    """What retrieval returned for a turn, as logged (ids and scores, not the text)."""

    chunk_id: str
    doc_id: str
    score: float
    source: str = ""


@dataclass(frozen=True)
class Turn(_Serializable):
    role: str
    text: str
    id: str | None = None
    conversation_id: str | None = None
    created_at: datetime | None = None
    model_version: str | None = None
    adapter: str | None = None
    retrieved: tuple[RetrievedChunk, ...] = ()
    citations: tuple[Citation, ...] = ()
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    author: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # e.g. passages shown, refused, unhelpful

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InputError(f"unknown role {self.role!r}; expected one of {', '.join(ROLES)}")


@dataclass(frozen=True)
class Conversation(_Serializable):
    id: str
    turns: tuple[Turn, ...] = ()
    status: str = "open"
    escalation_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None  # the API key that created it; None for local use
    channel: str = "chat"
    resolved_at: datetime | None = None

    @property
    def escalated(self) -> bool:
        return self.escalation_reason is not None


@dataclass(frozen=True)
class Feedback(_Serializable):
    """Feedback on one agent turn, from the customer (thumbs, rating) or a reviewer."""

    turn_id: str
    thumbs: int | None = None
    rating: int | None = None
    comment: str | None = None
    correction: str | None = None
    labels: tuple[str, ...] = ()
    reviewer: str | None = None
    mark_for_training: bool = False
    id: str | None = None
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.thumbs is not None and self.thumbs not in (-1, 1):
            raise InputError("thumbs must be 1 (up) or -1 (down)")
        if self.rating is not None and not 1 <= self.rating <= 5:
            raise InputError("rating must be between 1 and 5")


@dataclass(frozen=True)
class Reply(_Serializable):
    """One agent answer, as returned by ``Agent.reply`` and at the end of ``Agent.stream``."""

    text: str
    conversation_id: str
    turn_id: str
    citations: tuple[Citation, ...] = ()
    escalated: bool = False
    escalation_reason: str | None = None
    refused: bool = False
    model_version: str = ""
    latency_ms: float = 0.0
    time_to_first_token_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # The answer check: {"passed", "action": sent|extractive|declined, ...}; None when the
    # reply was not generated (hand-offs, refusals, notes).
    grounding: dict[str, Any] | None = None


@dataclass(frozen=True)
class VerifiedAnswer(_Serializable):
    """A reviewer's corrected answer to a customer question, served as-is for the same and
    closely similar questions while it is live (``agent.verified``)."""

    question: str
    answer: str
    id: str | None = None
    turn_id: str | None = None  # the corrected agent turn
    feedback_id: str | None = None  # the feedback row holding the correction
    reviewer: str | None = None
    hits: int = 0  # customer questions it answered
    created_at: datetime | None = None
    last_hit_at: datetime | None = None
    retired_at: datetime | None = None
    retired_reason: str | None = None

    @property
    def live(self) -> bool:
        return self.retired_at is None


@dataclass(frozen=True)
class ShadowAnswer(_Serializable):
    """One turn a shadow version answered silently beside production (``agent.shadow``): its
    answer, never shown, and both answers' scores. ``outcome`` is ``scored``, ``failed`` (the
    candidate could not answer: ``error`` says why) or ``dropped`` (the queue was full)."""

    id: str
    turn_id: str
    conversation_id: str
    shadow_version: str
    production_version: str
    outcome: str
    created_at: datetime
    answer: str | None = None
    production_answer: str | None = None  # the logged turn's text
    error: str | None = None
    prompt: list[dict[str, str]] | None = None  # production's messages
    latency_ms: float | None = None
    completion_tokens: int | None = None
    reward_model: str | None = None
    production_passed: bool | None = None
    production_action: str | None = None
    production_groundedness: float | None = None
    production_chars: int | None = None
    production_reward: float | None = None
    shadow_passed: bool | None = None
    shadow_action: str | None = None
    shadow_groundedness: float | None = None
    shadow_chars: int | None = None
    shadow_reward: float | None = None
