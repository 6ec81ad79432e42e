"""What the pages share: the agent (built once per process), sign-in, and small view helpers.

Invariants:

* **One agent per process and data home.** ``chat_agent()`` builds the model, knowledge index and
  log store once with ``st.cache_resource`` (keyed by data home, config file and mode) and every
  rerun of every session reuses it. The review console never loads the model: ``console_agent()``
  is an ``Agent`` over the same log store whose generator refuses to generate.
* **Modes.** ``SUPPORTLOOP_UI_FAKE_MODEL=1``: the keyword demo knowledge and the demo generator
  (``ui.demo``), streaming one word every ``SUPPORTLOOP_UI_FAKE_DELAY`` seconds.
  ``SUPPORTLOOP_UI_KEYWORD_KNOWLEDGE=1``: the real model over the keyword demo knowledge. Tests
  may also install an agent of their own with ``use_agent()``.
* **Console access** needs a signed-in user (``LogStore.authenticate``) in the session; admins
  also run training rounds. Every console page calls ``require_user()`` first. A sign-in is a
  console session in the store whose token the browser keeps in an ``HttpOnly`` cookie set by the
  server (``ui.session_cookie``; no page script can read it), so it survives a page reload;
  signing out ends it in the store.
* Pages go through ``agent``'s and ``training``'s public APIs only: no SQL in ``ui/``.
"""

from __future__ import annotations

import os
import statistics
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import streamlit as st

from agent.config import AgentConfig, load_config
from agent.errors import GenerationError
from agent.feedback_reasons import SHOULD_HAND_OFF
from agent.generator import GenerationOptions, Usage
from ui import session_cookie

if TYPE_CHECKING:
    from agent.runtime import Agent
    from agent.store import LogStore, User

FAKE_MODEL_ENV = "SUPPORTLOOP_UI_FAKE_MODEL"
FAKE_DELAY_ENV = "SUPPORTLOOP_UI_FAKE_DELAY"
KEYWORD_KNOWLEDGE_ENV = "SUPPORTLOOP_UI_KEYWORD_KNOWLEDGE"
USER_KEY = "console_user"
ROLE_ICONS = {
    "customer": ":material/person:",
    "agent": ":material/smart_toy:",
    "human": ":material/support_agent:",
    "system": ":material/info:",
}
LABELS = (
    "correct",
    "wrong answer",
    "incomplete",
    "hallucination",
    SHOULD_HAND_OFF,  # becomes a hand-off training example (data compile)
    "unnecessary escalation",
    "tone",
    "outdated docs",
)

_override: dict[str, Agent] = {}


# ------------------------------------------------------------------------------- the agent


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def mode() -> str:
    """ "demo" (no model), "keyword" (real model, keyword knowledge) or "real"."""
    if _flag(FAKE_MODEL_ENV):
        return "demo"
    return "keyword" if _flag(KEYWORD_KNOWLEDGE_ENV) else "real"


def config() -> AgentConfig:
    """The effective configuration (cheap: one small YAML file at most)."""
    return load_config(os.environ.get("SUPPORTLOOP_CONFIG") or None)


def use_agent(agent: Agent | None) -> None:
    """Serve this agent instead of building one (tests); ``None`` restores the default."""
    _override.clear()
    if agent is not None:
        _override["agent"] = agent


def chat_agent() -> Agent:
    """The process's agent for customers: built on first use, reused by every rerun."""
    if "agent" in _override:
        return _override["agent"]
    cfg = config()
    return _build_agent(str(cfg.home), cfg.source or "", mode(), os.environ.get(FAKE_DELAY_ENV, ""))


def console_agent() -> Agent:
    """An agent for the review console: same log store and config, never loads the model."""
    if "agent" in _override:
        return _override["agent"]
    cfg = config()
    return _build_console_agent(str(cfg.home), cfg.source or "")


def store() -> LogStore:
    return console_agent().store


def knowledge() -> Any:
    """The knowledge base the console checks knowledge tasks against: the installed agent's
    (tests), the configured index in the real mode (loaded once; no model), else None (the
    demo modes' keyword knowledge records no ingest times, so nothing could close a task)."""
    if "agent" in _override:
        return _override["agent"].knowledge
    if mode() != "real":
        return None
    cfg = config()
    return _build_knowledge(str(cfg.home), cfg.source or "")


@st.cache_resource(show_spinner="Loading the knowledge index…")
def _build_knowledge(home: str, config_file: str) -> Any:
    from agent.knowledge import open_knowledge

    return open_knowledge(config())


@st.cache_resource(show_spinner="Loading the support model and knowledge index…")
def _build_agent(home: str, config_file: str, mode: str, delay: str) -> Agent:
    # The arguments are the cache key: another data home or config gets its own agent.
    from agent.runtime import Agent

    cfg = config()
    if mode == "real":
        return Agent.from_config(cfg)
    from agent.store import LogStore
    from ui.demo import DemoGenerator, KeywordKnowledge

    knowledge = KeywordKnowledge()
    if mode == "demo":
        generator: Any = DemoGenerator(knowledge, delay_s=float(delay or 0.05))
    else:
        from agent.generator import build_generator

        generator = build_generator(cfg)
    return Agent(model=generator, knowledge=knowledge, store=LogStore.from_config(cfg), config=cfg)


class _NoModel:
    """The console's generator: the console answers customers as a person, never as the model."""

    version = "console"
    adapter = None
    last_usage = Usage()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(
        self, messages: Any, options: GenerationOptions, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        raise GenerationError("the review console does not generate answers")


@st.cache_resource(show_spinner=False)
def _build_console_agent(home: str, config_file: str) -> Agent:
    from agent.runtime import Agent
    from agent.store import LogStore

    cfg = config()
    return Agent(model=_NoModel(), knowledge=None, store=LogStore.from_config(cfg), config=cfg)


# ------------------------------------------------------------------------------- hand-offs


def handoff_outlook() -> tuple[int, float | None]:
    """(console users signed in now, median minutes to a person's first answer in recent
    hand-offs or None without history), refreshed at most every 30 s."""
    return _handoff_outlook(config().database_url)


@st.cache_data(ttl=30, show_spinner=False)
def _handoff_outlook(database_url: str) -> tuple[int, float | None]:
    return store().console_users_online(), first_answer_minutes(store())


def first_answer_minutes(log: LogStore, recent: int = 20) -> float | None:
    """The median minutes from a hand-off to the first answer by a person, over the ``recent``
    latest hand-offs that got one; None when there are none."""
    waits = []
    for row in reversed(log.escalations(open_only=False)):
        turns = log.turns(row["conversation_id"])
        answer = next(
            (t for t in turns if t.role == "human" and t.created_at and t.created_at >= row["created_at"]),
            None,
        )
        if answer is not None and answer.created_at is not None:
            waits.append((answer.created_at - row["created_at"]).total_seconds() / 60)
        if len(waits) >= recent:
            break
    return statistics.median(waits) if waits else None


# ------------------------------------------------------------------------------- sign-in


# A sign-in lives in the store as a console session; the browser keeps its token in a cookie, so
# a page reload (a new Streamlit session) finds the user again. Only the token's hash is stored.
SESSION_COOKIE = session_cookie.SESSION_COOKIE
TOKEN_KEY = "console_session_token"
COOKIE_AGE_KEY = "console_cookie_max_age"


def current_user() -> User | None:
    """The signed-in user: this Streamlit session's, else the one the session cookie names."""
    user: User | None = st.session_state.get(USER_KEY)
    if user is None and st.session_state.get(TOKEN_KEY) is None:
        token = _cookie_token()
        user = store().user_for_session(token) if token else None
        if user is not None:
            st.session_state[USER_KEY], st.session_state[TOKEN_KEY] = user, token
        elif token:  # ended, expired or disabled: look no further, and clear the cookie
            st.session_state[TOKEN_KEY] = ""
    return user


def sign_in(username: str, password: str) -> User | None:
    from agent.store import CONSOLE_SESSION_TTL_S

    user = store().authenticate(username, password)
    if user is not None:
        token = store().start_console_session(user)
        st.session_state[USER_KEY], st.session_state[TOKEN_KEY] = user, token
        st.session_state[COOKIE_AGE_KEY] = CONSOLE_SESSION_TTL_S
    return user


def sign_out() -> None:
    """Ends the session in the store (every tab and reload is signed out) and clears the cookie."""
    token = st.session_state.get(TOKEN_KEY) or _cookie_token()
    if token:
        store().end_console_session(token)
    st.session_state.pop(USER_KEY, None)
    st.session_state[TOKEN_KEY] = ""  # signed out: the cookie is cleared, and not read again here


def write_session_cookie() -> None:
    """Bring the browser's cookie in line with this session's sign-in (called once per script run).

    The page gets a one-time code, never the token, and posts it to the server, which sets the
    cookie ``HttpOnly`` (``ui.session_cookie``). The script element is sent on every run until the
    browser holds the cookie: a run that ends in ``st.rerun`` or ``st.switch_page`` (as sign-in
    and sign-out do) may never mount it."""
    token = st.session_state.get(TOKEN_KEY)
    if token is None or (_cookie_token() or "") == token:
        return  # never signed in or out here, or the connection already carries it
    max_age = int(st.session_state.get(COOKIE_AGE_KEY, 0)) if token else 0
    st.html(
        session_cookie.exchange_script(session_cookie.issue(token, max_age)), unsafe_allow_javascript=True
    )


def _cookie_token() -> str | None:
    try:
        value = st.context.cookies.get(SESSION_COOKIE)
    except Exception:  # no browser connection (bare mode)
        return None
    return value if isinstance(value, str) and value else None  # AppTest hands back a stand-in


def login_form(key: str = "login", *, heading: bool = True) -> None:
    """The sign-in form; reruns the page once the user is in."""
    with st.form(key, border=True):
        if heading:
            st.markdown("#### :material/login: Support console sign-in")
        username = st.text_input("Username", key=f"{key}-username", autocomplete="username")
        password = st.text_input("Password", type="password", key=f"{key}-password")
        submitted = st.form_submit_button("Sign in", type="primary", width="stretch")
    if submitted:
        if not username.strip() or not password:
            st.error("Enter your username and password.")
        elif sign_in(username, password) is None:
            st.error("Wrong username or password, or the account is disabled.")
        else:
            st.toast(f"Signed in as {username.strip()}", icon=":material/check_circle:")
            st.rerun()
    if not store().list_users():
        st.info(
            "No console accounts exist yet. Create the first one on the server:\n\n"
            "```\nsupportloop users create YOUR_NAME --role admin\n```",
            icon=":material/info:",
        )


def require_user(role: str | None = None) -> User:
    """The signed-in user; otherwise a refusal with the sign-in form, and the page stops here."""
    user = current_user()
    if user is None:
        st.warning("The review console is for the support team. Sign in to continue.", icon=":material/lock:")
        login_form()
        st.stop()
    if role is not None and user.role != role:
        st.error(
            f"This page needs the **{role}** role; you are signed in as a {user.role}.",
            icon=":material/block:",
        )
        st.stop()
    return user


# ------------------------------------------------------------------------------- view helpers


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """'just now', '5 min ago', '3 h ago', '2 days ago', or the date."""
    if when is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 7 * 86400:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days > 1 else ''} ago"
    return f"{when:%Y-%m-%d}"


def short_id(conversation_id: str) -> str:
    return conversation_id if len(conversation_id) <= 12 else conversation_id[:8] + "…"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"
