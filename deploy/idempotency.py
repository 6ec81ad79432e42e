"""Retries that never log a turn twice: ``POST /v1/chat/completions`` with an ``Idempotency-Key``
header (or, without one, an ``X-Request-Id``) is worked on once per API key.

Invariants:

* The key follows ``agent.validation``'s identifier rule (a uuid fits), checked with the rest of
  the request before anything is written; a bad one is a 400 naming the header.
* A request claims its key (``store.requests.claim``) after every check has passed and before its
  conversation is opened, so a refused request claims nothing and a claimed one is the only
  request with that key that logs a turn.
* A retry with the same key and the same body gets the first request's answer: the same
  completion (as JSON, or re-sent as one SSE stream for a streamed request), or the same error
  with ``x-should-retry: false``. While the first is still running a retry gets a 409 with
  ``Retry-After`` (the OpenAI clients retry 409s); the same key with another body is a 400.
  Replayed answers carry ``Idempotent-Replayed: true``.
* Keys live in the log store, so every worker process and a restarted server answer alike.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from agent import validation
from agent.errors import InputError
from deploy.errors import ApiError

if TYPE_CHECKING:
    from agent.store.requests import Idempotent
    from deploy.services import Service

HEADERS = ("idempotency-key", "x-request-id")
REPLAYED = {"Idempotent-Replayed": "true"}
NO_RETRY = {"x-should-retry": "false"}


def key_of(request: Request) -> str | None:
    """The request's idempotency key, checked; None when it sends none."""
    for name in HEADERS:
        value = request.headers.get(name)
        if value:
            try:
                return validation.check_identifier(value, name)
            except InputError as exc:
                raise ApiError(400, str(exc), param=name, code="invalid_idempotency_key") from None
    return None


class Ledger:
    """One claimed key: records how its request ended."""

    def __init__(self, service: Service, owner: str, key: str):
        self.service, self.owner, self.key = service, owner, key

    async def done(self, payload: dict[str, Any], conversation_id: str) -> None:
        await run_in_threadpool(self._finish, "done", 200, payload, conversation_id)

    async def failed(self, error: ApiError, conversation_id: str | None = None) -> None:
        await run_in_threadpool(self._finish, "failed", error.status, error.body(), conversation_id)

    def failed_later(self, error: ApiError, conversation_id: str | None = None) -> None:
        """``failed`` without waiting (from a stream the client has left: nothing may await)."""
        self.service.executor.submit(
            self._finish, "failed", error.status, error.body(), conversation_id
        ).add_done_callback(lambda future: future.exception())  # logged by nobody, kept by nobody

    def _finish(self, state: str, status: int, response: Any, conversation_id: str | None) -> None:
        self.service.store.requests.finish(
            self.owner,
            self.key,
            state=state,
            status_code=status,
            response=response,
            conversation_id=conversation_id,
        )


async def claim(service: Service, request: Request, owner: str, key: str) -> Idempotent | None:
    """None when this request owns ``key`` now; else the first request's record."""
    fingerprint = hashlib.sha256(await request.body()).hexdigest()
    record = await run_in_threadpool(service.store.requests.claim, owner, key, fingerprint)
    if record is not None and record.fingerprint != fingerprint:
        raise ApiError(
            400,
            "this Idempotency-Key was sent with another request body; use a new key for a new request",
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    return record


def replay(record: Idempotent, *, stream: bool, include_usage: bool) -> Any:
    """The answer to a retry of ``record``'s request."""
    if record.state == "pending":
        if record.abandoned(datetime.now(UTC)):
            raise ApiError(
                409,
                "the request with this Idempotency-Key did not finish; its message is logged once: "
                "send a new key to ask again",
                code="idempotent_request_abandoned",
                headers=NO_RETRY,
            )
        raise ApiError(
            409,
            "a request with this Idempotency-Key is still running; retry shortly",
            code="idempotent_request_in_progress",
            headers={"Retry-After": "1"},
        )
    headers = dict(REPLAYED)
    if record.conversation_id:
        headers["X-Conversation-Id"] = record.conversation_id  # an identifier: safe in a header
    if record.state == "failed":
        return JSONResponse(
            record.response, status_code=record.status_code or 500, headers=headers | NO_RETRY
        )
    if stream:
        headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        events = _as_events(record.response, include_usage)
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    return JSONResponse(record.response, headers=headers)


def _as_events(completion: dict[str, Any], include_usage: bool) -> Iterator[str]:
    """A stored completion re-sent as the SSE stream of one content chunk."""
    head = {k: completion[k] for k in ("id", "model", "system_fingerprint")}
    head.update(object="chat.completion.chunk", created=int(time.time()))
    choice = completion["choices"][0]

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
        data = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return f"data: {json.dumps({**data, **more}, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    yield chunk({"content": choice["message"]["content"]})
    yield chunk({}, choice["finish_reason"], supportloop=completion.get("supportloop"))
    if include_usage:
        yield f"data: {json.dumps({**head, 'choices': [], 'usage': completion['usage']})}\n\n"
    yield "data: [DONE]\n\n"
