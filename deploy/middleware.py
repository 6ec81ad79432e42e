"""The ASGI middleware of the HTTP API, outside every route.

* ``BodyLimit`` answers 413 before anything else runs: the body size is the first check of every
  request (by ``Content-Length`` up front, else while the body is read).
* ``RecordMetrics`` counts every response by method, route template and status, so the metrics
  name routes, never raw paths (an id in a path does not make a new series).
"""

from __future__ import annotations

import time

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deploy.errors import ApiError
from deploy.metrics import Metrics


class BodyLimit:
    """413 for bodies over ``max_bytes``: by Content-Length up front, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> ApiError:
        return ApiError(413, f"the request body exceeds {self.max_bytes} bytes", code="request_too_large")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            error = self._too_large()
            await JSONResponse(error.body(), status_code=413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._too_large()  # answered by the ApiError handler
            return message

        await self.app(scope, limited, send)


class RecordMetrics:
    """Counts every response by method, route template and status, timed to its last byte."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recorded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recorded)
        finally:
            path = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], path, status, time.perf_counter() - started)
