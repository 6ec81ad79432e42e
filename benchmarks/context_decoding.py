"""Does the model read its passages better with context-aware decoding?

The tuned default alone (answer check off) got the key facts of 16 of 50 held-out answers: for
30 of its 34 wrong answers every key fact was in the passages it was shown
(``benchmarks.retrieval_sample``), so the misses are of reading. Context-aware decoding (Shi et
al., 2023; ``agent.generator.ContextAware``) scores each next token by how much the passages
raise it over the same chat without them, which favours a figure copied from a passage over one
the model remembers. This benchmark runs the sample questions with the check off for the base
model and the tuned default, each decoded plainly and context-aware, in one run on the same
engine (transformers: the compiled engine has no logits hook), and reports per arm:

* answer accuracy (all key facts present), declines, answers with a figure that is in neither
  the passages nor the conversation, seconds per answer;
* the paired comparison of each model's two decodings: questions gained and lost, and the
  sign-flip p-value of the gain (``agent.stats.paired_test``).

    python -m benchmarks.context_decoding [--weight 0.5] [--questions heldout.jsonl] [--name NAME] [--check]

About 35 minutes on the 2-core CPU for the held-out set (the base model writes long answers).
``--check``: the tuned default with the answer check on, what a customer would get with the
setting, plain and context-aware (about 11 minutes; ``context_decoding_check.json``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import benchmarks.tuned_default as td
from agent.stats import paired_test
from benchmarks.common import REPO, SAMPLE, bench_home, machine, table, write_result

TUNED = REPO / "agent" / "default_model"


def arm_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["kind"] in ("answerable", "followup")]
    unanswerable = [r for r in rows if r["kind"] == "unanswerable"]
    actions = Counter((r["grounding"] or {}).get("action", "none") for r in rows)
    return {
        "actions": dict(actions),
        "right": sum(r["correct"] for r in answerable),
        "answerable": len(answerable),
        "answer_accuracy": round(sum(r["correct"] for r in answerable) / len(answerable), 3),
        "answerable_declined": sum(r["behaviour"] == "decline" for r in answerable),
        "unanswerable_declined": sum(r["behaviour"] == "decline" for r in unanswerable),
        "unanswerable": len(unanswerable),
        "with_unsupported_figure": sum(bool(r["invented"]) for r in rows),
        "seconds_per_answer": round(sum(r["seconds"] for r in rows) / len(rows), 2),
    }


def compare(plain: list[dict[str, Any]], aware: list[dict[str, Any]]) -> dict[str, Any]:
    """The context-aware decoding against the plain one, question by question (answerable only)."""
    pairs = [(p, a) for p, a in zip(plain, aware, strict=True) if p["kind"] in ("answerable", "followup")]
    diffs = [float(a["correct"]) - float(p["correct"]) for p, a in pairs]
    test = paired_test(diffs)
    return {
        "gained": [a["id"] for p, a in pairs if a["correct"] and not p["correct"]],
        "lost": [a["id"] for p, a in pairs if p["correct"] and not a["correct"]],
        "gain": round(test.mean, 3),
        "ci_low": round(test.ci_low, 3),
        "ci_high": round(test.ci_high, 3),
        "p_better": round(test.p_better, 4),
    }


def run(home: Path, models: dict[str, str], weight: float, check: bool = False) -> dict[str, Any]:
    items = td.heldout()
    arms: dict[str, Any] = {}
    for name, model in models.items():
        for arm_weight in (0.0, weight):
            agent = td.make_agent(
                home, model, SAMPLE / "docs", check, engine="transformers", context_weight=arm_weight
            )
            try:
                rows = [td.ask(agent, item) for item in items]
            finally:
                agent.close()
            key = f"{name}_context" if arm_weight else name
            arms[key] = {"summary": arm_summary(rows), "rows": rows}
            print(f"{key}: {arms[key]['summary']}", flush=True)
    return arms


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weight", type=float, default=0.5, help="context_weight of the context-aware arms")
    parser.add_argument("--questions", default="heldout.jsonl", help="a question file of agent/sample")
    parser.add_argument(
        "--tuned", type=Path, default=TUNED, help="the tuned adapter (default: the shipped one)"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="the first N questions of each kind (a smoke run)"
    )
    parser.add_argument("--name", default="context_decoding", help="results file name")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="the tuned default with the answer check on (the product), plain and context-aware; "
        "results into NAME_check",
    )
    args = parser.parse_args()
    if not 0 < args.weight <= 5:
        parser.error("--weight must be above 0 and at most 5")
    if not (SAMPLE / args.questions).is_file():
        parser.error(f"--questions {args.questions}: no such file in {SAMPLE}")
    if not (args.tuned / "adapter_config.json").is_file():
        parser.error(f"--tuned {args.tuned}: not an adapter directory")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be 1 or more")
    td.QUESTIONS, td.LIMIT = args.questions, args.limit
    home = bench_home(
        args.home.resolve() if args.home else Path(tempfile.mkdtemp(prefix="bench-cad-")), "bench-cad-"
    )
    started = time.perf_counter()
    models = (
        {"tuned": str(args.tuned.resolve())}
        if args.check
        else {"base": "base", "tuned": str(args.tuned.resolve())}
    )
    arms = run(home, models, args.weight, args.check)
    result: dict[str, Any] = {
        "machine": machine(),
        "questions": args.questions,
        "weight": args.weight,
        "engine": "transformers",
        "check": args.check,
        "arms": {k: v["summary"] for k, v in arms.items()},
        "paired": {m: compare(arms[m]["rows"], arms[f"{m}_context"]["rows"]) for m in models},
        "rows": {k: v["rows"] for k, v in arms.items()},
    }
    accuracy = {k: v["summary"]["answer_accuracy"] for k, v in arms.items()}
    if not args.check:
        result["tuned_context_over_base"] = (
            round(accuracy["tuned_context"] / accuracy["base"], 2) if accuracy["base"] else None
        )
        result["tuned_context_over_base_context"] = (
            round(accuracy["tuned_context"] / accuracy["base_context"], 2)
            if accuracy["base_context"]
            else None
        )
    result["seconds"] = round(time.perf_counter() - started, 1)
    rows = [[k, v["right"], v["answerable"], v["answer_accuracy"], v["with_unsupported_figure"], v["seconds_per_answer"]]
            for k, v in result["arms"].items()]  # fmt: skip
    print(table(rows, ["arm", "right", "of", "accuracy", "unsupported figure", "s/answer"]))
    if not args.check:
        print(f"tuned context-aware over base plain: {result['tuned_context_over_base']}x; "
              f"over base context-aware: {result['tuned_context_over_base_context']}x")  # fmt: skip
    write_result(f"{args.name}_check" if args.check else args.name, result, echo=False)


if __name__ == "__main__":
    main()
