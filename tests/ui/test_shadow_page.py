"""The console's Shadow page, driven by AppTest: an admin starts (validated like the CLI), reads,
promotes and stops a shadow; a reviewer reads it only; a production change under it is said."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from agent.models import ModelRegistry
from agent.shadow import DROPPED, FAILED, load_shadow, shadow_path, shadow_status, start_shadow
from agent.store import LogStore
from tests.agent.test_shadow import QUESTION, add_row, registry  # noqa: F401 (a fixture)
from tests.ui.conftest import open_app, texts

pytestmark = pytest.mark.usefixtures("registry")
START = "FormSubmitter:shadow-start-Start shadow"


def log_turns(store: LogStore, home: Path) -> None:
    """20 scored turns (the shadow always passes the grounding check, production half the time,
    groundedness 0.8 against 0.6), rewarded by ``rm``, one dropped turn and one failed."""
    shadow = load_shadow(home)
    assert shadow is not None
    for i in range(20):
        add_row(
            store,
            shadow,
            {"passed": i % 2 == 0, "action": "sent", "groundedness": 0.6, "chars": 40},
            {"passed": True, "action": "sent", "groundedness": 0.8, "chars": 50},
        )
    rows = store.shadow_answers("v2", production="v1", since=shadow.started_at)
    store.set_shadow_rewards("rm", {r.id: (0.5, 0.75) for r in rows})
    for outcome in (DROPPED, FAILED):
        cid = uuid.uuid4().hex[:12]
        store.ensure_conversation(cid)
        store.add_turn(cid, "customer", QUESTION)
        turn = store.add_turn(cid, "agent", "Every 6 months. [1]", model_version="v1")
        values = {"turn_id": str(turn.id), "conversation_id": cid, "outcome": outcome}
        store.add_shadow_answer(
            {"id": uuid.uuid4().hex, "shadow_version": "v2", "production_version": "v1", **values}
        )


def test_start_is_refused_like_the_cli_and_writes_nothing_then_starts(home: Path, admin: Any) -> None:
    at = open_app("pages/shadow.py", user=admin)
    assert any("No shadow is running" in i.value for i in at.info)
    options = at.selectbox(key="shadow-version").options
    assert (
        "v2" in options and "v1" not in options and "rm" not in options
    )  # not production, not a reward model

    at.button(key=START).click().run()
    assert any("Not started: choose a version" in e.value for e in at.error)
    at.selectbox(key="shadow-version").set_value("v2")
    for bad in (0.0, 150.0):
        at.number_input(key="shadow-share").set_value(bad)
        at.button(key=START).click().run()
        assert any("--share must be a percentage above 0 and at most 100" in e.value for e in at.error)
        assert not shadow_path(home).exists()

    at.number_input(key="shadow-share").set_value(25.0)
    at.button(key=START).click().run()
    running = load_shadow(home)
    assert running is not None and (running.version, running.share, running.production) == ("v2", 25.0, "v1")
    assert [m.value for m in at.metric][:2] == ["v2", "25%"]
    assert "No turn scored yet: v2 answers production's turns as they come." in texts(at)


def test_an_admin_sees_both_arms_the_paired_test_and_stops_it(home: Path, agent: Any, admin: Any) -> None:
    start_shadow(home, "v2", 50)
    log_turns(agent.store, home)
    at = open_app("pages/shadow.py", user=admin)
    assert [m.value for m in at.metric][:2] == ["v2", "50%"]
    figures = at.dataframe[0].value
    assert list(figures.columns) == ["production (v1)", "shadow (v2)"]
    assert figures.loc["Turns scored"].tolist() == ["20", "20"]
    assert figures.loc["Grounding pass rate"].tolist() == ["50%", "100%"]
    assert figures.loc["Mean groundedness"].tolist() == ["0.600", "0.800"]
    assert figures.loc["Mean reward"].tolist() == ["0.500", "0.750"]
    shown = texts(at)
    assert "20 scored, 1 dropped (the shadow's queue was full), 1 failed" in shown

    shadow = load_shadow(home)
    assert shadow is not None
    expected = shadow_status(agent.store, shadow, "rm")["comparison"]
    tests = at.dataframe[1].value
    assert tests.loc["grounding pass rate", "Turns paired"] == 20
    assert tests.loc["grounding pass rate", "Shadow − production"] == "+0.500"
    assert tests.loc["grounding pass rate", "p (better)"] == f"{expected['passed']['p_better']:.3g}"
    assert tests.loc["reward", "p (worse)"] == f"{expected['reward']['p_worse']:.3g}"
    assert expected["passed"]["p_better"] < 0.05
    assert "**Verdict:** v2 is better than production on grounding pass rate, groundedness, reward" in shown
    assert "Production changed" not in shown

    at.button(key="shadow-stop").click().run()
    assert load_shadow(home) is None
    assert any("No shadow is running" in i.value for i in at.info)


def test_promote_runs_models_promote_and_ends_the_shadow(home: Path, admin: Any) -> None:
    start_shadow(home, "v2")
    at = open_app("pages/shadow.py", user=admin)
    at.checkbox(key="shadow-force").check()
    at.button(key="shadow-promote").click().run()
    assert any("v2 is production now; the shadow ended" in s.value for s in at.success)
    assert "shadow v2 ended: it is production now" in at.code[0].value
    assert load_shadow(home) is None and ModelRegistry(home).production_name() == "v2"


def test_a_production_change_under_the_shadow_is_said(home: Path, admin: Any, tiny_model_dir: Path) -> None:
    start_shadow(home, "v2")
    versions = ModelRegistry(home)
    versions.register(name="v3", base_model=str(tiny_model_dir), kind="sft")
    versions.set_production("v3")  # another promotion, or a rollback, that did not end the shadow
    at = open_app("pages/shadow.py", user=admin)
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("Production changed from v1 to v3 since the shadow started")
    assert "restart the shadow (`supportloop models shadow v2`)" in warning


def test_a_reviewer_sees_the_shadow_but_cannot_change_it(home: Path, agent: Any, reviewer: Any) -> None:
    start_shadow(home, "v2", 40)
    log_turns(agent.store, home)
    at = open_app("pages/shadow.py", user=reviewer)
    assert [m.value for m in at.metric][:2] == ["v2", "40%"]
    assert at.dataframe[0].value.loc["Grounding pass rate"].tolist() == ["50%", "100%"]
    assert "**Verdict:** v2 is better than production" in texts(at)
    assert not at.button and not at.checkbox and not at.get("form")
