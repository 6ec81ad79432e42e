"""A real server on a loopback port per test: uvicorn in a background thread, the app from
``deploy.server.create_app`` over a scripted generator, a keyword knowledge base and a real
SQLite log store in the test's data home. Clients are the official ``openai`` client and httpx.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import AgentConfig, load_config
from agent.generator import ScriptedGenerator
from agent.runtime import Agent
from agent.store import LogStore
from deploy.server import create_app
from deploy.settings import ServerSettings
from tests.agent.fakes import KeywordKnowledge
from tests.postgres_fixture import free_port

DOCS = {
    "filters": "Replace the HEPA filter every 6 months. The replacement part is HF-500 and costs $39.",
    "warranty": "The Aero warranty lasts 2 years from the delivery date and covers the motor.",
}
FILTER_QUESTION = "How often do I replace the HEPA filter?"
FILTER_ANSWER = "Replace the HEPA filter every 6 months [1]."


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1:<free port> until the context exits."""

    def __init__(self, app: Any):
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@dataclass
class Api:
    """A running server and what tests need around it."""

    url: str
    store: LogStore
    generator: Any
    config: AgentConfig
    admin_key: str
    keys: dict[str, str] = field(default_factory=dict)  # name -> secret (customer keys)
    key_ids: dict[str, str] = field(default_factory=dict)

    def customer(self, name: str) -> str:
        """A customer-app key's secret, created on first use."""
        if name not in self.keys:
            key, secret = self.store.create_api_key(name, "customer")
            self.keys[name], self.key_ids[name] = secret, key.id
        return self.keys[name]

    def openai(self, secret: str, **kwargs: Any) -> Any:
        from openai import OpenAI

        kwargs.setdefault("max_retries", 0)
        return OpenAI(base_url=f"{self.url}/v1", api_key=secret, **kwargs)

    def http(self, secret: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def make_api(home: Path) -> Iterator[Callable[..., Api]]:
    """``make_api(generator=None, factory=None, grounding=True, **settings)`` starts a server;
    stopped at teardown. ``grounding=False``: replies are served unchecked (echo generators)."""
    stack: list[ServerThread] = []
    stores: list[LogStore] = []

    def make(
        generator: Any = None,
        factory: Any = None,
        store_url: str | None = None,
        grounding: bool = True,
        **settings: Any,
    ) -> Api:
        config = load_config()
        config.escalation.min_relevance = 0.2
        config.grounding.enabled = grounding
        store = LogStore(store_url, home=home)
        stores.append(store)
        generator = generator or ScriptedGenerator()
        knowledge = KeywordKnowledge(DOCS)
        if factory is None:

            def factory(name: str) -> Agent:
                return Agent(generator, knowledge, store, config)

        settings.setdefault("rate_limit_per_minute", 0.0)
        app = create_app(factory, store=store, config=config, settings=ServerSettings(**settings))
        server = ServerThread(app).__enter__()
        stack.append(server)
        _, admin = store.create_api_key("ops", "admin")
        return Api(server.url, store, generator, config, admin)

    yield make
    for server in reversed(stack):
        server.__exit__(None, None, None)
    for store in stores:
        store.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


def wait_until(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
