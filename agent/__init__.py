"""supportloop's agent: the runtime customers talk to, the log store, the model registry.

Public API (imported lazily so that ``import agent`` and ``supportloop --help`` stay fast)::

    from agent import Agent, load_model, load_config, LogStore, ModelRegistry
    agent = Agent.from_config()
    reply = agent.reply("conversation-1", "How often should I change the filter?")
"""

from __future__ import annotations

from knowledge.lazy import lazy_exports

_EXPORTS = {
    "Agent": "agent.runtime",
    "AgentConfig": "agent.config",
    "load_config": "agent.config",
    "load_model": "agent.models",
    "ModelRegistry": "agent.models",
    "ModelVersion": "agent.models",
    "LogStore": "agent.store",
    "Generator": "agent.generator",
    "LocalGenerator": "agent.generator",
    "OpenAIGenerator": "agent.generator",
    "ScriptedGenerator": "agent.generator",
    "Conversation": "agent.types",
    "Turn": "agent.types",
    "Feedback": "agent.types",
    "Citation": "agent.types",
    "Reply": "agent.types",
    "SupportloopError": "agent.errors",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
