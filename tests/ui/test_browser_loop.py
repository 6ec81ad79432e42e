"""The console's knowledge tasks and canary page in headless Chromium, against a real
``supportloop ui`` server (the demo generator; see ``tests/ui/test_browser.py`` for the harness)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.canary import load_canary
from agent.models import ModelRegistry
from agent.store import LogStore
from tests.agent.test_knowledge_tasks import raise_task
from tests.ui.conftest import PASSWORD
from tests.ui.test_browser import browser, open_page, sign_in, start_ui  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser
QUESTION = "Do you ship the Aero 300 to Puerto Rico?"


@pytest.fixture(scope="module")
def loop_home(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    home = tmp_path_factory.mktemp("ui-loop-home")
    (home / "models").mkdir()
    with LogStore(home=home) as store:
        store.create_user("riley", PASSWORD, "admin")
        raise_task(store, QUESTION)
    registry = ModelRegistry(home)
    for name in ("v1", "v2"):
        registry.register(name=name, base_model=str(tiny_model_dir), kind="sft")
    registry.set_production("v1")
    return home


@pytest.fixture(scope="module")
def loop_ui(loop_home: Path) -> Iterator[str]:
    yield from start_ui(loop_home, SUPPORTLOOP_UI_FAKE_MODEL="1", SUPPORTLOOP_UI_FAKE_DELAY="0")


def console_page(browser: Any, url: str, path: str, shown: str) -> Any:  # noqa: F811
    """A signed-in console page at ``path``, once it shows ``shown``."""
    from playwright.sync_api import expect

    console = sign_in(browser.new_context(), url)
    open_page(console, f"{url}/{path}")
    expect(console.get_by_text(shown).first).to_be_visible(timeout=30_000)
    return console


def test_a_knowledge_task_is_listed_and_closed_with_a_note(
    browser: Any,  # noqa: F811
    loop_ui: str,
    loop_home: Path,
) -> None:
    from playwright.sync_api import expect

    console = console_page(browser, loop_ui, "reasons", QUESTION)
    console.get_by_role("textbox", name="Close by hand").fill("shipping-and-delivery.md has Puerto Rico now")
    console.get_by_role("button", name="Close task").click()
    expect(console.get_by_text("No open knowledge task.")).to_be_visible(timeout=30_000)
    console.get_by_text("Closed knowledge tasks (1)").click()
    expect(
        console.get_by_text("closed by riley: shipping-and-delivery.md has Puerto Rico now")
    ).to_be_visible()
    with LogStore(home=loop_home) as store:
        assert store.knowledge_tasks() == []
    console.context.close()


def test_an_admin_starts_and_aborts_a_canary(
    browser: Any,  # noqa: F811
    loop_ui: str,
    loop_home: Path,
) -> None:
    from playwright.sync_api import expect

    console = console_page(browser, loop_ui, "canary", "No canary is running")
    console.get_by_test_id("stSelectbox").click()
    console.get_by_role("option", name="v2").click()
    console.get_by_role("button", name="Start canary").click()
    expect(console.get_by_text("Canary version")).to_be_visible(timeout=30_000)
    expect(console.get_by_text("Not enough thumbs in both arms")).to_be_visible()
    running = load_canary(loop_home)
    assert running is not None and running.version == "v2" and running.share == 10.0

    console.get_by_role("button", name="Abort the canary").click()
    expect(console.get_by_text("No canary is running")).to_be_visible(timeout=30_000)
    assert load_canary(loop_home) is None
    console.context.close()
