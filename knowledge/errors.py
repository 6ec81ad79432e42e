"""Errors of the knowledge layer, and the root of supportloop's one error tree.

Every message names what went wrong and where (a path, a path:line), so a user can act on it without
a traceback. Nothing here imports anything heavy.

``SupportloopError`` is defined here, in the bottom layer, so that knowledge's errors belong to the
tree drawn in ``agent/errors.py`` while ``knowledge`` imports nothing else of ours: every edge that
turns a ``SupportloopError`` into one line (CLI), a JSON body (HTTP API) or a message (UI) handles
a failing index too.
"""

from __future__ import annotations

from pathlib import Path


class SupportloopError(Exception):
    """Base class of every supportloop error (re-exported by ``agent.errors``): the message is
    meant for the user, ``exit_code`` for the command line."""

    exit_code = 1


class KnowledgeError(SupportloopError):
    """Base class of every error raised by ``knowledge``."""


class LoaderError(KnowledgeError):
    """A document (or one line of a JSON Lines file) could not be read."""

    exit_code = 2

    def __init__(self, path: str | Path, reason: str, line: int | None = None):
        self.path = str(path)
        self.reason = reason
        self.line = line
        super().__init__(f"{self.location}: {reason}")

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


class ConfigError(KnowledgeError):
    """A setting is invalid (collection name, model path, ...)."""

    exit_code = 2


class StoreError(KnowledgeError):
    """The vector store could not be opened, read or written."""


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line (a library's message may span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__
