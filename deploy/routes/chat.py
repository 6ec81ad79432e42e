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

from agent import guardrails
from agent.errors import SupportloopError
from agent.types import Reply
from deploy import schemas
from deploy.dependencies import authenticate, get_service, parse_body
from deploy.errors import ApiError, from_library

if TYPE_CHECKING:
    from agent.runtime import Agent
    from agent.store import ApiKey
    from deploy.services import Service

log = logging.getLogger("supportloop.deploy")
router = APIRouter()


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
    agent = await run_in_threadpool(service.pool.get, body.model)
    guardrails.check_input(text, agent.config.guardrails.max_input_chars)  # before anything is logged
    cid = await run_in_threadpool(service.open_conversation, wanted, key, history)
    headers = {"X-Conversation-Id": cid}  # an identifier (agent.validation): safe in a header
    options: dict[str, Any] = {"max_tokens": body.token_limit(), "stop": body.stop_sequences()}
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _sse(service, agent, cid, text, body.model, include_usage, options)
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
    return JSONResponse(payload, headers=headers)


async def _sse(
    service: Service,
    agent: Agent,
    cid: str,
    text: str,
    model: str,
    include_usage: bool,
    options: dict[str, Any],
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
            error = (
                from_library(exc)
                if isinstance(exc, SupportloopError)
                else ApiError(500, "internal server error")
            )
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
    assert reply is not None
    service.count_reply(reply)
    finish = schemas.finish_reason(reply, agent.config.generation.max_new_tokens, options["max_tokens"])
    yield _event(schemas.chunk(completion_id, created, model, {}, finish, supportloop=schemas.extra(reply)))
    if include_usage:
        yield _event(schemas.usage_chunk(completion_id, created, model, reply))
    yield "data: [DONE]\n\n"


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
