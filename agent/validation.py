"""The validation step at every edge: pure checks that run before anything is written or any
model is loaded. The HTTP API, the CLI and the Python API (``Agent.stream``) call these; each
failure is an ``InputError`` whose message names the field and never echoes the bad value (it
may hold control characters, or be megabytes long).

The rules, one place each:

* **Identifiers** (conversation ids, turn ids, key ids): 1-128 characters from
  ``A-Z a-z 0-9 . _ : -``. Such an id is safe in an HTTP header, a URL path, a file name and a
  log line as is, so nothing downstream needs to escape it. uuid4 hex ids, which supportloop
  makes itself, fit.
* **Text** (messages, comments, corrections): a ``str`` without NUL (PostgreSQL text cannot hold
  it) and without lone surrogates (what invalid UTF-8 becomes in a command-line argument, and
  what no database encoding can store), not blank unless allowed, at most ``max_chars``.
* **Names and labels** (API key names, feedback labels, reviewers): text on one line, without
  control characters, bounded in length; labels also in number.
* **Numbers** (paging, a turn's limits): within bounds every backend's integers hold
  (``MAX_OFFSET``); a turn's ``temperature`` 0-2, ``max_tokens`` at least 1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from agent.errors import InputError

ID_CHARS = "A-Z a-z 0-9 . _ : -"
ID_MAX_CHARS = 128
NAME_MAX_CHARS = 255
LABEL_MAX_CHARS = 100
MAX_LABELS = 50
COMMENT_MAX_CHARS = 5_000
CORRECTION_MAX_CHARS = 20_000
MAX_OFFSET = 1_000_000_000  # far past any real page, far inside a signed 64-bit integer

_IDENTIFIER = re.compile(rf"[A-Za-z0-9._:-]{{1,{ID_MAX_CHARS}}}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_identifier(value: object, what: str) -> str:
    """``value`` if it is an identifier (see the module docstring); else ``InputError``."""
    if not isinstance(value, str) or _IDENTIFIER.fullmatch(value) is None:
        raise InputError(f"{what} must be 1-{ID_MAX_CHARS} characters from {ID_CHARS}", param=_param(what))
    return value


def check_chars(value: object, what: str) -> str:
    """``value`` if it is a string a database can store: no NUL, valid UTF-8 (no lone surrogates)."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, not {type(value).__name__}", param=_param(what))
    if "\x00" in value:
        raise InputError(f"{what} must not contain NUL characters", param=_param(what))
    if _SURROGATE.search(value):
        raise InputError(f"{what} is not valid UTF-8 text", param=_param(what))
    return value


def check_text(value: object, what: str, max_chars: int, *, allow_blank: bool = False) -> str:
    """``value`` if ``check_chars`` passes, it is not blank (unless ``allow_blank``) and it has
    at most ``max_chars`` characters."""
    text = check_chars(value, what)
    if not allow_blank and not text.strip():
        raise InputError(f"{what} is empty", param=_param(what))
    if len(text) > max_chars:
        raise InputError(
            f"{what} is {len(text):,} characters long; the limit is {max_chars:,}", param=_param(what)
        )
    return text


def check_number(value: object, what: str, low: float, high: float, *, integer: bool = False) -> float:
    """``value`` if it is a number (an integer when ``integer``) from ``low`` to ``high``."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise InputError(f"{what} must be {kind} from {low:g} to {high:g}", param=_param(what))
    return float(value)


def check_turn_limits(
    max_tokens: object = None, stop: object = (), temperature: object = None, timeout_s: object = None
) -> dict[str, Any]:
    """A caller's limits for one turn, checked: the ones given, plus ``stop`` as a tuple."""
    limits: dict[str, Any] = {}
    if max_tokens is not None:
        limits["max_tokens"] = int(check_number(max_tokens, "max_tokens", 1, 2**31 - 1, integer=True))
    if (
        isinstance(stop, str)
        or not isinstance(stop, Sequence)
        or not all(isinstance(s, str) and s for s in stop)
    ):
        raise InputError("stop must be a list of non-empty strings", param="stop")
    limits["stop"] = tuple(stop)
    if temperature is not None:
        limits["temperature"] = check_number(temperature, "temperature", 0.0, 2.0)
    if timeout_s is not None:
        limits["timeout_s"] = check_number(timeout_s, "timeout_s", 0.001, 86_400.0)
    return limits


def check_name(value: object, what: str, max_chars: int = NAME_MAX_CHARS) -> str:
    """``value`` stripped, if it is a non-blank one-line text without control characters."""
    text = check_text(value, what, max_chars)
    if _CONTROL.search(text):
        raise InputError(f"{what} must be one line without control characters", param=_param(what))
    return text.strip()


def check_labels(
    labels: Sequence[str],
    what: str = "labels",
    *,
    max_count: int = MAX_LABELS,
    max_chars: int = LABEL_MAX_CHARS,
) -> tuple[str, ...]:
    """Labels stripped, blank ones dropped, duplicates dropped (first kept); each a ``check_name``,
    at most ``max_count`` of them."""
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise InputError(f"{what} must be a list of strings", param=_param(what))
    if len(labels) > max_count:
        raise InputError(f"{len(labels)} {what}; the limit is {max_count}", param=_param(what))
    try:
        kept = [check_name(label, "a label", max_chars) for label in labels if _not_blank(label)]
    except InputError as exc:
        raise InputError(f"{what}: {exc}", param=_param(what)) from None
    return tuple(dict.fromkeys(kept))


def _not_blank(value: object) -> bool:
    return not isinstance(value, str) or bool(value.strip())


def _param(what: str) -> str | None:
    """``what`` when it names a request field (``conversation_id``, ``labels``), for the HTTP
    error's ``param``; None for prose such as "the question"."""
    return what if re.fullmatch(r"[a-z_]+", what) else None
