"""PostgreSQL for tests: a throwaway server per test session, a fresh database per test.

Fixtures:

* ``pg_url`` (session): SQLAlchemy URL of an empty database. ``$SUPPORTLOOP_TEST_PG_URL`` if set
  (that user must be allowed to create schemas in it); otherwise a server started
  from the local PostgreSQL binaries on a free port with a temp data directory (``fsync=off``: it
  is thrown away), stopped and deleted when the session ends.
* ``pg_store_url`` (function): a URL to the same database with ``search_path`` set to a schema
  created for one test and dropped after it.
* ``store_url`` (function): parametrized over "sqlite" (a file in the test's data home) and
  "postgres" (``pg_store_url``, marked ``postgres``), so one test body runs on both backends.

No PostgreSQL binaries: the postgres tests skip, except under ``CI=true`` where they fail (a
skipped database test would hide a failure). The binaries come from ``apt-get install postgresql``
(``make system-deps``); this module never installs anything.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

URL_ENV = "SUPPORTLOOP_TEST_PG_URL"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """As ``tests.conftest.require`` (not imported: conftest loads this module, a cycle)."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def find_pg_bin() -> Path | None:
    """The newest local PostgreSQL server binaries directory, if any."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb") or shutil.which("pg_ctl")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """One throwaway server. initdb refuses root, so as root it runs as the postgres user."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.as_user: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="supportloop-pg-"))
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "as root, initdb must run as the 'postgres' user, which is missing"
                ) from None
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = self.root / "data"
        self.port = 0

    def _run(self, *args: str) -> None:
        command = [*self.as_user, str(self.bindir / args[0]), *args[1:]]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.root / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}{tail}")

    def start(self) -> str:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        for attempt in range(3):  # the free port can be taken between probing and binding
            self.port = free_port()
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self._run(
                    "pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o", options, "start"
                )
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "supportloop_test")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/supportloop_test"

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    explicit = os.environ.get(URL_ENV)
    if explicit:
        yield explicit
        return
    bindir = find_pg_bin()
    require(
        bindir is not None,
        f"PostgreSQL binaries not found (apt-get install postgresql, or set {URL_ENV})",
    )
    assert bindir is not None
    server = LocalPostgres(bindir)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def pg_store_url(pg_url: str) -> Iterator[str]:
    """A URL whose tables live in a schema of this test's own (``search_path``), dropped after it.

    A schema, not a database: CREATE DATABASE costs ~0.3 s a test, CREATE SCHEMA milliseconds."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    base = make_url(pg_url)
    if base.drivername in ("postgres", "postgresql"):
        base = base.set(drivername="postgresql+psycopg")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, home: Path) -> str:
    """The log store URL of this test's backend (see the module docstring)."""
    if request.param == "sqlite":
        return f"sqlite:///{home / 'supportloop.db'}"
    return str(request.getfixturevalue("pg_store_url"))
