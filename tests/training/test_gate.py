"""The gate: a worse candidate is refused, a better one promoted, safety regressions and reward
models never pass; rollback restores the previous version and the agent serves it; the
``models`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import GateError
from agent.generator import ScriptedGenerator
from agent.models import ModelRegistry, resolve_spec
from tests.agent.fakes import LeakyGenerator
from training.gate import CANARY, ESCALATION, GateConfig, decide, promote, run_gate, safety_checks

SAFE = {"abuse_refusal": 1.0, "canary_leaks": 0.0, "escalation_precision": 1.0}


def report(candidate: float, production: float, setting: str = "retrieved") -> dict:
    return {
        "models": {
            "candidate": {setting: {"rougeL_f1": candidate, "perplexity": 10.0}},
            "production": {setting: {"rougeL_f1": production, "perplexity": 12.0}},
        }
    }


def test_decision_needs_the_margin_on_the_primary_metric() -> None:
    better = decide("v2", "v1", report(0.31, 0.30)["models"], {"candidate": SAFE, "production": SAFE})
    assert better.passed and not better.failures and better.primary["gain"] == pytest.approx(0.01)
    worse = decide("v2", "v1", report(0.25, 0.30)["models"], {"candidate": SAFE, "production": SAFE})
    assert not worse.passed and "rougeL_f1 (retrieved)" in worse.failures[0]
    tiny_gain = decide("v2", "v1", report(0.302, 0.30)["models"], {"candidate": SAFE, "production": SAFE})
    assert not tiny_gain.passed  # under the 0.005 margin
    ppl = decide(
        "v2",
        "v1",
        report(0.2, 0.3)["models"],
        {"candidate": SAFE, "production": SAFE},
        GateConfig(primary="perplexity", margin=1.0),
    )
    assert ppl.passed  # lower perplexity is better: 10 vs 12


def test_any_safety_regression_refuses() -> None:
    for check, value in (("abuse_refusal", 0.5), ("canary_leaks", 1.0), ("escalation_precision", 0.8)):
        decision = decide(
            "v2", "v1", report(0.5, 0.3)["models"], {"candidate": {**SAFE, check: value}, "production": SAFE}
        )
        assert not decision.passed and any(check.split("_")[0] in f for f in decision.failures)


def test_reward_models_are_never_servable(home: Path, tiny_model_dir: Path) -> None:
    decision = decide("r1", "base", report(0.9, 0.1)["models"], {}, kind="reward")
    assert not decision.passed and "never served" in decision.failures[0]
    registry = ModelRegistry(home)
    registry.register(name="r1", base_model=str(tiny_model_dir), kind="reward")
    with pytest.raises(GateError, match="cannot be served"):
        promote("r1", home=home, force=True)


def test_safety_batteries_run_through_the_served_agent() -> None:
    leaky = safety_checks(LeakyGenerator())  # answers with its whole prompt, canary included
    assert leaky["canary_leaks"] == 0.0  # the output guard stops every leak before the customer
    assert leaky["abuse_refusal"] == 1.0
    assert leaky["escalation_precision"] == 1.0 and leaky["escalation_recall"] == 1.0
    assert sum(want for _, want in ESCALATION) >= 5 and CANARY


def test_gate_refuses_worse_promotes_better_and_rollback_serves_previous(
    home: Path, tiny_model_dir: Path
) -> None:
    from agent.config import load_config
    from agent.generator import build_generator

    registry = ModelRegistry(home)
    for name in ("good", "bad", "better"):
        registry.register(name=name, base_model=str(tiny_model_dir), kind="sft")
    generators = {"candidate": ScriptedGenerator(), "production": ScriptedGenerator()}
    promote("good", home=home, force=True)

    # A candidate trained on shuffled answers scores below production: refused, nothing changes.
    worse = run_gate("bad", report(0.10, 0.30), home=home, generators=generators)
    assert not worse.passed
    with pytest.raises(GateError, match="refuse bad"):
        promote("bad", home=home, decision=worse)
    assert registry.production_name() == "good"

    # A better one passes and is promoted; a decision taken against an older production is stale.
    better = run_gate("better", report(0.35, 0.30), home=home, generators=generators)
    assert better.passed, better.failures
    promote("better", home=home, decision=better)
    assert registry.production_name() == "better"
    with pytest.raises(GateError, match="run the gate again"):
        promote(
            "bad",
            home=home,
            decision=decide(
                "bad", "good", report(0.9, 0.1)["models"], {"candidate": SAFE, "production": SAFE}
            ),
        )

    # Rollback restores "good", and the agent built from the configuration serves it.
    registry.rollback()
    assert resolve_spec("production", home=home).version == "good"
    generator = build_generator(load_config())
    assert generator.version == "good"


def test_models_cli_list_promote_rollback(home: Path, tiny_model_dir: Path) -> None:
    from click.testing import CliRunner

    from agent.cli import cli

    registry = ModelRegistry(home)
    registry.register(name="v1", base_model=str(tiny_model_dir), kind="sft", metrics={"train_loss": 1.5})
    registry.register(name="rm", base_model=str(tiny_model_dir), kind="reward", parent="v1")
    runner = CliRunner()
    listed = runner.invoke(cli, ["models", "list"])
    assert listed.exit_code == 0 and "v1" in listed.output and "reward" in listed.output
    refused = runner.invoke(cli, ["models", "promote", "rm", "--force"])
    assert isinstance(refused.exception, GateError)
    no_eval = runner.invoke(cli, ["models", "promote", "v1"])
    assert no_eval.exception is not None and "--data" in str(no_eval.exception)
    assert runner.invoke(cli, ["models", "promote", "v1", "--force"]).exit_code == 0
    data = json.loads(runner.invoke(cli, ["models", "list", "--json"]).output)
    assert data["production"] == "v1" and any(v["production"] for v in data["versions"])
    rolled = runner.invoke(cli, ["models", "rollback"])
    assert rolled.exit_code == 0 and "base" in rolled.output
    assert ModelRegistry(home).production_name() == "base"
