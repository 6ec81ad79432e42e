"""The canary (``agent.canary``): whether one runs, its version, share and start, each arm's KPIs
side by side with the two-proportion tests of their thumbs-up rates and of their answers passing
the answer check (groundedness), and a one-sentence verdict on the thumbs;
admins promote it (``supportloop models promote VERSION``, run as a command: the gate, then the
canary ends), abort it (``end_canary``) or start one (``start_canary``, which validates the share
and the version as the CLI does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from agent.canary import MAX_SHARE, canary_status, end_canary, load_canary, start_canary
from ui import services, trials

user = services.require_user()
admin = user.role == "admin"
home = Path(services.config().home)
st.title(":material/science: Canary")
st.caption(
    "A candidate version answers a sticky share of the conversations that ask for production "
    "(`supportloop models canary VERSION --share 10`); its KPIs are compared with production's since it started."
)

TRIAL = trials.Kind(
    "canary", "conversations", 10.0, MAX_SHARE, load_canary, start_canary, end_canary, "abort"
)
KPIS: trials.Figures = {
    "conversations": ("Conversations", str),
    "thumbs": ("Thumbs given", str),
    "thumbs_up_rate": ("Thumbs-up rate", services.percent),
    "mean_rating": ("CSAT (mean rating)", "{:.2f}".format),
    "escalation_rate": ("Hand-off rate", services.percent),
    "mean_resolution_s": ("Resolution time", services.duration),
    "grounded_rate": ("Answers passing the answer check", services.percent),
}


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


canary = trials.load(TRIAL, home)

if canary is None:
    st.info("No canary is running: every conversation gets production.", icon=":material/info:")
else:
    trials.tiles(TRIAL, canary)
    status = canary_status(services.store(), canary)
    st.dataframe(trials.arms_table(status["arms"], KPIS), width="stretch")
    test, grounded = status["thumbs_up_test"], status["grounded_test"]
    for name, result in (("Thumbs-up test", test), ("Answer-check test", grounded)):
        p_value = "–" if result["p_value"] is None else f"{result['p_value']:.3g}"
        st.markdown(f"**{name}** (two proportions, α = {result['alpha']}): p-value **{p_value}**")
    st.markdown(f"**Verdict:** {verdict(test)}")

if admin:
    trials.admin_controls(TRIAL, canary, home)
