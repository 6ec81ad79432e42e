"""``LogStore``: one object over one database. The conversation log (``log.py``), full-text
search (``search.py``) and reports (``reports.py``) are its methods; accounts are
``store.accounts`` (``accounts.py``), idempotent HTTP requests ``store.requests``
(``requests.py``). Opening it migrates the database (``engine.py``)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, insert, select

from agent.store.accounts import CONSOLE_SESSION_TTL_S, Accounts, ApiKey, User
from agent.store.engine import Database
from agent.store.erasure import ErasureLog
from agent.store.log import ConversationLog
from agent.store.provenance import ProvenanceLog
from agent.store.reasons import ReasonLog
from agent.store.reports import Reports
from agent.store.requests import IdempotentRequests
from agent.store.schema import conversations
from agent.store.search import FullTextSearch
from agent.store.shadow import ShadowLog
from agent.store.tasks import TaskLog
from agent.store.verified import VerifiedLog

if TYPE_CHECKING:
    from agent.config import AgentConfig

MIN_FREE_BYTES = 8 << 20  # a SQLite store with less free disk is not ready (check_writable)


class _RolledBack(Exception):
    """Raised inside the write probe's transaction so that it rolls back."""


class LogStore(
    ConversationLog,
    FullTextSearch,
    Reports,
    VerifiedLog,
    ReasonLog,
    TaskLog,
    ErasureLog,
    ProvenanceLog,
    ShadowLog,
):
    """Conversations, turns, feedback, escalations, verified answers, knowledge tasks, erasures,
    provenance flags and shadow answers in one SQL database."""

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
        self._db = Database(url, echo=echo, clock=clock)
        self.url: str = self._db.url
        self.dialect: str = self._db.dialect
        self.accounts = Accounts(self._db)
        self.requests = IdempotentRequests(self._db)

    @classmethod
    def from_config(cls, config: AgentConfig) -> LogStore:
        return cls(config.database_url, home=config.home)

    def __repr__(self) -> str:
        return f"LogStore({self.url!r})"

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> None:
        """Raise StoreError unless the database answers (readiness probes)."""
        self._db.run(lambda conn: conn.execute(select(1)).scalar_one())

    def check_writable(self) -> None:
        """Raise StoreError unless the database takes a write now (readiness probes): a
        conversation row is inserted and rolled back, so nothing is left behind. Its id has a
        space, which ``agent.validation`` refuses, so no client-named conversation collides. A
        rolled-back write never reaches the disk, so a SQLite store also needs
        ``MIN_FREE_BYTES`` free beside its file."""
        self._db.check_free_space(MIN_FREE_BYTES)
        probe = self._new_conversation_values(f"readyz probe {uuid.uuid4().hex}", None, None, "probe")

        def work(conn: Connection) -> None:
            conn.execute(insert(conversations).values(probe))
            raise _RolledBack

        with contextlib.suppress(_RolledBack):
            self._db.run(work, write=True)

    # -- accounts: the same methods as ``self.accounts``, for callers written before it ----------

    def create_user(self, username: str, password: str, role: str = "reviewer") -> User:
        return self.accounts.create_user(username, password, role)

    def authenticate(self, username: str, password: str) -> User | None:
        return self.accounts.authenticate(username, password)

    def list_users(self) -> list[User]:
        return self.accounts.list_users()

    def set_user_disabled(self, username: str, disabled: bool = True) -> None:
        self.accounts.set_user_disabled(username, disabled)

    def start_console_session(self, user: User, ttl_s: float = CONSOLE_SESSION_TTL_S) -> str:
        return self.accounts.start_console_session(user, ttl_s)

    def user_for_session(self, token: str) -> User | None:
        return self.accounts.user_for_session(token)

    def console_users_online(self) -> int:
        return self.accounts.console_users_online()

    def end_console_session(self, token: str) -> None:
        self.accounts.end_console_session(token)

    def create_api_key(self, name: str, scope: str = "customer") -> tuple[ApiKey, str]:
        return self.accounts.create_api_key(name, scope)

    def verify_api_key(self, secret: str) -> ApiKey | None:
        return self.accounts.verify_api_key(secret)

    def list_api_keys(self) -> list[ApiKey]:
        return self.accounts.list_api_keys()

    def revoke_api_key(self, key_id: str) -> None:
        self.accounts.revoke_api_key(key_id)
