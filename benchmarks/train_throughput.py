"""Training throughput and peak memory: our CPU SFT recipe vs TRL's defaults, same data, same run.

Both train SmolLM2-135M-Instruct on the same DSTC11 rows (compiled with the serving prompt) for
the same number of optimizer steps; each configuration runs in its own subprocess so its peak
resident memory (``ru_maxrss``) is its own. Tokens are the non-padding tokens of every
micro-batch trained on (``training.common.count_tokens``), counted the same way for both.

* ``recipe``: ``training/recipes/sft-cpu.yaml`` (LoRA r16 on all linear layers, batch 1 x 8,
  max_length 1024, no gradient checkpointing, ``bf16: false``), through
  ``training.sft.train_sft``, which also scores only the answer tokens in TRL's fused LM head
  (``training.common.compact_lm_head_on_cpu``);
* ``trl-defaults``: ``SFTTrainer(model=<dir>, args=SFTConfig(output_dir, use_cpu=True,
  max_steps=N))``: a full fine-tune with TRL's default batch size (8), max_length (1024),
  gradient checkpointing setting and bf16 autocast (on by default, even on a CPU without bf16
  matrix units);
* ``recipe-bf16-auto``: the recipe with ``bf16: auto`` (opt-in), which turns bf16 autocast on
  only where the CPU has AVX512-BF16 or AMX (``training.recipes.cpu_bf16``). There this arm shows
  what that gains; elsewhere it is the recipe itself.

    python -m benchmarks.train_throughput [--rows 8] [--steps 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import REPO, bench_home, machine, require_data, write_result

CONFIGS = ("recipe", "trl-defaults", "recipe-bf16-auto")


def rows_file(n: int, out: Path) -> Path:
    from training.data import compile_dataset, write_rows

    data = compile_dataset(
        [require_data("dstc11", "conversations.jsonl")],
        docs=require_data("dstc11", "knowledge_docs.jsonl"),
        turns="last",
    )
    write_rows(out, [{"prompt": r["prompt"], "completion": r["completion"]} for r in data.sft_train[:n]])
    return out


def run_one(config: str, data: Path, steps: int, home: Path) -> dict:
    from training.common import peak_rss_mb

    base = str(home / "models" / "smollm2-135m-instruct")
    started = time.perf_counter()
    if config in ("recipe", "recipe-bf16-auto"):
        from training.sft import train_sft

        overrides = {"max_steps": steps, **({"bf16": "auto"} if config == "recipe-bf16-auto" else {})}
        result = train_sft(data, base=base, home=home, overrides=overrides, progress=False)
        tokens, steps_done = result.metrics.get("train_tokens"), result.metrics["train_steps"]
        seconds = result.metrics["train_seconds"]
    else:
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        from training.data import load_rows

        args = SFTConfig(
            output_dir=str(home / "runs" / "trl-defaults"),
            use_cpu=True,
            max_steps=steps,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
        )
        from training.common import count_tokens

        trainer = SFTTrainer(model=base, args=args, train_dataset=Dataset.from_list(load_rows(data)))
        counter = count_tokens(trainer)  # the same counting as the recipe's run
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
        tokens, steps_done = counter[0], trainer.state.global_step
    return {
        "config": config,
        "steps": steps_done,
        "train_tokens": int(tokens or 0),
        "train_seconds": round(seconds, 1),
        "tokens_per_s": round((tokens or 0) / seconds, 1),
        "peak_rss_mb": peak_rss_mb(),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--one", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process: one configuration, JSON on the last line
        print(json.dumps(run_one(args.one, args.data, args.steps, args.home)))
        return

    home = bench_home(None, "bench-throughput-")
    data = rows_file(args.rows, home / "rows.jsonl")
    print(
        f"{args.rows} DSTC11 rows, {args.steps} optimizer step(s) per configuration; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    results = []
    for config in CONFIGS:
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.train_throughput",
            "--one",
            config,
            "--data",
            str(data),
            "--steps",
            str(args.steps),
            "--home",
            str(home),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    ours, trl, auto = results
    from training.recipes import cpu_bf16

    speedup = ours["tokens_per_s"] / trl["tokens_per_s"] if trl["tokens_per_s"] else None
    memory_ratio = ours["peak_rss_mb"] / trl["peak_rss_mb"] if trl["peak_rss_mb"] else None
    summary = {
        "benchmark": "train_throughput",
        "rows": args.rows,
        "steps": args.steps,
        "results": results,
        "speedup_tokens_per_s": round(speedup, 2) if speedup else None,
        "peak_rss_ratio": round(memory_ratio, 2) if memory_ratio else None,
        "cpu_bf16": cpu_bf16(),
        "bf16_speedup_tokens_per_s": (
            round(auto["tokens_per_s"] / ours["tokens_per_s"], 2) if ours["tokens_per_s"] else None
        ),
        "machine": machine(),
        "load_average_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    write_result("train_throughput", summary, echo=False)
    print("| config | steps | tokens | s | tokens/s | peak RSS MB |")
    for r in results:
        print(
            f"| {r['config']} | {r['steps']} | {r['train_tokens']} | {r['train_seconds']} | {r['tokens_per_s']} "
            f"| {r['peak_rss_mb']} |"
        )
    if speedup and memory_ratio:
        print(f"recipe vs TRL defaults: {speedup:.2f}x tokens/s, {memory_ratio:.2f}x peak RSS")
    if summary["bf16_speedup_tokens_per_s"]:
        print(
            f"recipe with bf16: auto (autocast {'on' if summary['cpu_bf16'] else 'off'}: this CPU "
            f"{'has' if summary['cpu_bf16'] else 'lacks'} AVX512-BF16/AMX) vs the recipe in fp32: "
            f"{summary['bf16_speedup_tokens_per_s']:.2f}x tokens/s"
        )


if __name__ == "__main__":
    main()
