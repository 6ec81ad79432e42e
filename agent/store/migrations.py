"""Schema migrations of the log store: an ordered, append-only list applied when a store opens.

Invariants:

* ``MIGRATIONS`` only grows. A migration that has shipped is never edited, renamed, reordered or
  removed: databases in the field have recorded its name in ``_migrations`` and will not run it
  again. Fix a mistake with a new migration appended at the end. Names this code does not know
  (written by a newer supportloop) are ignored: migrations only add, so older code still works.
* A migration runs in one transaction together with the ``_migrations`` row that records it,
  under a database-wide lock (the caller's ``BEGIN IMMEDIATE`` on SQLite, an advisory lock here on
  PostgreSQL), and re-checks that row under the lock. So processes opening the same database at
  once apply each migration exactly once, and a crash mid-migration leaves nothing half-applied.
* Migrations declare their own ``Table`` objects rather than importing the mirrors in ``schema.py``,
  so later changes to the store cannot change what an old migration creates.
* Both dialects get the same tables and columns; only the full-text index differs: an FTS5 table
  kept in step by triggers on SQLite, a generated ``tsvector`` column with a GIN index on
  PostgreSQL.
* No CHECK constraints on open-ended vocabularies (roles, statuses, channels): SQLite cannot alter a
  constraint without rebuilding the table, and adding a role must stay an append-only change. The
  store validates those; the database checks only ranges that cannot change (thumbs, rating).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

Migration = Callable[[Connection], None]

MIGRATIONS_TABLE = "_migrations"
MIGRATIONS: list[Migration] = []

# Any constant works; it only has to be the same in every process that migrates this database.
_PG_MIGRATION_LOCK = 0x5355_5050_4F52_54  # "SUPPORT"


def migration(fn: Migration) -> Migration:
    """Append ``fn`` to ``MIGRATIONS``; its ``__name__`` is what ``_migrations`` records."""
    if any(m.__name__ == fn.__name__ for m in MIGRATIONS):
        raise ValueError(f"duplicate migration name {fn.__name__!r}")
    MIGRATIONS.append(fn)
    return fn


def applied(conn: Connection) -> set[str]:
    """Names of the migrations this database has recorded (empty for a new database)."""
    if not inspect(conn).has_table(MIGRATIONS_TABLE):
        return set()
    return {row[0] for row in conn.execute(text(f"SELECT name FROM {MIGRATIONS_TABLE}"))}


def apply(conn: Connection, fn: Migration) -> bool:
    """Run ``fn`` and record it, unless already recorded. ``conn`` must be in a write transaction
    (``BEGIN IMMEDIATE`` on SQLite). Returns whether it ran."""
    if conn.dialect.name == "postgresql":
        # Held until commit: serializes migrating processes, including the CREATE TABLE below,
        # which PostgreSQL does not make safe against concurrent IF NOT EXISTS.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    _migrations_table().create(conn, checkfirst=True)
    if fn.__name__ in applied(conn):
        return False
    fn(conn)
    conn.execute(
        text(f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (:name, :at)"),
        {"name": fn.__name__, "at": datetime.now(UTC).isoformat()},
    )
    return True


def _migrations_table() -> Table:
    return Table(
        MIGRATIONS_TABLE,
        MetaData(),
        Column("name", String(200), primary_key=True),
        Column("applied_at", String(40), nullable=False),  # ISO 8601, UTC
    )


# --------------------------------------------------------------------------------------------
# The migrations. Append only.
# --------------------------------------------------------------------------------------------


@migration
def m001_initial(conn: Connection) -> None:
    """Conversations, turns (+ full-text index), feedback, escalations."""
    json = JSON().with_variant(JSONB(), "postgresql")
    # Every table but conversations has an integer `pk` (insertion order, a tie-break for equal
    # timestamps) beside its string `id` (identity across databases). INTEGER, not BIGINT, on SQLite
    # so that `pk` aliases the rowid, which FTS5's external content table points at; an alias,
    # unlike a bare rowid, survives VACUUM.
    rowid = BigInteger().with_variant(Integer(), "sqlite")
    ts = DateTime(timezone=True)
    meta = MetaData()
    Table(
        "conversations",
        meta,
        Column("id", String(255), primary_key=True),
        Column("owner", String(255)),  # who created it (an API key id); NULL for local use
        Column("channel", String(64), nullable=False),
        Column("status", String(32), nullable=False),
        Column("escalation_reason", Text),
        Column("metadata", json, nullable=False),
        Column("turn_count", Integer, nullable=False),  # also the last allocated turn seq
        Column("created_at", ts, nullable=False),
        Column("updated_at", ts, nullable=False),
        Column("resolved_at", ts),
        Index("ix_conversations_created_at", "created_at"),
        Index("ix_conversations_updated_at", "updated_at"),
        Index("ix_conversations_owner", "owner"),
        Index("ix_conversations_status", "status"),
    )
    Table(
        "turns",
        meta,
        Column("pk", rowid, primary_key=True, autoincrement=True),
        Column("id", String(64), nullable=False, unique=True),
        Column(
            "conversation_id",
            String(255),
            ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("seq", Integer, nullable=False),
        Column("role", String(32), nullable=False),
        Column("text", Text, nullable=False),
        Column("model_version", String(255)),
        Column("adapter", String(255)),
        Column("retrieved", json, nullable=False),
        Column("citations", json, nullable=False),
        Column("latency_ms", Float),
        Column("prompt_tokens", Integer),
        Column("completion_tokens", Integer),
        Column("author", String(255)),
        Column("metadata", json, nullable=False),
        Column("created_at", ts, nullable=False),
        UniqueConstraint("conversation_id", "seq", name="uq_turns_conversation_seq"),
        Index("ix_turns_model_version", "model_version"),
        Index("ix_turns_created_at", "created_at"),
    )
    Table(
        "feedback",
        meta,
        Column("pk", rowid, primary_key=True, autoincrement=True),  # insertion order
        Column("id", String(64), nullable=False, unique=True),
        Column("turn_id", String(64), ForeignKey("turns.id", ondelete="CASCADE"), nullable=False),
        Column(
            "conversation_id",
            String(255),
            ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("thumbs", SmallInteger),
        Column("rating", SmallInteger),
        Column("comment", Text),
        Column("correction", Text),
        Column("labels", json, nullable=False),
        Column("reviewer", String(255)),
        Column("mark_for_training", Boolean, nullable=False),
        # Derived at insert (reviewer, correction, labels or mark_for_training), so "unreviewed"
        # filters and training exports need no JSON inspection of `labels`.
        Column("reviewed", Boolean, nullable=False),
        Column("created_at", ts, nullable=False),
        CheckConstraint("thumbs IS NULL OR thumbs IN (-1, 1)", name="ck_feedback_thumbs"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="ck_feedback_rating"),
        Index("ix_feedback_turn_id", "turn_id"),
        Index("ix_feedback_conversation_id", "conversation_id"),
    )
    Table(
        "escalations",
        meta,
        Column("pk", rowid, primary_key=True, autoincrement=True),  # insertion order
        Column("id", String(64), nullable=False, unique=True),
        Column(
            "conversation_id",
            String(255),
            ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("turn_id", String(64), ForeignKey("turns.id", ondelete="SET NULL")),
        Column("reason", Text, nullable=False),
        Column("created_at", ts, nullable=False),
        Column("resolved_at", ts),
        Column("resolved_by", String(255)),
        Column("note", Text),
        Index("ix_escalations_conversation_id", "conversation_id"),
        Index("ix_escalations_resolved_at", "resolved_at"),
    )
    meta.create_all(conn)

    if conn.dialect.name == "sqlite":
        # External content: the text lives once, in `turns`; the triggers keep the index in step
        # inside the writing transaction, so a committed turn is always searchable.
        conn.execute(
            text(
                "CREATE VIRTUAL TABLE turns_fts USING fts5("
                "text, content='turns', content_rowid='pk', tokenize='porter unicode61')"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER turns_fts_insert AFTER INSERT ON turns BEGIN "
                "INSERT INTO turns_fts (rowid, text) VALUES (new.pk, new.text); END"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER turns_fts_delete AFTER DELETE ON turns BEGIN "
                "INSERT INTO turns_fts (turns_fts, rowid, text) VALUES ('delete', old.pk, old.text); END"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER turns_fts_update AFTER UPDATE OF text ON turns BEGIN "
                "INSERT INTO turns_fts (turns_fts, rowid, text) VALUES ('delete', old.pk, old.text); "
                "INSERT INTO turns_fts (rowid, text) VALUES (new.pk, new.text); END"
            )
        )
    elif conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "ALTER TABLE turns ADD COLUMN text_tsv tsvector "
                "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
            )
        )
        conn.execute(text("CREATE INDEX ix_turns_text_tsv ON turns USING GIN (text_tsv)"))
    else:  # the store refuses other dialects before migrating; this guards direct callers
        raise NotImplementedError(f"no full-text index for dialect {conn.dialect.name!r}")


@migration
def m002_users_and_api_keys(conn: Connection) -> None:
    """Support-console users (hashed passwords, roles) and HTTP API keys (hashed, scoped)."""
    ts = DateTime(timezone=True)
    meta = MetaData()
    Table(
        "users",
        meta,
        Column("id", String(64), primary_key=True),
        Column("username", String(255), nullable=False, unique=True),
        Column("password_hash", Text, nullable=False),  # scrypt$n$r$p$salt$hash
        Column("role", String(32), nullable=False),
        Column("disabled", Boolean, nullable=False),
        Column("created_at", ts, nullable=False),
    )
    Table(
        "api_keys",
        meta,
        Column("id", String(64), primary_key=True),
        Column("name", String(255), nullable=False),
        Column("scope", String(32), nullable=False),
        Column("key_hash", String(128), nullable=False, unique=True),  # sha256 of the secret
        Column("prefix", String(32), nullable=False),  # shown in listings to recognise a key
        Column("revoked", Boolean, nullable=False),
        Column("created_at", ts, nullable=False),
        Column("last_used_at", ts),
    )
    meta.create_all(conn)


@migration
def m003_console_sessions(conn: Connection) -> None:
    """Support-console sign-in sessions, so a page reload keeps the reviewer signed in: only the
    SHA-256 of each session token is stored, with its expiry."""
    ts = DateTime(timezone=True)
    meta = MetaData()
    Table(
        "console_sessions",
        meta,
        Column("token_hash", String(128), primary_key=True),
        Column("user_id", String(64), nullable=False, index=True),
        Column("created_at", ts, nullable=False),
        Column("expires_at", ts, nullable=False),
    )
    meta.create_all(conn)


@migration
def m004_verified_answers(conn: Connection) -> None:
    """Verified answers: a reviewer's corrected answer, served for the same and closely similar
    questions until it retires (``agent.verified``). Embeddings are not stored: the serving
    process computes them with its own embedding model, so vectors of two models never mix."""
    ts = DateTime(timezone=True)
    rowid = BigInteger().with_variant(Integer(), "sqlite")
    meta = MetaData()
    Table(
        "verified_answers",
        meta,
        Column("pk", rowid, primary_key=True, autoincrement=True),  # insertion order
        Column("id", String(64), nullable=False, unique=True),
        Column("question", Text, nullable=False),
        Column("answer", Text, nullable=False),
        # The corrected agent turn and the feedback row holding the correction: no foreign keys, so
        # an answer outlives the conversation it came from (the reviewer wrote it).
        Column("turn_id", String(64)),
        Column("feedback_id", String(64)),
        Column("reviewer", String(255)),
        Column("hits", Integer, nullable=False),
        Column("last_hit_at", ts),
        Column("created_at", ts, nullable=False),
        Column("retired_at", ts),
        Column("retired_reason", Text),
        Index("ix_verified_answers_retired_at", "retired_at"),
    )
    meta.create_all(conn)


@migration
def m005_idempotent_requests(conn: Connection) -> None:
    """HTTP requests sent with an ``Idempotency-Key``: one row per (API key, idempotency key)
    holding the request's fingerprint and, once it ends, its answer, so a retry is answered
    from here instead of logging its turn again."""
    ts = DateTime(timezone=True)
    meta = MetaData()
    Table(
        "idempotent_requests",
        meta,
        Column("owner", String(64), primary_key=True),
        Column("key", String(128), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        Column("state", String(16), nullable=False),
        Column("status_code", Integer),
        Column("response", JSON().with_variant(JSONB(), "postgresql")),
        Column("conversation_id", String(128)),
        Column("created_at", ts, nullable=False),
        Column("finished_at", ts),
    )
    meta.create_all(conn)


@migration
def m006_erasures(conn: Connection) -> None:
    """Erased conversations: one row per conversation removed at a customer's request. Only the
    SHA-256 of its id is kept (``agent.store.erasure``), so the record names no one, yet
    ``data compile`` can leave the conversation out of every later dataset, even one read from
    an exported file; the counts say what was removed."""
    ts = DateTime(timezone=True)
    rowid = BigInteger().with_variant(Integer(), "sqlite")
    meta = MetaData()
    Table(
        "erasures",
        meta,
        Column("pk", rowid, primary_key=True, autoincrement=True),  # insertion order
        Column("id", String(64), nullable=False, unique=True),
        Column("conversation_key", String(64), nullable=False, unique=True),
        Column("turns", Integer, nullable=False),
        Column("feedback", Integer, nullable=False),
        Column("escalations", Integer, nullable=False),
        Column("verified_answers", Integer, nullable=False),
        Column("requests", Integer, nullable=False),
        Column("erased_by", String(255)),
        Column("erased_at", ts, nullable=False),
        Index("ix_erasures_erased_at", "erased_at"),
    )
    meta.create_all(conn)


@migration
def m007_provenance_flags(conn: Connection) -> None:
    """Logged answers whose passages quote a document version the knowledge index no longer
    holds (changed or removed): one row per (agent turn, document source), with when that was
    first found (``data compile`` or the console's Provenance page). Such an answer is left out of
    training data until a reviewer reviews the turn at or after that time
    (``training.data.provenance``). No foreign key: an erasure deletes the rows with the turn."""
    ts = DateTime(timezone=True)
    meta = MetaData()
    Table(
        "provenance_flags",
        meta,
        Column("turn_id", String(64), primary_key=True),
        Column("source", Text, primary_key=True),
        Column("conversation_id", String(255), nullable=False),
        Column("doc_id", Text, nullable=False),
        Column("title", Text),
        Column("reason", String(16), nullable=False),  # "changed" or "removed"
        Column("detected_at", ts, nullable=False),
        Index("ix_provenance_flags_conversation_id", "conversation_id"),
    )
    meta.create_all(conn)


@migration
def m008_shadow_answers(conn: Connection) -> None:
    """Shadow answers: what a candidate version would have answered on a turn production
    answered (``agent.shadow``), never shown, with both answers' scores side by side. One row
    per shadowed turn, also when it was dropped (queue full) or failed, so the figures say what
    was not measured. No foreign key to the turn: a row is written from a background thread
    after the turn, only while the turn exists, and erased with its conversation."""
    ts = DateTime(timezone=True)
    rowid = BigInteger().with_variant(Integer(), "sqlite")
    meta = MetaData()
    arms = [
        column
        for arm in ("production", "shadow")
        for column in (
            Column(f"{arm}_passed", Boolean),
            Column(f"{arm}_action", String(16)),
            Column(f"{arm}_groundedness", Float),
            Column(f"{arm}_chars", Integer),
            Column(f"{arm}_reward", Float),
        )
    ]
    Table(
        "shadow_answers",
        meta,
        Column("pk", rowid, primary_key=True, autoincrement=True),  # insertion order
        Column("id", String(64), nullable=False, unique=True),
        Column("turn_id", String(64), nullable=False),
        Column("conversation_id", String(255), nullable=False),
        Column("shadow_version", String(255), nullable=False),
        Column("production_version", String(255), nullable=False),
        Column("outcome", String(16), nullable=False),  # scored | failed | dropped
        Column("answer", Text),
        Column("error", Text),
        # Production's prompt (passages, conversation, question): the reward model reads it.
        Column("prompt", JSON().with_variant(JSONB(), "postgresql")),
        Column("latency_ms", Float),
        Column("completion_tokens", Integer),
        Column("reward_model", String(255)),
        *arms,
        Column("created_at", ts, nullable=False),
        Index("ix_shadow_answers_version_created_at", "shadow_version", "created_at"),
        Index("ix_shadow_answers_conversation_id", "conversation_id"),
    )
    meta.create_all(conn)


@migration
def m009_knowledge_task_closures(conn: Connection) -> None:
    """Knowledge tasks that closed: one row per ``docs_gap`` thumbs-down (its feedback id) that a
    document ingested later covers (``agent.knowledge_tasks``), or that a reviewer closed by hand
    with a note. A task is open while its feedback has no row here. No foreign key, as for
    verified answers: the row is the team's record of what closed the task."""
    ts = DateTime(timezone=True)
    meta = MetaData()
    Table(
        "knowledge_task_closures",
        meta,
        Column("feedback_id", String(64), primary_key=True),
        Column("closed_at", ts, nullable=False),
        Column("doc_id", String(255)),  # the covering document (closed by an ingest)
        Column("source", Text),
        Column("relevance", Float),
        Column("closed_by", String(255)),  # the reviewer (closed by hand)
        Column("note", Text),
    )
    meta.create_all(conn)
