"""Checks on values going into the store, before any SQL runs: each failure is an ``InputError``
with a message the caller can act on.

Text and ids must not hold NUL (PostgreSQL text cannot) or lone surrogates (no database encoding
can): ``agent.validation.check_chars``, refused on every backend so the two stay interchangeable.
The edges check the same rules earlier, before anything is written; these are the last line.
JSON columns take only what ``json.dumps`` takes, so a value that one backend would store and
the other refuse never reaches either.
"""

from __future__ import annotations

import json
from typing import TypeVar

from agent.errors import InputError
from agent.store.schema import STATUSES
from agent.validation import MAX_OFFSET, check_chars

MAX_LIMIT = 1000
_T = TypeVar("_T")


def check_id(value: str | None, name: str, *, max_len: int = 255) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} must be a non-empty string")
    if len(value) > max_len:
        raise InputError(f"{name} is {len(value)} characters long; the limit is {max_len}")
    return check_chars(value, name)


def check_text(value: str, name: str) -> None:
    check_chars(value, name)


def check_json(value: _T, name: str) -> _T:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:  # e.g. a numpy float among retrieval scores
        raise InputError(f"{name} must be JSON-serializable: {exc}") from exc
    return value


def check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:  # beyond it, SQLite's integers overflow
        raise InputError(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")


def check_status(status: str) -> None:
    if status not in STATUSES:
        raise InputError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
