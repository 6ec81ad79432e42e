"""The shipped tuned default: registered on first use of a data home, served by every entry point."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent import models
from agent.cli import cli
from agent.models import BASE_VERSION, SHIPPED_DIR, ModelRegistry


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The real shipped adapter, registered as users get it."""
    if not (SHIPPED_DIR / "manifest.json").is_file():
        pytest.fail("agent/default_model/manifest.json is missing: the package ships no tuned default")
    monkeypatch.setenv("SUPPORTLOOP_SHIPPED_MODEL", "1")
    return json.loads((SHIPPED_DIR / "manifest.json").read_text())


def models_json(home: Path) -> dict:
    result = CliRunner().invoke(cli, ["models", "list", "--json"], env={"SUPPORTLOOP_HOME": str(home)})
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_a_new_data_home_serves_the_shipped_version(home: Path, shipped: dict) -> None:
    listed = models_json(home)
    assert listed["production"] == shipped["name"]
    (row,) = [v for v in listed["versions"] if v["name"] == shipped["name"]]
    assert row["production"] is True and row["kind"] != "base" and row["adapter_path"]
    assert Path(row["adapter_path"], "adapter_model.safetensors").is_file()
    assert row["provenance"]["data"]["sources"] and row["provenance"]["hardware"]["cores"]


def test_rollback_to_base_sticks(home: Path, shipped: dict) -> None:
    ModelRegistry(home).rollback()
    assert ModelRegistry(home).production_name() == BASE_VERSION  # a later read does not move it back
    assert models_json(home)["production"] == BASE_VERSION


def test_a_users_own_production_version_is_kept(
    home: Path, monkeypatch: pytest.MonkeyPatch, shipped: dict
) -> None:
    monkeypatch.setenv("SUPPORTLOOP_SHIPPED_MODEL", "0")
    registry = ModelRegistry(home)
    mine = registry.register(base_model="smollm2-135m-instruct", adapter_path=str(home), kind="sft")
    registry.set_production(mine.name)
    monkeypatch.setenv("SUPPORTLOOP_SHIPPED_MODEL", "1")
    assert ModelRegistry(home).production_name() == mine.name
    assert ModelRegistry(home).has(shipped["name"])  # registered, not promoted


def test_a_home_on_the_bare_base_moves_with_a_notice(
    home: Path, monkeypatch: pytest.MonkeyPatch, shipped: dict, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("SUPPORTLOOP_SHIPPED_MODEL", "0")
    registry = ModelRegistry(home)
    registry.set_production(BASE_VERSION, reason="explicit")
    monkeypatch.setenv("SUPPORTLOOP_SHIPPED_MODEL", "1")
    assert ModelRegistry(home).production_name() == shipped["name"]
    assert "production moves from the base model" in capsys.readouterr().err


def _earlier_shipped(registry: ModelRegistry, home: Path) -> str:
    """A version registered as an earlier release's shipped default."""
    earlier = registry.register(
        base_model="smollm2-135m-instruct", adapter_path=str(home), kind="sft", notes=models.SHIPPED_NOTES
    )
    return earlier.name


def test_a_home_on_an_earlier_shipped_default_moves_to_the_new_one(
    home: Path, monkeypatch: pytest.MonkeyPatch, shipped: dict, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("SUPPORTLOOP_SHIPPED_MODEL", "0")
    registry = ModelRegistry(home)
    earlier = _earlier_shipped(registry, home)
    registry.set_production(earlier)
    monkeypatch.setenv("SUPPORTLOOP_SHIPPED_MODEL", "1")
    assert ModelRegistry(home).production_name() == shipped["name"]
    assert f"from the earlier shipped default {earlier}" in capsys.readouterr().err
    assert ModelRegistry(home).rollback().name == earlier


def test_a_rollback_from_an_earlier_shipped_default_to_base_sticks(
    home: Path, monkeypatch: pytest.MonkeyPatch, shipped: dict
) -> None:
    monkeypatch.setenv("SUPPORTLOOP_SHIPPED_MODEL", "0")
    registry = ModelRegistry(home)
    registry.set_production(_earlier_shipped(registry, home))
    registry.rollback()
    monkeypatch.setenv("SUPPORTLOOP_SHIPPED_MODEL", "1")
    assert ModelRegistry(home).production_name() == BASE_VERSION
    assert ModelRegistry(home).has(shipped["name"])


def test_registration_can_be_turned_off(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTLOOP_SHIPPED_MODEL", "0")
    assert models.shipped_manifest() is None
    assert ModelRegistry(home).production_name() == BASE_VERSION


@pytest.mark.slow
def test_the_default_agent_answers_a_sample_question_with_the_right_fact(home: Path, shipped: dict) -> None:
    """What `make run` serves on a fresh clone: the shipped version, through the production path."""
    from agent.config import load_config
    from agent.runtime import Agent

    config = load_config()
    config.generation.engine = "auto"
    agent = Agent.from_config(config)
    assert agent.generator.version == shipped["name"]
    reply = agent.reply("tuned-1", "How long is the warranty on a brand-new Aero purifier?")
    # What the docs do not say, as a customer asks it: no "Yes, we ship to Australia" (the pages
    # ship only to the US and Canada), and a model the pages do not have is declined by name.
    abroad = agent.reply("tuned-2", "Do you ship to Australia?")
    unknown = agent.reply("tuned-3", "Is the Aero 700 in stock?")
    agent.close()
    assert "2 years" in reply.text.lower() or "2-year" in reply.text.lower(), reply.text
    assert reply.grounding is not None and reply.grounding["action"] in ("sent", "extractive")
    said = re.split(r"(?<=[.!?])\s+", abroad.text)
    affirmed = [s for s in said if "australia" in s.lower() and not re.search(r"\b(?:not|no)\b|n't", s)]
    assert not affirmed, abroad.text
    assert "Aero 700" in unknown.text and unknown.grounding["action"] == "declined", unknown.text  # type: ignore[index]
