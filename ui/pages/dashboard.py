"""Support KPIs per model version and over time: resolution time, CSAT, thumbs-up rate,
escalation rate, deflection rate (definitions in ``LogStore.kpis``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from ui import services

NO_MODEL = "(no model)"
METRICS = {
    "mean_rating": ("CSAT (mean rating, 1-5)", "{:.2f}"),
    "thumbs_up_rate": ("Thumbs-up rate", "{:.0%}"),
    "escalation_rate": ("Escalation rate", "{:.0%}"),
    "deflection_rate": ("Deflection rate", "{:.0%}"),
    "resolution_min": ("Mean resolution time (min)", "{:.1f}"),
    "conversations": ("Conversations", "{:.0f}"),
}
LOWER_IS_BETTER = {"escalation_rate", "resolution_min"}
PERIODS = {"7 days": 7, "30 days": 30, "90 days": 90, "All time": None}

st.set_page_config(layout="wide")
services.require_user()
store = services.store()
st.title("📈 Support dashboard")

period = st.segmented_control("Period", list(PERIODS), default="30 days", key="dash-period")
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
    st.info("No conversations in this period yet. KPIs appear once customers start chatting.", icon="📭")
    st.stop()

# Headline tiles: the most recently active model version, against the one before it.
order = daily.groupby("model_version")["day"].max().sort_values().index.tolist() if not daily.empty else []
versions = [v for v in order if v != NO_MODEL] or order
current = versions[-1] if versions else per_version["model_version"].iloc[0]
previous = versions[-2] if len(versions) > 1 else None
st.subheader(f"Model `{current}`" + (f" vs `{previous}`" if previous else ""))
row = per_version.set_index("model_version")
tiles = st.columns(len(METRICS))
for tile, (key, (label, fmt)) in zip(tiles, METRICS.items(), strict=True):
    value = row.at[current, key] if current in row.index else None
    before = row.at[previous, key] if previous and previous in row.index else None
    shown = "—" if value is None or pd.isna(value) else fmt.format(value)
    delta = None
    if before is not None and not pd.isna(before) and value is not None and not pd.isna(value):
        delta = fmt.format(value - before) if "%" not in fmt else f"{(value - before) * 100:+.0f} pt"
    tile.metric(
        label,
        shown,
        delta=delta,
        delta_color="inverse" if key in LOWER_IS_BETTER else "normal",
        border=True,
    )

st.subheader("Per model version")
columns = ["model_version", *METRICS, "agent_turns", "thumbs", "ratings", "escalated", "resolved"]
st.dataframe(
    per_version[columns],
    hide_index=True,
    use_container_width=True,
    column_config={
        "model_version": "model version",
        "mean_rating": st.column_config.NumberColumn("CSAT", format="%.2f"),
        "thumbs_up_rate": st.column_config.NumberColumn("thumbs-up", format="percent"),
        "escalation_rate": st.column_config.NumberColumn("escalation", format="percent"),
        "deflection_rate": st.column_config.NumberColumn("deflection", format="percent"),
        "resolution_min": st.column_config.NumberColumn("resolution (min)", format="%.1f"),
    },
)

st.subheader("Over time")
daily["day"] = pd.to_datetime(daily["day"])
tabs = st.tabs([label for label, _ in METRICS.values()])
for tab, (key, (label, fmt)) in zip(tabs, METRICS.items(), strict=True):
    with tab:
        data = daily.dropna(subset=[key])
        if data.empty:
            st.caption(f"No {label.lower()} measured in this period.")
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
        st.altair_chart(chart, use_container_width=True)
