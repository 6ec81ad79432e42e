"""Does the batched evaluation path give the same answers and perplexity as one row at a time?

Runs ``training.evaluate.evaluate_loaded`` (greedy, <= 96 new tokens, the reference's perplexity
from the same forward pass) on ``--rows`` DSTC11 held-out prompts with the default model twice:
batch size 1 and batch size ``--batch``, same run. Prints the share of identical answers, ROUGE-L
and perplexity of both, the time each took and the speed-up.

    python -m benchmarks.eval_batching [--rows 16] [--batch 8]
"""

from __future__ import annotations

import argparse
import time

from agent.config import DEFAULT_MODEL
from benchmarks.common import TEST_HOME, require_data, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    from agent.models import ensure_default_model, load_resolved, resolve_spec
    from training.data import compile_dataset
    from training.evaluate import Protocol, evaluate_loaded, examples_from_rows

    ensure_default_model(TEST_HOME)
    model, tokenizer = load_resolved(resolve_spec(DEFAULT_MODEL, home=TEST_HOME))
    data = compile_dataset(
        [require_data("dstc11", "conversations.jsonl")],
        docs=require_data("dstc11", "knowledge_docs.jsonl"),
        turns="last",
        val_fraction=0.15,
    )
    examples = examples_from_rows(data.sft_val[: args.rows])
    prompts = [list(e.prompt) for e in examples]
    runs = {}
    for size in (1, args.batch):
        started = time.perf_counter()
        metrics, answers = evaluate_loaded(model, tokenizer, examples, prompts, Protocol(batch_size=size))
        runs[size] = (answers, time.perf_counter() - started, metrics)
    single, batched = runs[1][0], runs[args.batch][0]
    out = {
        "benchmark": "eval_batching",
        "rows": len(prompts),
        "batch_size": args.batch,
        "identical_share": sum(a == b for a, b in zip(single, batched, strict=True)) / len(prompts),
        "rougeL_single": runs[1][2]["rougeL_f1"],
        "rougeL_batched": runs[args.batch][2]["rougeL_f1"],
        "perplexity_single": runs[1][2]["perplexity"],
        "perplexity_batched": runs[args.batch][2]["perplexity"],
        "seconds_single": round(runs[1][1], 1),
        "seconds_batched": round(runs[args.batch][1], 1),
        "speedup": round(runs[1][1] / runs[args.batch][1], 2),
    }
    write_result("eval_batching", out)


if __name__ == "__main__":
    main()
