"""The log store: every conversation, turn, piece of feedback and escalation, over SQLAlchemy Core.

SQLite in the data home by default (``<home>/supportloop.db``), PostgreSQL by URL
(``postgresql+psycopg://user:password@host/db``). This package is the only place that speaks SQL.
Each invariant is stated where the code that keeps it lives:

* ``engine.py``: opening and migrating; one transaction per call, committed before return;
  durability (SQLite WAL, ``synchronous=FULL``); concurrency and retries.
* ``log.py``: conversations, turns, feedback, escalations; exact turn order; ids; ownership;
  what "reviewed" and "escalated" mean.
* ``search.py``: ranked full-text search and its query syntax.
* ``reports.py``: the console's list, KPIs, the export (paged, short transactions).
* ``reasons.py``: thumbs-down reasons (counts, the turns given one) and redaction of a turn.
* ``tasks.py``: knowledge tasks (a ``docs_gap`` thumbs-down, open until a document or a
  reviewer closes it).
* ``erasure.py``: a conversation erased at a customer's request, and the record that keeps it
  out of training data.
* ``provenance.py``: logged answers quoting a document that changed or vanished from the index.
* ``verified.py``: reviewers' verified answers (one live answer per question; hits).
* ``shadow.py``: a shadow version's silent answers and both arms' scores (``agent.shadow``).
* ``accounts.py``: console users, sessions and API keys (``store.accounts``); no secret stored.
* ``requests.py``: HTTP requests sent with an idempotency key (``store.requests``), answered once.
* ``schema.py``: the mirrors statements are built from; time is aware UTC everywhere.
* ``migrations.py``: the schema itself, append-only, applied on open.
* ``rows.py``, ``checks.py``: rows -> the agent's types; checks on values going in.
* ``logstore.py``: ``LogStore``, the one object callers open.
"""

from __future__ import annotations

from agent.store.accounts import (
    CONSOLE_SESSION_TTL_S,
    Accounts,
    ApiKey,
    User,
    check_password,
    hash_password,
)
from agent.store.erasure import Erasure, erasure_key
from agent.store.logstore import LogStore
from agent.store.provenance import ProvenanceFlag
from agent.store.reports import FIRST_MESSAGE_CHARS, ConversationSummary
from agent.store.schema import STATUSES, console_sessions
from agent.store.search import SearchResult

__all__ = [
    "CONSOLE_SESSION_TTL_S",
    "FIRST_MESSAGE_CHARS",
    "STATUSES",
    "Accounts",
    "ApiKey",
    "ConversationSummary",
    "Erasure",
    "LogStore",
    "ProvenanceFlag",
    "SearchResult",
    "User",
    "check_password",
    "console_sessions",
    "erasure_key",
    "hash_password",
]
