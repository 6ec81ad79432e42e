"""``supportloop models shadow``: start, status (with a registered reward model's scores when
there is one), stop; bad input is one line, exit code 2 and nothing written; promoting the
shadowed version ends the shadow."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli import cli, main
from agent.models import ModelRegistry
from agent.shadow import SCORED, load_shadow, shadow_path
from agent.store import LogStore

PROMPT = [
    {"role": "system", "content": "Answer from the passages."},
    {
        "role": "user",
        "content": "[1] Replace the filter every 6 months.\n\nHow often do I replace the filter?",
    },
]


@pytest.fixture
def registry(home: Path, tiny_model_dir: Path) -> ModelRegistry:
    registry = ModelRegistry(home)
    for name in ("v1", "v2"):
        registry.register(name=name, base_model=str(tiny_model_dir), kind="sft")
    registry.set_production("v1")
    return registry


@pytest.fixture
def reward_model(home: Path, registry: ModelRegistry, tiny_model_dir: Path, tokenizer: Any) -> str:
    """A tiny scalar-head model registered as kind ``reward``."""
    import torch
    from transformers import AutoConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(str(tiny_model_dir), num_labels=1)
    out = home / "rm"
    LlamaForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    registry.register(name="rm", base_model=str(out), kind="reward")
    return "rm"


def log_shadowed_turns(home: Path, n: int) -> None:
    shadow = load_shadow(home)
    assert shadow is not None
    with LogStore(home=home) as store:
        for i in range(n):
            cid = uuid.uuid4().hex[:12]
            store.ensure_conversation(cid)
            store.add_turn(cid, "customer", "How often do I replace the filter?")
            turn = store.add_turn(cid, "agent", "Every 6 months. [1]", model_version="v1")
            scores = {
                "production_passed": i % 3 != 0,
                "production_action": "sent",
                "production_groundedness": 0.5,
                "shadow_passed": True,
                "shadow_action": "sent",
                "shadow_groundedness": 0.9,
            }
            store.add_shadow_answer(
                {
                    "id": uuid.uuid4().hex,
                    "turn_id": str(turn.id),
                    "conversation_id": cid,
                    "shadow_version": "v2",
                    "production_version": "v1",
                    "outcome": SCORED,
                    "answer": "Replace it every 6 months. [1]",
                    "prompt": PROMPT,
                    **scores,
                }
            )


def test_start_status_stop(home: Path, registry: ModelRegistry) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["models", "shadow", "v2", "--share", "25"])
    assert result.exit_code == 0, result.output
    assert "shadow v2 answers 25% of production's conversations silently (production v1)" in result.output
    assert json.loads(shadow_path(home).read_text())["share"] == 25.0
    log_shadowed_turns(home, 12)

    result = runner.invoke(cli, ["models", "shadow", "status", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["arms"]["shadow"]["turns"] == 12 and status["arms"]["shadow"]["pass_rate"] == 1.0
    assert status["arms"]["production"]["pass_rate"] == pytest.approx(8 / 12)
    assert status["reward_model"] is None and "reward" not in status["comparison"]
    assert status["comparison"]["groundedness"]["better"] is True

    shown = runner.invoke(cli, ["models", "shadow", "status"]).output
    assert "groundedness: shadow - production +0.400" in shown
    assert "no reward model is registered" in shown
    assert "v2 is better than production on groundedness and worse on none" in " ".join(shown.split())

    assert runner.invoke(cli, ["models", "shadow", "stop"]).output.strip() == "shadow v2 stopped"
    assert load_shadow(home) is None
    result = runner.invoke(cli, ["models", "shadow", "status"])
    assert result.exit_code == 2 and "no shadow is running" in result.output
    assert runner.invoke(cli, ["models", "shadow", "stop"]).output.strip() == "no shadow is running"


def test_status_scores_both_answers_with_the_registered_reward_model(
    home: Path, registry: ModelRegistry, reward_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.reward import load_registered_reward, reward_scores

    runner = CliRunner()
    runner.invoke(cli, ["models", "shadow", "v2"])
    log_shadowed_turns(home, 3)
    result = runner.invoke(cli, ["models", "shadow", "status", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)  # loading the reward model reports progress on stderr
    assert status["reward_model"] == "rm" and status["comparison"]["reward"]["n"] == 3
    model, tokenizer = load_registered_reward("rm", home)
    production, shadow = reward_scores(
        model, tokenizer, PROMPT, ["Every 6 months. [1]", "Replace it every 6 months. [1]"]
    )
    assert status["arms"]["production"]["mean_reward"] == pytest.approx(production, abs=1e-4)
    assert status["arms"]["shadow"]["mean_reward"] == pytest.approx(shadow, abs=1e-4)
    with LogStore(home=home) as store:
        shadow_state = load_shadow(home)
        assert shadow_state is not None
        rows = store.shadow_answers("v2", production="v1", since=shadow_state.started_at)
    assert {r.reward_model for r in rows} == {"rm"}

    def no_reload(*args: object, **kwargs: object) -> None:
        raise AssertionError("scored turns were scored again")

    monkeypatch.setattr("training.reward.load_registered_reward", no_reload)
    again = runner.invoke(cli, ["models", "shadow", "status", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["arms"] == status["arms"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["models", "shadow", "nope"], "no model version named 'nope'"),
        (["models", "shadow", "v1"], "v1 is production already"),
        (["models", "shadow", "v2", "--share", "0"], "--share must be a percentage"),
        (["models", "shadow", "v2", "--share", "150"], "--share must be a percentage"),
        (["models", "shadow", "status", "--reward", "v2"], "not a registered reward model"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    home: Path, registry: ModelRegistry, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    if argv[2] == "status":
        CliRunner().invoke(cli, ["models", "shadow", "v2"])
    before = shadow_path(home).read_text() if shadow_path(home).exists() else None
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    assert (shadow_path(home).read_text() if shadow_path(home).exists() else None) == before


def test_promoting_the_shadowed_version_ends_the_shadow(home: Path, registry: ModelRegistry) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["models", "shadow", "v2"])
    result = runner.invoke(cli, ["models", "promote", "v2", "--force"])
    assert result.exit_code == 0 and "shadow v2 ended" in result.output
    assert load_shadow(home) is None
    runner.invoke(cli, ["models", "shadow", "v1"])  # v1 is a candidate again
    runner.invoke(cli, ["models", "promote", "v2", "--force"])  # another version: the shadow stays
    assert load_shadow(home) is not None


def test_status_says_when_production_changed_under_the_shadow(home: Path, registry: ModelRegistry) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["models", "shadow", "v2"])
    log_shadowed_turns(home, 3)
    quiet = runner.invoke(cli, ["models", "shadow", "status"])
    assert quiet.exit_code == 0 and "Production changed" not in quiet.output
    assert (
        json.loads(runner.invoke(cli, ["models", "shadow", "status", "--json"]).output)["production_changed"]
        is None
    )

    rolled_back = runner.invoke(cli, ["models", "rollback"])
    assert rolled_back.exit_code == 0, rolled_back.output
    now = registry.production_name()
    assert now != "v1"
    shown = " ".join(runner.invoke(cli, ["models", "shadow", "status"]).output.split())
    assert (
        f"Production changed from v1 to {now} since the shadow started: no turn has been shadowed "
        f"since; restart the shadow (`supportloop models shadow v2`) to compare it with {now}."
    ) in shown
    status = json.loads(runner.invoke(cli, ["models", "shadow", "status", "--json"]).output)
    assert status["production_changed"].startswith(f"Production changed from v1 to {now}")
