"""The public API of each package is explicit and pinned (deploy's: tests/deploy/test_exports.py)."""

import importlib

import pytest

PUBLIC = {
    "agent": [
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
    ],
    "knowledge": [
        "Chunk",
        "ConfigError",
        "Document",
        "Failure",
        "Hit",
        "IngestReport",
        "KnowledgeBase",
        "KnowledgeConfig",
        "KnowledgeError",
        "KnowledgeRetriever",
        "LoaderError",
        "SentenceEmbeddings",
        "load_embeddings",
    ],
    "training": [
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
    ],
}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_exports_are_pinned_and_resolve(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__all__ == sorted(PUBLIC[name])
    for export in package.__all__:
        assert getattr(package, export) is not None


@pytest.mark.parametrize("name", ["agent", "deploy", "knowledge", "training"])
def test_lazy_exports_list_the_public_api_and_name_what_is_missing(name: str) -> None:
    package = importlib.import_module(name)
    assert dir(package) == sorted(package.__all__)
    with pytest.raises(AttributeError, match=rf"module '{name}' has no attribute 'nothing'"):
        _ = package.nothing
