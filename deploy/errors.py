"""Errors at the HTTP edge, always in the OpenAI error shape.

Every error response the service sends has the body
``{"error": {"message": str, "type": str, "param": str | None, "code": str | None}}``, so the
official OpenAI clients raise their usual exceptions (``AuthenticationError`` for 401,
``PermissionDeniedError`` for 403, ``NotFoundError`` for 404, ``RateLimitError`` for 429...).

Library errors (``agent.errors``) are converted here and nowhere else (``from_library``). Their
messages are written for a local user, who may need to know which database or file failed; a
client of the API must not learn that: ``public_message`` removes URLs (a database URL may carry
a password) and file paths from every message that leaves here. An input error names the field
it is about in ``param``.
A failure after the customer's message was logged carries ``x-should-retry: false``: the
OpenAI clients retry 5xx answers by default, and a retry would log the message twice.
"""

from __future__ import annotations

import re
from typing import Any

from agent import errors as lib

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
    503: "service_unavailable_error",
}


class ApiError(Exception):
    """An HTTP error with an OpenAI-shaped body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, code=self.code, param=self.param)


def error_body(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    kind = TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://(?:\S*[^\s:,;.)'\"])?")
# An absolute or home-relative path of two or more parts; the API's own routes (/v1/...) stay.
_PATH = re.compile(r"(?<![\w/.:-])~?/(?!v1/)(?:[^\s/'\"`]+/)+(?:[^\s'\"`]*[^\s'\"`:,;.)])?")
_WHERE = re.compile(r"\s+(?:in|at|from|to)\s+(?:the log store\s+(?:at\s+)?)?<hidden>")


def public_message(message: str) -> str:
    """``message`` without URLs and file paths: what a client of the API may read."""
    hidden = _PATH.sub("<hidden>", _URL.sub("<hidden>", message))
    return _WHERE.sub("", hidden).replace("<hidden>", "(hidden)")


def from_library(exc: lib.SupportloopError) -> ApiError:
    """The HTTP status and body for a library error (``public_message`` of its message)."""
    message = public_message(str(exc))
    no_retry = {"x-should-retry": "false"}
    if isinstance(exc, lib.ModelNotFoundError):
        return ApiError(404, message, code="model_not_found", param="model")
    if isinstance(exc, lib.NotFoundError):
        return ApiError(404, message, code="not_found")
    if isinstance(exc, lib.InputError):
        return ApiError(400, message, code="invalid_input", param=exc.param)
    if isinstance(exc, lib.GenerationError):
        busy = "busy" in message
        return ApiError(503 if busy else 502, message, code="generation_failed", headers=no_retry)
    if isinstance(exc, lib.StoreError):
        unavailable = "the log store is unavailable; try again shortly"
        return ApiError(503, unavailable, code="store_unavailable", headers=no_retry)
    return ApiError(500, message, code=type(exc).__name__, headers=no_retry)


def as_api_error(exc: BaseException) -> ApiError:
    """The answer an exception becomes at the edge: itself, a library error's conversion, or a
    500 that says nothing of its cause and must not be retried (the turn may be logged)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, lib.SupportloopError):
        return from_library(exc)
    return ApiError(500, "internal server error", headers={"x-should-retry": "false"})
