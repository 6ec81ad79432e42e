"""Verified answers: reviewers' corrections served verbatim for the same and closely similar
questions (``agent.verified``). Lists the live ones with their hit counts; a reviewer retires one
here, and a promoted model that answers its question correctly retires it too."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from agent.errors import SupportloopError
from ui import services

user = services.require_user()
store = services.store()

st.title(":material/verified: Verified answers")
st.caption(
    "A correction written on the review page answers the same and closely similar questions at once, "
    "cited as verified by the support team, with no model call. It also becomes training rows; once a "
    "promoted model answers the question correctly, the shortcut retires."
)

live = store.verified_answers()
if not live:
    st.info(
        "No live verified answers. Write a correction on a conversation's review page.",
        icon=":material/edit:",
    )
else:
    st.markdown(f"**{len(live)} live** · {sum(a.hits for a in live)} questions answered")
    for answer in sorted(live, key=lambda a: -a.hits):
        with st.container(border=True):
            left, right = st.columns([5, 1], vertical_alignment="center")
            with left:
                st.markdown(f"**{answer.question}**")
                st.markdown(answer.answer)
                st.caption(
                    f"{answer.hits} hits · by {answer.reviewer or 'unknown'} · {services.ago(answer.created_at)}"
                    + (f" · last used {services.ago(answer.last_hit_at)}" if answer.last_hit_at else "")
                )
            if right.button("Retire", key=f"retire-{answer.id}", icon=":material/archive:"):
                try:
                    store.retire_verified_answer(str(answer.id), f"retired by {user.username}")
                except SupportloopError as exc:
                    st.error(f"Not retired: {exc}")
                else:
                    st.toast("Verified answer retired", icon=":material/archive:")
                    st.rerun()

retired = store.verified_answers(live=False)
if retired:
    with st.expander(f"Retired ({len(retired)})", icon=":material/archive:"):
        st.dataframe(
            pd.DataFrame(
                [
                    {"question": a.question, "hits": a.hits, "why": a.retired_reason, "retired": a.retired_at}
                    for a in retired
                ]
            ),
            hide_index=True,
            width="stretch",
        )
