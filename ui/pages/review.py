"""Review one conversation: every turn with the passages retrieved for it and their scores, and
the actions: rate, label, write the corrected answer, mark for training, answer or resolve a
handoff. The URL names the conversation (``?id=...``)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from agent import validation
from agent.errors import InputError, NotFoundError, SupportloopError
from agent.store import User
from agent.types import Conversation, Feedback, Turn
from agent.verified import record_correction
from ui import services

ROLE_LABEL = {"customer": "Customer", "agent": "Assistant", "human": "Support team", "system": "Note"}
STATUS_BADGE = {"open": ":blue[open]", "escalated": ":orange[escalated]", "resolved": ":green[resolved]"}


def grounding_note(verdict: dict[str, Any] | None) -> list[str]:
    """The answer check's outcome for the turn header: nothing when it was sent as generated."""
    if verdict and verdict.get("asked_unnamed"):  # "Which state library do you mean?"
        return [f":blue[asked back which {verdict['asked_unnamed']}]"]
    if not verdict or (verdict.get("passed") and verdict.get("action") == "sent"):
        return []
    if verdict.get("asked_which"):
        return [f":blue[asked back which: {' or '.join(str(v) for v in verdict['asked_which'])}]"]
    if verdict.get("passed"):  # a quote over the model's decline, or the value of the model chosen
        return [":blue[quoted from the pages]"]
    unsupported = ", ".join(str(u) for u in verdict.get("unsupported") or [])
    detail = f" ({unsupported})" if unsupported else ""
    if verdict.get("action") == "sent":
        return [f":orange[check: trimmed to the supported sentences{detail}]"]
    return [f":orange[check failed{detail}: {verdict.get('action')}]"]


user = services.require_user()
agent = services.console_agent()
store = agent.store


def pick_conversation() -> str | None:
    cid = st.query_params.get("id") or st.session_state.get("review-id")
    if cid:
        st.session_state["review-id"] = cid
        if st.query_params.get("id") != cid:
            st.query_params["id"] = cid
        return cid
    st.title(":material/rate_review: Review a conversation")
    recent = store.list_conversations(limit=20)
    if not recent:
        st.info("No conversations yet.", icon=":material/chat:")
        return None
    labels = {
        r.id: f"{services.short_id(r.id)} · {r.status} · {(r.first_message or '')[:80]}" for r in recent
    }
    choice = st.selectbox("Recent conversations", list(labels), format_func=labels.get, index=None)
    st.page_link(
        "pages/conversations.py", label="Search and filter all conversations", icon=":material/forum:"
    )
    return choice


# ------------------------------------------------------------------------------- actions


def answer_customer(conversation: Conversation, reviewer: User) -> None:
    with st.container(border=True):
        st.markdown("#### :material/support_agent: The customer is waiting for a person")
        st.caption(
            f"Handed off because: {conversation.escalation_reason}. Your reply appears live in their chat."
        )
        with st.form("human-reply", clear_on_submit=True, border=False):
            text = st.text_area("Your reply to the customer", key="human-reply-text", height=110)
            send, resolve = st.columns(2)
            sent = send.form_submit_button(
                "Send to customer", icon=":material/send:", type="primary", width="stretch"
            )
            done = resolve.form_submit_button(
                "Send and resolve", icon=":material/check_circle:", width="stretch"
            )
        if sent or done:
            if text.strip():
                try:
                    agent.human_reply(conversation.id, text, author=reviewer.username)
                except SupportloopError as exc:
                    st.error(f"Not sent: {exc}")
                    return
                st.toast("Reply sent to the customer", icon=":material/send:")
            elif sent:
                st.warning("Write a reply first.")
                return
            if done:
                agent.resolve(conversation.id, by=reviewer.username, note="resolved from the console")
                st.toast("Conversation resolved", icon=":material/check_circle:")
            st.rerun()
    if st.button("Resolve without replying", icon=":material/done:", key="resolve-only"):
        agent.resolve(conversation.id, by=reviewer.username, note="resolved from the console")
        st.toast("Conversation resolved", icon=":material/check_circle:")
        st.rerun()


def form_problems(labels: list[str], comment: str, correction: str) -> list[str]:
    """What ``agent.validation`` refuses in the review form, one message per field (none: valid).
    The messages name the field, never echo the value (it may be megabytes long)."""
    checks = (
        lambda: validation.check_labels(labels, "Labels"),
        lambda: validation.check_text(comment, "The note", validation.COMMENT_MAX_CHARS, allow_blank=True),
        lambda: validation.check_text(
            correction, "The corrected answer", validation.CORRECTION_MAX_CHARS, allow_blank=True
        ),
    )
    problems = []
    for check in checks:
        try:
            check()
        except InputError as exc:
            problems.append(str(exc))
    return problems


def review_form(turn: Turn, reviewer: User) -> None:
    with st.form(f"review-{turn.id}", border=False):
        left, right = st.columns([1, 2])
        with left:
            rating = st.feedback("stars", key=f"review-rating-{turn.id}")
            mark = st.checkbox("Mark for training", key=f"review-train-{turn.id}")
        with right:
            labels = st.multiselect(
                "Labels", services.LABELS, key=f"review-labels-{turn.id}", accept_new_options=True
            )
        correction = st.text_area(
            "Corrected answer",
            key=f"review-correction-{turn.id}",
            placeholder="What the assistant should have said. Served at once, verbatim, for the same and closely "
            "similar questions (Verified answers page); training turns it into SFT and preference rows.",
            height=110,
        )
        comment = st.text_input("Note for the team (optional)", key=f"review-comment-{turn.id}")
        saved = st.form_submit_button("Save review", icon=":material/save:", type="primary")
    if saved:
        if rating is None and not (labels or correction.strip() or mark or comment.strip()):
            st.warning("Nothing to save: rate, label, correct or mark the answer first.")
            return
        problems = form_problems(labels, comment, correction)
        if problems:  # the edges' own validation, before anything is written
            for problem in problems:
                st.error(f"Not saved: {problem}", icon=":material/error:")
            return
        fields = {
            "rating": None if rating is None else rating + 1,
            "labels": labels,
            "comment": comment.strip() or None,
            "mark_for_training": mark,
        }
        try:
            if correction.strip():  # also served at once for the same and similar questions
                record_correction(store, turn.id or "", correction, reviewer=reviewer.username, **fields)
            else:
                agent.feedback(turn.id or "", reviewer=reviewer.username, **fields)
        except SupportloopError as exc:
            st.error(f"Not saved: {exc}", icon=":material/error:")
            return
        st.toast("Correction saved" if correction.strip() else "Review saved", icon=":material/save:")
        st.rerun()


# ------------------------------------------------------------------------------- turns


def retrieved_passages(turn: Turn) -> None:
    cited = {c.doc_id for c in turn.citations}
    passages = turn.metadata.get("passages") or []
    label = f"Retrieved passages ({len(turn.retrieved)})" if turn.retrieved else "No passages retrieved"
    with st.expander(label, icon=":material/library_books:", expanded=False):
        if turn.retrieved:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "rank": rank,
                            "score": chunk.score,
                            "doc": chunk.doc_id,
                            "source": chunk.source,
                            "chunk": chunk.chunk_id,
                            "cited": chunk.doc_id in cited,
                        }
                        for rank, chunk in enumerate(turn.retrieved, start=1)
                    ]
                ),
                hide_index=True,
                width="stretch",
                column_config={"score": st.column_config.NumberColumn(format="%.3f")},
            )
        for number, passage in enumerate(passages, start=1):
            title = passage.get("title") or passage.get("doc_id")
            with st.container(border=True):
                st.caption(f"**[{number}] {title}** · `{passage.get('source')}`")
                st.markdown(passage.get("text", "")[:2000])


def feedback_lines(items: list[Feedback]) -> None:
    for item in items:
        who = f"reviewer **{item.reviewer}**" if item.reviewer else "customer"
        parts = []
        if item.thumbs is not None:
            parts.append(":material/thumb_up:" if item.thumbs > 0 else ":material/thumb_down:")
        if item.rating is not None:
            parts.append("★" * item.rating + "☆" * (5 - item.rating))
        if item.labels:
            parts.append(" ".join(f"`{label}`" for label in item.labels))
        if item.mark_for_training:
            parts.append(":material/target: marked for training")
        if item.correction:
            parts.append("wrote a correction")
        if item.comment:
            parts.append(f"“{item.comment}”")
        st.caption(f"{who}: {' · '.join(parts) or 'feedback'} · {services.ago(item.created_at)}")
        if item.correction:
            st.success(
                f"**Correction by {item.reviewer or 'customer'}:** {item.correction}", icon=":material/edit:"
            )


def render_turn(turn: Turn, feedback: list[Feedback], reviewer: User, last_agent: bool) -> None:
    avatar = services.ROLE_ICONS.get(turn.role)
    if turn.role == "system":
        st.caption(f":material/info: {turn.text}")
        return
    with st.chat_message(turn.role, avatar=avatar):
        meta = [ROLE_LABEL.get(turn.role, turn.role), services.ago(turn.created_at)]
        if turn.role == "human" and turn.author:
            meta[0] = f"Support team ({turn.author})"
        if turn.role == "agent":
            if turn.model_version:
                meta.append(f"model `{turn.model_version}`")
            if turn.latency_ms is not None:
                meta.append(f"{turn.latency_ms / 1000:.1f} s")
            if reason := turn.metadata.get("escalation_reason"):
                meta.append(f":orange[handoff: {reason}]")
            if refused := turn.metadata.get("refused"):
                meta.append(f":red[refused: {refused}]")
            if turn.metadata.get("verified"):
                meta.append(":green[verified answer, no model]")
            meta.extend(grounding_note(turn.metadata.get("grounding")))
        st.caption(" · ".join(meta))
        st.markdown(turn.text)
        if turn.role != "agent":
            return
        if turn.citations:
            st.caption("Cited: " + ", ".join(f"[{c.index}] {c.source}" for c in turn.citations))
        retrieved_passages(turn)
        feedback_lines(feedback)
        with st.expander(
            "Review this answer",
            icon=":material/edit_note:",
            expanded=last_agent and not any(f.reviewer for f in feedback),
        ):
            review_form(turn, reviewer)


# ------------------------------------------------------------------------------- the page

cid = pick_conversation()
if cid is None:
    st.stop()
try:
    conversation = store.get_conversation(cid)
except NotFoundError:
    st.error(
        f"No conversation `{cid}`. It may have been deleted, or the link is wrong.", icon=":material/error:"
    )
    st.session_state.pop("review-id", None)
    st.page_link("pages/conversations.py", label="Back to conversations", icon=":material/forum:")
    st.stop()

st.title(f":material/rate_review: Conversation `{services.short_id(conversation.id)}`")
badge = STATUS_BADGE.get(conversation.status, conversation.status)
facts = [
    f"status {badge}",
    f"started {services.ago(conversation.created_at)}",
    f"{len(conversation.turns)} turns",
]
if conversation.escalation_reason:
    facts.append(f"escalated: {conversation.escalation_reason}")
st.markdown(" · ".join(facts) + f"  \n`{conversation.id}`")
top_left, top_right, _ = st.columns([1, 1, 4])
top_left.page_link("pages/conversations.py", label="All conversations", icon=":material/forum:")
if conversation.status == "escalated":
    top_right.page_link("pages/handoffs.py", label="Live handoffs", icon=":material/support_agent:")

by_turn: dict[str, list[Feedback]] = {}
for item in store.feedback_for_conversation(conversation.id):
    by_turn.setdefault(item.turn_id, []).append(item)
agent_turns = [t for t in conversation.turns if t.role == "agent"]
last_agent_id = agent_turns[-1].id if agent_turns else None
if not conversation.turns:
    st.info("This conversation has no messages yet.", icon=":material/chat:")
for turn in conversation.turns:
    render_turn(turn, by_turn.get(turn.id or "", []), user, turn.id == last_agent_id)

if conversation.status == "escalated":
    answer_customer(conversation, user)

    @st.fragment(run_every=3)
    def watch(cid: str, seen: int) -> None:
        """New customer messages arrive while the console is open: redraw when they do."""
        try:
            current = store.turns(cid)
        except NotFoundError:
            return
        if len(current) != seen:
            st.rerun(scope="app")

    watch(conversation.id, len(conversation.turns))
elif conversation.status != "resolved" and st.button(
    "Mark resolved", icon=":material/check_circle:", key="mark-resolved"
):
    agent.resolve(conversation.id, by=user.username, note="resolved from the console")
    st.toast("Conversation resolved", icon=":material/check_circle:")
    st.rerun()
