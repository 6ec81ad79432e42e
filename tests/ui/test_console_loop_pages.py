"""The console's knowledge tasks (feedback-reasons page) and canary page, driven by AppTest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.canary import canary_path, load_canary, start_canary
from agent.models import ModelRegistry
from tests.agent.test_canary import log_arm, registry  # noqa: F401 (a fixture)
from tests.agent.test_knowledge_tasks import DATA, raise_task
from tests.ui.conftest import open_app, texts

# ---------------------------------------------------------------------------- knowledge tasks


def test_a_reviewer_closes_a_knowledge_task_by_hand_only_with_a_note(agent: Any, reviewer: Any) -> None:
    task_id = raise_task(agent.store, "Do you ship to Puerto Rico?")
    at = open_app("pages/reasons.py", user=reviewer)
    assert "**Do you ship to Puerto Rico?** · :orange[open]" in texts(at)
    assert "`product-specifications` (0.60)" in texts(at)

    at.button(key=f"FormSubmitter:close-{task_id}-Close task").click().run()
    assert any("needs a note" in e.value for e in at.error)
    assert [t.id for t in agent.store.knowledge_tasks()] == [task_id]

    at.text_input(key=f"close-note-{task_id}").set_value("shipping-and-delivery.md covers it now")
    at.button(key=f"FormSubmitter:close-{task_id}-Close task").click().run()
    assert not at.exception and agent.store.knowledge_tasks() == []
    shown = texts(at)
    assert "No open knowledge task." in shown and "Closed knowledge tasks (1)" in shown
    assert "closed by riley: shipping-and-delivery.md covers it now" in shown


def test_the_page_closes_a_task_a_newer_document_covers(home: Path, reviewer: Any) -> None:
    """The page's own check, on a real index: the page written for the question was ingested after
    the thumbs-down, so loading the page closes the task and names the document."""
    from agent.config import load_config
    from agent.runtime import Agent
    from knowledge import Document, KnowledgeBase, KnowledgeConfig
    from ui import services
    from ui.demo import DemoGenerator, KeywordKnowledge

    gap = next(json.loads(line) for line in DATA.read_text().splitlines() if "puerto-rico" in line)
    knowledge = KnowledgeBase(KnowledgeConfig(embed_threads=1))
    real = Agent(
        DemoGenerator(KeywordKnowledge()), knowledge, reviewer_store := services.store(), load_config()
    )
    services.use_agent(real)
    try:
        raise_task(reviewer_store, gap["question"])
        knowledge.ingest_documents(
            [Document("careers", "careers.md", "# Careers\n\nWe are hiring in Lisbon.")]
        )
        at = open_app("pages/reasons.py", user=reviewer)
        assert len(reviewer_store.knowledge_tasks()) == 1 and "Closed knowledge tasks" not in texts(at)

        knowledge.ingest_documents(
            [Document(gap["doc_id"], "puerto-rico.md", gap["text"], format="markdown")]
        )
        at = open_app("pages/reasons.py", user=reviewer)
        assert reviewer_store.knowledge_tasks() == []
        assert "closed by document `gap-puerto-rico`" in texts(at)
    finally:
        knowledge.close()


# ---------------------------------------------------------------------------- canary


@pytest.mark.usefixtures("registry")
def test_an_admin_starts_a_canary_that_validates_like_the_cli_and_aborts_it(home: Path, admin: Any) -> None:
    at = open_app("pages/canary.py", user=admin)
    assert any("No canary is running" in i.value for i in at.info)
    options = at.selectbox(key="canary-version").options
    assert (
        "v2" in options and "v1" not in options and "rm" not in options
    )  # not production, not a reward model

    at.selectbox(key="canary-version").set_value("v2")
    at.number_input(key="canary-share").set_value(60.0)
    at.button(key="FormSubmitter:canary-start-Start canary").click().run()
    assert any("--share must be a percentage above 0 and at most 50" in e.value for e in at.error)
    assert not canary_path(home).exists()

    at.number_input(key="canary-share").set_value(10.0)
    at.button(key="FormSubmitter:canary-start-Start canary").click().run()
    running = load_canary(home)
    assert running is not None and running.version == "v2" and running.share == 10.0
    log_arm(admin_store(at), "v1", ups=45, downs=55)
    log_arm(admin_store(at), "v2", ups=60, downs=40)
    at.run()
    assert [m.value for m in at.metric][:2] == ["v2", "10%"]
    table = at.dataframe[0].value
    assert list(table.columns) == ["production (v1)", "canary (v2)"]
    assert table.loc["Thumbs-up rate"].tolist() == ["45%", "60%"]
    shown = texts(at)
    assert "p-value **0.0337**" in shown and "significantly higher (+15.0 points" in shown

    at.button(key="canary-abort").click().run()
    assert load_canary(home) is None
    assert any("No canary is running" in i.value for i in at.info)


def admin_store(at: Any) -> Any:
    from ui import services

    return services.store()


@pytest.mark.usefixtures("registry")
def test_promote_runs_models_promote_and_ends_the_canary(home: Path, admin: Any) -> None:
    start_canary(home, "v2", 10)
    at = open_app("pages/canary.py", user=admin)
    at.button(key="canary-promote").click().run()  # the gate needs an evaluation of v2: refused
    assert any("v2 was not promoted" in e.value for e in at.error)
    assert "no evaluation of v2 against production v1" in at.code[0].value
    assert load_canary(home) is not None and ModelRegistry(home).production_name() == "v1"

    at.checkbox(key="canary-force").check()
    at.button(key="canary-promote").click().run()
    assert any("v2 is production now" in s.value for s in at.success)
    assert "canary v2 ended: it is production for everyone" in at.code[0].value
    assert load_canary(home) is None and ModelRegistry(home).production_name() == "v2"


@pytest.mark.usefixtures("registry")
def test_a_reviewer_sees_the_canary_but_cannot_change_it(home: Path, reviewer: Any) -> None:
    start_canary(home, "v2", 5)
    at = open_app("pages/canary.py", user=reviewer)
    assert [m.value for m in at.metric][:2] == ["v2", "5%"]
    assert "Not enough thumbs in both arms" in texts(at)
    assert not [b for b in at.button if b.key in ("canary-promote", "canary-abort")]
    assert not at.get("form")
