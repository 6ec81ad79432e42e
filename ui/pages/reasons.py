"""Where each thumbs-down reason leads: a wrong answer asks for a correction (oldest uncorrected
first), a docs gap is a knowledge task (the question and what was retrieved), personal data has
been redacted in the store and is left out of training."""

from __future__ import annotations

import streamlit as st

from agent.feedback_reasons import THUMBS_DOWN_REASONS
from agent.store.reasons import ReasonItem
from ui import services

services.require_user()
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
gaps = store.reason_items("docs_gap")
if not gaps:
    st.success("No customer reported missing information.", icon=":material/check:")
for item in gaps:
    with st.container(border=True):
        st.markdown(f"**{item.question}**")
        found = ", ".join(f"`{c.doc_id}` ({c.score:.2f})" for c in item.turn.retrieved) or "nothing"
        st.caption(f"Retrieved: {found}")
        link(item)

st.subheader("Personal data: redacted")
private = store.reason_items("personal_data")
st.caption(f"{len(private)} turns redacted in the store and left out of training.")
