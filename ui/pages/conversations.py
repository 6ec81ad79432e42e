"""Conversations: ranked full-text search and a filtered list (date, model version, rating,
escalated, unreviewed, status); picking one opens the review page."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from agent.errors import SupportloopError
from agent.store import STATUSES
from ui import services

PAGE_SIZE = 50
ROLE_NAMES = {"customer": "customer", "agent": "assistant", "human": "support team", "system": "note"}

services.require_user()
store = services.store()
st.title(":material/forum: Conversations")

# ------------------------------------------------------------------------------- search
query = st.text_input(
    "Search",
    placeholder='Search every message: filter replacement, "error E3", wifi or bluetooth, refund -shipping',
    key="search",
    label_visibility="collapsed",
    help='Ranked full-text search. Terms are ANDed; "a phrase", `or`, and `-term` work.',
    icon=":material/search:",
)
if query.strip():
    results = store.search(query, limit=60)
    grouped: dict[str, list] = {}
    for hit in results:
        grouped.setdefault(hit.conversation_id, []).append(hit)
    if not grouped:
        st.info(
            f"No message matches **{query}**. Try fewer or different words.", icon=":material/rate_review:"
        )
    else:
        st.caption(f"{len(grouped)} conversation(s), best match first")
    for cid, hits in grouped.items():
        with st.container(border=True):
            left, right = st.columns([6, 1], vertical_alignment="center")
            with left:
                st.markdown(f"**`{services.short_id(cid)}`**")
                for hit in hits[:3]:
                    st.markdown(f"- _{ROLE_NAMES.get(hit.role, hit.role)}:_ {hit.snippet}")
            with right:
                st.page_link(
                    "pages/review.py", label="Open", icon=":material/rate_review:", query_params={"id": cid}
                )
    st.divider()

# ------------------------------------------------------------------------------- filters


def first_page() -> None:
    st.session_state["conversations-page"] = 0


versions = sorted(
    {str(row["model_version"]) for row in store.kpis(by="model_version") if row["model_version"]}
)
with st.container(border=True):
    c1, c2, c3, c4, c5, c6 = st.columns([2.2, 1.5, 1.6, 1.3, 1.2, 1.2], vertical_alignment="bottom")
    with c1:
        today = date.today()
        window = st.date_input(
            "Created", value=(today - timedelta(days=30), today), key="f-dates", on_change=first_page
        )
    with c2:
        version = st.selectbox("Model version", ["any", *versions], key="f-version", on_change=first_page)
    with c3:
        ratings = st.select_slider(
            "Lowest rating", options=[1, 2, 3, 4, 5], value=(1, 5), key="f-rating", on_change=first_page
        )
        rated_only = ratings != (1, 5)
    with c4:
        escalated = st.selectbox(
            "Escalated", ["any", "escalated", "not escalated"], key="f-escalated", on_change=first_page
        )
    with c5:
        status = st.selectbox("Status", ["any", *STATUSES], key="f-status", on_change=first_page)
    with c6:
        unreviewed = st.toggle("Unreviewed only", key="f-unreviewed", on_change=first_page)

since = until = None
if isinstance(window, tuple) and window:
    since = datetime.combine(window[0], time.min, tzinfo=UTC)
    if len(window) > 1:
        until = datetime.combine(window[1] + timedelta(days=1), time.min, tzinfo=UTC)
page = st.session_state.get("conversations-page", 0)
try:
    rows = store.list_conversations(
        since=since,
        until=until,
        model_version=None if version == "any" else version,
        min_rating=ratings[0] if rated_only else None,
        max_rating=ratings[1] if rated_only else None,
        escalated=None if escalated == "any" else escalated == "escalated",
        unreviewed=True if unreviewed else None,
        status=None if status == "any" else status,
        limit=PAGE_SIZE + 1,
        offset=page * PAGE_SIZE,
    )
except SupportloopError as exc:
    st.error(f"Could not list conversations: {exc}")
    st.stop()

more = len(rows) > PAGE_SIZE
rows = rows[:PAGE_SIZE]
if not rows:
    counts = store.counts()
    if counts["conversations"] == 0:
        st.info(
            "No conversations yet. They appear here as soon as customers start chatting.",
            icon=":material/chat:",
        )
    else:
        st.info(
            "No conversation matches these filters. Widen the date range or clear a filter.",
            icon=":material/filter_alt_off:",
        )
    st.stop()

table = pd.DataFrame(
    [
        {
            "updated": row.updated_at,
            "status": row.status,
            "escalated": row.escalation_reason or "",
            "first message": row.first_message or "",
            "turns": row.turn_count,
            "models": ", ".join(row.model_versions),
            "lowest rating": row.min_rating,
            "reviewed": row.reviewed,
            "id": row.id,
        }
        for row in rows
    ]
)
st.caption(
    f"Conversations {page * PAGE_SIZE + 1}–{page * PAGE_SIZE + len(rows)}, most recent first. Select a row to review it."
)
picked = st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key="conversation-table",
    column_config={
        "updated": st.column_config.DatetimeColumn("updated", format="YYYY-MM-DD HH:mm"),
        "first message": st.column_config.TextColumn("first message", width="large"),
        "lowest rating": st.column_config.NumberColumn("lowest rating", format="%d ★"),
        "reviewed": st.column_config.CheckboxColumn("reviewed"),
        "id": st.column_config.TextColumn("id", width="small"),
    },
)
selected = picked.selection.rows if picked else []
if selected:
    st.switch_page("pages/review.py", query_params={"id": rows[selected[0]].id})

prev, _, nxt = st.columns([1, 6, 1])
if page > 0 and prev.button("← Newer", key="page-prev"):
    st.session_state["conversations-page"] = page - 1
    st.rerun()
if more and nxt.button("Older →", key="page-next"):
    st.session_state["conversations-page"] = page + 1
    st.rerun()
