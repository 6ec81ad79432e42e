"""GRPO from an SFT version on DSTC11 prompts: do groundedness and ROUGE-L rise on held-out rows?

* Prompts: DSTC11 training conversations compiled as in ``benchmarks.train_sft_dstc11``
  (serving prompt, gold passages), the ones the SFT parent did *not* train on (it trained on the
  seeded 200).
* GRPO: ``training/recipes/grpo-cpu.yaml`` (4 sampled answers of at most 64 tokens per prompt,
  rewards groundedness 1, reference ROUGE-L 1, length 0.5) for ``--max-steps`` optimizer steps.
* Measure: the fixed evaluation protocol (greedy, 96 new tokens) on the first ``--eval-rows``
  held-out conversations with gold passages, for the parent and the GRPO version, identical
  inputs: ROUGE-L F1, groundedness, perplexity, answer length.

    python -m benchmarks.grpo_dstc11 --home .cache/bench/gate --base v3 [--max-steps 8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from benchmarks.common import RESULTS, bench_home, dstc11_data, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="the SFT parent version in --home")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--eval-rows", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=8, help="evaluation batch size")
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--prompts", type=int, default=64, help="seeded subset of the training prompts")
    args = parser.parse_args()

    import training.evaluate as ev
    from training.grpo import train_grpo

    home = bench_home(args.home, "bench-grpo-")
    os.environ["SUPPORTLOOP_HOME"] = str(home)
    data = dstc11_data()
    seen = {r["conversation_id"] for r in random.Random(0).sample(data.sft_train, 200)}
    fresh = [r for r in data.sft_train if r["conversation_id"] not in seen]
    record_file = home / "grpo_dstc11_train.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    key = f"{args.base}:{args.max_steps}:{args.learning_rate}:{args.prompts}"
    if key not in record:
        result = train_grpo(
            fresh,
            base=args.base,
            home=home,
            overrides={
                "max_steps": args.max_steps,
                "learning_rate": args.learning_rate,
                "data.max_examples": args.prompts,
            },
        )
        record[key] = {"version": result.version, "metrics": result.metrics, "loss_png": str(result.loss_png)}
        record_file.write_text(json.dumps(record, indent=1))
    trained = record[key]
    print(f"grpo: {trained['version']} from {args.base}: {trained['metrics']}", flush=True)

    started = time.perf_counter()
    plan = ev.EvalPlan(
        models={"parent": args.base, "grpo": trained["version"]},
        examples=ev.examples_from_rows(data.sft_val[: args.eval_rows]),
        settings=("gold",),
        protocol=ev.Protocol(batch_size=args.batch_size),
    )
    report = ev.evaluate_versions(plan, home)
    keys = ("rougeL_f1", "groundedness", "perplexity", "answer_chars")
    table = {role: {k: report["models"][role]["gold"][k] for k in keys} for role in plan.models}
    for role, metrics in table.items():
        print(role, json.dumps(metrics), flush=True)
    out = {
        "benchmark": "grpo_dstc11",
        "base": args.base,
        "version": trained["version"],
        "train_metrics": trained["metrics"],
        "eval_conversations": len(plan.examples),
        "eval_seconds": round(time.perf_counter() - started, 1),
        "gold": table,
        "rise": {k: round(table["grpo"][k] - table["parent"][k], 4) for k in keys},
        "protocol": report["protocol"],
    }
    write_result("grpo_dstc11", out, echo=False)
    png = Path(trained["loss_png"])
    if png.is_file():
        (RESULTS / "grpo_dstc11_loss.png").write_bytes(png.read_bytes())
    print(json.dumps(out["rise"]))


if __name__ == "__main__":
    main()
