"""The canary (``agent.canary``): whether one runs, its version, share and start, each arm's KPIs
side by side with the two-proportion test of their thumbs-up rates and a one-sentence verdict;
admins promote it (``supportloop models promote VERSION``, run as a command: the gate, then the
canary ends), abort it (``end_canary``) or start one (``start_canary``, which validates the share
and the version as the CLI does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from agent.canary import CANARY, MAX_SHARE, PRODUCTION, canary_status, end_canary, load_canary, start_canary
from agent.errors import InputError, SupportloopError
from agent.models import ModelRegistry
from ui import jobs, services

user = services.require_user()
admin = user.role == "admin"
home = Path(services.config().home)
st.title(":material/science: Canary")
st.caption(
    "A candidate version answers a sticky share of the conversations that ask for production "
    "(`supportloop models canary VERSION --share 10`); its KPIs are compared with production's since it started."
)

KPIS = {
    "conversations": "Conversations",
    "thumbs": "Thumbs given",
    "thumbs_up_rate": "Thumbs-up rate",
    "mean_rating": "CSAT (mean rating)",
    "escalation_rate": "Hand-off rate",
    "mean_resolution_s": "Resolution time",
}


def cell(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if name in ("thumbs_up_rate", "escalation_rate"):
        return services.percent(value)
    if name == "mean_resolution_s":
        return services.duration(value)
    if name == "mean_rating":
        return f"{value:.2f}"
    return str(value)


def verdict(test: dict[str, Any]) -> str:
    """One sentence on the thumbs-up test: what the figures say to do."""
    if test["p_value"] is None:
        return "Not enough thumbs in both arms to compare them yet: keep the canary running."
    points = f"{test['difference'] * 100:+.1f} points, p = {test['p_value']:.3g}"
    if not test["significant"]:
        return f"No significant difference in thumbs-up rate yet ({points}): keep it running or decide on other grounds."
    if test["difference"] > 0:
        return f"The canary's thumbs-up rate is significantly higher ({points}): promote it."
    return f"The canary's thumbs-up rate is significantly lower ({points}): abort it."


def promote(version: str, force: bool) -> None:
    args = ["models", "promote", version, *(["--force"] if force else [])]
    with st.spinner(f"Running `supportloop {' '.join(args)}`…"):
        code, output = jobs.run(args, home)
    st.session_state["canary-result"] = (code, output, version)


try:
    canary = load_canary(home)
except SupportloopError as exc:
    st.error(str(exc), icon=":material/warning:")
    st.stop()

if "canary-result" in st.session_state:
    code, output, version = st.session_state.pop("canary-result")
    if code == 0:
        st.success(f"{version} is production now; the canary ended.", icon=":material/rocket_launch:")
    else:
        st.error(f"{version} was not promoted (exit code {code}).", icon=":material/block:")
    st.code(output or "(no output)", language=None)

if canary is None:
    st.info("No canary is running: every conversation gets production.", icon=":material/info:")
else:
    tiles = st.columns(3)
    tiles[0].metric("Canary version", canary.version, border=True)
    tiles[1].metric("Share of conversations", f"{canary.share:g}%", border=True)
    tiles[2].metric(
        "Started", services.ago(canary.started_at), help=canary.started_at.isoformat(), border=True
    )
    status = canary_status(services.store(), canary)
    arms = status["arms"]
    table = pd.DataFrame(
        {
            f"{arm} ({arms[arm]['version']})": [cell(k, arms[arm][k]) for k in KPIS]
            for arm in (PRODUCTION, CANARY)
        },
        index=list(KPIS.values()),
    )
    st.dataframe(table, width="stretch")
    test = status["thumbs_up_test"]
    p_value = "–" if test["p_value"] is None else f"{test['p_value']:.3g}"
    st.markdown(f"**Thumbs-up test** (two proportions, α = {test['alpha']}): p-value **{p_value}**")
    st.markdown(f"**Verdict:** {verdict(test)}")
    if admin:
        force = st.checkbox(
            "Skip the gate (`--force`)",
            key="canary-force",
            help="Promote without the offline gate against production.",
        )
        left, right = st.columns(2)
        if left.button(
            f"Promote {canary.version}", icon=":material/rocket_launch:", type="primary", key="canary-promote"
        ):
            promote(canary.version, force)
            st.rerun()
        if right.button("Abort the canary", icon=":material/cancel:", key="canary-abort"):
            stopped = end_canary(home)
            st.toast(f"Canary {stopped.version if stopped else ''} stopped", icon=":material/cancel:")
            st.rerun()

if admin:
    st.subheader("Start a canary" if canary is None else "Replace the canary")
    registry = ModelRegistry(home)
    production = registry.production_name()
    choices = [v.name for v in registry.list() if v.name != production and v.kind != "reward"]
    with st.form("canary-start", border=False):
        version = st.selectbox(
            "Version", choices, index=None, placeholder="a candidate version", key="canary-version"
        )
        share = st.number_input(
            f"Share of conversations (%, at most {MAX_SHARE:g})", value=10.0, step=1.0, key="canary-share"
        )
        if st.form_submit_button("Start canary", icon=":material/science:"):
            try:
                if version is None:
                    raise InputError("choose a version to serve as the canary", param="version")
                started = start_canary(home, version, float(share))
            except SupportloopError as exc:
                st.error(f"Not started: {exc}")
            else:
                st.toast(f"Canary {started.version} answers {started.share:g}% of conversations")
                st.rerun()
