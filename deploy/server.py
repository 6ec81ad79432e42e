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
    DELETE /v1/admin/conversations/{id} admin key erase a conversation (never compiled again)
    GET  /healthz, /readyz, /metrics no key      liveness, readiness, Prometheus text format

Where things are: the routes, one router per area, in ``deploy/routes/``; the service objects
(agent pool, key cache, conversation locks, turn pool) in ``deploy/services.py``; the key, rate
limit and body checks in ``deploy/dependencies.py``; the body limit and request metrics in
``deploy/middleware.py``. Each module states the invariants it keeps: the event loop never
blocks and one turn at a time per conversation (``services``), the order of checks, stateless
requests with a complete log and cancel on disconnect (``routes/chat``), conversation ownership
(``routes/conversations``).

This module keeps the error handlers: every error leaves as the OpenAI error shape, a library
error as ``deploy.errors.from_library`` says, an unknown route as a 404 naming it, and anything
unexpected as a 500 that says nothing of its cause (logged with its traceback here) and carries
``x-should-retry: false``, as every 5xx does that may come after a turn was logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.errors import SupportloopError
from deploy import openapi
from deploy.dependencies import authenticate, require_admin
from deploy.errors import ApiError, as_api_error, from_library
from deploy.middleware import BodyLimit, RecordMetrics
from deploy.routes import ROUTERS
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
    from agent.store import LogStore

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
    for router in ROUTERS:
        app.include_router(router)
    openapi.install(app)
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
        return respond(as_api_error(exc))
