"""Mirrors of the migrated schema, for building statements.

``migrations.py`` creates the tables; these mirrors name the same tables and columns with the
same types, without the indexes and constraints that only DDL needs, and are what every statement
of the store is built from. ``tests/agent/test_store_schema.py`` checks that they equal the
columns of a freshly migrated database on both backends: a new column gets a migration first,
then its mirror here. Keys rename ``metadata`` columns, which would shadow attributes on column
collections.

**Time** is timezone-aware UTC everywhere. Naive datetimes passed in (``since``...) mean UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.types import TypeDecorator

from agent.types import ConversationStatus

# conversations.status: validated by the store, not by a CHECK constraint (see migrations.py).
STATUSES: tuple[str, ...] = get_args(ConversationStatus)


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out. SQLite keeps no zone, so UTC is implied there."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value)


_json = JSON().with_variant(pg_dialect.JSONB(), "postgresql")
# INTEGER on SQLite, where the `pk` column aliases the rowid (see migrations.m001_initial).
_rowid = BigInteger().with_variant(Integer(), "sqlite")
metadata = MetaData()

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("owner", String(255)),
    Column("channel", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("escalation_reason", Text),
    Column("metadata", _json, key="meta", nullable=False),
    Column("turn_count", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
)
turns = Table(
    "turns",
    metadata,
    Column("pk", _rowid, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("conversation_id", String(255), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("role", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("model_version", String(255)),
    Column("adapter", String(255)),
    Column("retrieved", _json, nullable=False),
    Column("citations", _json, nullable=False),
    Column("latency_ms", Float),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("author", String(255)),
    Column("metadata", _json, key="meta", nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
feedback = Table(
    "feedback",
    metadata,
    Column("pk", _rowid, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("turn_id", String(64), nullable=False),
    Column("conversation_id", String(255), nullable=False),
    Column("thumbs", SmallInteger),
    Column("rating", SmallInteger),
    Column("comment", Text),
    Column("correction", Text),
    Column("labels", _json, nullable=False),
    Column("reviewer", String(255)),
    Column("mark_for_training", Boolean, nullable=False),
    Column("reviewed", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
escalations = Table(
    "escalations",
    metadata,
    Column("pk", _rowid, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("conversation_id", String(255), nullable=False),
    Column("turn_id", String(64)),
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("resolved_by", String(255)),
    Column("note", Text),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("username", String(255), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(32), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("scope", String(32), nullable=False),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False),
    Column("revoked", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
)
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(128), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
verified_answers = Table(
    "verified_answers",
    metadata,
    Column("pk", _rowid, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("turn_id", String(64)),
    Column("feedback_id", String(64)),
    Column("reviewer", String(255)),
    Column("hits", Integer, nullable=False),
    Column("last_hit_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime),
    Column("retired_reason", Text),
)
idempotent_requests = Table(
    "idempotent_requests",
    metadata,
    Column("owner", String(64), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("status_code", Integer),
    Column("response", _json),
    Column("conversation_id", String(128)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
)
erasures = Table(
    "erasures",
    metadata,
    Column("pk", _rowid, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("conversation_key", String(64), nullable=False, unique=True),
    Column("turns", Integer, nullable=False),
    Column("feedback", Integer, nullable=False),
    Column("escalations", Integer, nullable=False),
    Column("verified_answers", Integer, nullable=False),
    Column("requests", Integer, nullable=False),
    Column("erased_by", String(255)),
    Column("erased_at", UTCDateTime, nullable=False),
)
provenance_flags = Table(
    "provenance_flags",
    metadata,
    Column("turn_id", String(64), primary_key=True),
    Column("source", Text, primary_key=True),
    Column("conversation_id", String(255), nullable=False),
    Column("doc_id", Text, nullable=False),
    Column("title", Text),
    Column("reason", String(16), nullable=False),
    Column("detected_at", UTCDateTime, nullable=False),
)
knowledge_task_closures = Table(
    "knowledge_task_closures",
    metadata,
    Column("feedback_id", String(64), primary_key=True),
    Column("closed_at", UTCDateTime, nullable=False),
    Column("doc_id", String(255)),
    Column("source", Text),
    Column("relevance", Float),
    Column("closed_by", String(255)),
    Column("note", Text),
)
shadow_answers = Table(
    "shadow_answers",
    metadata,
    Column("pk", _rowid, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("turn_id", String(64), nullable=False),
    Column("conversation_id", String(255), nullable=False),
    Column("shadow_version", String(255), nullable=False),
    Column("production_version", String(255), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("answer", Text),
    Column("error", Text),
    Column("prompt", _json),
    Column("latency_ms", Float),
    Column("completion_tokens", Integer),
    Column("reward_model", String(255)),
    *(
        column
        for arm in ("production", "shadow")
        for column in (
            Column(f"{arm}_passed", Boolean),
            Column(f"{arm}_action", String(16)),
            Column(f"{arm}_groundedness", Float),
            Column(f"{arm}_chars", Integer),
            Column(f"{arm}_reward", Float),
        )
    ),
    Column("created_at", UTCDateTime, nullable=False),
)
