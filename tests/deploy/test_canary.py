"""A canary over the real API: conversations asking for ``production`` are answered by the
canary version for its sticky share (``agent.canary.route``), every turn of a conversation by
the same version, and stopping it takes effect on the next request, without a restart."""

from __future__ import annotations

from pathlib import Path

from agent.canary import CANARY, arm_for, end_canary, start_canary
from agent.generator import ScriptedGenerator
from agent.models import ModelRegistry
from agent.runtime import Agent
from tests.agent.fakes import KeywordKnowledge
from tests.deploy.conftest import DOCS, FILTER_ANSWER, FILTER_QUESTION


def test_the_canary_answers_its_sticky_share_live(make_api, home: Path, tiny_model_dir: Path) -> None:
    registry = ModelRegistry(home)
    for name in ("v1", "v2"):
        registry.register(name=name, base_model=str(tiny_model_dir), kind="sft")
    registry.set_production("v1")
    holder: dict = {}

    def factory(name: str) -> Agent:
        generator = ScriptedGenerator(default=FILTER_ANSWER)
        generator.version = "v2" if name == "v2" else "v1"
        return Agent(generator, KeywordKnowledge(DOCS), holder["api"].store, holder["api"].config)

    api = holder["api"] = make_api(factory=factory)
    start_canary(home, "v2", 30)
    client = api.openai(api.customer("shop"))
    ids = [f"conv-{i}" for i in range(12)]

    def ask(cid: str) -> None:
        client.chat.completions.create(
            model="production",
            messages=[{"role": "user", "content": FILTER_QUESTION}],
            extra_body={"conversation_id": cid},
        )

    for cid in ids * 2:  # two turns each
        ask(cid)
    versions = {cid: {t.model_version for t in api.store.turns(cid) if t.role == "agent"} for cid in ids}
    assert all(len(v) == 1 for v in versions.values())  # sticky: one version per conversation
    expected = {cid: "v2" if arm_for(cid, "v2", 30) == CANARY else "v1" for cid in ids}
    assert {cid: next(iter(v)) for cid, v in versions.items()} == expected
    assert set(expected.values()) == {"v1", "v2"}

    end_canary(home)  # no restart: the next request reads it
    canary_cid = next(cid for cid, v in expected.items() if v == "v2")
    ask(canary_cid)
    assert api.store.turns(canary_cid)[-1].model_version == "v1"
