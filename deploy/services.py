"""The service objects behind the HTTP API: one ``Service`` per app holds the agents, the keys,
the conversation locks, the rate limiter, the metrics and the turn pool.

Invariants:

* **The event loop never blocks.** Agent turns run on a bounded thread pool
  (``max_concurrency``, ``Service.turn``); a streamed turn is bridged from the agent's sync
  generator to the loop through a queue fed by its worker thread (``Service.turn_stream``).
* **One turn at a time per conversation** (in this process): ``ConversationLocks`` makes a second
  request for the same conversation wait for the first, so its turns never interleave.
* **Production follows the registry.** ``AgentPool`` keys ``production`` with the registry's
  current production version, so a promotion takes effect on the next request without a restart.
* **Key secrets are never kept.** ``KeyCache`` is keyed by the secret's SHA-256.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from agent.errors import ModelNotFoundError, SupportloopError
from agent.types import Reply
from deploy.metrics import Metrics
from deploy.ratelimit import RateLimiter
from deploy.settings import ServerSettings

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.runtime import Agent
    from agent.store import ApiKey, LogStore

log = logging.getLogger("supportloop.deploy")
AgentFactory = Callable[[str], "Agent"]
_T = TypeVar("_T")


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
    version, and a local transformers model wrapped in a batcher unless batching is off (the
    compiled engine only with ``batching_compiled``)."""
    shared: dict[str, Any] = {}
    lock = threading.Lock()

    def factory(name: str) -> Agent:
        from agent.compiled import CompiledGenerator
        from agent.generator import LocalGenerator, build_generator
        from agent.knowledge import open_knowledge
        from agent.runtime import Agent

        with lock:
            if "knowledge" not in shared:
                shared["knowledge"] = open_knowledge(config)
        generator: Any = build_generator(config, None if name == "production" else name)
        compiled = isinstance(generator, CompiledGenerator)
        if (
            settings.batching_compiled
            if compiled
            else settings.batching and isinstance(generator, LocalGenerator)
        ):
            from deploy.batching import BatchingGenerator, CompiledBatchingGenerator

            limits = {"max_batch": settings.batch_max_size, "window_ms": settings.batch_window_ms}
            if compiled:
                generator = CompiledBatchingGenerator.wrap(
                    generator, bucket_tokens=settings.batch_bucket_tokens, **limits
                )
            else:
                generator = BatchingGenerator.wrap(generator, **limits)
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
        self, agent: Agent, conversation_id: str, text: str, gone: threading.Event, **options: Any
    ) -> AsyncIterator[str | Reply]:
        """``agent.stream`` (with ``options``) run on the turn pool, its items handed to the loop
        through a queue.

        When ``gone`` is set (the client went away) the worker cancels the generation and drains
        the stream, so the agent still logs the turn it cut short."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def post(kind: str, value: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
                loop.call_soon_threadsafe(items.put_nowait, (kind, value))

        def produce() -> None:
            try:
                for item in agent.stream(conversation_id, text, **options):
                    if gone.is_set():
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

    def store_problem(self) -> str | None:
        """Why the log store cannot take a turn now (it does not answer, or cannot write), or
        None when it can (blocking; ``LogStore.check_writable``)."""
        try:
            self.store.check_writable()
        except SupportloopError as exc:
            log.warning("readiness: the log store cannot write: %s", exc)
            return "the log store does not answer or cannot write"
        return None

    def _gauges(self) -> dict[str, float]:
        agents = self.pool.loaded()
        gauges = {"models_loaded": float(len(agents)), "ready": float(self.pool.ready)}
        batchers: list[Any] = [a.generator for a in agents if hasattr(a.generator, "batched_requests")]
        if batchers:
            gauges["batches_total"] = float(sum(b.batches for b in batchers))
            gauges["batched_requests_total"] = float(sum(b.batched_requests for b in batchers))
        workers = {id(a.shadow.worker): a.shadow.worker for a in agents if a.shadow is not None}
        for worker in workers.values():  # one per process unless an agent was given its own
            for name, value in worker.totals().items():
                key = f"shadow_{name}_total"
                gauges[key] = gauges.get(key, 0.0) + value
        return gauges

    async def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.owns_store:
            self.store.close()
