"""Rows -> the agent's types (``Conversation``, ``Turn``, ``Feedback``), and anything the store
returns -> JSON-ready data.

JSON columns are read leniently: keys this version does not know are ignored, so rows written by
a newer supportloop stay readable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

from agent.types import Citation, Conversation, Feedback, RetrievedChunk, Turn

_T = TypeVar("_T")


def conversation_of(row: Mapping[Any, Any], turn_list: tuple[Turn, ...]) -> Conversation:
    return Conversation(
        id=row["id"],
        turns=turn_list,
        status=row["status"],
        escalation_reason=row["escalation_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        metadata=dict(row["meta"] or {}),
        owner=row.get("owner"),
        channel=row.get("channel") or "chat",
        resolved_at=row.get("resolved_at"),
    )


def turn_of(row: Mapping[Any, Any]) -> Turn:
    return Turn(
        role=row["role"],
        text=row["text"],
        id=row["id"],
        conversation_id=row["conversation_id"],
        created_at=row["created_at"],
        model_version=row["model_version"],
        adapter=row["adapter"],
        retrieved=tuple(dataclass_of(RetrievedChunk, item) for item in row["retrieved"] or ()),
        citations=tuple(dataclass_of(Citation, item) for item in row["citations"] or ()),
        latency_ms=row["latency_ms"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        author=row["author"],
        metadata=dict(row["meta"] or {}),
    )


def feedback_of(row: Mapping[Any, Any]) -> Feedback:
    return Feedback(
        turn_id=row["turn_id"],
        thumbs=row["thumbs"],
        rating=row["rating"],
        comment=row["comment"],
        correction=row["correction"],
        labels=tuple(row["labels"] or ()),
        reviewer=row["reviewer"],
        mark_for_training=bool(row["mark_for_training"]),
        id=row["id"],
        created_at=row["created_at"],
    )


def escalation_of(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != "pk"}


def plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO 8601, dataclasses as dicts (nested ones too), tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def dataclass_of(cls: type[_T], data: Mapping[str, Any]) -> _T:
    """``cls`` from a row (or a stored JSON object): its own fields, extra columns ignored."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in known})
