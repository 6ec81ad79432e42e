"""``supportloop train round`` end to end on the tiny model and a few sample conversations:
compile -> SFT -> DPO -> KTO -> evaluate -> gate -> decision, with a Markdown report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.models import ModelRegistry
from training.evaluate import Protocol

SAMPLE = Path(__file__).resolve().parents[2] / "agent" / "sample" / "conversations.jsonl"


def test_round_trains_evaluates_gates_and_reports(
    home: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    import training.evaluate
    import training.gate
    from agent.cli import cli

    # The tiny model babbles to the token limit: keep generation short (the protocol is tested apart).
    monkeypatch.setattr(training.evaluate, "PROTOCOL", Protocol(max_new_tokens=4))
    monkeypatch.setattr(training.gate, "SAFETY_MAX_NEW_TOKENS", 4)
    registry = ModelRegistry(home)
    registry.register(name="tiny", base_model=str(tiny_model_dir), kind="sft")
    registry.set_production("tiny")
    data = tmp_path / "conversations.jsonl"
    data.write_text("\n".join(SAMPLE.read_text().splitlines()[:10]) + "\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "filters.md").write_text("# Filters\nReplace the HEPA filter every 12 months.\n")
    (home / "supportloop.yaml").write_text("persona: {system_prompt: 'You are a support assistant.'}\n")

    args = [
        "train",
        "round",
        "--data",
        str(data),
        "--no-from-logs",
        "--docs",
        str(docs),
        "--max-steps",
        "1",
        "--eval-limit",
        "2",
        "--set",
        "per_device_train_batch_size=2",
        "--set",
        "gradient_accumulation_steps=1",
        "--set",
        "max_length=768",
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output.strip().splitlines()[-1])

    kinds = [stage["kind"] for stage in outcome["trained"]]
    assert kinds == ["sft", "dpo", "kto"]
    chain = [ModelRegistry(home).get(stage["version"]) for stage in outcome["trained"]]
    assert [v.parent for v in chain] == ["tiny", chain[0].name, chain[1].name]
    assert outcome["candidate"] == chain[-1].name
    assert isinstance(outcome["promoted"], bool) and outcome["reasons"]
    expected = outcome["candidate"] if outcome["promoted"] else "tiny"
    assert ModelRegistry(home).production_name() == expected
    report = Path(outcome["report"])
    text = report.read_text()
    assert ("PROMOTED" if outcome["promoted"] else "REFUSED") in text
    for png in ("loss-sft.png", "loss-dpo.png", "rougeL_f1.png"):
        assert (report.parent / png).stat().st_size > 0 and png in text
    assert (report.parent / "decision.json").is_file() and (
        report.parent / "data" / "manifest.json"
    ).is_file()
