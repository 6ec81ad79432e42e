"""Canary: ``supportloop models canary VERSION --share 10`` serves the candidate to a sticky share
of production conversations (``agent.canary``); ``models canary status`` compares the arms'
thumbs-up rates with a two-proportion test; promote and abort end it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.canary import (
    CANARY,
    PRODUCTION,
    arm_for,
    canary_path,
    canary_status,
    end_canary,
    load_canary,
    route,
    start_canary,
)
from agent.cli import cli
from agent.errors import InputError, ModelError, NotFoundError
from agent.models import ModelRegistry
from agent.store import LogStore


@pytest.fixture
def registry(home: Path, tiny_model_dir: Path) -> ModelRegistry:
    registry = ModelRegistry(home)
    for name, kind in (("v1", "sft"), ("v2", "sft"), ("rm", "reward")):
        registry.register(name=name, base_model=str(tiny_model_dir), kind=kind)
    registry.set_production("v1")
    return registry


def test_assignment_is_sticky_and_takes_the_share() -> None:
    ids = [uuid.uuid4().hex for _ in range(20_000)]
    arms = [arm_for(cid, "v2", 10) for cid in ids]
    assert 0.09 < arms.count(CANARY) / len(ids) < 0.11
    assert arms == [arm_for(cid, "v2", 10) for cid in ids]  # every turn, every process
    other = [arm_for(cid, "v3", 10) for cid in ids]  # another canary draws another sample
    assert sum(a == b == CANARY for a, b in zip(arms, other, strict=True)) < arms.count(CANARY) / 2


def test_start_route_and_abort(home: Path, registry: ModelRegistry) -> None:
    canary = start_canary(home, "v2", 10)
    assert (canary.version, canary.share, canary.production) == ("v2", 10.0, "v1")
    assert load_canary(home) == canary
    served = {cid: route("production", cid, home) for cid in (f"c{i}" for i in range(400))}
    assert set(served.values()) == {"production", "v2"}
    assert all((v == "v2") == (arm_for(c, "v2", 10) == CANARY) for c, v in served.items())
    assert route("v1", "c1", home) == "v1"  # a client naming a version gets it
    assert end_canary(home) == canary and load_canary(home) is None
    assert {route("production", c, home) for c in served} == {"production"}


@pytest.mark.parametrize(
    ("version", "share", "error"),
    [
        ("v2", 0, InputError),
        ("v2", 60, InputError),
        ("v1", 10, InputError),  # production already
        ("nope", 10, NotFoundError),
        ("rm", 10, ModelError),
    ],
)
def test_bad_canaries_are_refused_and_write_nothing(
    home: Path, registry: ModelRegistry, version: str, share: float, error: type[Exception]
) -> None:
    with pytest.raises(error):
        start_canary(home, version, share)
    assert not canary_path(home).exists()


def test_a_broken_canary_file_leaves_production_answering(home: Path, registry: ModelRegistry) -> None:
    start_canary(home, "v2", 50)
    canary_path(home).write_text("{not json", encoding="utf-8")
    assert {route("production", f"c{i}", home) for i in range(50)} == {"production"}
    with pytest.raises(ModelError, match="fix or delete it"):
        load_canary(home)


def log_arm(store: LogStore, version: str, ups: int, downs: int) -> None:
    for i in range(ups + downs):
        cid = f"{version}-{i}"
        store.ensure_conversation(cid)
        store.add_turn(cid, "customer", "How often do I replace the filter?")
        turn = store.add_turn(cid, "agent", "Every 6 months.", model_version=version)
        store.add_feedback(str(turn.id), thumbs=1 if i < ups else -1)


def test_status_compares_the_arms_thumbs_up_rates(home: Path, registry: ModelRegistry) -> None:
    canary = start_canary(home, "v2", 10)
    with LogStore(home=home) as store:
        log_arm(store, "v1", ups=45, downs=55)
        log_arm(store, "v2", ups=60, downs=40)
        status = canary_status(store, canary)
    assert status["arms"][PRODUCTION]["version"] == "v1" and status["arms"][CANARY]["version"] == "v2"
    assert status["arms"][PRODUCTION]["thumbs"] == 100 and status["arms"][CANARY]["thumbs_up_rate"] == 0.6
    test = status["thumbs_up_test"]
    assert test["difference"] == pytest.approx(0.15)
    assert test["p_value"] == pytest.approx(0.0339, abs=0.001) and test["significant"] is True


def test_status_compares_the_share_of_answers_passing_the_answer_check(
    home: Path, registry: ModelRegistry
) -> None:
    """Groundedness per arm: checked answers that passed; unchecked ones (small talk, verified
    answers) are not counted; a two-proportion test says whether the arms differ."""
    canary = start_canary(home, "v2", 10)

    def log(version: str, passed: int, failed: int, unchecked: int) -> None:
        verdicts = [True] * passed + [False] * failed + [None] * unchecked
        for i, verdict in enumerate(verdicts):
            cid = f"g-{version}-{i}"
            store.ensure_conversation(cid)
            store.add_turn(cid, "customer", "How often do I replace the filter?")
            grounding = (
                {"checked": False, "passed": True}
                if verdict is None
                else {"checked": True, "passed": verdict}
            )
            store.add_turn(
                cid, "agent", "Every 6 months.", model_version=version, metadata={"grounding": grounding}
            )

    with LogStore(home=home) as store:
        log("v1", passed=90, failed=10, unchecked=20)
        log("v2", passed=70, failed=30, unchecked=5)
        status = canary_status(store, canary)
        kpis = {row["model_version"]: row for row in store.kpis(by="model_version")}
    assert kpis["v1"]["checked_answers"] == 100 and kpis["v1"]["grounded_rate"] == pytest.approx(0.9)
    assert status["arms"][CANARY]["grounded_rate"] == pytest.approx(0.7)
    test = status["grounded_test"]
    assert test["difference"] == pytest.approx(-0.2) and test["significant"] is True
    assert status["thumbs_up_test"]["p_value"] is None  # no thumbs given: nothing to test


def test_models_canary_from_the_command_line(home: Path, registry: ModelRegistry) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["models", "canary", "v2", "--share", "10"])
    assert result.exit_code == 0, result.output
    assert "canary v2 answers 10% of production conversations" in result.output
    with LogStore(home=home) as store:
        log_arm(store, "v1", ups=8, downs=2)
        log_arm(store, "v2", ups=3, downs=7)
    result = runner.invoke(cli, ["models", "canary", "status", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["arms"]["canary"]["thumbs"] == 10 and status["thumbs_up_test"][
        "difference"
    ] == pytest.approx(-0.5)
    shown = runner.invoke(cli, ["models", "canary", "status"])
    assert "thumbs-up rate difference -0.500" in shown.output and "p = " in shown.output
    assert "answer check: not enough measured in both arms" in shown.output
    # Promoting the canary ends it.
    result = runner.invoke(cli, ["models", "promote", "v2", "--force"])
    assert result.exit_code == 0 and "canary v2 ended" in result.output
    assert load_canary(home) is None
    result = runner.invoke(cli, ["models", "canary", "status"])
    assert result.exit_code != 0 and "no canary is running" in result.output
    runner.invoke(cli, ["models", "canary", "v1", "--share", "20"])
    assert "stopped" in runner.invoke(cli, ["models", "canary", "abort"]).output
