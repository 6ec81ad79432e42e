"""The OpenAI-compatible HTTP API over the ``Agent``: ``create_app()`` builds it, ``supportloop serve`` runs it.

Endpoints (all JSON; every error in the OpenAI error shape, see ``deploy/errors.py``)::

    POST /v1/chat/completions        any key     OpenAI chat completions, streaming (SSE) or not
    POST /v1/feedback                any key     thumbs / rating / comment on an agent turn
    GET  /v1/conversations           any key     own conversations (customer) or all (admin)
    GET  /v1/conversations/{id}      any key     one conversation with its turns and feedback
    GET  /v1/models, /v1/models/{id} any key     registry versions, OpenAI list shape
    GET  /v1/admin/keys              admin key   API keys (never their secrets)
    POST /v1/admin/keys              admin key   create a key; the secret is in this answer only
    DELETE /v1/admin/keys/{id}       admin key   revoke a key
    GET  /v1/admin/kpis              admin key   dashboard KPIs and table counts
    GET  /healthz, /readyz, /metrics no key      liveness, readiness, Prometheus text format

Invariants:

* **The event loop never blocks.** Agent turns run on a bounded thread pool
  (``max_concurrency``); store look-ups run on anyio's thread pool; a streamed turn is bridged from
  the agent's sync generator to SSE through a queue fed by its worker thread.
* **Ownership.** A conversation belongs to the API key that created it. A customer-app key reads,
  continues and rates only its own (another key's conversation is 404, as if missing: the store's
  ``owner=`` check); an admin key reads all. Admin endpoints answer 403 to customer keys.
* **Stateless requests, complete log.** Each request names its conversation (``conversation_id``
  body field or ``X-Conversation-Id`` header) or gets a new one, whose id comes back in the body
  (``supportloop.conversation_id``) and the ``X-Conversation-Id`` header. A new conversation's
  client-sent history is logged before the answer; a continued one's history is the log.
* **One turn at a time per conversation** (in this process): a second request for the same
  conversation waits for the first, so its turns never interleave.
* **Order of checks:** body size (413) -> key (401) -> rate limit (429) -> request shape (400) ->
  model (404) -> the agent's input check (400) -> conversation ownership (404) -> the turn. Nothing
  is logged before all of them pass, and a failure after logging says ``x-should-retry: false``.
* **A client that disconnects mid-stream cancels its generation** (``Agent.cancel``); the agent
  logs what was generated up to then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent import guardrails
from agent.errors import SupportloopError
from agent.types import Reply
from deploy import schemas
from deploy.dependencies import authenticate, get_service, parse_body, require_admin
from deploy.errors import ApiError, error_body, from_library
from deploy.middleware import BodyLimit, RecordMetrics
from deploy.services import (
    AgentFactory,
    AgentPool,
    ConversationLocks,
    KeyCache,
    Service,
    default_agent_factory,
)
from deploy.settings import ServerSettings, load_settings

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.runtime import Agent
    from agent.store import ApiKey, LogStore

__all__ = [  # the app, and the names that lived here before the routes and services moved out
    "AgentFactory",
    "AgentPool",
    "BodyLimit",
    "ConversationLocks",
    "KeyCache",
    "RecordMetrics",
    "Service",
    "app_from_env",
    "authenticate",
    "create_app",
    "default_agent_factory",
    "require_admin",
]

log = logging.getLogger("supportloop.deploy")

# ------------------------------------------------------------------------------------ the app


def create_app(
    agent_factory: AgentFactory | None = None,
    *,
    store: LogStore | None = None,
    config: AgentConfig | None = None,
    settings: ServerSettings | None = None,
) -> FastAPI:
    """The ASGI app. ``agent_factory(model_name) -> Agent`` builds the agent for a requested model
    ("production" or a registry version); by default the configured one (``default_agent_factory``).
    ``store`` is the log store for keys and conversations (shared with the agents you build)."""
    from agent.config import load_config
    from agent.store import LogStore

    config = config or load_config()
    settings = settings or load_settings()
    owns_store = store is None
    store = store or LogStore.from_config(config)
    factory = agent_factory or default_agent_factory(config, store, settings)
    service = Service(config, settings, store, factory, owns_store)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        preload = None
        if settings.preload:
            preload = asyncio.create_task(_preload(service))
        yield
        if preload is not None and not preload.done():
            preload.cancel()
        await service.close()

    app = FastAPI(
        title="supportloop",
        summary="OpenAI-compatible chat completions over a supportloop agent",
        version="1",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RecordMetrics, metrics=service.metrics)
    _install_error_handlers(app)
    _add_routes(app)
    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory of ``supportloop serve``: configuration from the environment."""
    from agent.config import load_config

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    return create_app(config=load_config(), settings=load_settings())


async def _preload(service: Service) -> None:
    try:
        await run_in_threadpool(service.pool.get, "production")
        log.info("the production model is loaded; ready")
    except Exception as exc:
        service.pool.load_error = str(exc)
        log.error(
            "loading the production model failed: %s", exc, exc_info=not isinstance(exc, SupportloopError)
        )


def _install_error_handlers(app: FastAPI) -> None:
    def respond(error: ApiError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return respond(exc)

    @app.exception_handler(SupportloopError)
    async def library_error(request: Request, exc: SupportloopError) -> JSONResponse:
        error = from_library(exc)
        if error.status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return respond(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
        return respond(ApiError(400, f"invalid request: {where}: {first['msg']}", param=where or None))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = (
            str(exc.detail) if exc.status_code != 404 else f"no route {request.method} {request.url.path}"
        )
        return respond(ApiError(exc.status_code, message, headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse(error_body(500, "internal server error"), status_code=500)


def _add_routes(app: FastAPI) -> None:
    # -- chat ----------------------------------------------------------------------------------
    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request, key: ApiKey = Depends(authenticate)) -> Any:
        service = get_service(request)
        body = await parse_body(request, schemas.ChatCompletionRequest)
        text, history = schemas.split_messages(
            body,
            max_messages=service.settings.max_messages,
            max_content_chars=service.settings.max_content_chars,
        )
        agent = await run_in_threadpool(service.pool.get, body.model)
        guardrails.check_input(text, agent.config.guardrails.max_input_chars)  # before anything is logged
        wanted = schemas.conversation_id_of(body, request.headers.get("x-conversation-id"))
        cid = await run_in_threadpool(service.open_conversation, wanted, key, history)
        headers = {"X-Conversation-Id": cid}
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            events = _sse(service, agent, cid, text, body.model, include_usage)
            headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)
        async with service.locks.hold(cid):
            reply = await service.turn(agent.reply, cid, text)
        service.count_reply(reply)
        payload = schemas.completion(
            reply, model=body.model, max_new_tokens=agent.config.generation.max_new_tokens
        )
        return JSONResponse(payload, headers=headers)

    # -- feedback ------------------------------------------------------------------------------
    @app.post("/v1/feedback")
    async def feedback(request: Request, key: ApiKey = Depends(authenticate)) -> Any:
        service = get_service(request)
        body = await parse_body(request, schemas.FeedbackRequest)
        if key.scope != "admin" and (body.reviewer is not None or body.mark_for_training):
            raise ApiError(403, "reviewer and mark_for_training need an admin key", code="admin_key_required")

        def work() -> dict[str, Any]:
            turn = service.store.get_turn(body.turn_id)
            owner = None if key.scope == "admin" else key.id
            service.store.get_conversation(turn.conversation_id or "", owner=owner)  # 404 if not theirs
            if turn.role != "agent":
                raise ApiError(
                    400, "feedback is given on agent turns", param="turn_id", code="not_an_agent_turn"
                )
            saved = service.store.add_feedback(
                body.turn_id,
                thumbs=body.thumbs,
                rating=body.rating,
                comment=body.comment,
                correction=body.correction,
                labels=tuple(body.labels),
                reviewer=body.reviewer,
                mark_for_training=body.mark_for_training,
            )
            return {"object": "feedback", "conversation_id": turn.conversation_id, **saved.to_dict()}

        return await run_in_threadpool(work)

    # -- conversations -------------------------------------------------------------------------
    @app.get("/v1/conversations")
    async def conversations(
        request: Request,
        key: ApiKey = Depends(authenticate),
        limit: int = Query(20, ge=1, le=100),
        offset: int = Query(0, ge=0),
        status: str | None = Query(None),
    ) -> Any:
        service = get_service(request)
        owner = None if key.scope == "admin" else key.id
        rows = await run_in_threadpool(
            lambda: service.store.list_conversations(
                owner=owner, status=status, limit=limit + 1, offset=offset
            )
        )
        data = [{"object": "conversation.summary", **r.to_dict()} for r in rows[:limit]]
        return {"object": "list", "data": data, "has_more": len(rows) > limit}

    @app.get("/v1/conversations/{conversation_id}")
    async def conversation(
        conversation_id: str, request: Request, key: ApiKey = Depends(authenticate)
    ) -> Any:
        service = get_service(request)
        admin = key.scope == "admin"

        def work() -> dict[str, Any]:
            found = service.store.get_conversation(conversation_id, owner=None if admin else key.id)
            data = found.to_dict()
            data["feedback"] = [f.to_dict() for f in service.store.feedback_for_conversation(conversation_id)]
            if not admin:
                data["turns"] = [schemas.public_turn(t) for t in data["turns"]]
                data.pop("metadata", None)
            return {"object": "conversation", **data}

        return await run_in_threadpool(work)

    # -- models --------------------------------------------------------------------------------
    def model_list(service: Service) -> list[dict[str, Any]]:
        from agent.models import ModelRegistry

        registry = ModelRegistry(Path(service.config.home))
        production = registry.production_name()
        rows = [_model_row("production", 0, production=True, serves=production)]
        for version in registry.list():
            rows.append(
                _model_row(version.name, _epoch(version.created_at), production=version.name == production)
            )
        return rows

    @app.get("/v1/models")
    async def models(request: Request, key: ApiKey = Depends(authenticate)) -> Any:
        return {"object": "list", "data": await run_in_threadpool(model_list, get_service(request))}

    @app.get("/v1/models/{model_id}")
    async def model(model_id: str, request: Request, key: ApiKey = Depends(authenticate)) -> Any:
        for row in await run_in_threadpool(model_list, get_service(request)):
            if row["id"] == model_id:
                return row
        raise ApiError(404, f"the model {model_id!r} does not exist", param="model", code="model_not_found")

    # -- admin ---------------------------------------------------------------------------------
    @app.get("/v1/admin/keys")
    async def list_keys(request: Request, key: ApiKey = Depends(require_admin)) -> Any:
        keys = await run_in_threadpool(get_service(request).store.list_api_keys)
        return {"object": "list", "data": [_key_row(k) for k in keys]}

    @app.post("/v1/admin/keys", status_code=201)
    async def create_key(request: Request, key: ApiKey = Depends(require_admin)) -> Any:
        body = await parse_body(request, schemas.KeyRequest)
        created, secret = await run_in_threadpool(
            get_service(request).store.create_api_key, body.name, body.scope
        )
        return JSONResponse({**_key_row(created), "key": secret}, status_code=201)

    @app.delete("/v1/admin/keys/{key_id}")
    async def revoke_key(key_id: str, request: Request, key: ApiKey = Depends(require_admin)) -> Any:
        service = get_service(request)
        await run_in_threadpool(service.store.revoke_api_key, key_id)
        service.keys.clear()
        return {"object": "api_key", "id": key_id, "revoked": True}

    @app.get("/v1/admin/kpis")
    async def kpis(
        request: Request,
        key: ApiKey = Depends(require_admin),
        since: datetime | None = Query(None),
        until: datetime | None = Query(None),
        by: str = Query("model_version"),
    ) -> Any:
        store = get_service(request).store
        rows = await run_in_threadpool(lambda: store.kpis(since=since, until=until, by=by))
        return {"object": "list", "data": rows, "counts": await run_in_threadpool(store.counts)}

    # -- operations ----------------------------------------------------------------------------
    @app.get("/healthz")
    async def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> Any:
        service = get_service(request)
        store_ok = await run_in_threadpool(service.store_reachable)
        if service.pool.ready and store_ok:
            return {"status": "ready", "models_loaded": len(service.pool.loaded())}
        if not store_ok:
            reason, code = "the log store does not answer", "store_unavailable"
        elif service.pool.load_error:
            reason, code = (
                f"loading the production model failed: {service.pool.load_error}",
                "model_load_failed",
            )
        else:
            reason, code = "the production model is still loading", "loading"
        return JSONResponse({"status": "unavailable", **error_body(503, reason, code=code)}, status_code=503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Any:
        service = get_service(request)
        if service.settings.metrics_require_key:
            await require_admin(await authenticate(request))
        return PlainTextResponse(service.metrics.render(), media_type="text/plain; version=0.0.4")


async def _sse(
    service: Service, agent: Agent, cid: str, text: str, model: str, include_usage: bool
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
            async for item in service.turn_stream(agent, cid, text, stop):
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
    finish = schemas.finish_reason(reply, agent.config.generation.max_new_tokens)
    yield _event(schemas.chunk(completion_id, created, model, {}, finish, supportloop=schemas.extra(reply)))
    if include_usage:
        yield _event(schemas.usage_chunk(completion_id, created, model, reply))
    yield "data: [DONE]\n\n"


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _model_row(name: str, created: int, *, production: bool, serves: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"id": name, "object": "model", "created": created, "owned_by": "supportloop"}
    row["supportloop"] = {"production": production, **({"serves": serves} if serves else {})}
    return row


def _key_row(key: ApiKey) -> dict[str, Any]:
    return {
        "object": "api_key",
        "id": key.id,
        "name": key.name,
        "scope": key.scope,
        "prefix": key.prefix,
        "revoked": key.revoked,
        "created_at": key.created_at.isoformat() if key.created_at else None,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
    }


def _epoch(timestamp: str) -> int:
    try:
        return int(datetime.fromisoformat(timestamp).timestamp())
    except ValueError:
        return 0
