"""Provenance: reviewed answers whose passages quote a document that has since changed or left
the knowledge index. They are left out of training data (``training.data.provenance``) until a
reviewer re-reviews them: keeps one as it is here, or corrects it on the review page."""

from __future__ import annotations

import streamlit as st

from agent.errors import SupportloopError
from training.data import FlaggedAnswer, check_store, current_index, flagged_answers, re_review
from ui import services

user = services.require_user()
store = services.store()

st.title(":material/difference: Provenance")
st.caption(
    "A reviewed answer quotes passages of your documents. When a document changes or is removed, "
    "the answers that quote its old text are left out of training data until someone re-reviews "
    "them: keep the answer as it is, or correct it."
)

if st.button("Check against the knowledge index now", icon=":material/sync:", key="provenance-check"):
    with st.spinner("Comparing the logged passages with the knowledge index…"):
        try:
            index = current_index(services.config())
            if index is None or not index:
                st.info(
                    "This data home has no knowledge index yet: nothing to compare with.",
                    icon=":material/info:",
                )
            else:
                found = check_store(store, index)
                st.toast(f"{len(found.left_out)} answer(s) left out of training", icon=":material/sync:")
        except SupportloopError as exc:
            st.error(f"Could not check: {exc}", icon=":material/warning:")


def document_line(answer: FlaggedAnswer) -> str:
    parts = []
    for flag in answer.documents:
        name = flag.title or flag.doc_id
        parts.append(
            f"**{name}** (`{flag.source}`) {'changed' if flag.reason == 'changed' else 'was removed'}"
        )
    return "; ".join(parts)


answers = flagged_answers(store)
waiting = [a for a in answers if not a.rereviewed]
st.markdown(f"**{len(waiting)}** left out of training · **{len(answers) - len(waiting)}** re-reviewed")
if not answers:
    st.success(
        "No reviewed answer quotes a changed or removed document (as of the last check or `data compile`).",
        icon=":material/check:",
    )
for answer in waiting + [a for a in answers if a.rereviewed]:
    with st.container(border=True):
        state = ":green[re-reviewed]" if answer.rereviewed else ":orange[left out of training]"
        st.markdown(f"**{answer.question or '(no question)'}** · {state}")
        st.markdown(document_line(answer))
        st.caption(f"Found {services.ago(answer.found_at)} · answer: {answer.answer[:300]}")
        left, right = st.columns(2)
        with left:
            st.page_link(
                "pages/review.py",
                label=f"Correct it in conversation {services.short_id(answer.conversation_id)}",
                icon=":material/rate_review:",
                query_params={"id": answer.conversation_id},
            )
        if not answer.rereviewed and right.button(
            "Re-reviewed: keep it", key=f"re-review-{answer.turn_id}", icon=":material/task_alt:"
        ):
            try:
                re_review(store, answer.turn_id, user.username)
            except SupportloopError as exc:
                st.error(f"Not saved: {exc}")
            else:
                st.toast("Re-reviewed: back in training data", icon=":material/task_alt:")
                st.rerun()
