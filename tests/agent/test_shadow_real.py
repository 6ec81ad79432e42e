"""Shadow mode end to end on the real parts: the default model serving production through
``build_generator``, a candidate version loaded the same way by the shadow's own worker, a Chroma
index of the shipped sample documents and the log store on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config
from agent.generator import build_generator
from agent.knowledge import SAMPLE_DOCS
from agent.models import ModelRegistry
from agent.runtime import Agent
from agent.shadow import SCORED, end_shadow, shadow_status, start_shadow
from agent.store import LogStore

pytestmark = pytest.mark.slow


def test_a_real_candidate_answers_a_real_turn_silently(home: Path, default_model_dir: Path) -> None:
    from knowledge import KnowledgeBase, KnowledgeConfig

    kb = KnowledgeBase(KnowledgeConfig(persist_dir=home / "index"))
    kb.ingest([SAMPLE_DOCS])
    config = load_config()
    config.generation.max_new_tokens = 48
    # The candidate: the default model's weights under another version name, so both arms must
    # give the same answer and the same scores.
    ModelRegistry(home).register(name="candidate", base_model=str(default_model_dir), kind="sft")
    with LogStore(home=home) as store:
        agent = Agent(build_generator(config), kb, store, config)  # the default shadow runner
        shadow = start_shadow(home, "candidate")
        reply = agent.reply("real-shadow-1", "How long is the warranty on a brand-new Aero purifier?")
        end_shadow(home)
        agent.reply("real-shadow-2", "How often should I replace the filter?")  # stopped: not shadowed
        assert agent.shadow is not None and agent.shadow.worker.drain(180)

        (row,) = store.shadow_answers("candidate", production=shadow.production, since=shadow.started_at)
        assert row.outcome == SCORED, row.error
        assert row.turn_id == reply.turn_id and row.production_version == reply.model_version
        assert row.answer == reply.text and row.completion_tokens
        assert (row.shadow_passed, row.shadow_action) == (row.production_passed, row.production_action)
        assert row.shadow_groundedness == row.production_groundedness is not None
        assert row.prompt and "warranty" in str(row.prompt).lower()
        status = shadow_status(store, shadow)
    assert status["arms"]["shadow"]["turns"] == 1
    assert status["comparison"]["groundedness"]["mean"] == 0.0
    assert status["verdict"].startswith("No significant difference between candidate and production")
