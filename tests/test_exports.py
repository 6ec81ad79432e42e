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


def test_training_exports() -> None:
    import training

    assert training.__all__ == sorted(
        [
            "CompiledDataset",
            "EvalPlan",
            "GateConfig",
            "GateDecision",
            "PiiSpan",
            "TrainResult",
            "compile_dataset",
            "decide",
            "detect_format",
            "evaluate_versions",
            "find_pii",
            "load_rows",
            "promote",
            "redact",
            "run_round",
            "train_dpo",
            "train_kto",
            "train_reward",
            "train_sft",
        ]
    )
    for name in training.__all__:
        assert getattr(training, name) is not None
