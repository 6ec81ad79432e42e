"""AgentPool: one agent per version, production follows the registry, least recently used dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ModelNotFoundError
from agent.models import ModelRegistry
from deploy.server import AgentPool


class FakeAgent:
    def __init__(self, name: str):
        self.name = name
        self.generator = self
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_versions_load_once_production_follows_promotions_and_old_ones_are_dropped(home: Path) -> None:
    built: list[FakeAgent] = []

    def factory(name: str) -> FakeAgent:
        built.append(FakeAgent(name))
        return built[-1]

    pool = AgentPool(factory, home, max_models=2)
    first = pool.get("production")
    assert pool.get("production") is first and pool.ready
    assert pool.get("base") is not first
    with pytest.raises(ModelNotFoundError):
        pool.get("v9")
    registry = ModelRegistry(home)
    registry.register(base_model="smollm2-135m-instruct", name="v1")
    registry.set_production("v1")
    promoted = pool.get("production")  # the new production version loads on its first request
    assert promoted is not first and len(built) == 3
    assert len(pool.loaded()) == 2
    assert first.closed or _eventually(lambda: first.closed)  # released off the request path


def _eventually(condition, timeout: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False
