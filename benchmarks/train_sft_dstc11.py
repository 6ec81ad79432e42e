"""SFT of the default model on DSTC11 and the held-out comparison the issue asks for.

* Data: ``../shared/data/dstc11`` compiled with the serving prompt (gold passages from
  ``knowledge_docs.jsonl``), one row per conversation (its final, knowledge-grounded answer:
  ``turns="last"``), split by conversation (15% held out; the split never leaks a conversation).
* Training: a seeded subset of ``--train-rows`` training conversations, ``sft-cpu`` recipe
  (LoRA r16 on all linear layers, max_length 512, 1 epoch), timed.
* Evaluation (``training.evaluate``, fixed protocol): the first ``--eval-rows`` held-out
  conversations; the candidate vs the base model (= production: nothing is promoted in this
  fresh data home) vs the few-shot baseline (base model + 3 training examples), with gold
  passages and with passages retrieved by BM25 over the 4,299 knowledge documents.

    python -m benchmarks.train_sft_dstc11 [--train-rows 400] [--eval-rows 200]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from benchmarks.common import RESULTS, bench_home, dstc11_data, require_data, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-rows", type=int, default=200)
    parser.add_argument("--eval-rows", type=int, default=200)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=1, help="generation batch size")
    parser.add_argument("--train-batch", type=int, default=1, help="rows per step (x8 accumulation)")
    parser.add_argument(
        "--lora-top-layers", type=int, default=15, help="LoRA on the top N blocks only (0: all)"
    )
    parser.add_argument("--train-only", action="store_true", help="train and register, skip evaluation")
    parser.add_argument("--chunk", type=int, default=25, help="conversations per evaluation chunk")
    parser.add_argument("--adapter", help="skip training: evaluate this registered version (with --home)")
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()

    import training.evaluate as ev
    from training.data import load_docs
    from training.sft import train_sft

    home = bench_home(args.home, "bench-dstc11-")

    # 1. Data: one row per conversation, split by conversation.
    data = dstc11_data()
    train_rows = random.Random(0).sample(data.sft_train, min(args.train_rows, len(data.sft_train)))
    held_out = data.sft_val[: args.eval_rows]
    overlap = {r["conversation_id"] for r in train_rows} & {r["conversation_id"] for r in held_out}
    assert not overlap, f"split leak: {sorted(overlap)[:3]}"
    print(
        f"DSTC11: {len(data.sft_train)} train / {len(data.sft_val)} held-out conversations; "
        f"training on {len(train_rows)}, evaluating on {len(held_out)}",
        flush=True,
    )

    # 2. SFT (timed).
    train_record = home / "train_sft_dstc11_train.json"
    if args.adapter:
        version, loss_png = args.adapter, None
        saved = json.loads(train_record.read_text()) if train_record.is_file() else {}
        train_metrics = saved.get("train_metrics", {})
        loss_png = Path(saved["loss_png"]) if saved.get("loss_png") else None
    else:
        n_layers = 30  # SmolLM2-135M
        overrides = {
            "num_train_epochs": args.epochs,
            "learning_rate": args.learning_rate,
            "per_device_train_batch_size": args.train_batch,
            "gradient_accumulation_steps": max(1, 8 // args.train_batch),
            "lora.r": args.lora_r,
            "lora.lora_alpha": 2 * args.lora_r,
            # Backpropagating through only the top blocks is most of the CPU saving: the frozen
            # lower blocks need a forward pass and no backward.
            "lora.layers_to_transform": (
                list(range(n_layers - args.lora_top_layers, n_layers)) if args.lora_top_layers else None
            ),
            "data.max_examples": len(train_rows),  # every row (None would keep the recipe's cap)
        }
        started = time.perf_counter()
        result = train_sft(train_rows, base="production", home=home, overrides=overrides)
        version, train_metrics, loss_png = result.version, result.metrics, result.loss_png
        train_metrics = {**train_metrics, "wall_seconds": round(time.perf_counter() - started, 1)}
        train_record.write_text(
            json.dumps(
                {
                    "version": version,
                    "train_metrics": train_metrics,
                    "overrides": overrides,
                    "loss_png": str(loss_png) if loss_png else None,
                }
            )
        )
        print(f"trained {version}: {json.dumps(train_metrics)}", flush=True)
        if args.train_only:
            return

    # 3. Evaluate candidate vs base (production) vs few-shot, gold and retrieved passages, in
    #    chunks of rows: every chunk runs all three models in both settings, and the results are
    #    re-scored over every finished chunk, so a run cut short still reports a complete table.
    retriever = ev.bm25_retriever(load_docs(require_data("dstc11", "knowledge_docs.jsonl")), k=3)
    models = {"candidate": version, "production": "production", "few_shot": "smollm2-135m-instruct"}
    examples = ev.examples_from_rows(held_out)
    shots = ev.pick_shots(data.sft_train, ev.FEW_SHOT)
    answers: dict[str, dict[str, list[str]]] = {r: {s: [] for s in ev.SETTINGS} for r in models}
    nll: dict[str, dict[str, list[float]]] = {r: {s: [0.0, 0.0] for s in ev.SETTINGS} for r in models}
    started = time.perf_counter()
    report: dict = {}
    # Finished chunks are kept in the data home: the same command run again (same --home,
    # --adapter, --eval-rows, --chunk) resumes after the last finished chunk.
    # Batched decoding can flip a near-tied greedy token, so runs of different batch sizes are never
    # merged into one table.
    batch_tag = f"_b{args.batch_size}" if args.batch_size != 1 else ""
    state_file = home / f"train_sft_dstc11_eval_{version}_{args.eval_rows}_{args.chunk}{batch_tag}.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {"chunks": {}}
    for first in range(0, len(examples), args.chunk):
        part = examples[first : first + args.chunk]
        saved = state["chunks"].get(str(first))
        if saved is not None:
            for role in models:
                for setting in ev.SETTINGS:
                    answers[role][setting] += saved["answers"][role][setting]
                    nll[role][setting][0] += saved["nll"][role][setting][0]
                    nll[role][setting][1] += saved["nll"][role][setting][1]
            print(f"conversations {first}-{first + len(part) - 1}: resumed from {state_file}", flush=True)
            continue
        plan = ev.EvalPlan(
            models=models,
            examples=part,
            shot_pool=data.sft_train,
            retriever=retriever,
            protocol=ev.Protocol(batch_size=args.batch_size),
        )
        chunk_report = ev.evaluate_versions(plan, home)
        for role in models:
            for setting in ev.SETTINGS:
                answers[role][setting] += chunk_report["answers"][role][setting]
                metrics = chunk_report["models"][role][setting]
                nll[role][setting][0] += metrics["nll_sum"]
                nll[role][setting][1] += metrics["nll_tokens"]
        state["chunks"][str(first)] = {
            "answers": chunk_report["answers"],
            "nll": {
                r: {st: [m["nll_sum"], m["nll_tokens"]] for st, m in chunk_report["models"][r].items()}
                for r in models
            },
            "specs": chunk_report["specs"],
            "protocol": chunk_report["protocol"],
            "shots": chunk_report["shots"],
        }
        state_file.write_text(json.dumps(state, ensure_ascii=False))
        done = examples[: first + len(part)]
        prompts = {s: ev.setting_prompts(done, s, retriever) for s in ev.SETTINGS}
        shot_prompts = {s: ev.setting_prompts(done, s, retriever, shots) for s in ev.SETTINGS}
        report = {
            "models": {
                role: {
                    s: ev.score(
                        answers[role][s],
                        done,
                        shot_prompts[s] if role == "few_shot" else prompts[s],
                        (nll[role][s][0], int(nll[role][s][1])),
                    )
                    for s in ev.SETTINGS
                }
                for role in models
            },
            "n": len(done),
            **{k: state["chunks"][str(first)][k] for k in ("specs", "protocol", "shots")},
            "answers": answers,
        }
        eval_s = time.perf_counter() - started
        write_results(report, done, train_rows, held_out, train_metrics, version, home, eval_s, loss_png)
        print(f"{len(done)} of {len(examples)} conversations evaluated in {eval_s:.0f} s", flush=True)


def write_results(report, done, train_rows, held_out, train_metrics, version, home, eval_s, loss_png) -> None:
    """JSON, a Markdown table and plots of the report so far."""
    from training.report import metrics_table, plot_metric_bars

    out = {
        "benchmark": "train_sft_dstc11",
        "train_conversations": len(train_rows),
        "eval_conversations": len(done),
        "eval_conversations_planned": len(held_out),
        "train_metrics": train_metrics,
        "eval_seconds": round(eval_s, 1),
        "version": version,
        "home": str(home),
        **{k: report[k] for k in ("models", "n", "specs", "protocol", "shots")},
        "samples": {role: report["answers"][role]["retrieved"][:5] for role in report["answers"]},
        "references": [e.reference for e in done[:5]],
    }
    write_result("train_sft_dstc11", out, echo=False)
    for metric in ("rougeL_f1", "perplexity"):
        plot_metric_bars(
            report,
            metric,
            RESULTS / f"dstc11_{metric}.png",
            title=f"DSTC11 held-out {metric} (n={report['n']})",
        )
    if loss_png and loss_png.is_file():
        (RESULTS / "dstc11_sft_loss.png").write_bytes(loss_png.read_bytes())
    table = metrics_table(report, ["rougeL_f1", "bleu", "perplexity", "groundedness", "behaviour_accuracy"])
    (RESULTS / "train_sft_dstc11.md").write_text(table + "\n")
    print(table, flush=True)


if __name__ == "__main__":
    main()
