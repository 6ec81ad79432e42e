"""``POST /v1/chat/completions``: OpenAI chat completions over the agent, streamed (SSE) or not.

Invariants:

* **Stateless requests, complete log.** Each request names its conversation (``conversation_id``
  body field or ``X-Conversation-Id`` header) or gets a new one, whose id comes back in the body
  (``supportloop.conversation_id``) and the ``X-Conversation-Id`` header. A new conversation's
  client-sent history is logged before the answer; a continued one's history is the log.
* **Order of checks:** body size (413) -> key (401) -> rate limit (429) -> request shape (400:
  strict types and ranges, fields this server cannot honour (``schemas.refuse_unsupported``),
  message text no database can store, the conversation id's rule) -> model (404) -> the
  agent's input check (400) -> conversation ownership (404) -> the turn. Nothing is logged before
  all of them pass, and a failure after logging says ``x-should-retry: false``.
* **No raw input in a header.** ``X-Conversation-Id`` carries either a new uuid or an id that
  passed ``agent.validation.check_identifier``.
* **One turn at a time per conversation:** both paths hold the conversation's lock for the turn.
* **A canary** (``agent.canary``) answers its sticky share of the conversations that ask for
  ``production``; the answer still names the model the client asked for.
* **A retry logs nothing twice.** With an ``Idempotency-Key`` (or ``X-Request-Id``) the request
  is worked on once per key; its retries get its answer (``deploy/idempotency.py``).
* **A client that disconnects mid-stream cancels its generation** (``Agent.cancel``); the agent
  logs what was generated up to then.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from agent import canary, guardrails
from agent.errors import SupportloopError
from agent.types import Reply
from deploy import idempotency, schemas
from deploy.dependencies import authenticate, get_service, parse_body
from deploy.errors import ApiError, as_api_error

if TYPE_CHECKING:
    from agent.runtime import Agent
    from agent.store import ApiKey
    from deploy.services import Service

log = logging.getLogger("supportloop.deploy")
router = APIRouter()
ABANDONED = ApiError(
    409,
    "the client went away before the reply was complete; the message is logged once: send a new "
    "Idempotency-Key to ask again",
    code="idempotent_request_abandoned",
    headers={"x-should-retry": "false"},
)


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, key: ApiKey = Depends(authenticate)) -> Any:
    service = get_service(request)
    body = await parse_body(request, schemas.ChatCompletionRequest)
    schemas.refuse_unsupported(body)
    text, history = schemas.split_messages(
        body,
        max_messages=service.settings.max_messages,
        max_content_chars=service.settings.max_content_chars,
    )
    wanted = schemas.conversation_id_of(body, request.headers.get("x-conversation-id"))
    idempotency_key = idempotency.key_of(request)
    agent = await run_in_threadpool(service.pool.get, body.model)
    guardrails.check_input(text, agent.config.guardrails.max_input_chars)  # before anything is logged
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    ledger = None
    if idempotency_key is not None:  # the last check: a retry is answered, never worked on again
        record = await idempotency.claim(service, request, key.id, idempotency_key)
        if record is not None:
            return idempotency.replay(record, stream=body.stream, include_usage=include_usage)
        ledger = idempotency.Ledger(service, key.id, idempotency_key)
    cid = None
    try:
        cid = await run_in_threadpool(service.open_conversation, wanted, key, history)
        served = canary.route(body.model, cid, service.pool.home)  # a canary's sticky share
        if served != body.model:
            agent = await run_in_threadpool(service.pool.get, served)
        headers = {"X-Conversation-Id": cid}  # an identifier (agent.validation): safe in a header
        options: dict[str, Any] = {"max_tokens": body.token_limit(), "stop": body.stop_sequences()}
        if body.stream:
            events = _sse(service, agent, cid, text, body.model, include_usage, options, ledger)
            headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)
        async with service.locks.hold(cid):
            reply = await service.turn(functools.partial(agent.reply, cid, text, **options))
        service.count_reply(reply)
        payload = schemas.completion(
            reply,
            model=body.model,
            max_new_tokens=agent.config.generation.max_new_tokens,
            requested=body.token_limit(),
        )
        if ledger is not None:
            await ledger.done(payload, cid)
        return JSONResponse(payload, headers=headers)
    except Exception as exc:
        if ledger is not None:
            await ledger.failed(as_api_error(exc), cid)
        raise


async def _sse(
    service: Service,
    agent: Agent,
    cid: str,
    text: str,
    model: str,
    include_usage: bool,
    options: dict[str, Any],
    ledger: idempotency.Ledger | None = None,
) -> AsyncIterator[str]:
    """The SSE body of a streamed completion: a role chunk, content chunks, a final chunk with
    ``finish_reason`` and the ``supportloop`` field, [usage], ``[DONE]``. An error after the
    headers went out is an ``{"error": ...}`` event (the OpenAI clients raise it)."""
    completion_id, created = schemas.completion_id(), int(time.time())
    stop = threading.Event()
    reply: Reply | None = None
    sent = ""
    async with service.locks.hold(cid):
        service.metrics.add_gauge("active_streams", 1)
        ended = False
        try:
            yield _event(schemas.chunk(completion_id, created, model, {"role": "assistant", "content": ""}))
            async for item in service.turn_stream(agent, cid, text, stop, **options):
                if isinstance(item, Reply):
                    reply = item
                else:
                    sent += item
                    yield _event(schemas.chunk(completion_id, created, model, {"content": item}))
            ended = True
            assert reply is not None, "agent.stream ends with a Reply"
            if reply.text.startswith(sent) and len(reply.text) > len(sent):  # hand-offs are not streamed
                yield _event(
                    schemas.chunk(completion_id, created, model, {"content": reply.text[len(sent) :]})
                )
        except Exception as exc:
            ended = True
            error = as_api_error(exc)
            if ledger is not None:
                await ledger.failed(error, cid)
            log.error(
                "streamed turn in %s failed: %s", cid, exc, exc_info=not isinstance(exc, SupportloopError)
            )
            yield _event(error.body())
            return
        finally:
            service.metrics.add_gauge("active_streams", -1)
            if not ended:  # the client went away: stop generating for nobody
                stop.set()
                agent.cancel(cid)
                if ledger is not None:
                    ledger.failed_later(ABANDONED, cid)
    assert reply is not None
    service.count_reply(reply)
    finish = schemas.finish_reason(reply, agent.config.generation.max_new_tokens, options["max_tokens"])
    if ledger is not None:  # before [DONE], so a retry that follows at once is answered from it
        limit = agent.config.generation.max_new_tokens
        payload = schemas.completion(
            reply, model=model, max_new_tokens=limit, requested=options["max_tokens"]
        )
        await ledger.done({**payload, "id": completion_id, "created": created}, cid)
    yield _event(schemas.chunk(completion_id, created, model, {}, finish, supportloop=schemas.extra(reply)))
    if include_usage:
        yield _event(schemas.usage_chunk(completion_id, created, model, reply))
    yield "data: [DONE]\n\n"


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
