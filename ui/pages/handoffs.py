"""Live handoffs: customers waiting for a person, oldest first, refreshed every few seconds."""

from __future__ import annotations

import streamlit as st

from agent.errors import NotFoundError
from ui import services

REASONS = {
    "customer_request": "asked for a person",
    "low_confidence": "the assistant was unsure",
    "unhelpful_streak": "the assistant could not help",
}

services.require_user()
st.title(":material/support_agent: Live handoffs")
st.caption(
    "Conversations handed to the support team. Answer them from the review page; the customer sees it live."
)


@st.fragment(run_every=5)
def queue() -> None:
    store = services.store()
    waiting = store.escalations(open_only=True)
    if not waiting:
        st.success("No customer is waiting for a person right now.", icon=":material/celebration:")
        return
    st.markdown(f"**{len(waiting)} waiting**, oldest first")
    for item in waiting:
        try:
            conversation = store.get_conversation(item["conversation_id"])
        except NotFoundError:
            continue
        customer = [t.text for t in conversation.turns if t.role == "customer"]
        answered = any(t.role == "human" for t in conversation.turns)
        with st.container(border=True):
            left, right = st.columns([5, 1], vertical_alignment="center")
            with left:
                reason = REASONS.get(item["reason"], item["reason"])
                badge = (
                    " · :green[answered, not resolved]"
                    if answered
                    else " · :orange[waiting for a first reply]"
                )
                st.markdown(
                    f"**`{services.short_id(conversation.id)}`** · {reason} · "
                    f"{services.ago(item['created_at'])}{badge}"
                )
                if customer:
                    st.markdown(f"> {customer[-1][:300]}")
                else:
                    st.caption("No message yet.")
            with right:
                st.page_link(
                    "pages/review.py",
                    label="Answer",
                    icon=":material/edit_note:",
                    query_params={"id": conversation.id},
                )


queue()
