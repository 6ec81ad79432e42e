"""The console's Shadow page in headless Chromium, against a real ``supportloop ui`` server (the
demo generator; see ``tests/ui/test_browser.py`` for the harness): an admin's start is refused on
a bad share and writes nothing, then starts, and the shadow stops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.shadow import load_shadow, shadow_path
from tests.ui.test_browser import browser  # noqa: F401 (a fixture)
from tests.ui.test_browser_loop import console_page, loop_home, loop_ui  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def test_an_admin_starts_and_stops_a_shadow(
    browser: Any,  # noqa: F811
    loop_ui: str,  # noqa: F811
    loop_home: Path,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    console = console_page(browser, loop_ui, "shadow", "No shadow is running")
    console.get_by_test_id("stSelectbox").click()
    console.get_by_role("option", name="v2").click()
    console.get_by_role("spinbutton").fill("150")
    console.get_by_role("button", name="Start shadow").click()
    expect(console.get_by_text("--share must be a percentage above 0 and at most 100")).to_be_visible(
        timeout=30_000
    )
    assert not shadow_path(loop_home).exists()

    console.get_by_role("spinbutton").fill("60")
    console.get_by_role("button", name="Start shadow").click()
    expect(console.get_by_text("Shadow version")).to_be_visible(timeout=30_000)
    expect(console.get_by_text("No turn scored yet: v2 answers production's turns")).to_be_visible()
    running = load_shadow(loop_home)
    assert running is not None and (running.version, running.share, running.production) == ("v2", 60.0, "v1")

    console.get_by_role("button", name="Stop the shadow").click()
    expect(console.get_by_text("No shadow is running")).to_be_visible(timeout=30_000)
    assert load_shadow(loop_home) is None
    console.context.close()
