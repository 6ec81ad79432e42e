"""How much did the evaluation protocol's old repetition penalty move its DSTC11 figures?

Until 2026-12-06 the protocol's torch path (``eval model --engine transformers``, the promotion
gate, the DSTC11 training benchmarks) decoded with transformers' ``repetition_penalty``, which
penalizes every prompt token as well as the answer's. That keeps a model from copying words out
of its passages, which the agent, the compiled engine and the batching server never did. This
benchmark decodes the same held-out DSTC11 conversations (gold passages) with the shipped tuned
default and the base model, once as the protocol did then (the penalty over the prompt) and once
as it does now (``agent.generator.reply_penalty``: the answer's own tokens only), in one run,
and reports per model and decoding: ROUGE-L F1, groundedness, and the paired difference of each
model's two decodings and of the two models under each decoding (``agent.stats.paired_test``).

    python -m benchmarks.eval_penalty [--eval-rows 40]

About 15 minutes for 40 conversations on a 2-core CPU (four torch passes over them).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchmarks.common import bench_home, dstc11_data, machine, write_result
from benchmarks.dstc11_default import interval, per_item_rouge


def over_the_prompt(options: Any) -> Any:
    """``greedy_options`` as the protocol had it before 2026-12-06: transformers' own
    ``repetition_penalty``, over the prompt's tokens as well as the answer's."""

    def old(tokenizer: Any, protocol: Any, prompt_len: int) -> dict[str, Any]:
        kwargs = options(tokenizer, protocol, prompt_len)
        kwargs.pop("logits_processor")
        return {**kwargs, "repetition_penalty": protocol.repetition_penalty}

    return old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval-rows", type=int, default=40, help="held-out conversations (first N)")
    parser.add_argument("--home", type=Path)
    parser.add_argument("--name", default="eval_penalty", help="results file name")
    args = parser.parse_args()
    if args.eval_rows < 1:
        parser.error("--eval-rows must be 1 or more")

    import training.decoding as decoding
    import training.evaluate as ev
    from agent.models import ModelRegistry

    home = bench_home(args.home, "bench-eval-penalty-")
    data = dstc11_data()
    held_out = data.sft_val[: args.eval_rows]
    tuned = ModelRegistry(home).production_name()
    answer_only = decoding.greedy_options
    decodings = {"prompt_and_answer": over_the_prompt(answer_only), "answer_only": answer_only}
    started = time.perf_counter()
    scores: dict[str, dict[str, Any]] = {}
    try:
        for name, options in decodings.items():
            decoding.greedy_options = options
            plan = ev.EvalPlan(
                models={"candidate": tuned, "production": "base"},
                examples=ev.examples_from_rows(held_out),
                settings=("gold",),
                shot_pool=data.sft_train,
                protocol=ev.Protocol(engine="transformers"),
            )
            report = ev.evaluate_versions(plan, home)
            references = [e.reference for e in plan.examples]
            scores[name] = {
                role: {
                    "rougeL_f1": round(report["models"][role]["gold"]["rougeL_f1"], 4),
                    "groundedness": report["models"][role]["gold"].get("groundedness"),
                    "per_item": per_item_rouge(report["answers"][role]["gold"], references),
                    "answers": report["answers"][role]["gold"],
                }
                for role in ("candidate", "production")
            }
            print(name, {r: scores[name][r]["rougeL_f1"] for r in scores[name]}, flush=True)
    finally:
        decoding.greedy_options = answer_only

    def diff(a: list[float], b: list[float]) -> dict[str, float]:
        return interval([x - y for x, y in zip(a, b, strict=True)])

    old, new = scores["prompt_and_answer"], scores["answer_only"]
    result: dict[str, Any] = {
        "machine": machine(),
        "n": len(held_out),
        "tuned": tuned,
        "seconds": round(time.perf_counter() - started, 1),
        "models": {
            name: {role: {k: v[k] for k in ("rougeL_f1", "groundedness")} for role, v in s.items()}
            for name, s in scores.items()
        },
        "answer_only_minus_prompt_and_answer": {
            role: {
                **diff(new[role]["per_item"], old[role]["per_item"]),
                "answers_changed": sum(
                    a != b for a, b in zip(new[role]["answers"], old[role]["answers"], strict=True)
                ),
            }
            for role in ("candidate", "production")
        },
        "tuned_minus_base": {
            name: diff(s["candidate"]["per_item"], s["production"]["per_item"]) for name, s in scores.items()
        },
    }
    write_result(args.name, result)


if __name__ == "__main__":
    main()
