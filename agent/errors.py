"""Errors raised by supportloop's library code.

Every error carries a message a user can act on. The CLI turns them into one line and an exit
code; the HTTP API turns them into a 4xx/5xx JSON body. Nothing here imports heavy libraries.

    SupportloopError
    ├── ConfigError            bad or unreadable configuration
    ├── ModelError
    │   ├── ModelNotFoundError  unknown spec, missing package, hub unreachable offline
    │   └── GenerationError     the backend failed, timed out or was cancelled
    ├── InputError             a customer message that cannot be served (empty, oversize)
    ├── DataError              malformed input file (names the file and line)
    ├── StoreError             the log store cannot be opened or written
    │   └── NotFoundError       no such conversation, turn or version
    └── GateError              a candidate model failed the promotion gate
"""

from __future__ import annotations


class SupportloopError(Exception):
    """Base class: the message is meant for the user."""

    exit_code = 1


class ConfigError(SupportloopError):
    exit_code = 2


class ModelError(SupportloopError):
    pass


class ModelNotFoundError(ModelError):
    exit_code = 3


class GenerationError(ModelError):
    pass


class InputError(SupportloopError):
    exit_code = 2


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
