"""Customer chat: streamed answers with their sources, feedback, handoff to a person, CSAT.

The conversation id lives in the URL (``?conversation=...``), so a reload restores the
conversation from the log store; the log store is the only source of what is shown.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

import streamlit as st

from agent.config import Persona
from agent.errors import GenerationError, InputError, NotFoundError, SupportloopError
from agent.runtime import WITH_PERSON, Agent
from agent.types import Citation, Conversation, Feedback, Reply, Turn
from ui import services

QUERY_KEY = "conversation"
SUGGESTIONS = (
    "How often should I replace the filter?",
    "What does a red blinking light mean?",
    "How do I connect the purifier to Wi-Fi?",
)
FAILED = "Sorry, I couldn't answer that just now ({}). Please try again, or ask for a person."
CSAT = "CSAT"  # the comment that marks a customer's end-of-conversation rating


def conversation_id() -> str:
    """The URL's conversation, else this session's, else a new (unguessable) one."""
    cid = st.query_params.get(QUERY_KEY) or st.session_state.get("chat_id") or uuid.uuid4().hex
    st.session_state["chat_id"] = cid
    if st.query_params.get(QUERY_KEY) != cid:
        st.query_params[QUERY_KEY] = cid
    return cid


def load(agent: Agent, cid: str) -> Conversation | None:
    try:
        return agent.store.get_conversation(cid)
    except NotFoundError:
        return None


def start_over() -> None:
    st.session_state["chat_id"] = uuid.uuid4().hex
    st.query_params[QUERY_KEY] = st.session_state["chat_id"]


def notify(kind: str, message: str) -> None:
    """A message for the next run (turns end with a rerun that redraws from the store)."""
    st.session_state["chat_notice"] = (kind, message)


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


def _store_csat(agent: Agent, turn_id: str, key: str) -> None:
    value = st.session_state.get(key)
    if value is not None:
        agent.feedback(turn_id, rating=int(value) + 1, comment=CSAT)
        st.toast("Thank you! Your rating helps us improve.", icon=":material/favorite:")


def feedback_widgets(agent: Agent, turn: Turn, given: list[Feedback]) -> None:
    thumbs = next((f.thumbs for f in reversed(given) if f.thumbs is not None), None)
    rating = next((f.rating for f in reversed(given) if f.rating is not None and f.comment != CSAT), None)
    left, right, _ = st.columns([1, 2, 4], vertical_alignment="center")
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


# ------------------------------------------------------------------------------- rendering


def sources(citations: Sequence[Citation]) -> None:
    for citation in citations:
        with st.expander(f"Source [{citation.index}] · {citation.source}", icon=":material/description:"):
            st.markdown(citation.snippet)
            st.caption(f"{citation.doc_id} · relevance score {citation.score:.2f}" if citation.score else "")


def render_turn(agent: Agent, turn: Turn, feedback: dict[str, list[Feedback]], persona: Persona) -> None:
    if turn.role == "customer":
        with st.chat_message("user", avatar=":material/person:"):
            st.markdown(turn.text)
    elif turn.role == "human":
        with st.chat_message("human", avatar=":material/support_agent:"):
            st.markdown(f"**{turn.author or 'Support team'}** · {persona.company} support team · _a person_")
            st.markdown(turn.text)
    elif turn.role == "agent":
        with st.chat_message("assistant", avatar=":material/smart_toy:"):
            st.markdown(turn.text)
            sources(turn.citations)
            if turn.model_version and not turn.metadata.get("escalation_reason"):
                feedback_widgets(agent, turn, feedback.get(turn.id or "", []))
    elif turn.text == WITH_PERSON:  # other system turns are internal notes
        st.caption(f":material/info: {turn.text}")


def stream_turn(agent: Agent, cid: str, text: str) -> None:
    """Show the customer's message, stream the answer into the page as it is generated."""
    bubble = st.empty()
    with bubble.container(), st.chat_message("user", avatar=":material/person:"):
        st.markdown(text)
    items = agent.stream(cid, text)
    try:
        first = next(items)
    except InputError as exc:  # empty or oversize: nothing was logged
        bubble.empty()
        notify("warning", str(exc))
        return
    except GenerationError as exc:
        notify("error", FAILED.format(exc))
        return
    result: list[Reply] = []

    def deltas() -> Iterator[str]:
        for item in _chain(first, items):
            if isinstance(item, Reply):
                result.append(item)
            else:
                yield item

    with st.chat_message("assistant", avatar=":material/smart_toy:"):
        try:
            if isinstance(first, Reply):
                result.append(first)
                st.markdown(first.text)
            else:
                st.write_stream(deltas())
        except GenerationError as exc:
            notify(
                "error",
                f"Sorry, I couldn't finish that answer ({exc}). Please try again, or ask for a person.",
            )
            return
        if result:
            sources(result[0].citations)
    if result and result[0].escalated:
        notify("info", "A member of our support team will reply here. You can keep this page open.")


def _chain(first: str | Reply, rest: Iterator[str | Reply]) -> Iterator[str | Reply]:
    yield first
    yield from rest


@st.fragment(run_every=2)
def watch_for_person(agent: Agent, cid: str, seen: int, status: str) -> None:
    """While a person has the conversation, poll the log store and redraw when they answer."""
    conversation = load(agent, cid)
    if conversation is not None and (len(conversation.turns) != seen or conversation.status != status):
        st.rerun(scope="app")
    st.caption(
        ":green[:material/radio_button_checked:] A member of our support team has this conversation and will reply here."
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


# ------------------------------------------------------------------------------- the page


def main() -> None:
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
    persona = agent.config.persona
    cid = conversation_id()
    conversation = load(agent, cid)
    turns = conversation.turns if conversation else ()
    status = conversation.status if conversation else "new"

    st.title(f":material/chat: {persona.company} support")
    st.caption(
        f"Chat with {persona.agent_name}, our assistant for the {persona.product}. A person is one click away."
    )

    feedback: dict[str, list[Feedback]] = {}
    if conversation is not None:
        for item in agent.store.feedback_for_conversation(cid):
            if item.reviewer is None:
                feedback.setdefault(item.turn_id, []).append(item)
    if not turns:
        with st.chat_message("assistant", avatar=":material/smart_toy:"):
            st.markdown(
                f"Hi! I'm {persona.agent_name}. Ask me anything about your {persona.product}: "
                "filters, lights and error codes, Wi-Fi, orders, warranty."
            )
    for turn in turns:
        render_turn(agent, turn, feedback, persona)

    if notice := st.session_state.pop("chat_notice", None):
        getattr(st, notice[0])(notice[1])

    prompt = None
    if not turns:
        prompt = st.pills(
            "Popular questions", SUGGESTIONS, key=f"suggest-{cid}", label_visibility="collapsed"
        )
    if status == "escalated":
        watch_for_person(agent, cid, len(turns), status)
    elif status in ("resolved", "closed"):
        csat(agent, conversation, feedback)

    ended = status in ("resolved", "closed")
    if not ended:
        with st.container(horizontal=True):
            person = st.button(
                "Talk to a person",
                icon=":material/support_agent:",
                disabled=status == "escalated",
                help="Hand this chat to our support team",
            )
            finish = status != "new" and st.button("End chat", icon=":material/check_circle:")
        if person:
            agent.escalate(cid)
            notify("info", "A member of our support team will reply here. You can keep this page open.")
            st.rerun()
        if finish:
            agent.resolve(cid, by="customer", note="ended by the customer")
            st.rerun()

    placeholder = f"Ask {persona.agent_name} a question…"
    if status == "escalated":
        placeholder = "Write to our support team…"
    elif ended:
        placeholder = "This chat has ended. Start a new conversation to ask something else."
    typed = st.chat_input(placeholder, key="chat-input", disabled=ended)
    if text := typed or prompt:
        stream_turn(agent, cid, text)
        st.rerun()


main()
