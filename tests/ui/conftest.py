"""UI test fixtures: the demo agent over a temp data home, signed-in users, an AppTest opener."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
PASSWORD = "correct horse battery"


@pytest.fixture
def agent(home: Path) -> Iterator[Any]:
    """The agent every page gets: the demo generator (queue exact replies with ``enqueue``) over
    the keyword sample knowledge and the temp home's log store."""
    from agent.config import load_config
    from agent.runtime import Agent
    from agent.store import LogStore
    from ui import services
    from ui.demo import DemoGenerator, KeywordKnowledge

    knowledge = KeywordKnowledge()
    agent = Agent(DemoGenerator(knowledge), knowledge, LogStore(home=home), load_config())
    services.use_agent(agent)
    yield agent
    services.use_agent(None)
    agent.close()


@pytest.fixture
def reviewer(agent: Any) -> Any:
    return agent.store.create_user("riley", PASSWORD, "reviewer")


@pytest.fixture
def admin(agent: Any) -> Any:
    return agent.store.create_user("ada", PASSWORD, "admin")


def open_app(page: str | None = None, *, user: Any = None, query: dict[str, str] | None = None) -> Any:
    """Run the app (as ``user``, if given) and switch to ``page`` (e.g. "pages/review.py")."""
    from streamlit.testing.v1 import AppTest

    from ui import services

    at = AppTest.from_file(str(APP), default_timeout=60)
    if user is not None:
        at.session_state[services.USER_KEY] = user
    at.run()
    if page is not None:
        at.query_params.update(query or {})
        at.switch_page(page).run()
    elif query:
        at.query_params.update(query)
        at.run()
    assert not at.exception, at.exception
    return at


def texts(at: Any) -> str:
    """Everything the page shows as text, for loose assertions."""
    parts = []
    for kind in ("markdown", "caption", "title", "subheader", "info", "warning", "error", "success", "toast"):
        parts += [str(element.value) for element in getattr(at, kind)]
    parts += [str(element.label) for element in at.expander]
    return "\n".join(parts)
