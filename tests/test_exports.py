"""The public API of each package is explicit and pinned."""

import agent


def test_agent_exports() -> None:
    assert agent.__all__ == sorted(
        [
            "Agent",
            "AgentConfig",
            "Citation",
            "Conversation",
            "Feedback",
            "Generator",
            "LocalGenerator",
            "LogStore",
            "ModelRegistry",
            "ModelVersion",
            "OpenAIGenerator",
            "Reply",
            "ScriptedGenerator",
            "SupportloopError",
            "Turn",
            "load_config",
            "load_model",
        ]
    )
    for name in agent.__all__:
        assert getattr(agent, name) is not None
