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
import hashlib
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent import guardrails
from agent.errors import ModelNotFoundError, NotFoundError, SupportloopError
from agent.types import Reply
from deploy import schemas
from deploy.errors import ApiError, error_body, from_library
from deploy.metrics import Metrics
from deploy.ratelimit import RateLimiter, retry_after_header
from deploy.settings import ServerSettings, load_settings

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.runtime import Agent
    from agent.store import ApiKey, LogStore

log = logging.getLogger("supportloop.deploy")
AgentFactory = Callable[[str], "Agent"]
_T = TypeVar("_T")
_PROBE_ID = "__supportloop_readyz__"


# ---------------------------------------------------------------------------------- the agents


class AgentPool:
    """One ``Agent`` per requested model version, built on first use by ``factory(name)``.

    ``production`` is keyed with the registry's current production version, so a promotion takes
    effect on the next request without a restart. At most ``max_models`` agents stay loaded (least
    recently used dropped; requests still holding one finish with it)."""

    def __init__(self, factory: AgentFactory, home: Path, max_models: int):
        self.factory = factory
        self.home = home
        self.max_models = max_models
        self.ready = False
        self.load_error: str | None = None
        self._agents: OrderedDict[str, Agent] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def key(self, name: str) -> str:
        from agent.models import ModelRegistry

        registry = ModelRegistry(self.home)
        if name == "production":
            return f"production:{registry.production_name()}"
        if registry.has(name):
            return name
        raise ModelNotFoundError(
            f"the model {name!r} does not exist: use 'production' or a version from GET /v1/models"
        )

    def get(self, name: str) -> Agent:
        """The agent serving ``name`` (blocking: may load a model)."""
        key = self.key(name)
        with self._lock:
            if key in self._agents:
                self._agents.move_to_end(key)
                return self._agents[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in self._agents:
                    return self._agents[key]
            agent = self.factory(name)
            with self._lock:
                self._agents[key] = agent
                self._loading.pop(key, None)
                while len(self._agents) > self.max_models:
                    _, dropped = self._agents.popitem(last=False)
                    _release(dropped)
                if name == "production":
                    self.ready, self.load_error = True, None
            return agent

    def loaded(self) -> list[Agent]:
        with self._lock:
            return list(self._agents.values())


def _release(agent: Agent) -> None:
    """Let a dropped agent's model go: a batching generator's worker thread holds it otherwise.
    Requests already queued on it are served first (the shutdown goes to the back of its queue)."""
    close = getattr(agent.generator, "close", None)
    if close is not None:
        threading.Thread(target=close, name="supportloop-release", daemon=True).start()


def default_agent_factory(config: AgentConfig, store: LogStore, settings: ServerSettings) -> AgentFactory:
    """What ``supportloop serve`` uses: the pieces of ``Agent.from_config`` (the configured
    generator, knowledge base and store), with one knowledge base and one store shared by every
    version, and a local model wrapped in the ``BatchingGenerator`` unless batching is off."""
    shared: dict[str, Any] = {}
    lock = threading.Lock()

    def factory(name: str) -> Agent:
        from agent.generator import LocalGenerator, build_generator
        from agent.knowledge import open_knowledge
        from agent.runtime import Agent

        with lock:
            if "knowledge" not in shared:
                shared["knowledge"] = open_knowledge(config)
        generator: Any = build_generator(config, None if name == "production" else name)
        if settings.batching and isinstance(generator, LocalGenerator):
            from deploy.batching import BatchingGenerator

            generator = BatchingGenerator.wrap(
                generator, max_batch=settings.batch_max_size, window_ms=settings.batch_window_ms
            )
        return Agent(generator, shared["knowledge"], store, config)

    return factory


# ------------------------------------------------------------------------------------ the keys


class KeyCache:
    """``store.verify_api_key`` with a short cache (keyed by the secret's hash, never the secret)."""

    def __init__(self, store: LogStore, ttl_s: float, max_entries: int = 10_000):
        self.store = store
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}
        self._lock = threading.Lock()

    def verify(self, secret: str) -> ApiKey | None:
        digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        key = self.store.verify_api_key(secret)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[digest] = (key, now + self.ttl_s)
        return key

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


class ConversationLocks:
    """One asyncio lock per conversation with a turn in progress (event-loop only, no threads)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, conversation_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(conversation_id, (asyncio.Lock(), 0))
        self._locks[conversation_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[conversation_id]
            if users == 1:
                del self._locks[conversation_id]
            else:
                self._locks[conversation_id] = (lock, users - 1)


# ------------------------------------------------------------------------------------ the service


class Service:
    """Everything a request handler needs; one per app (``app.state.service``)."""

    def __init__(
        self,
        config: AgentConfig,
        settings: ServerSettings,
        store: LogStore,
        factory: AgentFactory,
        owns_store: bool,
    ):
        self.config = config
        self.settings = settings
        self.store = store
        self.owns_store = owns_store
        self.pool = AgentPool(factory, Path(config.home), settings.max_models)
        self.keys = KeyCache(store, settings.auth_cache_s)
        self.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        self.locks = ConversationLocks()
        self.metrics = Metrics()
        self.metrics.gauge_source(self._gauges)
        self.executor = ThreadPoolExecutor(settings.max_concurrency, thread_name_prefix="supportloop-turn")
        self._background: set[asyncio.Future[Any]] = set()

    # -- blocking work ---------------------------------------------------------------------------
    async def turn(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run one agent call on the turn pool."""
        self.metrics.add_gauge("turns_in_flight", 1)
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        finally:
            self.metrics.add_gauge("turns_in_flight", -1)

    async def turn_stream(
        self, agent: Agent, conversation_id: str, text: str, stop: threading.Event
    ) -> AsyncIterator[str | Reply]:
        """``agent.stream`` run on the turn pool, its items handed to the loop through a queue.

        When ``stop`` is set (the client went away) the worker cancels the generation and drains
        the stream, so the agent still logs the turn it cut short."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def post(kind: str, value: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
                loop.call_soon_threadsafe(items.put_nowait, (kind, value))

        def produce() -> None:
            try:
                for item in agent.stream(conversation_id, text):
                    if stop.is_set():
                        agent.cancel(conversation_id)
                    post("item", item)
            except BaseException as exc:
                post("error", exc)
            else:
                post("done", None)
            finally:
                self.metrics.add_gauge("turns_in_flight", -1)

        self.metrics.add_gauge("turns_in_flight", 1)
        future = loop.run_in_executor(self.executor, produce)
        self._background.add(future)
        future.add_done_callback(self._background.discard)
        while True:
            kind, value = await items.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return

    # -- conversations ---------------------------------------------------------------------------
    def open_conversation(
        self, conversation_id: str | None, key: ApiKey, history: list[tuple[str, str]]
    ) -> str:
        """The conversation a request continues or starts (blocking). Another key's -> NotFoundError."""
        cid = conversation_id or uuid.uuid4().hex
        conversation = self.store.ensure_conversation(cid, owner=key.id, channel="api")
        if not conversation.turns:
            for role, text in history:
                self.store.add_turn(cid, role, text, metadata={"source": "request_history"})
        return cid

    def count_reply(self, reply: Reply) -> None:
        model = reply.model_version or "none"
        self.metrics.inc("completion_tokens_total", reply.completion_tokens, model=model)
        self.metrics.inc("prompt_tokens_total", reply.prompt_tokens, model=model)
        outcome = "escalated" if reply.escalated else "refused" if reply.refused else "answered"
        self.metrics.inc("chat_completions_total", model=model, outcome=outcome)

    def store_reachable(self) -> bool:
        try:
            self.store.get_conversation(_PROBE_ID)
        except NotFoundError:
            return True
        except SupportloopError as exc:
            log.warning("readiness: the log store is unreachable: %s", exc)
            return False
        return True

    def _gauges(self) -> dict[str, float]:
        agents = self.pool.loaded()
        gauges = {"models_loaded": float(len(agents)), "ready": float(self.pool.ready)}
        batchers: list[Any] = [a.generator for a in agents if hasattr(a.generator, "batched_requests")]
        if batchers:
            gauges["batches_total"] = float(sum(b.batches for b in batchers))
            gauges["batched_requests_total"] = float(sum(b.batched_requests for b in batchers))
        return gauges

    async def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.owns_store:
            self.store.close()


# ------------------------------------------------------------------------------------ middleware


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


# ------------------------------------------------------------------------------------ dependencies


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def authenticate(request: Request) -> ApiKey:
    """The request's API key (``Authorization: Bearer KEY``), after the per-key rate limit."""
    service = _service(request)
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise ApiError(
            401,
            "no API key: send 'Authorization: Bearer <key>' (an admin creates keys with "
            "`supportloop keys create --name NAME --scope customer`)",
            code="missing_api_key",
        )
    key = await run_in_threadpool(service.keys.verify, secret)
    if key is None:
        raise ApiError(401, "the API key is invalid or revoked", code="invalid_api_key")
    wait = service.limiter.acquire(key.id)
    if wait is not None:
        service.metrics.inc("rate_limited_total")
        per_minute = service.settings.rate_limit_per_minute
        raise ApiError(
            429,
            f"rate limit reached for this key ({per_minute:g} requests per minute); retry in {wait:.1f} s",
            code="rate_limit_exceeded",
            headers={"Retry-After": retry_after_header(wait)},
        )
    return key


async def require_admin(key: ApiKey = Depends(authenticate)) -> ApiKey:
    if key.scope != "admin":
        raise ApiError(403, "this endpoint needs an admin key", code="admin_key_required")
    return key


_M = TypeVar("_M", bound=BaseModel)


async def _parse(request: Request, model: type[_M]) -> _M:
    body = await request.body()
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first['msg']}" if where else first["msg"]
        raise ApiError(
            400, f"invalid request: {message}", param=where or None, code="invalid_request"
        ) from exc


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
        service = _service(request)
        body = await _parse(request, schemas.ChatCompletionRequest)
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
        service = _service(request)
        body = await _parse(request, schemas.FeedbackRequest)
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
        service = _service(request)
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
        service = _service(request)
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
        return {"object": "list", "data": await run_in_threadpool(model_list, _service(request))}

    @app.get("/v1/models/{model_id}")
    async def model(model_id: str, request: Request, key: ApiKey = Depends(authenticate)) -> Any:
        for row in await run_in_threadpool(model_list, _service(request)):
            if row["id"] == model_id:
                return row
        raise ApiError(404, f"the model {model_id!r} does not exist", param="model", code="model_not_found")

    # -- admin ---------------------------------------------------------------------------------
    @app.get("/v1/admin/keys")
    async def list_keys(request: Request, key: ApiKey = Depends(require_admin)) -> Any:
        keys = await run_in_threadpool(_service(request).store.list_api_keys)
        return {"object": "list", "data": [_key_row(k) for k in keys]}

    @app.post("/v1/admin/keys", status_code=201)
    async def create_key(request: Request, key: ApiKey = Depends(require_admin)) -> Any:
        body = await _parse(request, schemas.KeyRequest)
        created, secret = await run_in_threadpool(
            _service(request).store.create_api_key, body.name, body.scope
        )
        return JSONResponse({**_key_row(created), "key": secret}, status_code=201)

    @app.delete("/v1/admin/keys/{key_id}")
    async def revoke_key(key_id: str, request: Request, key: ApiKey = Depends(require_admin)) -> Any:
        service = _service(request)
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
        store = _service(request).store
        rows = await run_in_threadpool(lambda: store.kpis(since=since, until=until, by=by))
        return {"object": "list", "data": rows, "counts": await run_in_threadpool(store.counts)}

    # -- operations ----------------------------------------------------------------------------
    @app.get("/healthz")
    async def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> Any:
        service = _service(request)
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
        service = _service(request)
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
