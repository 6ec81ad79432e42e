"""Fixtures of the hardening suite: the deploy suite's real test server (``make_api``, ``api``),
the agent suite's agent on a scripted generator (``make_agent``) and ``table_digest``, a digest of every row of every table of a SQLite log store, so a test can
show that a refused request wrote nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from tests.agent.conftest import make_agent
from tests.deploy.conftest import api, make_api

__all__ = ["api", "make_agent", "make_api", "table_digest"]


def table_digest(database: Path) -> dict[str, str]:
    """Table name -> SHA-256 of its rows (every column, in a fixed order), read with a plain
    read-only ``sqlite3`` connection beside the store's own."""
    digests: dict[str, str] = {}
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        for name in names:
            digest = hashlib.sha256()
            for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY 1'):
                digest.update(repr(row).encode("utf-8", "surrogatepass") + b"\n")
            digests[name] = digest.hexdigest()
    return digests
