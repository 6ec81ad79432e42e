"""Where each thumbs-down reason leads: a wrong answer asks for a correction (oldest uncorrected
first), a docs gap is a knowledge task (the question and what was retrieved), listed until a
document ingested later covers it (checked here at every load and after each ``supportloop
ingest``: ``agent.knowledge_tasks``) or a reviewer closes it with a note; personal data has been
redacted in the store and is left out of training."""

from __future__ import annotations

import streamlit as st

from agent.errors import SupportloopError
from agent.feedback_reasons import THUMBS_DOWN_REASONS
from agent.knowledge_tasks import check_tasks
from agent.store.reasons import ReasonItem
from agent.store.tasks import KnowledgeTask
from ui import services

user = services.require_user()
store = services.store()
st.title(":material/thumb_down: Feedback reasons")
counts = store.reason_counts()
st.caption(" · ".join(f"{THUMBS_DOWN_REASONS[k]}: **{n}**" for k, n in counts.items()))


def link(item: ReasonItem) -> None:
    st.page_link(
        "pages/review.py",
        label=f"Review conversation {services.short_id(item.turn.conversation_id or '')}",
        icon=":material/rate_review:",
        query_params={"id": item.turn.conversation_id or ""},
    )


st.subheader("Wrong answers: write a correction")
wrong = sorted(store.reason_items("wrong"), key=lambda i: i.corrected)  # uncorrected first
if not wrong:
    st.success("No answer was reported wrong.", icon=":material/check:")
for item in wrong:
    with st.container(border=True):
        state = ":green[corrected]" if item.corrected else ":orange[needs a correction]"
        st.markdown(f"**{item.question}** · {state}")
        st.caption(f"Answer: {item.turn.text[:300]}")
        link(item)

st.subheader("Knowledge tasks: missing in the docs")
knowledge = services.knowledge()
if knowledge is not None and store.knowledge_tasks():
    try:
        if hasattr(knowledge, "refresh"):
            knowledge.refresh()  # `supportloop ingest` may have changed the index in another process
        for task in check_tasks(store, knowledge):
            st.toast(
                f"Knowledge task closed by `{task.closure.doc_id if task.closure else ''}`",
                icon=":material/task_alt:",
            )
    except SupportloopError as exc:
        st.warning(f"Knowledge tasks not checked against the documents: {exc}", icon=":material/warning:")
tasks = store.knowledge_tasks(include_closed=True)
open_tasks = [t for t in tasks if t.open]
st.caption(
    "A task closes by itself when a document ingested after it covers the question "
    "(`supportloop ingest`), or here by hand with a note. `supportloop kb tasks` lists them too."
)
if not open_tasks:
    st.success("No open knowledge task.", icon=":material/check:")
for task in open_tasks:
    item = task.item
    with st.container(border=True, key=f"task-{task.id}"):
        st.markdown(f"**{item.question}** · :orange[open] · raised {services.ago(task.raised_at)}")
        found = ", ".join(f"`{c.doc_id}` ({c.score:.2f})" for c in item.turn.retrieved) or "nothing"
        st.caption(f"Retrieved: {found}")
        link(item)
        with st.form(f"close-{task.id}", border=False):
            note = st.text_input(
                "Close by hand",
                key=f"close-note-{task.id}",
                placeholder="What covers it now (a page, a decision)",
            )
            if st.form_submit_button("Close task", icon=":material/task_alt:"):
                try:
                    store.close_knowledge_task(task.id, closed_by=user.username, note=note)
                except SupportloopError as exc:
                    st.error(f"Not closed: {exc}")
                else:
                    st.toast("Knowledge task closed", icon=":material/task_alt:")
                    st.rerun()


def closed_line(task: KnowledgeTask) -> str:
    closure = task.closure
    assert closure is not None
    if closure.doc_id:
        how = f"closed by document `{closure.doc_id}` (relevance {closure.relevance or 0:.2f})"
    else:
        how = f"closed by {closure.closed_by}: {closure.note}"
    return f"**{task.question}** · :green[{how}] · {services.ago(closure.closed_at)}"


closed = [t for t in tasks if not t.open]
if closed:
    with st.expander(f"Closed knowledge tasks ({len(closed)})", icon=":material/task_alt:"):
        for task in closed:
            st.markdown(closed_line(task))

st.subheader("Personal data: redacted")
private = store.reason_items("personal_data")
st.caption(f"{len(private)} turns redacted in the store and left out of training.")
