"""The log store: every conversation, turn, piece of feedback and escalation, over SQLAlchemy Core.

SQLite in the data home by default (``<home>/supportloop.db``), PostgreSQL by URL
(``postgresql+psycopg://user:password@host/db``). This is the only module that speaks SQL; the
schema lives in ``agent/store/migrations.py`` (append-only, applied on open).

Invariants:

* **Committed before return.** Every write method runs one transaction and commits it before it
  returns, so a customer message logged with ``add_turn`` is on disk before generation starts and
  is visible at once to every other store on the same database.
* **Durability (SQLite).** WAL journal with ``synchronous=FULL``: the WAL is fsynced at every
  commit, so a committed turn survives SIGKILL of the process *and* power loss / OS crash. (WAL +
  ``NORMAL`` would survive a process crash but could lose the last commits on power loss; the log
  is training data and audit trail, and one fsync per turn is noise next to generation.)
* **Exact order.** Turns carry ``seq``, 1, 2, 3, ... per conversation, unique and gapless, allocated
  inside the writing transaction under a lock on the conversation (``BEGIN IMMEDIATE`` on SQLite,
  ``SELECT ... FOR UPDATE`` on PostgreSQL), so it is race-free across threads and processes.
  ``created_at`` is informational: clocks of different processes may disagree.
* **Concurrency.** One ``LogStore`` may be shared by threads (pooled engine, a connection per call);
  any number of processes may open the same database. SQLite waits up to 10 s for a lock
  (``busy_timeout``); writes that still meet "database is locked" (or a PostgreSQL serialization
  failure / deadlock) are retried with backoff, the whole transaction each time.
* **Ids** of conversations, turns, feedback and escalations are strings (uuid4 hex unless the
  caller names a conversation), so they stay stable when logs move between databases.
* **Time** is timezone-aware UTC everywhere. Naive datetimes passed in (``since``...) mean UTC.
* **Ownership.** ``conversations.owner`` (e.g. an API key id) is set at creation and never
  changes. Any call given ``owner=`` treats another owner's conversation as missing
  (``NotFoundError``), so a key cannot learn that someone else's conversation exists.
* **Reviewed** means a feedback row from a reviewer or carrying a correction, labels or
  mark-for-training (``feedback.reviewed``, computed at insert). Customer thumbs/ratings alone do
  not make a conversation reviewed.
* **Escalated** means the conversation has ever been escalated (an ``escalations`` row); resolving
  it changes the status but keeps ``escalation_reason`` as history.
* **Full-text search** is ranked, never ``LIKE``: FTS5 + bm25 (porter stemming) on SQLite,
  ``tsvector`` + ``ts_rank`` (English stemming) on PostgreSQL. Queries take web-search syntax
  (terms are ANDed, ``"a phrase"``, ``or``, ``-term``) and no user input can make a query raise.
  Ranks are "higher is better" but not comparable between backends.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import random
import re
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Float,
    Integer,
    MetaData,
    Select,
    SmallInteger,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError
from sqlalchemy.types import TypeDecorator

from agent.errors import InputError, NotFoundError, StoreError
from agent.store import migrations
from agent.types import ROLES, Citation, Conversation, Feedback, RetrievedChunk, Turn

if TYPE_CHECKING:
    from agent.config import AgentConfig

__all__ = ["STATUSES", "ApiKey", "ConversationSummary", "LogStore", "SearchResult", "User"]

STATUSES: tuple[str, ...] = ("open", "escalated", "resolved", "closed")
BUSY_TIMEOUT_MS = 10_000
WRITE_ATTEMPTS = 6
FIRST_MESSAGE_CHARS = 200
SNIPPET_MARK = "**"  # around matched terms in search snippets (bold in the console's Markdown)
MAX_LIMIT = 1000
CONSOLE_SESSION_TTL_S = 12 * 3600  # a console sign-in lasts a working day, reloads included
KEY_USE_RESOLUTION_S = 60  # how stale an API key's last_used_at may get (see verify_api_key)
_PAGE = 100  # conversations per round trip in the iterators
_T = TypeVar("_T")
_WRITE = "supportloop_write"  # execution option: this transaction writes (BEGIN IMMEDIATE)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out. SQLite keeps no zone, so UTC is implied there."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _utc(value)


_json = JSON().with_variant(pg_dialect.JSONB(), "postgresql")
_meta = MetaData()
# Mirrors of the migrated schema, for building statements. Keys rename `metadata` columns, which
# would shadow attributes on column collections.
conversations = Table(
    "conversations",
    _meta,
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
    _meta,
    Column("pk", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
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
    _meta,
    Column("pk", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
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
    _meta,
    Column("pk", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
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
    _meta,
    Column("id", String(64), primary_key=True),
    Column("username", String(255), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(32), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
api_keys = Table(
    "api_keys",
    _meta,
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
    _meta,
    Column("token_hash", String(128), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
ROLES_USERS = ("admin", "reviewer")
KEY_SCOPES = ("customer", "admin")


@dataclass(frozen=True)
class User:
    id: str
    username: str
    role: str
    disabled: bool = False
    created_at: datetime | None = None


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scope: str
    prefix: str
    revoked: bool = False
    created_at: datetime | None = None
    last_used_at: datetime | None = None


def hash_password(password: str, *, salt: bytes | None = None, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    """scrypt (memory-hard, in the standard library); the parameters travel with the hash."""
    import base64
    import hashlib

    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    import base64
    import hashlib
    import hmac

    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _key_hash(secret: str) -> str:
    import hashlib

    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ConversationSummary:
    """One row of the review console's conversation list."""

    id: str
    created_at: datetime
    updated_at: datetime
    status: str
    escalation_reason: str | None
    turn_count: int
    first_message: str | None  # the first customer message, truncated
    model_versions: tuple[str, ...]
    min_rating: int | None  # lowest rating given to any turn, by customer or reviewer
    reviewed: bool
    owner: str | None

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SearchResult:
    conversation_id: str
    turn_id: str
    role: str
    snippet: str  # matched terms between SNIPPET_MARKs
    rank: float  # higher is better; comparable within one backend only

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)  # type: ignore[no-any-return]


class LogStore:
    """Conversations, turns, feedback and escalations in one SQL database."""

    def __init__(
        self,
        url: str | None = None,
        *,
        home: Path | None = None,
        echo: bool = False,
        clock: Callable[[], datetime] | None = None,
    ):
        """Open (creating and migrating if needed) the store at ``url``; without one, SQLite in
        ``home`` (default: the data home). ``clock`` replaces "now" (tests, imports of old logs)."""
        if url is None:
            from agent.config import default_home

            url = f"sqlite:///{(home or default_home()) / 'supportloop.db'}"
        parsed = _normalize_url(url)
        self.url: str = parsed.render_as_string(hide_password=True)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._engine = self._create_engine(parsed, echo)
        self.dialect: str = self._engine.dialect.name
        self._closed = False
        try:
            self._migrate()
        except BaseException:
            self._engine.dispose()
            raise

    @classmethod
    def from_config(cls, config: AgentConfig) -> LogStore:
        return cls(config.database_url, home=config.home)

    def __repr__(self) -> str:
        return f"LogStore({self.url!r})"

    def close(self) -> None:
        self._closed = True
        self._engine.dispose()

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- conversations -------------------------------------------------------------------------

    def create_conversation(
        self,
        conversation_id: str | None = None,
        *,
        owner: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        channel: str = "chat",
    ) -> Conversation:
        """A new, empty conversation; StoreError if ``conversation_id`` is taken."""
        cid = _check_id(conversation_id, "conversation_id") if conversation_id else uuid.uuid4().hex
        values = self._new_conversation_values(cid, owner, metadata, channel)

        def work(conn: Connection) -> None:
            try:
                conn.execute(insert(conversations).values(values))
            except IntegrityError as exc:
                raise StoreError(
                    f"conversation {cid!r} already exists; use ensure_conversation() to reuse it "
                    "or omit the id to get a new one"
                ) from exc

        self._run(work, write=True)
        return _conversation(values, ())

    def ensure_conversation(
        self, conversation_id: str, *, owner: str | None = None, channel: str = "chat"
    ) -> Conversation:
        """The conversation with its turns, created if missing. With ``owner``, another owner's
        conversation is NotFoundError (the id is taken; pick another)."""
        try:  # the common case, a read: the conversation exists
            return self.get_conversation(conversation_id, owner=owner)
        except NotFoundError:
            pass
        values = self._new_conversation_values(
            _check_id(conversation_id, "conversation_id"), owner, None, channel
        )
        insert_ = sqlite_dialect.insert if self.dialect == "sqlite" else pg_dialect.insert
        # ON CONFLICT: concurrent get-or-create calls both succeed, and one row is created.
        self._run(
            lambda conn: conn.execute(insert_(conversations).values(values).on_conflict_do_nothing()),
            write=True,
        )
        return self.get_conversation(conversation_id, owner=owner)

    def get_conversation(self, conversation_id: str, *, owner: str | None = None) -> Conversation:
        """The conversation with its turns in order. NotFoundError if missing or, when ``owner``
        is given, owned by someone else."""

        def work(conn: Connection) -> Conversation:
            row = self._conversation_row(conn, conversation_id, owner)
            return _conversation(row._mapping, self._turns(conn, [conversation_id])[conversation_id])

        return self._run(work)

    def set_status(self, conversation_id: str, status: str, *, reason: str | None = None) -> None:
        """Move a conversation to ``status``. "escalated" needs ``reason`` (same as ``escalate``);
        "resolved" records ``resolved_at`` and closes open escalations with ``reason`` as note;
        "open" clears ``resolved_at``; ``reason`` is not stored for "open"/"closed"."""
        if status not in STATUSES:
            raise InputError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        if status == "escalated":
            if not reason:
                raise InputError("set_status(..., 'escalated') needs a reason; or call escalate()")
            self.escalate(conversation_id, reason)
            return
        if status == "resolved":
            self._resolve(conversation_id, resolved_by=None, note=reason, require_open=False)
            return

        def work(conn: Connection) -> None:
            now = self._now()
            values: dict[str, Any] = {"status": status, "updated_at": now}
            if status == "open":
                values["resolved_at"] = None
            self._update_conversation(conn, conversation_id, values)

        self._run(work, write=True)

    # -- turns ---------------------------------------------------------------------------------

    def add_turn(
        self,
        conversation_id: str,
        role: str,
        text: str,
        *,
        model_version: str | None = None,
        adapter: str | None = None,
        retrieved: Sequence[RetrievedChunk] = (),
        citations: Sequence[Citation] = (),
        latency_ms: float | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        author: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Turn:
        """Append a turn and commit before returning. NotFoundError for an unknown conversation."""
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        _check_text(text, "text")
        for name, count in (("prompt_tokens", prompt_tokens), ("completion_tokens", completion_tokens)):
            if count is not None and count < 0:
                raise InputError(f"{name} must be >= 0, got {count}")
        values: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "conversation_id": conversation_id,
            "role": role,
            "text": text,
            "model_version": model_version,
            "adapter": adapter,
            "retrieved": _check_json([c.to_dict() for c in retrieved], "retrieved"),
            "citations": _check_json([c.to_dict() for c in citations], "citations"),
            "latency_ms": latency_ms,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "author": author,
            "meta": _check_json(dict(metadata or {}), "metadata"),
        }

        def work(conn: Connection) -> datetime:
            # The row lock (PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the database) is
            # what makes seq allocation race-free, and taking "now" after it keeps created_at in
            # seq order among this host's writers.
            count = conn.execute(
                select(conversations.c.turn_count)
                .where(conversations.c.id == conversation_id)
                .with_for_update()
            ).scalar_one_or_none()
            if count is None:
                raise NotFoundError(_missing_conversation(conversation_id))
            now = self._now()
            conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(turn_count=count + 1, updated_at=now)
            )
            conn.execute(insert(turns).values({**values, "seq": count + 1, "created_at": now}))
            return now

        created_at = self._run(work, write=True)
        return _turn({**values, "created_at": created_at})

    def get_turn(self, turn_id: str) -> Turn:
        row = self._run(lambda conn: conn.execute(select(turns).where(turns.c.id == turn_id)).first())
        if row is None:
            raise NotFoundError(f"no turn {turn_id!r} in the log store at {self.url}")
        return _turn(row._mapping)

    def turns(self, conversation_id: str) -> list[Turn]:
        """The conversation's turns in order; NotFoundError for an unknown conversation."""

        def work(conn: Connection) -> list[Turn]:
            self._conversation_row(conn, conversation_id, None)
            return list(self._turns(conn, [conversation_id])[conversation_id])

        return self._run(work)

    # -- feedback ------------------------------------------------------------------------------

    def add_feedback(
        self,
        turn_id: str,
        *,
        thumbs: int | None = None,
        rating: int | None = None,
        comment: str | None = None,
        correction: str | None = None,
        labels: Sequence[str] = (),
        reviewer: str | None = None,
        mark_for_training: bool = False,
    ) -> Feedback:
        """Record feedback on a turn (customer thumbs/rating, or a reviewer's rating, labels,
        correction, mark-for-training). NotFoundError for an unknown turn."""
        if isinstance(labels, str):
            raise InputError("labels must be a list of strings, not one string")
        clean_labels = tuple(dict.fromkeys(label.strip() for label in labels if label.strip()))
        item = Feedback(  # validates thumbs and rating
            turn_id=turn_id,
            thumbs=thumbs,
            rating=rating,
            comment=comment or None,
            correction=correction or None,
            labels=clean_labels,
            reviewer=reviewer or None,
            mark_for_training=bool(mark_for_training),
            id=uuid.uuid4().hex,
        )
        if (
            thumbs is None
            and rating is None
            and not (comment or correction or clean_labels or mark_for_training)
        ):
            raise InputError(
                "empty feedback: give thumbs, rating, comment, correction, labels or mark_for_training"
            )
        for name, value in (("comment", item.comment), ("correction", item.correction)):
            if value is not None:
                _check_text(value, name)
        reviewed = bool(item.reviewer or item.correction or item.labels or item.mark_for_training)

        def work(conn: Connection) -> datetime:
            cid = conn.execute(select(turns.c.conversation_id).where(turns.c.id == turn_id)).scalar()
            if cid is None:
                raise NotFoundError(f"no turn {turn_id!r} in the log store at {self.url}")
            now = self._now()
            conn.execute(
                insert(feedback).values(
                    id=item.id,
                    turn_id=turn_id,
                    conversation_id=cid,
                    thumbs=item.thumbs,
                    rating=item.rating,
                    comment=item.comment,
                    correction=item.correction,
                    labels=list(item.labels),
                    reviewer=item.reviewer,
                    mark_for_training=item.mark_for_training,
                    reviewed=reviewed,
                    created_at=now,
                )
            )
            return now

        created_at = self._run(work, write=True)
        return dataclasses.replace(item, created_at=created_at)

    def feedback_for_turn(self, turn_id: str) -> list[Feedback]:
        return self._feedback_where(feedback.c.turn_id == turn_id)

    def feedback_for_conversation(self, conversation_id: str) -> list[Feedback]:
        return self._feedback_where(feedback.c.conversation_id == conversation_id)

    # -- escalations ---------------------------------------------------------------------------

    def escalate(self, conversation_id: str, reason: str, *, turn_id: str | None = None) -> None:
        """Hand the conversation to a human: an escalation row, status "escalated"."""
        if not reason or not reason.strip():
            raise InputError("an escalation needs a reason (shown to the support team)")
        _check_text(reason, "reason")

        def work(conn: Connection) -> None:
            now = self._now()
            if turn_id is not None:
                owner_cid = conn.execute(
                    select(turns.c.conversation_id).where(turns.c.id == turn_id)
                ).scalar()
                if owner_cid != conversation_id:
                    raise NotFoundError(f"no turn {turn_id!r} in conversation {conversation_id!r}")
            self._update_conversation(
                conn,
                conversation_id,
                {"status": "escalated", "escalation_reason": reason, "updated_at": now, "resolved_at": None},
            )
            conn.execute(
                insert(escalations).values(
                    id=uuid.uuid4().hex,
                    conversation_id=conversation_id,
                    turn_id=turn_id,
                    reason=reason,
                    created_at=now,
                )
            )

        self._run(work, write=True)

    def resolve_escalation(
        self, conversation_id: str, *, resolved_by: str | None = None, note: str | None = None
    ) -> None:
        """Close the conversation's open escalations and mark it "resolved". StoreError if none
        is open (someone else may have resolved it)."""
        self._resolve(conversation_id, resolved_by=resolved_by, note=note, require_open=True)

    def escalations(self, *, open_only: bool = True) -> list[dict[str, Any]]:
        """Escalation rows, oldest first: id, conversation_id, turn_id, reason, created_at,
        resolved_at, resolved_by, note."""
        stmt = select(escalations).order_by(escalations.c.created_at, escalations.c.pk)
        if open_only:
            stmt = stmt.where(escalations.c.resolved_at.is_(None))
        return self._run(lambda conn: [_escalation(row._mapping) for row in conn.execute(stmt)])

    # -- review and search ---------------------------------------------------------------------

    def list_conversations(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_version: str | None = None,
        min_rating: int | None = None,
        max_rating: int | None = None,
        escalated: bool | None = None,
        unreviewed: bool | None = None,
        status: str | None = None,
        owner: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ConversationSummary]:
        """Conversations, most recently active first. ``since``/``until`` bound the creation time
        (inclusive/exclusive); ``model_version``: some agent turn used it; ``min_rating`` /
        ``max_rating`` bound the lowest rating of any turn (unrated conversations drop out);
        ``escalated``: ever escalated or never; ``unreviewed``: no reviewed feedback or some."""
        _check_page(limit, offset)
        if status is not None and status not in STATUSES:
            raise InputError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        for name, value in (("min_rating", min_rating), ("max_rating", max_rating)):
            if value is not None and not 1 <= value <= 5:
                raise InputError(f"{name} must be between 1 and 5, got {value}")
        c = conversations.c
        stmt = select(conversations)
        if since is not None:
            stmt = stmt.where(c.created_at >= since)
        if until is not None:
            stmt = stmt.where(c.created_at < until)
        if model_version is not None:
            stmt = stmt.where(
                exists().where(turns.c.conversation_id == c.id, turns.c.model_version == model_version)
            )
        lowest = select(func.min(feedback.c.rating)).where(feedback.c.conversation_id == c.id)
        if min_rating is not None:
            stmt = stmt.where(lowest.scalar_subquery() >= min_rating)
        if max_rating is not None:
            stmt = stmt.where(lowest.scalar_subquery() <= max_rating)
        was_escalated = exists().where(escalations.c.conversation_id == c.id)
        if escalated is not None:
            stmt = stmt.where(was_escalated if escalated else ~was_escalated)
        reviewed = exists().where(feedback.c.conversation_id == c.id, feedback.c.reviewed.is_(True))
        if unreviewed is not None:
            stmt = stmt.where(~reviewed if unreviewed else reviewed)
        if status is not None:
            stmt = stmt.where(c.status == status)
        if owner is not None:
            stmt = stmt.where(c.owner == owner)
        stmt = stmt.order_by(c.updated_at.desc(), c.id.desc()).limit(limit).offset(offset)
        return self._run(lambda conn: self._summaries(conn, list(conn.execute(stmt))))

    def search(self, query: str, *, limit: int = 20, owner: str | None = None) -> list[SearchResult]:
        """Turns matching ``query``, best first (see the module docstring for the syntax)."""
        _check_page(limit, 0)
        query = query.replace("\x00", " ")
        match = _fts5_query(query)
        if match is None:  # nothing but stop words or exclusions: no results on either backend
            return []
        owner_join = "JOIN conversations c ON c.id = t.conversation_id AND c.owner = :owner" if owner else ""
        params: dict[str, Any] = {"limit": limit, "owner": owner}
        if self.dialect == "sqlite":
            params["match"] = match
            sql = (
                "SELECT t.conversation_id, t.id AS turn_id, t.role, "
                f"snippet(turns_fts, 0, '{SNIPPET_MARK}', '{SNIPPET_MARK}', '…', 16) AS snippet, "
                "-bm25(turns_fts) AS rank "
                f"FROM turns_fts JOIN turns t ON t.pk = turns_fts.rowid {owner_join} "
                "WHERE turns_fts MATCH :match ORDER BY bm25(turns_fts), t.pk DESC LIMIT :limit"
            )
        else:
            params["q"] = query
            # Rank and limit first, then build headlines only for the rows returned.
            sql = (
                "SELECT m.conversation_id, m.turn_id, m.role, ts_headline('english', m.text, m.q, "
                f"'StartSel={SNIPPET_MARK}, StopSel={SNIPPET_MARK}, MaxWords=24, MinWords=8') AS snippet, "
                "m.rank FROM (SELECT t.conversation_id, t.id AS turn_id, t.role, t.text, t.pk, q.q, "
                "ts_rank(t.text_tsv, q.q, 1) AS rank "
                "FROM turns t CROSS JOIN websearch_to_tsquery('english', :q) AS q(q) "
                f"{owner_join} WHERE t.text_tsv @@ q.q ORDER BY rank DESC, t.pk DESC LIMIT :limit) m "
                "ORDER BY m.rank DESC, m.pk DESC"
            )

        def work(conn: Connection) -> list[SearchResult]:
            rows = conn.execute(text(sql), params)
            return [
                SearchResult(r.conversation_id, r.turn_id, r.role, r.snippet, float(r.rank)) for r in rows
            ]

        return self._run(work)

    def reviewed_conversations(
        self, *, since: datetime | None = None
    ) -> Iterator[tuple[Conversation, list[Feedback]]]:
        """Reviewed conversations (module docstring) with all their feedback, oldest first;
        ``since``: only those with a review at or after it. Streams in pages."""
        cond: list[ColumnElement[bool]] = [
            feedback.c.conversation_id == conversations.c.id,
            feedback.c.reviewed.is_(True),
        ]
        if since is not None:
            cond.append(feedback.c.created_at >= since)
        for record in self._iter_records([exists().where(*cond)]):
            yield record.conversation, record.feedback

    def export(
        self, *, conversation_ids: Iterable[str] | None = None, since: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """JSON-ready dicts, one per conversation, oldest first (within each slice of
        ``conversation_ids``): the conversation's columns, its turns (with seq, retrieved chunks,
        citations, metadata), feedback and escalations. ``since``: conversations active (updated)
        at or after it."""
        where: list[ColumnElement[bool]] = []
        if since is not None:
            where.append(conversations.c.updated_at >= since)
        batches = [where]
        if conversation_ids is not None:
            ids = list(dict.fromkeys(conversation_ids))
            # In slices, so a long list never exceeds a backend's bound-parameter limit.
            batches = [
                [conversations.c.id.in_(ids[i : i + _PAGE]), *where] for i in range(0, len(ids), _PAGE)
            ]
        for batch in batches:
            for record in self._iter_records(batch):
                yield record.to_dict()

    def kpis(
        self, *, since: datetime | None = None, until: datetime | None = None, by: str = "model_version"
    ) -> list[dict[str, Any]]:
        """Dashboard KPIs over conversations created in [since, until), one dict per group.

        ``by``: "model_version", "day" (UTC creation date) or both, comma-separated. A conversation
        belongs to the group of every model version that answered in it; turn-level numbers
        (agent_turns, thumbs, ratings) count only that version's turns.

        * thumbs_up_rate, mean_rating (CSAT): customer feedback (no reviewer) on agent turns
        * escalation_rate: conversations ever escalated / conversations
        * deflection_rate: conversations resolved and never escalated / conversations
        * mean_resolution_s: mean of resolved_at - created_at over resolved conversations
        Rates and means are None when nothing was measured.
        """
        dims = [d.strip() for d in by.split(",") if d.strip()]
        if not dims or any(d not in ("model_version", "day") for d in dims) or len(set(dims)) != len(dims):
            raise InputError(f"by must be 'model_version', 'day' or 'day,model_version', got {by!r}")
        window: list[ColumnElement[bool]] = []
        if since is not None:
            window.append(conversations.c.created_at >= since)
        if until is not None:
            window.append(conversations.c.created_at < until)
        return self._run(lambda conn: _kpis(conn, window, dims))

    def counts(self) -> dict[str, int]:
        def work(conn: Connection) -> dict[str, int]:
            return {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (conversations, turns, feedback, escalations)
            }

        return self._run(work)

    def ping(self) -> None:
        """Raise StoreError unless the database answers (readiness probes)."""
        self._run(lambda conn: conn.execute(select(1)).scalar_one())

    # -- users (support console) --------------------------------------------------------------

    def create_user(self, username: str, password: str, role: str = "reviewer") -> User:
        """A console user; StoreError if the name is taken. Passwords are stored scrypt-hashed."""
        username = username.strip()
        if not username or len(username) > 255:
            raise InputError("a username needs 1-255 characters")
        if role not in ROLES_USERS:
            raise InputError(f"role must be one of {', '.join(ROLES_USERS)}")
        if len(password) < 8:
            raise InputError("a password needs at least 8 characters")
        created = self._now()
        values = {
            "id": uuid.uuid4().hex,
            "username": username,
            "password_hash": hash_password(password),
            "role": role,
            "disabled": False,
            "created_at": created,
        }

        def work(conn: Connection) -> None:
            try:
                conn.execute(insert(users).values(values))
            except IntegrityError as exc:
                raise StoreError(f"user {username!r} already exists") from exc

        self._run(work, write=True)
        return User(str(values["id"]), username, role, False, created)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password matches and the account is enabled, else None."""
        row = self._run(
            lambda conn: conn.execute(select(users).where(users.c.username == username.strip())).first()
        )
        if row is None or row.disabled or not check_password(password, row.password_hash):
            return None
        return User(row.id, row.username, row.role, row.disabled, row.created_at)

    def list_users(self) -> list[User]:
        rows = self._run(lambda conn: conn.execute(select(users).order_by(users.c.username)).all())
        return [User(r.id, r.username, r.role, r.disabled, r.created_at) for r in rows]

    def set_user_disabled(self, username: str, disabled: bool = True) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(update(users).where(users.c.username == username).values(disabled=disabled))
            if result.rowcount == 0:
                raise NotFoundError(f"no user named {username!r}")

        self._run(work, write=True)

    # -- console sessions (sign-in that survives a page reload) ---------------------------------

    def start_console_session(self, user: User, ttl_s: float = CONSOLE_SESSION_TTL_S) -> str:
        """A new session token for ``user``, valid ``ttl_s`` seconds. Only its SHA-256 is stored."""
        import secrets

        token = secrets.token_urlsafe(32)
        now = self._now()
        values = {
            "token_hash": _key_hash(token),
            "user_id": user.id,
            "created_at": now,
            "expires_at": now + timedelta(seconds=ttl_s),
        }

        def work(conn: Connection) -> None:
            conn.execute(delete(console_sessions).where(console_sessions.c.expires_at <= now))
            conn.execute(insert(console_sessions).values(values))

        self._run(work, write=True)
        return token

    def user_for_session(self, token: str) -> User | None:
        """The user a session token belongs to; None if it is unknown, expired, ended, or the
        account has been disabled since."""
        if not token:
            return None
        row = self._run(
            lambda conn: conn.execute(
                select(users, console_sessions.c.expires_at)
                .join(console_sessions, console_sessions.c.user_id == users.c.id)
                .where(console_sessions.c.token_hash == _key_hash(token))
            ).first()
        )
        if row is None or row.disabled or row.expires_at <= self._now():
            return None
        return User(row.id, row.username, row.role, row.disabled, row.created_at)

    def end_console_session(self, token: str) -> None:
        """Sign-out: the token stops working at once (unknown tokens are ignored)."""
        self._run(
            lambda conn: conn.execute(
                delete(console_sessions).where(console_sessions.c.token_hash == _key_hash(token))
            ),
            write=True,
        )

    # -- API keys (HTTP API) -------------------------------------------------------------------

    def create_api_key(self, name: str, scope: str = "customer") -> tuple[ApiKey, str]:
        """A new key and its secret. Only the secret's SHA-256 is stored: show it once."""
        import secrets

        if scope not in KEY_SCOPES:
            raise InputError(f"scope must be one of {', '.join(KEY_SCOPES)}")
        if not name.strip():
            raise InputError("an API key needs a name")
        secret = f"sl-{scope[:4]}-{secrets.token_urlsafe(32)}"
        key = ApiKey(uuid.uuid4().hex, name.strip(), scope, secret[:12], False, self._now())
        values = {**dataclasses.asdict(key), "key_hash": _key_hash(secret)}
        self._run(lambda conn: conn.execute(insert(api_keys).values(values)), write=True)
        return key, secret

    def verify_api_key(self, secret: str) -> ApiKey | None:
        """The key a secret belongs to, if it exists and is not revoked. Records ``last_used_at``,
        at most once per ``KEY_USE_RESOLUTION_S`` per key so that busy keys do not turn every
        request into a write."""
        row = self._run(
            lambda conn: conn.execute(
                select(api_keys).where(api_keys.c.key_hash == _key_hash(secret))
            ).first()
        )
        if row is None or row.revoked:
            return None
        last_used = row.last_used_at
        now = datetime.now(UTC)
        if last_used is None or (now - last_used).total_seconds() >= KEY_USE_RESOLUTION_S:
            self._run(
                lambda conn: conn.execute(
                    update(api_keys).where(api_keys.c.id == row.id).values(last_used_at=now)
                ),
                write=True,
            )
            last_used = now
        return ApiKey(row.id, row.name, row.scope, row.prefix, row.revoked, row.created_at, last_used)

    def list_api_keys(self) -> list[ApiKey]:
        rows = self._run(lambda conn: conn.execute(select(api_keys).order_by(api_keys.c.created_at)).all())
        return [
            ApiKey(r.id, r.name, r.scope, r.prefix, r.revoked, r.created_at, r.last_used_at) for r in rows
        ]

    def revoke_api_key(self, key_id: str) -> None:
        def work(conn: Connection) -> None:
            result = conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked=True))
            if result.rowcount == 0:
                raise NotFoundError(f"no API key with id {key_id!r}")

        self._run(work, write=True)

    # -- internals: engine and transactions ----------------------------------------------------

    def _create_engine(self, url: URL, echo: bool) -> Engine:
        backend = url.get_backend_name()
        if backend == "sqlite":
            return self._create_sqlite_engine(url, echo)
        if backend != "postgresql":
            raise StoreError(
                f"unsupported log store URL {self.url}: use sqlite:///path/to/file.db or "
                "postgresql+psycopg://user:password@host/db"
            )
        try:
            return create_engine(
                url,
                echo=echo,
                pool_pre_ping=True,  # survive server restarts between requests
                connect_args={"connect_timeout": 10, "application_name": "supportloop"},
            )
        except (ModuleNotFoundError, NoSuchModuleError) as exc:
            raise StoreError(
                f"cannot use {self.url}: the PostgreSQL driver is missing; "
                "install it with pip install 'supportloop[postgres]'"
            ) from exc

    def _create_sqlite_engine(self, url: URL, echo: bool) -> Engine:
        database = url.database
        if not database or database == ":memory:" or database.startswith("file::memory:"):
            raise StoreError(
                "in-memory SQLite cannot be shared between connections; give the log store a file "
                "(sqlite:///path/to/supportloop.db)"
            )
        path = Path(database).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Conversations hold customer data: only this user may read the file (SQLite gives
            # the -wal and -shm files the same permissions).
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot create the log store at {path}: {exc}") from exc
        engine = create_engine(url.set(database=str(path)), echo=echo)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def _migrate(self) -> None:
        done = self._run(migrations.applied, opening=True)
        for fn in list(migrations.MIGRATIONS):
            if fn.__name__ not in done:
                self._run(functools.partial(migrations.apply, fn=fn), write=True, opening=True)

    def _run(self, work: Callable[[Connection], _T], *, write: bool = False, opening: bool = False) -> _T:
        """``work`` in one transaction, committed on return; retried whole on lock contention."""
        if self._closed:
            raise StoreError(f"the log store at {self.url} is closed")
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self._engine.connect() as conn:
                    if write:
                        conn.execution_options(**{_WRITE: True})
                    with conn.begin():
                        return work(conn)
            except DBAPIError as exc:
                if attempt < WRITE_ATTEMPTS and _transient(exc):
                    # Jittered exponential backoff, so competing processes do not retry in step.
                    time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))
                    continue
                raise self._error(exc, opening) from exc
        raise AssertionError("unreachable")

    def _error(self, exc: DBAPIError, opening: bool) -> StoreError:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if _transient(exc):
            return StoreError(
                f"the log store at {self.url} stayed locked by other writers ({detail}); "
                "retry, or check for a process holding a long transaction"
            )
        if opening:
            hint = (
                "check that the file is a supportloop database and its directory is writable"
                if self.dialect == "sqlite"
                else "check that the server is running and the URL, user and password are right"
            )
            return StoreError(f"cannot open the log store at {self.url}: {detail}; {hint}")
        return StoreError(f"log store error at {self.url}: {detail}")

    def _now(self) -> datetime:
        return _utc(self._clock())

    # -- internals: reads and writes -----------------------------------------------------------

    def _new_conversation_values(
        self, cid: str, owner: str | None, metadata: Mapping[str, Any] | None, channel: str
    ) -> dict[str, Any]:
        if owner is not None:
            _check_id(owner, "owner")
        _check_id(channel, "channel", max_len=64)
        now = self._now()
        return {
            "id": cid,
            "owner": owner,
            "channel": channel,
            "status": "open",
            "escalation_reason": None,
            "meta": _check_json(dict(metadata or {}), "metadata"),
            "turn_count": 0,
            "created_at": now,
            "updated_at": now,
            "resolved_at": None,
        }

    def _conversation_row(self, conn: Connection, conversation_id: str, owner: str | None) -> Any:
        row = conn.execute(select(conversations).where(conversations.c.id == conversation_id)).first()
        if row is None or (owner is not None and row.owner != owner):
            raise NotFoundError(_missing_conversation(conversation_id))
        return row

    def _update_conversation(self, conn: Connection, conversation_id: str, values: dict[str, Any]) -> None:
        result = conn.execute(
            update(conversations).where(conversations.c.id == conversation_id).values(values)
        )
        if result.rowcount == 0:
            raise NotFoundError(_missing_conversation(conversation_id))

    def _resolve(
        self, conversation_id: str, *, resolved_by: str | None, note: str | None, require_open: bool
    ) -> None:
        def work(conn: Connection) -> None:
            now = self._now()
            self._update_conversation(
                conn,
                conversation_id,
                # A conversation resolved twice keeps its first resolution time.
                {
                    "status": "resolved",
                    "resolved_at": func.coalesce(conversations.c.resolved_at, now),
                    "updated_at": now,
                },
            )
            closed = conn.execute(
                update(escalations)
                .where(escalations.c.conversation_id == conversation_id, escalations.c.resolved_at.is_(None))
                .values(resolved_at=now, resolved_by=resolved_by, note=note)
            )
            if require_open and closed.rowcount == 0:
                # Raising rolls back the status change too.
                raise StoreError(
                    f"conversation {conversation_id!r} has no open escalation (already resolved?); "
                    "use set_status(id, 'resolved') to resolve a conversation that was not escalated"
                )

        self._run(work, write=True)

    def _turns(self, conn: Connection, ids: Sequence[str]) -> dict[str, tuple[Turn, ...]]:
        grouped: dict[str, list[Turn]] = {cid: [] for cid in ids}
        if ids:
            stmt = select(turns).where(turns.c.conversation_id.in_(ids)).order_by(turns.c.seq)
            for row in conn.execute(stmt):
                grouped[row.conversation_id].append(_turn(row._mapping))
        return {cid: tuple(items) for cid, items in grouped.items()}

    def _feedback_where(self, condition: ColumnElement[bool]) -> list[Feedback]:
        stmt = select(feedback).where(condition).order_by(feedback.c.created_at, feedback.c.pk)
        return self._run(lambda conn: [_feedback(row._mapping) for row in conn.execute(stmt)])

    def _summaries(self, conn: Connection, rows: list[Any]) -> list[ConversationSummary]:
        ids = [row.id for row in rows]
        if not ids:
            return []
        earlier = turns.alias("earlier")
        first_seq = (
            select(func.min(earlier.c.seq))
            .where(earlier.c.conversation_id == turns.c.conversation_id, earlier.c.role == "customer")
            .scalar_subquery()
        )
        first = dict(
            conn.execute(
                select(turns.c.conversation_id, turns.c.text).where(
                    turns.c.conversation_id.in_(ids), turns.c.role == "customer", turns.c.seq == first_seq
                )
            )
            .tuples()
            .all()
        )
        versions: dict[str, set[str]] = defaultdict(set)
        for cid, version in conn.execute(
            select(turns.c.conversation_id, turns.c.model_version)
            .distinct()
            .where(turns.c.conversation_id.in_(ids), turns.c.model_version.is_not(None))
        ).tuples():
            versions[cid].add(version)
        lowest = dict(
            conn.execute(
                select(feedback.c.conversation_id, func.min(feedback.c.rating))
                .where(feedback.c.conversation_id.in_(ids))
                .group_by(feedback.c.conversation_id)
            )
            .tuples()
            .all()
        )
        reviewed = set(
            conn.execute(
                select(feedback.c.conversation_id)
                .distinct()
                .where(feedback.c.conversation_id.in_(ids), feedback.c.reviewed.is_(True))
            ).scalars()
        )
        return [
            ConversationSummary(
                id=row.id,
                created_at=row.created_at,
                updated_at=row.updated_at,
                status=row.status,
                escalation_reason=row.escalation_reason,
                turn_count=row.turn_count,
                first_message=_truncate(first.get(row.id)),
                model_versions=tuple(sorted(versions[row.id])),
                min_rating=lowest.get(row.id),
                reviewed=row.id in reviewed,
                owner=row.owner,
            )
            for row in rows
        ]

    def _iter_records(self, where: Sequence[ColumnElement[bool]]) -> Iterator[_Record]:
        """Conversations matching ``where`` with everything logged about them, oldest first.

        Keyset pagination, one short read transaction per page: a slow consumer never holds a
        snapshot open (which on SQLite would stop WAL checkpoints)."""
        c = conversations.c
        after: tuple[datetime, str] | None = None
        while True:
            stmt = select(conversations).where(*where)
            if after is not None:
                stmt = stmt.where(
                    or_(c.created_at > after[0], and_(c.created_at == after[0], c.id > after[1]))
                )
            stmt = stmt.order_by(c.created_at, c.id).limit(_PAGE)
            page = self._run(functools.partial(_load_records, stmt=stmt))
            yield from page
            if len(page) < _PAGE:
                return
            after = (page[-1].row.created_at, page[-1].row.id)


@dataclass(frozen=True)
class _Record:
    row: Any  # the conversations row
    conversation: Conversation
    feedback: list[Feedback]
    escalations: list[dict[str, Any]]
    turn_seq: dict[str, int]  # turn id -> seq (not on Turn)

    def to_dict(self) -> dict[str, Any]:
        conv = self.conversation
        return _plain(
            {
                "id": conv.id,
                "owner": self.row.owner,
                "channel": self.row.channel,
                "status": conv.status,
                "escalation_reason": conv.escalation_reason,
                "created_at": conv.created_at,
                "updated_at": conv.updated_at,
                "resolved_at": self.row.resolved_at,
                "metadata": conv.metadata,
                "turns": [{**_plain(t), "seq": self.turn_seq[t.id or ""]} for t in conv.turns],
                "feedback": self.feedback,
                "escalations": self.escalations,
            }
        )


def _load_records(conn: Connection, stmt: Select[Any]) -> list[_Record]:
    rows = list(conn.execute(stmt))
    ids = [row.id for row in rows]
    if not ids:
        return []
    turn_rows: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(select(turns).where(turns.c.conversation_id.in_(ids)).order_by(turns.c.seq)):
        turn_rows[row.conversation_id].append(row)
    feedback_rows: dict[str, list[Feedback]] = defaultdict(list)
    stmt = select(feedback).where(feedback.c.conversation_id.in_(ids))
    for row in conn.execute(stmt.order_by(feedback.c.created_at, feedback.c.pk)):
        feedback_rows[row.conversation_id].append(_feedback(row._mapping))
    escalation_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    stmt = select(escalations).where(escalations.c.conversation_id.in_(ids))
    for row in conn.execute(stmt.order_by(escalations.c.created_at, escalations.c.pk)):
        escalation_rows[row.conversation_id].append(_escalation(row._mapping))
    return [
        _Record(
            row=row,
            conversation=_conversation(row._mapping, tuple(_turn(t._mapping) for t in turn_rows[row.id])),
            feedback=feedback_rows[row.id],
            escalations=escalation_rows[row.id],
            turn_seq={t.id: t.seq for t in turn_rows[row.id]},
        )
        for row in rows
    ]


def _kpis(conn: Connection, window: list[ColumnElement[bool]], dims: list[str]) -> list[dict[str, Any]]:
    # Aggregated here rather than in SQL: date truncation and interval arithmetic differ per
    # dialect, and three narrow queries over the window stay cheap at dashboard scale.
    c = conversations.c
    was_escalated = exists().where(escalations.c.conversation_id == c.id)
    convs = {
        row.id: row
        for row in conn.execute(
            select(c.id, c.created_at, c.resolved_at, c.status, was_escalated.label("escalated")).where(
                *window
            )
        )
    }
    in_window = [turns.c.conversation_id == c.id, turns.c.role == "agent", *window]
    agent_turns = list(
        conn.execute(
            select(turns.c.id, turns.c.conversation_id, turns.c.model_version).join(
                conversations, and_(*in_window)
            )
        )
    )
    version_of = {t.id: t.model_version for t in agent_turns}
    customer_feedback = [
        f
        for f in conn.execute(
            select(feedback.c.turn_id, feedback.c.thumbs, feedback.c.rating)
            .join(conversations, feedback.c.conversation_id == c.id)
            .where(feedback.c.reviewer.is_(None), *window)
        )
        if f.turn_id in version_of
    ]

    def keys(cid: str, version: str | None) -> tuple[Any, ...]:
        day = convs[cid].created_at.date().isoformat()
        return tuple(day if d == "day" else version for d in dims)

    groups: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(
        lambda: {"conversations": set(), "agent_turns": 0, "thumbs": [], "ratings": []}
    )
    turn_conv = {t.id: t.conversation_id for t in agent_turns}
    for t in agent_turns:
        group = groups[keys(t.conversation_id, t.model_version)]
        group["conversations"].add(t.conversation_id)
        group["agent_turns"] += 1
    answered = {t.conversation_id for t in agent_turns}
    for cid in convs.keys() - answered:  # e.g. escalated before the agent replied
        groups[keys(cid, None)]["conversations"].add(cid)
    for f in customer_feedback:
        group = groups[keys(turn_conv[f.turn_id], version_of[f.turn_id])]
        if f.thumbs is not None:
            group["thumbs"].append(f.thumbs)
        if f.rating is not None:
            group["ratings"].append(f.rating)

    result = []
    for key, group in groups.items():
        members = [convs[cid] for cid in group["conversations"]]
        n = len(members)
        escalated = sum(1 for m in members if m.escalated)
        resolved = [m for m in members if m.status == "resolved" and m.resolved_at is not None]
        deflected = sum(1 for m in resolved if not m.escalated)
        durations = [(m.resolved_at - m.created_at).total_seconds() for m in resolved]
        result.append(
            {
                **dict(zip(dims, key, strict=True)),
                "conversations": n,
                "agent_turns": group["agent_turns"],
                "thumbs": len(group["thumbs"]),
                "thumbs_up_rate": _mean([1.0 if t > 0 else 0.0 for t in group["thumbs"]]),
                "ratings": len(group["ratings"]),
                "mean_rating": _mean(group["ratings"]),
                "escalated": escalated,
                "escalation_rate": escalated / n if n else None,
                "resolved": len(resolved),
                "deflection_rate": deflected / n if n else None,
                "mean_resolution_s": _mean(durations),
            }
        )
    # None (turns without a model version) sorts last.
    return sorted(result, key=lambda r: tuple((r[d] is None, r[d] or "") for d in dims))


# -- SQLite connection set-up -----------------------------------------------------------------


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    # Autocommit at the driver level: pysqlite's own implicit BEGIN is deferred and skips some
    # statements; _sqlite_on_begin emits BEGIN itself (SQLAlchemy's documented recipe).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")  # first: the others may wait on locks
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # Writers take the write lock up front. A deferred transaction that reads and then writes
    # fails with SQLITE_BUSY at once, without waiting busy_timeout, when another writer got there
    # first; IMMEDIATE waits for the lock instead.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def _transient(exc: DBAPIError) -> bool:
    """A lock or serialization conflict: the transaction was rolled back and may be retried."""
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return "locked" in message or "busy" in message
    return getattr(orig, "sqlstate", None) in ("40001", "40P01")  # serialization failure, deadlock


def _normalize_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"invalid log store URL {url!r}: use sqlite:///path/to/file.db or "
            "postgresql+psycopg://user:password@host/db"
        ) from exc
    # Bare postgresql:// would pick psycopg2, which supportloop does not install.
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


# -- full-text query translation (SQLite) -----------------------------------------------------

_WORD = re.compile(r"\w+")
_QUERY_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
# PostgreSQL's English stop words (Snowball): dropped from SQLite queries so both backends match
# the same documents for "how do I reset the filter".
_STOPWORDS_TEXT = """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
    her hers herself it its itself they them their theirs themselves what which who whom this that
    these those am is are was were be been being have has had having do does did doing a an the and
    but if or because as until while of at by for with about against between into through during
    before after above below to from up down in out on off over under again further then once here
    there when where why how all any both each few more most other some such no nor not only own
    same so than too very s t can will just don should now"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def _fts5_query(query: str) -> str | None:
    """Web-search syntax -> an FTS5 MATCH expression, or None when nothing is searchable.

    Every term or phrase becomes a double-quoted FTS5 string of word characters only, so no
    input can inject FTS5 syntax or make MATCH raise."""
    groups: list[list[str]] = []  # ANDed groups of ORed alternatives
    negated: list[str] = []
    pending_or = False
    for match in _QUERY_TOKEN.finditer(query):
        sign, phrase, bare = match.groups()
        if bare is not None and bare.lower() == "or":
            pending_or = bool(groups)
            continue
        negative = bool(sign) if bare is None else bare.startswith("-")
        words = [w.lower() for w in _WORD.findall(phrase if bare is None else bare)]
        if bare is not None and len(words) == 1 and words[0] in _STOPWORDS:
            words = []
        if not words:
            continue
        term = '"' + " ".join(words) + '"'
        if negative:
            negated.append(term)
        elif pending_or:
            groups[-1].append(term)
        else:
            groups.append([term])
        pending_or = False
    if not groups:  # FTS5 has no "everything except"
        return None
    expr = " AND ".join("(" + " OR ".join(alts) + ")" for alts in groups)
    return expr + "".join(f" NOT {term}" for term in negated)


# -- rows -> types ----------------------------------------------------------------------------


def _conversation(row: Mapping[Any, Any], turn_list: tuple[Turn, ...]) -> Conversation:
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


def _turn(row: Mapping[Any, Any]) -> Turn:
    return Turn(
        role=row["role"],
        text=row["text"],
        id=row["id"],
        conversation_id=row["conversation_id"],
        created_at=row["created_at"],
        model_version=row["model_version"],
        adapter=row["adapter"],
        retrieved=tuple(_build(RetrievedChunk, item) for item in row["retrieved"] or ()),
        citations=tuple(_build(Citation, item) for item in row["citations"] or ()),
        latency_ms=row["latency_ms"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        author=row["author"],
        metadata=dict(row["meta"] or {}),
    )


def _feedback(row: Mapping[Any, Any]) -> Feedback:
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


def _escalation(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != "pk"}


def _build(cls: type[_T], data: Mapping[str, Any]) -> _T:
    # Ignore keys this version does not know: rows written by a newer supportloop stay readable.
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in known})


# -- small helpers ----------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO 8601, dataclasses as dicts (nested ones too), tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _truncate(value: str | None) -> str | None:
    if value is None or len(value) <= FIRST_MESSAGE_CHARS:
        return value
    return value[: FIRST_MESSAGE_CHARS - 1].rstrip() + "…"


def _missing_conversation(conversation_id: str) -> str:
    return f"no conversation {conversation_id!r}; create it first (create_conversation / ensure_conversation)"


def _check_id(value: str | None, name: str, *, max_len: int = 255) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} must be a non-empty string")
    if len(value) > max_len:
        raise InputError(f"{name} is {len(value)} characters long; the limit is {max_len}")
    if "\x00" in value:
        raise InputError(f"{name} must not contain NUL characters")
    return value


def _check_text(value: str, name: str) -> None:
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, got {type(value).__name__}")
    # PostgreSQL text cannot hold NUL; refusing it on every backend keeps them interchangeable.
    if "\x00" in value:
        raise InputError(f"{name} must not contain NUL characters")


def _check_json(value: _T, name: str) -> _T:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:  # e.g. a numpy float among retrieval scores
        raise InputError(f"{name} must be JSON-serializable: {exc}") from exc
    return value


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if offset < 0:
        raise InputError(f"offset must be >= 0, got {offset}")
