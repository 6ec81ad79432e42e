"""Reward model on MT-RAG rated responses: held-out pairwise accuracy vs a length-only baseline.

Pairs come from ``../shared/data/mtrag/rated_responses.jsonl`` through the dataset compiler: a
response's rating is the mean over annotators of the mean of the four criteria, ties are dropped,
and the split is by task (the compiler's stable hash of the task id, 30% held out). Passages in
the prompt are cut to ``--passage-chars`` each, and further (200, 120, 60 characters, then
none, then the earlier turns too) for a pair that still does not fit ``--max-length``: TRL's
RewardTrainer drops longer pairs instead of truncating them. The cut is applied to train and
held-out rows alike.

Beside the reward model: two length-only rankings, "the longer answer wins" and the length
direction fit on the training pairs (the fair baseline). With ``--length-control``, a
length-controlled reward too: a pairwise logistic model on the score difference and the log
length ratio, fit on the training pairs' scores, so length is credited to length and the score
weight shows what the reward model adds beyond it (``--adapter VERSION`` re-scores a saved model).
With ``--sft-init-rows N``, the reward model's body is first fine-tuned (SFT, LoRA, merged) on
N conversations from ``../shared/data/mtrag/conversations.jsonl`` (a different set of
conversations from the rated ones: no task is shared), the InstructGPT order: the body learns
what a grounded MT-RAG answer looks like before the head learns the ratings.
With ``--length-prior``, the length-only fit enters training as a fixed offset (the recipe's
``model.length_prior``), so the score learns what length does not explain; the reward is the
score plus the prior, and the bare score's accuracy is printed beside it.
With ``--split-salt S``, a fresh task-level split (the same 30%, a different draw of tasks), to
check that a result is not an accident of one split.
With ``--full-passages``, the rows keep their full passages and history, as ``supportloop train
reward`` trains on them: a pair over ``--max-length`` is cut from the left (``model.truncate:
left``), in training and in scoring alike. With ``--control length --control groundedness``, the
product's control features (``model.control``): ``train_reward`` scores its training pairs and fits
the weights, the saved model applies them, and the held-out accuracy of that reward is printed
beside the same features fit without the model's score (what the score must add to).

    python -m benchmarks.reward_mtrag [--epochs 1] [--passage-chars 300]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.common import RESULTS, link_cached_model, require_data, write_result
from benchmarks.mtrag_pairs import features_only, fit, split_pairs


def length_diagnostics(pairs: list[dict], chosen: list[float], rejected: list[float], direction: str) -> dict:
    """How far the reward model is a length detector: how often it ranks a pair the way the fitted
    length baseline does, and its accuracy on the pairs where that baseline is wrong."""
    from training.reward import length_ranks_right

    by_length = length_ranks_right(pairs, direction)
    by_model = [c > r for c, r in zip(chosen, rejected, strict=True)]
    hard = [m for m, length_right in zip(by_model, by_length, strict=True) if not length_right]
    return {
        "agreement_with_length_fit": round(
            sum(m == x for m, x in zip(by_model, by_length, strict=True)) / len(pairs), 4
        ),
        "pairs_length_fit_gets_wrong": len(hard),
        "accuracy_where_length_fit_is_wrong": round(sum(hard) / len(hard), 4) if hard else None,
        "scores": [[round(c, 4), round(r, 4)] for c, r in zip(chosen, rejected, strict=True)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--passage-chars", type=int, default=300)
    parser.add_argument("--max-length", type=int, default=768)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--train-pairs", type=int, default=None, help="seeded subset (default: all)")
    parser.add_argument(
        "--lora-top-layers", type=int, default=0, help="LoRA on the top N of the 30 blocks only (0: all)"
    )
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--adapter", help="skip training: score this registered reward version (with --home)")
    parser.add_argument(
        "--length-control",
        action="store_true",
        help="also score the training pairs and fit a length-controlled reward on them "
        "(score difference + log length ratio, pairwise logistic), reported on the held-out pairs",
    )
    parser.add_argument(
        "--length-prior",
        action="store_true",
        help="train with the length-only fit as a fixed offset in the loss (model.length_prior)",
    )
    parser.add_argument(
        "--sft-init-rows",
        type=int,
        default=0,
        help="first fine-tune the body (SFT) on this many MT-RAG conversation turns (0: the base model)",
    )
    parser.add_argument("--sft-base", help="a registered SFT version in --home to start from (skips the SFT)")
    parser.add_argument(
        "--split-salt",
        help="a fresh task-level split: hold out the tasks whose salted id hash falls in the same 30%% "
        "(default: the compiler's own split, unsalted)",
    )
    parser.add_argument(
        "--full-passages",
        action="store_true",
        help="keep full passages and history; pairs over --max-length are cut from the left (model.truncate)",
    )
    parser.add_argument(
        "--control",
        action="append",
        choices=["length", "groundedness"],
        help="control features fit after training (model.control); repeat for several",
    )
    args = parser.parse_args()

    from agent.models import ensure_default_model
    from training.data import compile_dataset
    from training.reward import (
        controlled_pair_rewards,
        fit_length_control,
        length_baseline,
        length_controlled_scores,
        length_direction,
        load_reward_model,
        pairwise_accuracy,
        reward_scores,
        train_reward,
        with_length_prior,
    )

    home = args.home or Path(tempfile.mkdtemp(prefix="bench-reward-"))
    link_cached_model(home)
    base = ensure_default_model(home)

    # 1. Pairs, split by task.
    import random

    rated = split_pairs(args.split_salt)
    pool = rated[0]
    if args.train_pairs:
        pool = random.Random(0).sample(pool, min(args.train_pairs, len(pool)))
    if args.full_passages:
        train, held_out = list(pool), list(rated[1])
    else:
        train = [fit(r, args.passage_chars, args.max_length) for r in pool]
        held_out = [fit(r, args.passage_chars, args.max_length) for r in rated[1]]
    print(f"pairs: {len(train)} train, {len(held_out)} held out (split salt {args.split_salt})")

    # 2. The body: the base, or the base fine-tuned on MT-RAG conversations first.
    body, sft_info = str(base), None
    if args.sft_base:
        body = args.sft_base
    elif args.sft_init_rows:
        from training.sft import train_sft

        conversations = compile_dataset([require_data("mtrag", "conversations.jsonl")]).sft_train
        questions = {r["prompt"][-1]["content"] for r in rated[0] + rated[1]}
        pool = [r for r in conversations if r["prompt"][-1]["content"] not in questions]
        rows = []
        for row in random.Random(0).sample(pool, min(args.sft_init_rows, len(pool))):
            short = fit(
                {**row, "chosen": row["completion"], "rejected": row["completion"]}, 300, args.max_length
            )
            rows.append({"prompt": short["prompt"], "completion": row["completion"]})
        started = time.perf_counter()
        sft = train_sft(
            rows,
            base=str(base),
            home=home,
            overrides={"max_length": args.max_length, "num_train_epochs": 1, "data.max_examples": len(rows)},
        )
        body = sft.version
        sft_info = {
            "version": sft.version,
            "rows": len(rows),
            "seconds": round(time.perf_counter() - started, 1),
            "metrics": sft.metrics,
        }
        print(f"SFT body {sft.version}: {len(rows)} conversation turns in {sft_info['seconds']:.0f} s")

    # 3. Train (LoRA r16 + full scalar head, the cpu recipe), or take a version trained earlier.
    if args.adapter:
        from types import SimpleNamespace

        from agent.models import ModelRegistry

        version = ModelRegistry(home).get(args.adapter)
        metrics = version.metrics.get("train", version.metrics)
        result = SimpleNamespace(version=version.name, metrics=metrics, loss_png=None)
        train_s = float(metrics.get("train_seconds", 0.0))
    else:
        started = time.perf_counter()
        result = train_reward(
            train,
            base=body,
            home=home,
            overrides={
                "num_train_epochs": args.epochs,
                "max_length": args.max_length,
                "learning_rate": args.learning_rate,
                "model.length_prior": True if args.length_prior else None,
                "model.control": args.control or None,
                "lora.layers_to_transform": (
                    list(range(30 - args.lora_top_layers, 30)) if args.lora_top_layers else None
                ),
            },
        )
        train_s = time.perf_counter() - started

    # 4. Held-out pairwise accuracy, beside "the longer answer wins".
    from tqdm.auto import tqdm

    from agent.models import resolve_spec

    resolved = resolve_spec(result.version, home=home)
    model, tokenizer = load_reward_model(resolved.adapter or resolved.base, resolved.base)

    def score_pairs(rows: list[dict], what: str) -> tuple[list[float], list[float]]:
        chosen, rejected = [], []
        for row in tqdm(rows, desc=f"scoring {what} pairs", unit="pair"):
            c, r = reward_scores(
                model,
                tokenizer,
                row["prompt"],
                [row["chosen"][-1]["content"], row["rejected"][-1]["content"]],
                max_length=args.max_length,
                length_prior=False,
            )
            chosen.append(c)
            rejected.append(r)
        return chosen, rejected

    # Bare scores; the reward adds the length prior (0 for a model trained without one).
    bare_chosen, bare_rejected = score_pairs(held_out, "held-out")
    prior = model.length_prior
    chosen, rejected = (
        with_length_prior(model, [p[key][-1]["content"] for p in held_out], bare)
        for key, bare in (("chosen", bare_chosen), ("rejected", bare_rejected))
    )
    controlled = {}
    weights_fit = getattr(model, "reward_control", None)
    if weights_fit:
        # The product's reward: the weights train_reward fit on the training pairs' scores, and
        # the same features fit on the training pairs without any score.
        alone, alone_right = features_only(train, held_out, [k for k in weights_fit if k != "score"])
        controlled.update(
            control_weights={k: round(v, 4) for k, v in weights_fit.items()},
            control_accuracy=round(
                pairwise_accuracy(*controlled_pair_rewards(held_out, chosen, rejected, weights_fit)), 4
            ),
            features_only_weights={k: round(v, 4) for k, v in alone.items() if k != "score"},
            features_only_accuracy=round(sum(alone_right) / len(alone_right), 4),
        )
    if args.length_control:
        train_chosen, train_rejected = score_pairs(train, "training")
        weights = fit_length_control(train, train_chosen, train_rejected)
        controlled = {
            "train_scores": [
                [round(c, 4), round(r, 4)] for c, r in zip(train_chosen, train_rejected, strict=True)
            ],
            "length_control_weights": {
                "score": round(weights[0], 4),
                "log_length_ratio": round(weights[1], 4),
            },
            "length_controlled_accuracy": round(
                pairwise_accuracy(*length_controlled_scores(held_out, chosen, rejected, weights)), 4
            ),
        }
    out = {
        "benchmark": "reward_mtrag",
        "model": "SmolLM2-135M-Instruct + LoRA r16 + scalar head",
        "train_pairs": len(train),
        "train_pairs_used": result.metrics.get("train_rows_used"),
        "held_out_pairs": len(held_out),
        "epochs": args.epochs,
        "passage_chars": "full (cut from the left)" if args.full_passages else args.passage_chars,
        "max_length": args.max_length,
        "lora_top_layers": args.lora_top_layers or "all",
        "sft_body": sft_info or args.sft_base,
        "split_salt": args.split_salt,
        "held_out_tasks": len({p["conversation_id"] for p in held_out}),
        "train_seconds": round(train_s, 1),
        "train_metrics": result.metrics,
        "pairwise_accuracy": round(pairwise_accuracy(chosen, rejected), 4),
        "length_prior": round(prior, 4),
        "bare_score_accuracy": round(pairwise_accuracy(bare_chosen, bare_rejected), 4),
        "length_baseline_accuracy": round(length_baseline(held_out), 4),
        "length_fit_direction": length_direction(train),
        "length_fit_baseline_accuracy": round(length_baseline(held_out, fit=train), 4),
        "version": result.version,
        "loss_png": str(result.loss_png),
        **controlled,
        **length_diagnostics(held_out, chosen, rejected, length_direction(train)),
    }
    name = (
        "reward_mtrag"
        + ("_sft_body" if body != str(base) else "")
        + ("_length_prior" if args.length_prior else "")
        + ("_full" if args.full_passages else "")
        + (f"_split{args.split_salt}" if args.split_salt else "")
    )
    write_result(name, out, echo=False)
    if result.loss_png and result.loss_png.is_file():
        (RESULTS / f"{name}_loss.png").write_bytes(result.loss_png.read_bytes())
    print(
        f"held-out pairwise accuracy {out['pairwise_accuracy']:.3f} vs length-only baselines: longer wins "
        f"{out['length_baseline_accuracy']:.3f}, {out['length_fit_direction']} wins (fit on train) "
        f"{out['length_fit_baseline_accuracy']:.3f} ({len(held_out)} pairs); trained "
        f"{result.metrics.get('train_rows_used')} of {len(train)} pairs in {train_s:.0f} s"
    )
    if prior:
        print(
            f"length prior {prior:.3f} per log character; the bare score (without the prior) ranks "
            f"{out['bare_score_accuracy']:.3f} of the held-out pairs right"
        )
    if "control_accuracy" in controlled:
        print(
            f"controlled reward (weights {controlled['control_weights']}, fit on the training pairs): held-out "
            f"accuracy {controlled['control_accuracy']:.3f}; the same features without the model's score "
            f"{controlled['features_only_accuracy']:.3f}"
        )
    if "length_controlled_accuracy" in controlled:
        print(
            f"length-controlled reward (fit on the training pairs, weights {controlled['length_control_weights']}): "
            f"held-out accuracy {controlled['length_controlled_accuracy']:.3f}"
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
