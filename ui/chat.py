"""The customer chat, shown at ``/`` and, for iframes on a company's site, at ``/widget``.

Invariants:

* **The log store is what is shown**; the reply in progress and the queued messages come from
  the process's ``ReplyWorker`` (``ui.replies``), which generates outside this script run. A
  reload or a second message never loses anything: the page only follows.
* **A chat is resumed by an unguessable token** in the URL (``?c=<token>``); the conversation id
  is a hash of it, so ids seen elsewhere (console, logs, API) cannot open a customer's chat.
* Customers see the chat only: no console navigation, branding from ``config.branding``.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any

import streamlit as st

from agent.config import AgentConfig, Branding, Persona
from agent.errors import InputError, NotFoundError, SupportloopError
from agent.feedback_reasons import THUMBS_DOWN_REASONS, reason_label, reason_of
from agent.runtime import Agent
from agent.types import Citation, Conversation, Feedback, Turn
from ui import services
from ui.replies import Progress, ReplyWorker, worker_for

TOKEN_PARAM = "c"
TOKEN_KEY = "chat_token"
INPUT_KEY = "chat-input"
CSAT = "CSAT"  # the comment that marks a customer's end-of-conversation rating
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_MARKER = re.compile(r"\[(\d+)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
SNIPPET_CHARS = 280
POLL_S = 0.15

USER_AVATAR = ":material/person:"
PERSON_AVATAR = ":material/support_agent:"


# ------------------------------------------------------------------------------- pure helpers


def conversation_for(token: str) -> str:
    """The conversation a resume token opens (a one-way hash: an id never reveals its token)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The passage's opening sentences that fit in ``limit`` characters, never cut mid-sentence
    (a first sentence longer than the limit is cut at a word, with an ellipsis)."""
    lines = [re.sub(r"^\s*(?:\d+\.|[-*+])\s+", "", line) for line in text.splitlines()]
    plain = " ".join(line for line in lines if not line.lstrip().startswith("|"))
    plain = " ".join(re.sub(r"[*_`#>]", " ", plain).split())
    kept = ""
    for sentence in _SENTENCE_END.split(plain):
        if len(kept) + len(sentence) + 1 > limit:
            break
        kept = f"{kept} {sentence}".strip()
    if kept:
        return kept
    return plain[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def numbering(citations: Sequence[Citation]) -> dict[int, int]:
    """Passage number -> the number the customer sees: sources are numbered from [1]."""
    return {c.index: n for n, c in enumerate(sorted(citations, key=lambda c: c.index), start=1)}


def renumber(text: str, numbers: dict[int, int]) -> str:
    """The answer with its ``[n]`` markers matching the sources as shown."""
    return _MARKER.sub(lambda m: f"[{numbers.get(int(m.group(1)), m.group(1))}]", text)


def cut_short(turn: Turn, config: AgentConfig) -> bool:
    """The answer stopped at the generation limit (or the time limit) before the model finished;
    an extractive fallback quote is complete, so it is not flagged."""
    meta = turn.metadata
    checked = meta.get("grounding") or {}
    if meta.get("timed_out"):
        return True
    if checked.get("action", "sent") != "sent":
        return False
    if checked.get("dropped_tail"):
        return True
    limit = config.generation.max_new_tokens
    return not checked.get("checked", True) and (turn.completion_tokens or 0) >= limit


def source_rows(turn: Turn, branding: Branding) -> list[tuple[int, str, str, str | None]]:
    """(number shown, page title, snippet, link) for each source of an agent turn."""
    passages = turn.metadata.get("passages") or []
    numbers = numbering(turn.citations)
    rows = []
    for citation in sorted(turn.citations, key=lambda c: c.index):
        passage = passages[citation.index - 1] if 0 < citation.index <= len(passages) else {}
        title = passage.get("title") or _title_from(citation.source)
        text = passage.get("text") or citation.snippet
        link = branding.source_url.format(doc_id=citation.doc_id) if branding.source_url else None
        rows.append((numbers[citation.index], title, snippet(text), link))
    return rows


def _title_from(source: str) -> str:
    stem = re.sub(r"\.[A-Za-z0-9]+$", "", source.rsplit("/", 1)[-1])
    return stem.replace("-", " ").replace("_", " ").strip().capitalize() or "Help article"


def wait_text(online: int, minutes: float | None) -> str:
    """What a customer is told to expect after a hand-off."""
    if online <= 0:
        return (
            "No one from the team is online right now; they'll answer here as soon as they're back. "
            "Keep this page's link to come back to this chat."
        )
    people = "1 person" if online == 1 else f"{online} people"
    if minutes is None:
        return f"{people} from the team online now; expect an answer within a few minutes."
    expected = "under a minute" if minutes < 1 else f"about {round(minutes)} min"
    return f"{people} from the team online now; expected wait: {expected}."


# ------------------------------------------------------------------------------- session state


def notify(kind: str, message: str) -> None:
    """A message for the next run (a turn ends with a rerun that redraws from the store)."""
    st.session_state["chat_notice"] = (kind, message)


def conversation_id() -> str:
    """The URL's chat (``?c=<token>``), else this session's, else a new one."""
    token = st.query_params.get(TOKEN_PARAM)
    if token is not None and not _TOKEN.fullmatch(token):
        notify("warning", "That chat link is not valid, so this is a new chat.")
        token = None
    token = token or st.session_state.get(TOKEN_KEY) or new_token()
    st.session_state[TOKEN_KEY] = token
    if st.query_params.get(TOKEN_PARAM) != token:
        st.query_params[TOKEN_PARAM] = token
    return conversation_for(token)


def start_over() -> None:
    st.session_state[TOKEN_KEY] = new_token()
    st.query_params[TOKEN_PARAM] = st.session_state[TOKEN_KEY]


def load(agent: Agent, cid: str) -> Conversation | None:
    try:
        return agent.store.get_conversation(cid)
    except NotFoundError:
        return None


def _send(worker: ReplyWorker, cid: str, key: str, keep: bool) -> None:
    """A message from the box (or a suggestion): queued, or refused with the text kept."""
    text = st.session_state.get(key)
    if not isinstance(text, str):
        return
    try:
        worker.submit(cid, text)
    except InputError as exc:
        notify("warning", str(exc))
        if keep:
            st.session_state[key] = text  # back in the box: the customer's typing is not lost
        return
    if not keep:
        st.session_state[key] = None  # a suggestion is sent once


# ------------------------------------------------------------------------------- feedback


def _store_feedback(agent: Agent, turn_id: str, key: str, kind: str) -> None:
    value = st.session_state.get(key)
    if value is None:
        return
    try:
        if kind == "thumbs":
            agent.feedback(turn_id, thumbs=1 if value == 1 else -1)
        else:
            agent.feedback(turn_id, rating=int(value) + 1)
    except SupportloopError as exc:
        st.toast(f"Sorry, your feedback could not be saved: {exc}", icon=":material/warning:")
        return
    st.toast("Thanks for the feedback!", icon=":material/favorite:")


def _store_reason(agent: Agent, turn_id: str, key: str, comment_key: str | None = None) -> None:
    reason = st.session_state.get(key)
    if reason is None or (reason == "other" and comment_key is None):
        return  # "other" waits for its text (or an empty send)
    comment = (st.session_state.get(comment_key) or "").strip() if comment_key else ""
    try:
        agent.feedback(turn_id, thumbs=-1, labels=[reason_label(reason)], comment=comment or None)
    except SupportloopError as exc:
        st.toast(f"Sorry, your feedback could not be saved: {exc}", icon=":material/warning:")
        return
    st.toast("Thanks, that helps us fix it.", icon=":material/favorite:")


def _store_csat(agent: Agent, turn_id: str, key: str) -> None:
    value = st.session_state.get(key)
    if value is not None:
        agent.feedback(turn_id, rating=int(value) + 1, comment=CSAT)
        st.toast("Thank you! Your rating helps us improve.", icon=":material/favorite:")


def feedback_widgets(agent: Agent, turn: Turn, given: list[Feedback]) -> None:
    thumbs = next((f.thumbs for f in reversed(given) if f.thumbs is not None), None)
    rating = next((f.rating for f in reversed(given) if f.rating is not None and f.comment != CSAT), None)
    left, right, _ = st.columns([1, 2, 3], vertical_alignment="center")
    with left:
        key = f"thumbs-{turn.id}"
        st.feedback(
            "thumbs",
            key=key,
            default=None if thumbs is None else int(thumbs > 0),
            on_change=_store_feedback,
            args=(agent, turn.id, key, "thumbs"),
        )
    with right:
        key = f"stars-{turn.id}"
        st.feedback(
            "stars",
            key=key,
            default=None if rating is None else rating - 1,
            on_change=_store_feedback,
            args=(agent, turn.id, key, "stars"),
        )
    if thumbs is not None and thumbs < 0:
        reason_picker(agent, turn, given)


def reason_picker(agent: Agent, turn: Turn, given: list[Feedback]) -> None:
    """After a thumbs-down: what went wrong (optional, one click; "Other" takes a few words)."""
    reason = next((r for f in reversed(given) if (r := reason_of(f.labels))), None)
    if reason is not None:
        st.caption(f":material/check: Thanks, noted: {THUMBS_DOWN_REASONS[reason]}.")
        return
    key = f"reason-{turn.id}"
    choice = st.pills(
        "What went wrong? (optional)",
        list(THUMBS_DOWN_REASONS),
        format_func=THUMBS_DOWN_REASONS.__getitem__,
        key=key,
        on_change=_store_reason,
        args=(agent, turn.id, key),
    )
    if choice == "other":
        comment_key = f"reason-text-{turn.id}"
        st.text_input("Tell us what went wrong (optional)", key=comment_key, max_chars=500)
        st.button(
            "Send feedback",
            key=f"reason-send-{turn.id}",
            on_click=_store_reason,
            args=(agent, turn.id, key, comment_key),
        )


# ------------------------------------------------------------------------------- rendering


def assistant_avatar(branding: Branding) -> str:
    return branding.logo or ":material/smart_toy:"


def sources(turn: Turn, branding: Branding) -> None:
    rows = source_rows(turn, branding)
    if not rows:
        return
    label = "Source" if len(rows) == 1 else f"Sources ({len(rows)})"
    with st.expander(label, icon=":material/description:"):
        for number, title, text, link in rows:
            heading = f"[{title}]({link})" if link else title
            st.markdown(f"**[{number}] {heading}**  \n{text}")


def render_turn(
    agent: Agent, turn: Turn, feedback: dict[str, list[Feedback]], persona: Persona, branding: Branding
) -> None:
    if turn.role == "customer":
        with st.chat_message("user", avatar=USER_AVATAR):
            st.markdown(turn.text)
    elif turn.role == "human":
        with st.chat_message("human", avatar=PERSON_AVATAR):
            st.markdown(f"**{turn.author or 'Support team'}** · {persona.company} support team · _a person_")
            st.markdown(turn.text)
    elif turn.role == "agent":
        with st.chat_message("assistant", avatar=assistant_avatar(branding)):
            st.markdown(renumber(turn.text, numbering(turn.citations)))
            if cut_short(turn, agent.config):
                st.caption(
                    ":material/more_horiz: This answer was cut short. Ask me to go on, or ask for a person."
                )
            sources(turn, branding)
            if turn.model_version and not turn.metadata.get("escalation_reason"):
                feedback_widgets(agent, turn, feedback.get(turn.id or "", []))
    # system turns are internal notes; a hand-off's status is shown once, by `waiting_for_person`


def typing(name: str, since: float) -> None:
    elapsed = int(time.monotonic() - since)
    clock = f" · {elapsed} s" if elapsed >= 3 else ""
    st.markdown(
        f'<p class="sl-typing" role="status">{html.escape(name)} is typing…{clock}</p>',
        unsafe_allow_html=True,
    )


def live_tail(progress: Progress, shown_turns: int, name: str, branding: Branding, since: float) -> None:
    """The reply in progress and the messages waiting for their turn."""
    if progress.active is not None:
        if shown_turns <= progress.base:  # not in the store when this run read it
            with st.chat_message("user", avatar=USER_AVATAR):
                st.markdown(progress.active)
        with st.chat_message("assistant", avatar=assistant_avatar(branding)):
            if progress.text:
                st.markdown(progress.text + " ▍")
            else:
                typing(name, since)
    for message in progress.queued:
        with st.chat_message("user", avatar=USER_AVATAR):
            st.markdown(message)
            st.caption(f":material/schedule: Sent. {name} will answer this next.")


def follow(
    slot: Any, worker: ReplyWorker, cid: str, start: Progress, shown_turns: int, name: str, branding: Branding
) -> None:
    """Redraw the live tail until a reply finishes, then rerun: the finished reply is in the store.
    ``start``: the progress read before this run read the store."""
    if not start.busy:
        return
    active, since, drawn = start.active, time.monotonic(), None
    while True:
        progress = worker.progress(cid)
        if progress.finished != start.finished or not progress.busy:
            st.rerun()  # the finished reply is in the store now
        if progress.active != active:
            active, since = progress.active, time.monotonic()
        view = (progress.active, progress.text, progress.queued, int(time.monotonic() - since))
        if view != drawn:
            with slot.container():
                live_tail(progress, shown_turns, name, branding, since)
            drawn = view
        time.sleep(POLL_S)


@st.fragment(run_every=2)
def waiting_for_person(agent: Agent, cid: str, seen: int, status: str) -> None:
    """While a person has the conversation: one status line, and a redraw when they answer."""
    conversation = load(agent, cid)
    if conversation is not None and (len(conversation.turns) != seen or conversation.status != status):
        st.rerun(scope="app")
    online, minutes = services.handoff_outlook()
    st.info(
        f"**What happens next:** a member of our support team reads this chat and replies right here. "
        f"{wait_text(online, minutes)}",
        icon=":material/support_agent:",
    )


def csat(agent: Agent, conversation: Conversation, feedback: dict[str, list[Feedback]]) -> None:
    agent_turns = [t for t in conversation.turns if t.role == "agent"]
    given = [f for items in feedback.values() for f in items if f.comment == CSAT]
    with st.container(border=True):
        if given:
            st.markdown(f"**Thanks for rating this conversation {'★' * (given[-1].rating or 0)}.**")
        elif not agent_turns:
            st.markdown("**This conversation is closed.**")
        else:
            st.markdown("**This conversation is closed. How satisfied are you with the help you got?**")
            key = f"csat-{conversation.id}"
            st.feedback("stars", key=key, on_change=_store_csat, args=(agent, agent_turns[-1].id, key))
        st.button(
            "Start a new conversation",
            icon=":material/add_comment:",
            on_click=start_over,
            key="new-after-csat",
        )


def header(persona: Persona, branding: Branding, embedded: bool) -> None:
    title = f"{persona.company} support"
    if branding.logo:
        left, right = st.columns([1, 9], vertical_alignment="center")
        left.image(branding.logo, width=40 if embedded else 56)
        with right:
            (st.subheader if embedded else st.title)(title, anchor=False)
    else:
        (st.subheader if embedded else st.title)(f":material/chat: {title}", anchor=False)
    if not embedded:
        st.caption(
            f"Chat with {persona.agent_name}, our assistant for the {persona.product}. A person is one click away."
        )


STYLE = """<style>
.sl-typing { color: #31333F; font-style: italic; margin: 0; }
/* captions: WCAG AA contrast on white and on the message bubbles */
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p { color: #55575F; opacity: 1; }
@media (max-width: 480px) {
  [data-testid="stMainBlockContainer"] { padding-left: 0.75rem; padding-right: 0.75rem; padding-top: 1.5rem; }
  h1 { font-size: 1.6rem !important; }
}
</style>"""
EMBED_STYLE = """<style>
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"] { display: none; }
[data-testid="stMainBlockContainer"] { padding: 0.75rem 0.75rem 4.5rem 0.75rem; max-width: 100%; }
[data-testid="stBottomBlockContainer"] { padding: 0.5rem 0.75rem 0.75rem 0.75rem; max-width: 100%; }
</style>"""


# ------------------------------------------------------------------------------- the page


def main(*, embedded: bool = False) -> None:
    try:
        agent = services.chat_agent()
    except SupportloopError as exc:
        st.error(f"The support assistant could not start: {exc}", icon=":material/error:")
        st.stop()
    except ImportError as exc:
        st.error(
            f"The support assistant could not start: a component is missing ({exc}).", icon=":material/error:"
        )
        st.stop()
    persona, branding = agent.config.persona, agent.config.branding
    worker = worker_for(agent)
    cid = conversation_id()
    # Progress before the store: a reply that finishes while this run reads the store is then
    # still "in progress" here, and ``follow`` reruns once it is in the store (read after it, a
    # fast reply could finish unseen, and the page would stop without it).
    progress = worker.progress(cid)
    conversation = load(agent, cid)
    turns = conversation.turns if conversation else ()
    status = conversation.status if conversation else "new"
    ended = status in ("resolved", "closed")
    st.html(STYLE + (EMBED_STYLE if embedded else ""))

    # The box first: a message sent while a reply streams is queued by the callback, not lost.
    placeholder = f"Ask {persona.agent_name} a question…"
    if status == "escalated":
        placeholder = "Write to our support team…"
    elif ended:
        placeholder = "This chat has ended. Start a new conversation to ask something else."
    st.chat_input(
        placeholder, key=INPUT_KEY, disabled=ended, on_submit=_send, args=(worker, cid, INPUT_KEY, True)
    )

    header(persona, branding, embedded)
    feedback: dict[str, list[Feedback]] = {}
    if conversation is not None:
        for item in agent.store.feedback_for_conversation(cid):
            if item.reviewer is None:
                feedback.setdefault(item.turn_id, []).append(item)
    if not turns and not progress.busy:
        with st.chat_message("assistant", avatar=assistant_avatar(branding)):
            st.markdown(
                branding.welcome.format(
                    agent_name=persona.agent_name, company=persona.company, product=persona.product
                )
            )
    for turn in turns:
        render_turn(agent, turn, feedback, persona, branding)
    live = st.empty()  # the reply in progress goes here, under the conversation
    # Failures are taken (each is shown once) only after ``follow``: a run that reruns for a
    # finished reply must leave them to the run that is shown.
    failures = st.container()
    if notice := st.session_state.pop("chat_notice", None):
        getattr(st, notice[0])(notice[1])

    if not turns and not progress.busy and branding.suggestions:
        key = f"suggest-{cid}"
        st.pills(
            "Popular questions",
            branding.suggestions,
            key=key,
            label_visibility="collapsed",
            on_change=_send,
            args=(worker, cid, key, False),
        )
    if status == "escalated":
        waiting_for_person(agent, cid, len(turns), status)
    elif ended and conversation is not None:
        csat(agent, conversation, feedback)

    if not ended:
        with st.container(horizontal=True):
            person = st.button(
                "Talk to a person",
                icon=":material/support_agent:",
                disabled=status == "escalated",
                help="Hand this chat to our support team",
            )
            finish = status != "new" and st.button(
                "End chat", icon=":material/check_circle:", help="Close this chat and rate the help you got"
            )
        if person:
            agent.escalate(cid)
            st.rerun()
        if finish:
            agent.resolve(cid, by="customer", note="ended by the customer")
            st.rerun()

    follow(live, worker, cid, progress, len(turns), persona.agent_name, branding)
    for message in worker.take_notices(cid):
        failures.error(message, icon=":material/error:")
