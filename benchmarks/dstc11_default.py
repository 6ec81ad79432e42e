"""The shipped tuned default on DSTC11's held-out conversations, against the base model and the
few-shot baseline, in one run through ``training.evaluate`` (what ``supportloop eval model``
runs), on the compiled engine customers are served by.

* Data: the same 200 held-out conversations as ``benchmarks.train_sft_dstc11`` (DSTC11 compiled
  with the serving prompt, one row per conversation, the first 200 of the 15 % split by
  conversation). The default mix (``training/recipes/default-mix.yaml``) holds out the same
  15 %: the split is a hash of the conversation id, so none of these was trained on (checked).
* Models: ``candidate`` = the shipped default (production of a fresh data home), ``production``
  = the base model, ``few_shot`` = the base model with 3 training examples before the
  conversation.
* Settings: ``gold`` (the passages compiled into the rows) and ``retrieved`` (BM25 over the
  4,299 knowledge documents, top 3).
* Statistics: ROUGE-L F1 per conversation; a paired bootstrap (``agent.stats.paired_test``) of
  tuned minus base, and of tuned minus the earlier SFT's mean (0.171, ``train_sft_dstc11.json``:
  its answers were not kept, so that interval is over the tuned default's items only).

    python -m benchmarks.dstc11_default [--eval-rows 200] [--engine compiled]
        [--models candidate,production[,few_shot]] [--settings gold[,retrieved]]

The whole run takes about 2.5 hours on a 2-core CPU (the base model answers at its full 96
tokens); ``--models candidate,production --settings gold`` measures what the must-show needs
(tuned against base and against the earlier SFT, gold passages) in about 25 minutes, and
``--models candidate --settings gold`` the tuned default against the earlier SFT alone.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, bench_home, dstc11_data, machine, require_data, write_result

GOAL = 0.275  # the official DSTC11 track-5 baseline (a fine-tuned model of about this size)


def earlier_sft() -> float:
    """The earlier SFT's gold-passage ROUGE-L on the same conversations."""
    earlier = json.loads((RESULTS / "train_sft_dstc11.json").read_text())
    return float(earlier["models"]["candidate"]["gold"]["rougeL_f1"])


def per_item_rouge(answers: list[str], references: list[str]) -> list[float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [scorer.score(r, a)["rougeL"].fmeasure for a, r in zip(answers, references, strict=True)]


def interval(diffs: list[float]) -> dict[str, float]:
    from agent.stats import paired_test

    result = paired_test(diffs)
    return {
        "mean": round(result.mean, 4),
        "ci_low": round(result.ci_low, 4),
        "ci_high": round(result.ci_high, 4),
        "p_better": round(result.p_better, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval-rows", type=int, default=200)
    parser.add_argument("--engine", choices=["compiled", "transformers"], default="compiled")
    parser.add_argument("--home", type=Path)
    parser.add_argument("--models", default="candidate,production,few_shot", help="Roles to run.")
    parser.add_argument("--settings", default="gold,retrieved", help="Passage settings to run.")
    args = parser.parse_args()
    roles = [r for r in args.models.split(",") if r]
    if "candidate" not in roles or not set(roles) <= {"candidate", "production", "few_shot"}:
        parser.error("--models: candidate plus any of production, few_shot")

    import training.evaluate as ev
    from agent.models import ModelRegistry
    from training.data import is_validation, load_docs

    # 1. The held-out conversations, and the check that the default never trained on them.
    home = bench_home(args.home, "bench-dstc11-default-")
    data = dstc11_data()
    held_out = data.sft_val[: args.eval_rows]
    leaked = [r["conversation_id"] for r in held_out if not is_validation(r["conversation_id"], 0.15)]
    assert not leaked, f"held-out conversations on the default mix's training side: {leaked[:3]}"
    registry = ModelRegistry(home)
    tuned = registry.production_name()
    assert registry.get(tuned).kind != "base", "the data home's production is not the shipped default"
    settings = tuple(x for x in args.settings.split(",") if x)
    if "gold" not in settings or not set(settings) <= set(ev.SETTINGS):
        parser.error(f"--settings: gold plus any of {', '.join(ev.SETTINGS)}")
    print(f"DSTC11: {len(held_out)} held-out conversations; {tuned}: {', '.join(roles)}", flush=True)

    # 2. All three models, both settings, identical inputs.
    retriever = ev.bm25_retriever(load_docs(require_data("dstc11", "knowledge_docs.jsonl")), k=3)
    plan = ev.EvalPlan(
        models={role: tuned if role == "candidate" else "base" for role in roles},
        examples=ev.examples_from_rows(held_out),
        settings=settings,
        shot_pool=data.sft_train,
        retriever=retriever,
        protocol=ev.Protocol(engine=args.engine),
        on_result=lambda role, setting, m: print(
            f"{role}/{setting}: ROUGE-L {m['rougeL_f1']:.4f}", flush=True
        ),
    )
    started = time.perf_counter()
    report = ev.evaluate_versions(plan, home)
    seconds = time.perf_counter() - started

    # 3. Per-conversation ROUGE-L: the paired comparisons.
    references = [e.reference for e in plan.examples]
    rouge = {
        role: {s: per_item_rouge(report["answers"][role][s], references) for s in report["answers"][role]}
        for role in report["answers"]
    }
    earlier = earlier_sft()

    def minus(role: str, other: str, setting: str) -> dict[str, float]:
        pairs = zip(rouge[role][setting], rouge[other][setting], strict=True)
        return interval([a - b for a, b in pairs])

    others = {"production": "tuned_minus_base", "few_shot": "tuned_minus_few_shot"}
    comparisons: dict[str, dict[str, Any]] = {
        setting: {name: minus("candidate", role, setting) for role, name in others.items() if role in rouge}
        for setting in settings
    }
    comparisons["gold"]["tuned_minus_earlier_sft"] = interval(
        [a - earlier for a in rouge["candidate"]["gold"]]
    )

    result: dict[str, Any] = {
        "benchmark": "dstc11_default",
        "machine": machine(),
        "engine": args.engine,
        "n": report["n"],
        "specs": report["specs"],
        "protocol": report["protocol"],
        "models": report["models"],
        "comparisons": comparisons,
        "earlier_sft_rougeL_f1": earlier,
        "goal_rougeL_f1": GOAL,
        "eval_seconds": round(seconds, 1),
        "samples": {role: report["answers"][role]["gold"][:5] for role in report["answers"]},
        "references": references[:5],
    }
    write_result("dstc11_default", result)
    gold = ", ".join(f"{role} {m['gold']['rougeL_f1']:.4f}" for role, m in report["models"].items())
    print(f"gold ROUGE-L: {gold}; earlier SFT {earlier:.3f}, goal {GOAL:.3f}")


if __name__ == "__main__":
    main()
