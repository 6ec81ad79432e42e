"""Fixtures shared by the agent tests: an Agent on a scripted generator and keyword knowledge."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config
from agent.generator import ScriptedGenerator
from agent.runtime import Agent
from agent.store import LogStore
from tests.agent.fakes import KeywordKnowledge

DOCS = {
    "filters": "Replace the HEPA filter every 6 months. The replacement part is HF-500 and costs $39.",
    "warranty": "The Aero warranty lasts 2 years from the delivery date and covers the motor.",
}


@pytest.fixture
def make_agent(home: Path):
    def make(generator=None, docs=DOCS, **overrides):
        config = load_config()
        config.escalation.min_relevance = 0.2
        for key, value in overrides.items():
            section, name = key.split("__")
            setattr(getattr(config, section), name, value)
        store = LogStore(home=home)
        return Agent(generator or ScriptedGenerator(), KeywordKnowledge(docs), store, config)

    return make
