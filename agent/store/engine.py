"""Opening a log store database and running work on it: one transaction per call, retried whole.

SQLite in the data home by default (``<home>/supportloop.db``), PostgreSQL by URL
(``postgresql+psycopg://user:password@host/db``). Opening applies the migrations not yet recorded
(``migrations.py``); a database this code cannot migrate is not opened.

Invariants:

* **Committed before return.** Every write method runs one transaction (``Database.run``) and
  commits it before it returns, so a customer message logged with ``add_turn`` is on disk before
  generation starts and is visible at once to every other store on the same database.
* **Durability (SQLite).** WAL journal with ``synchronous=FULL``: the WAL is fsynced at every
  commit, so a committed turn survives SIGKILL of the process *and* power loss / OS crash. (WAL +
  ``NORMAL`` would survive a process crash but could lose the last commits on power loss; the log
  is training data and audit trail, and one fsync per turn is noise next to generation.)
* **Concurrency.** One ``LogStore`` may be shared by threads (pooled engine, a connection per call);
  any number of processes may open the same database. SQLite waits up to 10 s for a lock
  (``busy_timeout``); writes that still meet "database is locked" (or a PostgreSQL serialization
  failure / deadlock) are retried with backoff, the whole transaction each time. Writers take
  SQLite's write lock when they begin (``BEGIN IMMEDIATE``).
* **Customer data is private.** A new SQLite file is created readable by its owner only.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from agent.errors import StoreError
from agent.store import migrations
from agent.store.schema import utc

BUSY_TIMEOUT_MS = 10_000
WRITE_ATTEMPTS = 6
_WRITE = "supportloop_write"  # execution option: this transaction writes (BEGIN IMMEDIATE)
_URL_FORMS = "use sqlite:///path/to/file.db or postgresql+psycopg://user:password@host/db"
_T = TypeVar("_T")


class Database:
    """One migrated database: its engine, the clock, and ``run`` for every transaction."""

    def __init__(self, url: str, *, echo: bool = False, clock: Callable[[], datetime] | None = None):
        """Open (creating and migrating if needed) the database at ``url``."""
        parsed = normalize_url(url)
        self.url: str = parsed.render_as_string(hide_password=True)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.engine = _create_engine(parsed, echo, self.url)
        self.dialect: str = self.engine.dialect.name
        self.closed = False
        try:
            self._migrate()
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.closed = True
        self.engine.dispose()

    def now(self) -> datetime:
        return utc(self.clock())

    def run(self, work: Callable[[Connection], _T], *, write: bool = False, opening: bool = False) -> _T:
        """``work`` in one transaction, committed on return; retried whole on lock contention."""
        if self.closed:
            raise StoreError(f"the log store at {self.url} is closed")
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.engine.connect() as conn:
                    if write:
                        conn.execution_options(**{_WRITE: True})
                    with conn.begin():
                        return work(conn)
            except DBAPIError as exc:
                if attempt < WRITE_ATTEMPTS and transient(exc):
                    # Jittered exponential backoff, so competing processes do not retry in step.
                    time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))
                    continue
                raise self._error(exc, opening) from exc
        raise AssertionError("unreachable")

    def check_free_space(self, min_bytes: int) -> None:
        """StoreError if a SQLite store's disk has less than ``min_bytes`` free (a server's disk
        is the server's to watch)."""
        if self.dialect != "sqlite" or not self.engine.url.database:
            return
        folder = Path(self.engine.url.database).parent
        try:
            free = shutil.disk_usage(folder).free
        except OSError as exc:
            raise StoreError(f"cannot check the disk of the log store at {self.url}: {exc}") from exc
        if free < min_bytes:
            raise StoreError(f"the disk of the log store at {self.url} is full ({free:,} bytes free)")

    def _migrate(self) -> None:
        done = self.run(migrations.applied, opening=True)
        for fn in list(migrations.MIGRATIONS):
            if fn.__name__ not in done:
                self.run(functools.partial(migrations.apply, fn=fn), write=True, opening=True)

    def _error(self, exc: DBAPIError, opening: bool) -> StoreError:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if transient(exc):
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


def normalize_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid log store URL {url!r}: {_URL_FORMS}") from exc
    # Bare postgresql:// would pick psycopg2, which supportloop does not install.
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def transient(exc: DBAPIError) -> bool:
    """A lock or serialization conflict: the transaction was rolled back and may be retried."""
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return "locked" in message or "busy" in message
    return getattr(orig, "sqlstate", None) in ("40001", "40P01")  # serialization failure, deadlock


def _create_engine(url: URL, echo: bool, shown: str) -> Engine:
    """The engine for ``url``; ``shown`` is the URL without its password, for messages."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _create_sqlite_engine(url, echo)
    if backend != "postgresql":
        raise StoreError(f"unsupported log store URL {shown}: {_URL_FORMS}")
    try:
        return create_engine(
            url,
            echo=echo,
            pool_pre_ping=True,  # survive server restarts between requests
            connect_args={"connect_timeout": 10, "application_name": "supportloop"},
        )
    except (ModuleNotFoundError, NoSuchModuleError) as exc:
        raise StoreError(
            f"cannot use {shown}: the PostgreSQL driver is missing; "
            "install it with pip install 'supportloop[postgres]'"
        ) from exc


def _create_sqlite_engine(url: URL, echo: bool) -> Engine:
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
