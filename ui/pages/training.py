"""Training (admins): what a round would build from the reviewed logs, a button that starts
``supportloop train round`` with live progress, and the round's report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import streamlit as st

from agent.errors import SupportloopError
from ui import jobs, services

KINDS = {"sft": "SFT (answers to imitate)", "pref": "Preference pairs (DPO)", "kto": "KTO (thumbs up/down)"}

user = services.require_user(role="admin")
cfg = services.config()
home = Path(cfg.home)
st.title(":material/model_training: Training")
st.caption(
    "Reviewed conversations (ratings, labels, corrections, marked turns) become the next round's "
    "training data, PII redacted. A round trains a candidate and promotes it only if it beats production."
)


@st.cache_resource
def registry() -> jobs.Jobs:
    return jobs.Jobs()


def preview() -> dict[str, Any]:
    """The manifest of what a round would compile from the log store now (nothing is written)."""
    from training import compile_dataset

    return compile_dataset([], store=services.store(), persona=cfg.persona).manifest


# ------------------------------------------------------------------------------- what a round builds
st.subheader("What a round would build")
if (
    st.button("Recount", icon=":material/refresh:", key="recount")
    or "training-manifest" not in st.session_state
):
    with st.spinner("Compiling the reviewed logs…"):
        try:
            st.session_state["training-manifest"] = preview()
        except (SupportloopError, ImportError) as exc:
            st.session_state["training-manifest"] = {"error": str(exc)}
manifest = st.session_state["training-manifest"]
if "error" in manifest:
    st.error(f"Could not compile the logs: {manifest['error']}", icon=":material/warning:")
else:
    counts = manifest.get("counts", {})
    total = sum(side for kind in counts.values() for side in kind.values())
    tiles = st.columns(4)
    tiles[0].metric("Reviewed conversations", manifest.get("conversations", 0), border=True)
    for tile, (kind, label) in zip(tiles[1:], KINDS.items(), strict=True):
        c = counts.get(kind, {"train": 0, "val": 0})
        tile.metric(
            label, c["train"] + c["val"], help=f"{c['train']} train, {c['val']} validation", border=True
        )
    redacted = manifest.get("redactions") or {}
    st.caption(
        f"Train/validation split {1 - manifest.get('val_fraction', 0.2):.0%}/{manifest.get('val_fraction', 0.2):.0%} "
        "by conversation · PII redacted: "
        + (", ".join(f"{k} {v}" for k, v in redacted.items()) or "none")
        + f" · duplicates dropped: {sum((manifest.get('duplicates_dropped') or {}).values())}"
    )
    if total == 0:
        st.info(
            "Nothing to train on yet: review some conversations first (rate, label, correct or mark "
            "answers for training on the review page).",
            icon=":material/edit_note:",
        )

# ------------------------------------------------------------------------------- run a round
st.subheader("Run a round")
job = registry().latest(home)
available = jobs.round_available()
if not available:
    st.warning(
        "`supportloop train round` is not available in this install (it arrives with "
        "`training/round.py`). The counts above are still what a round would use.",
        icon=":material/construction:",
    )
with st.form("start-round", border=False):
    steps, evals, more = st.columns([1, 1, 3])
    max_steps = steps.number_input(
        "Max steps per trainer", min_value=1, value=None, placeholder="recipe default", key="round-steps"
    )
    eval_limit = evals.number_input("Held-out answers to evaluate", min_value=1, value=50, key="round-eval")
    extra = more.text_input(
        "More `supportloop train round` options",
        key="round-options",
        placeholder="e.g. --recipe cpu --data past.jsonl --primary rougeL_f1",
    )
    start = st.form_submit_button(
        "Start training round",
        icon=":material/rocket_launch:",
        type="primary",
        disabled=not available or bool(job and job.running),
    )
if start:
    try:
        options = f"--eval-limit {int(eval_limit or 50)} " + (
            f"--max-steps {int(max_steps)} " if max_steps else ""
        )
        job = registry().start(home, options + extra)
        st.toast("Training round started", icon=":material/rocket_launch:")
    except (RuntimeError, OSError, ValueError) as exc:
        st.error(f"Could not start the round: {exc}")


@st.fragment(run_every=2)
def progress(job: jobs.RoundJob) -> None:
    lines = job.lines()
    if job.running:
        fraction = job.progress()
        with st.status("Training round running…", expanded=True, state="running"):
            if fraction is not None:
                st.progress(fraction, text=lines[-1][:120] if lines else None)
            st.code("\n".join(lines[-25:]) or "starting…", language=None)
            if st.button("Stop the round", icon=":material/stop_circle:", key="stop-round"):
                job.stop()
        return
    ok = job.returncode == 0
    label = "Training round finished" if ok else f"Training round failed (exit code {job.returncode})"
    with st.status(label, expanded=not ok, state="complete" if ok else "error"):
        st.code("\n".join(lines[-60:]) or "(no output)", language=None)
        st.caption(f"Full log: `{job.log_path}`")
    if job.running is False and st.session_state.get("round-done") != str(job.log_path):
        st.session_state["round-done"] = str(job.log_path)
        st.rerun(scope="app")  # once, so the report below shows the new round


if job is not None:
    progress(job)

# ------------------------------------------------------------------------------- reports
st.subheader("Round reports")
found = jobs.reports(home)
if not found:
    st.caption(
        "No round has been run yet. Its report (metrics, the promotion decision, plots) will appear here."
    )
else:
    choice = st.selectbox(
        "Report",
        found,
        format_func=lambda p: p.parent.name,
        key="report-choice",
        label_visibility="collapsed",
    )
    text = choice.read_text(encoding="utf-8")
    images = {m for m in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)}
    st.markdown(re.sub(r"!\[[^\]]*\]\([^)]+\)", "", text))
    pictures = sorted({*(choice.parent / name for name in images), *choice.parent.glob("*.png")})
    for picture in [p for p in pictures if p.is_file()]:
        st.image(str(picture), caption=picture.name)
