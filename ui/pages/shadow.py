"""The shadow (``agent.shadow``): whether one runs, its version, share and start, both arms' scores
on the same turns (``shadow_status``: grounding pass rate, groundedness, the reward model's score
where ``supportloop models shadow status`` has scored them), the turns left unmeasured, the paired
test's p-values and a one-sentence verdict, and a warning when production changed under it;
admins promote the shadowed version (``supportloop models promote VERSION``, run as a command:
the gate, then the shadow ends), stop it (``end_shadow``) or start one (``start_shadow``, which
validates the share and the version as the CLI does). Reward models are never loaded here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from agent.models import ModelRegistry
from agent.shadow import (
    DROPPED,
    FAILED,
    MAX_SHARE,
    METRICS,
    PRODUCTION,
    SCORED,
    SHADOW,
    end_shadow,
    load_shadow,
    shadow_status,
    start_shadow,
)
from training.shadow import reward_model_for
from ui import services, trials

user = services.require_user()
admin = user.role == "admin"
home = Path(services.config().home)
st.title(":material/visibility: Shadow")
st.caption(
    "A candidate version also answers a sticky share of production's turns, silently, off the "
    "customer's path (`supportloop models shadow VERSION`); both answers of each turn are scored and "
    "compared with a paired test."
)

TRIAL = trials.Kind(
    "shadow",
    "production's conversations",
    MAX_SHARE,
    MAX_SHARE,
    load_shadow,
    start_shadow,
    end_shadow,
    "stop",
)
FIGURES: trials.Figures = {
    "turns": ("Turns scored", str),
    "pass_rate": ("Grounding pass rate", services.percent),
    "mean_groundedness": ("Mean groundedness", "{:.3f}".format),
    "mean_reward": ("Mean reward", "{:.3f}".format),
}


def p_values(comparison: dict[str, Any]) -> pd.DataFrame:
    """The paired test of each score: turns, mean difference, one-sided p-values."""
    rows = {
        METRICS[metric]: {
            "Turns paired": test["n"],
            "Shadow − production": f"{test['mean']:+.3f}" if test["n"] else "–",
            "p (better)": f"{test['p_better']:.3g}" if test["n"] else "–",
            "p (worse)": f"{test['p_worse']:.3g}" if test["n"] else "–",
        }
        for metric, test in comparison.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


shadow = trials.load(TRIAL, home)

if shadow is None:
    st.info("No shadow is running: no candidate answers production's turns.", icon=":material/info:")
else:
    trials.tiles(TRIAL, shadow)
    reward_model = reward_model_for(home)
    status = shadow_status(
        services.store(), shadow, reward_model, production=ModelRegistry(home).production_name()
    )
    if status["production_changed"]:
        st.warning(status["production_changed"], icon=":material/warning:")
    arms = status["arms"]
    # The reward's row only with a reward model.
    shown = {name: figure for name, figure in FIGURES.items() if name in arms[PRODUCTION]}
    st.dataframe(trials.arms_table(arms, shown), width="stretch")
    turns = status["turns"]
    st.markdown(
        f"**Turns:** {turns[SCORED]} scored, {turns[DROPPED]} dropped (the shadow's queue was full), "
        f"{turns[FAILED]} failed"
    )
    if reward_model is None:
        st.caption("Reward: no reward model is registered (`supportloop train reward`).")
    elif arms[SHADOW]["mean_reward"] is None:
        st.caption(f"Reward: `supportloop models shadow status` scores the turns with {reward_model}.")
    alpha = next(iter(status["comparison"].values()))["alpha"]
    st.markdown(f"**Paired test** (sign-flip, α = {alpha}) on the turns both arms answered:")
    st.dataframe(p_values(status["comparison"]), width="stretch")
    st.markdown(f"**Verdict:** {status['verdict']}")

if admin:
    trials.admin_controls(TRIAL, shadow, home)
