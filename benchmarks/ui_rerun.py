"""Rerun latency of the customer chat page, measured with Streamlit's AppTest.

Every interaction reruns the page script. The agent (model, knowledge, log store) is built once
per process by ``st.cache_resource``; this script times

* the first run (imports + building the agent, i.e. loading the model),
* reruns of the page with a conversation on screen (the agent is reused: no model reload),
* the baseline in the same run: a rerun after clearing the resource cache, which is what every
  rerun would cost if the page built its agent itself,

and counts how many agents were built. Usage::

    python -m benchmarks.ui_rerun              # the real default model (keyword sample knowledge)
    python -m benchmarks.ui_rerun --demo       # the demo generator, no model
    python -m benchmarks.ui_rerun --reruns 30 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, link_cached_model

APP = REPO / "ui" / "app.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true", help="the demo generator instead of the real model")
    parser.add_argument("--reruns", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="ui-rerun-"))
    link_cached_model(home)  # reuse the converted default model (no 45 s conversion)
    os.environ.update(
        SUPPORTLOOP_HOME=str(home),
        SUPPORTLOOP_UI_KEYWORD_KNOWLEDGE="1",
        SUPPORTLOOP_GENERATION__MAX_NEW_TOKENS="24",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    if args.demo:
        os.environ.update(SUPPORTLOOP_UI_FAKE_MODEL="1", SUPPORTLOOP_UI_FAKE_DELAY="0")

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from agent.runtime import Agent

    built = []
    original_init = Agent.__init__

    def counting_init(self: Agent, *a: object, **kw: object) -> None:
        built.append(1)
        original_init(self, *a, **kw)  # type: ignore[arg-type]

    Agent.__init__ = counting_init  # type: ignore[method-assign]

    at = AppTest.from_file(str(APP), default_timeout=600)
    started = time.perf_counter()
    at.run()
    first_s = time.perf_counter() - started
    assert not at.exception, at.exception

    started = time.perf_counter()
    at.chat_input[0].set_value("How do I reset the filter timer?").run()
    turn_s = time.perf_counter() - started
    assert not at.exception, at.exception
    agents_after_turn = len(built)

    reruns = []
    for _ in range(args.reruns):
        started = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - started)
    agents_after_reruns = len(built)

    st.cache_resource.clear()  # the baseline: a rerun that has to build the agent again
    started = time.perf_counter()
    at.run()
    rebuild_s = time.perf_counter() - started

    reruns_ms = sorted(r * 1000 for r in reruns)
    result = {
        "mode": "demo generator" if args.demo else "real default model (SmolLM2-135M), keyword knowledge",
        "first_run_s": round(first_s, 3),
        "turn_s": round(turn_s, 3),
        "reruns": len(reruns_ms),
        "rerun_median_ms": round(statistics.median(reruns_ms), 1),
        "rerun_p95_ms": round(reruns_ms[max(0, int(len(reruns_ms) * 0.95) - 1)], 1),
        "rerun_min_ms": round(reruns_ms[0], 1),
        "rerun_with_agent_rebuild_s": round(rebuild_s, 3),
        "agents_built_by_first_run_and_turn": agents_after_turn,
        "agents_built_by_reruns": agents_after_reruns - agents_after_turn,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    speedup = rebuild_s * 1000 / result["rerun_median_ms"]
    print(f"\na rerun reuses the cached agent: {speedup:.0f}x faster than rebuilding it")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
