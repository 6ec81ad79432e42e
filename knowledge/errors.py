"""Errors of the knowledge layer.

Every message names what went wrong and where (a path, a path:line), so a user can act on it without
a traceback. Nothing here imports anything heavy.
"""

from __future__ import annotations

from pathlib import Path


class KnowledgeError(Exception):
    """Base class of every error raised by ``knowledge``."""


class LoaderError(KnowledgeError):
    """A document (or one line of a JSON Lines file) could not be read."""

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


class StoreError(KnowledgeError):
    """The vector store could not be opened, read or written."""
