"""Support KPIs per model version and over time: resolution time, CSAT, thumbs-up rate,
escalation rate, deflection rate (definitions in ``LogStore.kpis``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from agent.feedback_reasons import THUMBS_DOWN_REASONS
from ui import services

NO_MODEL = "(no model)"
METRICS = {
    "mean_rating": ("CSAT", "{:.2f}", "Mean customer rating, 1-5"),
    "thumbs_up_rate": ("Thumbs-up", "{:.0%}", "Share of customer thumbs that were up"),
    "escalation_rate": ("Escalation", "{:.0%}", "Conversations handed to a person"),
    "deflection_rate": ("Deflection", "{:.0%}", "Conversations resolved without a person"),
    "resolution_min": ("Resolution", "{:.0f} min", "Mean time from first message to resolved"),
    "conversations": ("Conversations", "{:.0f}", "Conversations this version answered in"),
}
LOWER_IS_BETTER = {"escalation_rate", "resolution_min"}
PERIODS = {"7 days": 7, "30 days": 30, "90 days": 90, "All time": None}

services.require_user()
store = services.store()
st.title(":material/monitoring: Support dashboard")

controls = st.columns([2, 1.2, 1.2], vertical_alignment="bottom")
period = controls[0].segmented_control("Period", list(PERIODS), default="30 days", key="dash-period")
days = PERIODS.get(period or "30 days")
since = datetime.now(UTC) - timedelta(days=days) if days else None


def frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    if "model_version" in df:
        df["model_version"] = df["model_version"].fillna(NO_MODEL)
    df["resolution_min"] = df["mean_resolution_s"] / 60
    return df


per_version = frame(store.kpis(since=since, by="model_version"))
daily = frame(store.kpis(since=since, by="day,model_version"))
if per_version.empty:
    st.info(
        "No conversations in this period yet. KPIs appear once customers start chatting.",
        icon=":material/inbox:",
    )
    st.stop()

# Headline tiles: one version against another; by default the two busiest, the newer first.
busiest = per_version[per_version["model_version"] != NO_MODEL].nlargest(2, "conversations")["model_version"]
last_seen = daily.groupby("model_version")["day"].max() if not daily.empty else pd.Series(dtype=str)
default = sorted(busiest, key=lambda v: last_seen.get(v, ""), reverse=True)
versions = [v for v in per_version["model_version"] if v != NO_MODEL] or list(per_version["model_version"])
current = controls[1].selectbox(
    "Model version", versions, index=versions.index(default[0]) if default else 0, key="dash-current"
)
others = [v for v in versions if v != current]
previous = controls[2].selectbox(
    "Compared with",
    others,
    index=others.index(default[1]) if len(default) > 1 and default[1] in others else None,
    placeholder="nothing",
    key="dash-baseline",
)
st.subheader(f"Model `{current}`" + (f" vs `{previous}`" if previous else ""))
row = per_version.set_index("model_version")
tiles = st.columns(len(METRICS))
for tile, (key, (label, fmt, help_text)) in zip(tiles, METRICS.items(), strict=True):
    value = row.at[current, key] if current in row.index else None
    before = row.at[previous, key] if previous and previous in row.index else None
    shown = "—" if value is None or pd.isna(value) else fmt.format(value)
    delta = None
    if before is not None and not pd.isna(before) and value is not None and not pd.isna(value):
        delta = (
            f"{(value - before) * 100:+.0f} pt"
            if "%" in fmt
            else fmt.replace(":", ":+").format(value - before)
        )
    tile.metric(
        label,
        shown,
        delta=delta,
        delta_color="off" if key == "conversations" else "inverse" if key in LOWER_IS_BETTER else "normal",
        help=help_text,
        border=True,
    )

st.subheader("Per model version")
columns = ["model_version", *METRICS, "agent_turns", "thumbs", "ratings", "escalated", "resolved"]
st.dataframe(
    per_version[columns],
    hide_index=True,
    width="stretch",
    column_config={
        "model_version": "model version",
        "mean_rating": st.column_config.NumberColumn("CSAT", format="%.2f"),
        "thumbs_up_rate": st.column_config.NumberColumn("thumbs-up", format="percent"),
        "escalation_rate": st.column_config.NumberColumn("escalation", format="percent"),
        "deflection_rate": st.column_config.NumberColumn("deflection", format="percent"),
        "resolution_min": st.column_config.NumberColumn("resolution (min)", format="%.1f"),
        "agent_turns": "answers",
        "thumbs": "thumbs given",
        "ratings": "ratings given",
    },
)

st.subheader("Over time")
daily["day"] = pd.to_datetime(daily["day"])
tabs = st.tabs([label for label, _, _ in METRICS.values()])
for tab, (key, (label, fmt, _)) in zip(tabs, METRICS.items(), strict=True):
    with tab:
        data = daily.dropna(subset=[key])
        if data.empty:
            st.caption(f"{label}: nothing measured in this period yet.")
            continue
        axis = alt.Axis(format="%" if "%" in fmt else ",.2f" if key == "mean_rating" else ",.0f")
        chart = (
            alt.Chart(data)
            .mark_line(point=True)
            .encode(
                x=alt.X("day:T", title=None),
                y=alt.Y(f"{key}:Q", title=label, axis=axis),
                color=alt.Color("model_version:N", title="model version"),
                tooltip=["day:T", "model_version:N", alt.Tooltip(f"{key}:Q", format=axis.format)],
            )
            .properties(height=300)
        )
        st.altair_chart(chart, width="stretch")

st.subheader("Thumbs-down reasons")
reasons = store.reason_counts()
st.caption("All time. Each reason has a queue on the Feedback reasons page.")
st.dataframe(
    pd.DataFrame([{"reason": THUMBS_DOWN_REASONS[k], "count": n} for k, n in reasons.items()]),
    hide_index=True,
    width="content",
)
st.page_link("pages/reasons.py", label="Feedback reasons", icon=":material/thumb_down:")
