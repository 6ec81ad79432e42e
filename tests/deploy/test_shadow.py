"""A shadow over the real API: its worker's queued, dropped, failed and scored turns are counted
on ``/metrics``, and the customer's reply never waits for the candidate."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from agent.errors import GenerationError
from agent.generator import ScriptedGenerator
from agent.models import ModelRegistry
from agent.runtime import Agent
from agent.shadow import ShadowRunner, ShadowWorker, start_shadow
from tests.agent.fakes import KeywordKnowledge
from tests.deploy.conftest import DOCS, FILTER_ANSWER, FILTER_QUESTION
from tests.deploy.test_ops import parse_exposition


class Candidate(ScriptedGenerator):
    """Fails its first answer, blocks its third until released, answers the others."""

    def __init__(self) -> None:
        super().__init__(default=FILTER_ANSWER)
        self.version = "v2"
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def stream(self, messages: Sequence[dict[str, str]], options: Any, cancel: Any = None) -> Iterator[str]:
        self.calls += 1
        if self.calls == 1:
            raise GenerationError("the candidate's server is down")
        if self.calls == 3:
            self.entered.set()
            self.release.wait(10)
        yield from super().stream(messages, options, cancel)


def test_metrics_count_the_shadow_workers_turns(make_api, home: Path, tiny_model_dir: Path) -> None:
    registry = ModelRegistry(home)
    for name in ("v1", "v2"):
        registry.register(name=name, base_model=str(tiny_model_dir), kind="sft")
    registry.set_production("v1")
    candidate, worker = Candidate(), ShadowWorker(size=1)
    holder: dict[str, Any] = {}

    def factory(name: str) -> Agent:
        generator = ScriptedGenerator(default=FILTER_ANSWER)
        generator.version = "v1"
        runner = ShadowRunner(load=lambda shadow: candidate, worker=worker)
        return Agent(
            generator, KeywordKnowledge(DOCS), holder["api"].store, holder["api"].config, shadow_runner=runner
        )

    api = holder["api"] = make_api(factory=factory)
    start_shadow(home, "v2")
    client = api.openai(api.customer("shop"))

    def ask(cid: str) -> str:
        answer = client.chat.completions.create(
            model="production",
            messages=[{"role": "user", "content": FILTER_QUESTION}],
            extra_body={"conversation_id": cid},
        )
        return str(answer.choices[0].message.content)

    for cid in ("c-fails", "c-scored"):
        ask(cid)
        assert worker.drain(10)
    ask("c-held")
    assert candidate.entered.wait(10)  # the worker holds this one
    assert [ask(cid) for cid in ("c-queued", "c-dropped")] == [FILTER_ANSWER] * 2  # nobody waits
    candidate.release.set()
    assert worker.drain(10)

    with api.http(api.admin_key) as http:
        text = http.get("/metrics").text
    samples = parse_exposition(text)
    expected = {"queued": 4.0, "dropped": 1.0, "failed": 1.0, "scored": 3.0}
    assert {name: samples[(f"supportloop_shadow_{name}_total", "")] for name in expected} == expected
    assert "# TYPE supportloop_shadow_dropped_total counter" in text
