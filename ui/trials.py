"""What the Canary and Shadow pages share: a trial (a candidate version run beside production from
a live file, ``agent.canary`` / ``agent.shadow``) read, shown as tiles, promoted, stopped and
started; each page describes its trial once (``Kind``) and renders its own figures.

Promotion runs ``supportloop models promote VERSION`` as a child process (``jobs.run``), the
terminal's code path: the gate, then the trial ends. Starting calls the same ``start_*`` function
as the CLI, so the share and the version are validated exactly as there, and nothing is written
when they are refused. Widget keys are ``<key>-...`` (``canary-promote``, ``shadow-start``...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from agent.canary import Canary
from agent.errors import InputError, SupportloopError
from agent.models import ModelRegistry
from agent.shadow import Shadow
from ui import jobs, services

Trial = Canary | Shadow
Figures = dict[str, tuple[str, Callable[[Any], str]]]  # a figure's name -> its label and format


@dataclass(frozen=True)
class Kind:
    """One kind of trial: its name ("canary"), what its share is of, and the ``agent`` functions
    that read, start and end it (the CLI's own)."""

    name: str
    share_of: str  # "conversations"
    default_share: float
    max_share: float
    read: Callable[[Path], Any]
    start: Callable[[Path, str, float], Any]
    end: Callable[[Path], Any]
    stop: str  # the verb of its stop button: "abort" ("Abort the canary", key ``canary-abort``)

    @property
    def title(self) -> str:
        return self.name.capitalize()


def load(kind: Kind, home: Path) -> Any:
    """The running trial, or None; a file that cannot be read stops the page with its error.
    The last promotion's outcome, if any, is shown above it."""
    try:
        trial = kind.read(home)
    except SupportloopError as exc:
        st.error(str(exc), icon=":material/warning:")
        st.stop()
    if f"{kind.name}-result" in st.session_state:  # once, after the rerun that promoted
        code, output, version = st.session_state.pop(f"{kind.name}-result")
        if code == 0:
            st.success(
                f"{version} is production now; the {kind.name} ended.", icon=":material/rocket_launch:"
            )
        else:
            st.error(f"{version} was not promoted (exit code {code}).", icon=":material/block:")
        st.code(output or "(no output)", language=None)
    return trial


def tiles(kind: Kind, trial: Trial) -> None:
    columns = st.columns(3)
    columns[0].metric(f"{kind.title} version", trial.version, border=True)
    columns[1].metric(f"Share of {kind.share_of}", f"{trial.share:g}%", border=True)
    columns[2].metric(
        "Started", services.ago(trial.started_at), help=trial.started_at.isoformat(), border=True
    )


def arms_table(arms: dict[str, dict[str, Any]], figures: Figures) -> pd.DataFrame:
    """Each arm a column ("production (v1)"), each figure a row: ``figures`` maps a figure's name
    in the arm to its label and format ("–" where an arm has no value)."""
    return pd.DataFrame(
        {
            f"{arm} ({row['version']})": [
                "–" if row[n] is None else show(row[n]) for n, (_, show) in figures.items()
            ]
            for arm, row in arms.items()
        },
        index=[label for label, _ in figures.values()],
    )


def admin_controls(kind: Kind, trial: Trial | None, home: Path) -> None:
    """For admins: promote (with ``--force``) and stop the running trial, then start or replace one."""
    if trial is not None:
        force = st.checkbox(
            "Skip the gate (`--force`)",
            key=f"{kind.name}-force",
            help="Promote without the offline gate against production.",
        )
        left, right = st.columns(2)
        if left.button(
            f"Promote {trial.version}",
            icon=":material/rocket_launch:",
            type="primary",
            key=f"{kind.name}-promote",
        ):
            args = ["models", "promote", trial.version, *(["--force"] if force else [])]
            with st.spinner(f"Running `supportloop {' '.join(args)}`…"):
                code, output = jobs.run(args, home)
            st.session_state[f"{kind.name}-result"] = (code, output, trial.version)
            st.rerun()
        label = f"{kind.stop.capitalize()} the {kind.name}"
        if right.button(label, icon=":material/cancel:", key=f"{kind.name}-{kind.stop}"):
            stopped = kind.end(home)
            st.toast(f"{kind.title} {stopped.version if stopped else ''} stopped", icon=":material/cancel:")
            st.rerun()
    st.subheader(f"Start a {kind.name}" if trial is None else f"Replace the {kind.name}")
    _start_form(kind, home)


def _start_form(kind: Kind, home: Path) -> None:
    """A version picker (neither production nor a reward model) and a share; the start button
    calls ``kind.start`` (the CLI's) and reruns the page, or shows why it refused."""
    registry = ModelRegistry(home)
    production = registry.production_name()
    choices = [v.name for v in registry.list() if v.name != production and v.kind != "reward"]
    with st.form(f"{kind.name}-start", border=False):
        version = st.selectbox(
            "Version", choices, index=None, placeholder="a candidate version", key=f"{kind.name}-version"
        )
        share = st.number_input(
            f"Share of {kind.share_of} (%, at most {kind.max_share:g})",
            value=kind.default_share,
            step=1.0,
            key=f"{kind.name}-share",
        )
        if st.form_submit_button(f"Start {kind.name}", icon=":material/science:"):
            try:
                if version is None:
                    raise InputError(f"choose a version to run as the {kind.name}", param="version")
                started = kind.start(home, version, float(share))
            except SupportloopError as exc:
                st.error(f"Not started: {exc}")
            else:
                st.toast(f"{kind.title} {started.version} answers {started.share:g}% of {kind.share_of}")
                st.rerun()
