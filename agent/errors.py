"""Errors raised by supportloop's library code: one tree, ``knowledge``'s errors included.

Every error carries a message a user can act on. The CLI turns them into one line and an exit
code; the HTTP API turns them into a 4xx/5xx JSON body; the UI shows the message. Nothing here
imports heavy libraries.

    SupportloopError           (defined in knowledge.errors, the bottom layer; re-exported here)
    ├── KnowledgeError         knowledge.errors: the product documents and their index
    │   ├── ConfigError         knowledge.ConfigError: a bad index setting (collection, model)
    │   ├── LoaderError         a document (or JSON Lines line) that cannot be read
    │   └── StoreError          knowledge's: the Chroma index cannot be opened, read or written
    ├── ConfigError            bad or unreadable configuration
    ├── ModelError
    │   ├── ModelNotFoundError  unknown spec, missing package, hub unreachable offline
    │   └── GenerationError     the backend failed, timed out or was cancelled
    ├── InputError             an input that cannot be served (empty, oversize, NUL, a bad id)
    ├── DataError              malformed input file (names the file and line)
    ├── StoreError             the log store cannot be opened or written
    │   └── NotFoundError       no such conversation, turn or version
    └── GateError              a candidate model failed the promotion gate

The root lives in ``knowledge`` because ``knowledge`` imports nothing of ours: so a Chroma failure
is a ``SupportloopError`` that every edge already handles, with no conversion of its own.
"""

from __future__ import annotations

from knowledge.errors import KnowledgeError as KnowledgeError
from knowledge.errors import SupportloopError as SupportloopError


class ConfigError(SupportloopError):
    exit_code = 2


class ModelError(SupportloopError):
    pass


class ModelNotFoundError(ModelError):
    exit_code = 3


class GenerationError(ModelError):
    pass


class InputError(SupportloopError):
    """An input that cannot be served; ``param`` names the request field, when there is one."""

    exit_code = 2

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.param = param


class DataError(SupportloopError):
    """Malformed input data; the message names the file and, where known, the line."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line


class StoreError(SupportloopError):
    pass


class NotFoundError(StoreError):
    exit_code = 4


class GateError(SupportloopError):
    exit_code = 5
