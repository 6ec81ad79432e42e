"""The MT-RAG reward model across task-level splits: one figure and one table from saved results.

Reads ``benchmarks/results/reward_mtrag_sft_body.json`` (the compiler's split) and every
``reward_mtrag_sft_body_split*.json`` (``benchmarks.reward_mtrag --split-salt S``: fresh draws of
the same 30 % of tasks), then every ``reward_mtrag_sft_body_full*.json`` (``--full-passages --control
length --control groundedness``: the product's path, full passages cut from the left, control
weights fit inside ``train_reward``), rebuilds each split's pairs and compares, pair by pair, on
the held-out pairs:

* ``length``: the length-only baseline ("shorter wins" or "longer wins", whichever ranks that
  split's training pairs better), the one to beat;
* ``raw``: the reward model's score;
* ``length-controlled``: the score and log length, weighted by a fit on the training pairs;
* ``controlled``: the score, log length and groundedness (``training.reward.fit_control``,
  what ``supportloop train reward --control length --control groundedness`` fits), when the
  result has the training pairs' scores (``train_scores``);
* ``features only``: log length and groundedness without the model, the same fit with the
  score left out: what the reward model must add to.

In the first two kinds of run, the model scored prompts whose passages were cut to fit its
``max_length`` (300 characters, then less); groundedness is
measured against the full passages (a feature has no context limit, and ``reward_scores`` too
measures it on the prompt it is given, before the model's left cut). Cut to 300 characters, the
passages lose most of what groundedness measures.

Each with a 95 % Wilson interval, and for the best reward against length, and the controlled
reward against the same features without the model (what the score adds): the discordant pairs
(one right, the other wrong) with an exact two-sided sign test, the paired test. Pooled over the
splits too (they share tasks, so pooled pairs are not independent: a summary, not a stronger
test). The model-free rankings need no scores, so they are also drawn over ``--salts`` more
splits, as a check that their gap to length is not one split's accident.

Writes ``reward_mtrag_splits.json`` and ``reward_mtrag_splits.png``; trains nothing.

    python -m benchmarks.plot_reward_splits [--salts 20]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics

from benchmarks.common import RESULTS, write_result
from benchmarks.mtrag_pairs import model_free, split_pairs, versus

METHODS = {
    "length": "length only (fit on train)",
    "features": "length + groundedness, no model",
    "raw": "reward score",
    "length_controlled": "score + length",
    "controlled": "score + length + groundedness",
}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for k successes out of n."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def right_or_wrong(chosen: list[float], rejected: list[float]) -> list[bool]:
    return [c > r for c, r in zip(chosen, rejected, strict=True)]


def per_pair(result: dict) -> dict[str, list[bool]]:
    """Per held-out pair and method: is the chosen answer ranked first."""
    from training.reward import controlled_pair_rewards, fit_control, length_controlled_scores

    train, held_out = split_pairs(result.get("split_salt"))
    if len(held_out) != result["held_out_pairs"] or len(train) != result["train_pairs"]:
        raise SystemExit(f"{result['_file']}: the rebuilt split does not match the saved one")
    chosen, rejected = (list(x) for x in zip(*result["scores"], strict=True))
    right = {**model_free(train, held_out), "raw": right_or_wrong(chosen, rejected)}
    if "length_control_weights" in result:
        w = result["length_control_weights"]
        right["length_controlled"] = right_or_wrong(
            *length_controlled_scores(held_out, chosen, rejected, (w["score"], w["log_length_ratio"]))
        )
    if "control_weights" in result:  # fit by train_reward itself (model.control)
        weights = result["control_weights"]
        right["controlled"] = right_or_wrong(*controlled_pair_rewards(held_out, chosen, rejected, weights))
    elif "train_scores" in result:
        train_chosen, train_rejected = (list(x) for x in zip(*result["train_scores"], strict=True))
        weights = fit_control(train, train_chosen, train_rejected, ("length", "groundedness"))
        result["control_weights"] = {k: round(v, 4) for k, v in weights.items()}
        right["controlled"] = right_or_wrong(*controlled_pair_rewards(held_out, chosen, rejected, weights))
    return right


def summarise(name: str, right: dict[str, list[bool]]) -> dict:
    n = len(right["length"])
    row: dict = {"split": name, "pairs": n}
    for key in METHODS:
        if key in right:
            k = sum(right[key])
            row[key] = {
                "right": k,
                "accuracy": round(k / n, 4),
                "wilson95": [round(v, 4) for v in wilson(k, n)],
            }
    row["versus_length"] = versus(
        right, "controlled" if "controlled" in right else "length_controlled", "length"
    )
    if "controlled" in right:
        row["versus_features"] = versus(right, "controlled", "features")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--salts", type=int, default=20, help="extra splits for the model-free rankings")
    args = parser.parse_args()

    cut = [RESULTS / "reward_mtrag_sft_body.json", *sorted(RESULTS.glob("reward_mtrag_sft_body_split*.json"))]
    full = sorted(RESULTS.glob("reward_mtrag_sft_body_full*.json"))
    rows = []
    for files, label in ((cut, "cut passages"), (full, "full passages")):
        pooled: dict[str, list[bool]] = {}
        for path in files:
            result = {**json.loads(path.read_text()), "_file": path.name}
            if "length_control_weights" not in result and "control_weights" not in result:
                raise SystemExit(f"{path.name}: run with --length-control or --control first")
            right = per_pair(result)
            split = f"salt {result['split_salt']}" if result.get("split_salt") else "compiler split"
            rows.append(
                {
                    **summarise(f"{split}, {label}", right),
                    "weights": result.get("control_weights"),
                    "file": path.name,
                }
            )
            for key, values in right.items():
                pooled.setdefault(key, []).extend(values)
        if len(files) > 1 and all(len(v) == len(pooled["length"]) for v in pooled.values()):
            rows.append({**summarise(f"pooled, {label}", pooled), "file": None})

    for row in rows:
        cells = "  ".join(
            f"{key} {row[key]['accuracy']:.3f} [{row[key]['wilson95'][0]:.2f}, {row[key]['wilson95'][1]:.2f}]"
            for key in METHODS
            if key in row
        )
        tests = "; ".join(
            f"{vs['method']} vs {key.removeprefix('versus_')} {vs['wins']}-{vs['losses']}, "
            f"sign test p={vs['sign_test_p']:.2f}"
            for key, vs in row.items()
            if key.startswith("versus_")
        )
        print(f"{row['split']:>30} ({row['pairs']} pairs): {cells}; {tests}")

    # The model-free rankings over more splits.
    draws = []
    for salt in range(100, 100 + args.salts):
        train, held_out = split_pairs(str(salt))
        right = model_free(train, held_out)
        draws.append({key: sum(v) / len(v) for key, v in right.items()})
    spread = {
        key: {
            "mean": round(statistics.mean(d[key] for d in draws), 4),
            "sd": round(statistics.stdev(d[key] for d in draws), 4),
        }
        for key in ("length", "features")
    }
    ahead = sum(d["features"] > d["length"] for d in draws)
    print(
        f"model-free over {len(draws)} more splits: length {spread['length']['mean']:.3f} (sd {spread['length']['sd']:.3f}), "
        f"length + groundedness {spread['features']['mean']:.3f} (sd {spread['features']['sd']:.3f}); "
        f"groundedness ahead on {ahead} of {len(draws)}"
    )
    out = {"splits": rows, "model_free_draws": {"salts": len(draws), **spread, "features_ahead": ahead}}
    write_result("reward_mtrag_splits", out, echo=False)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4.8))
    shown = [key for key in METHODS if any(key in r for r in rows)]
    width = 0.8 / len(shown)
    for i, key in enumerate(shown):
        xs = [j + (i - (len(shown) - 1) / 2) * width for j, r in enumerate(rows) if key in r]
        kept = [r for r in rows if key in r]
        acc = [r[key]["accuracy"] for r in kept]
        err = [
            [a - r[key]["wilson95"][0] for a, r in zip(acc, kept, strict=True)],
            [r[key]["wilson95"][1] - a for a, r in zip(acc, kept, strict=True)],
        ]
        ax.bar(xs, acc, width, yerr=err, capsize=2, label=METHODS[key])
    ax.axhline(0.65, color="grey", linestyle="--", linewidth=1, label="target 0.65")
    ax.set_xticks(
        range(len(rows)),
        ["\n".join([*r["split"].split(", "), f"({r['pairs']} pairs)"]) for r in rows],
        fontsize=8,
    )
    ax.set_ylim(0.3, 1.0)
    ax.set_ylabel("held-out pairwise accuracy")
    ax.set_title("MT-RAG reward model (SFT body, LoRA) across task-level splits, 95% Wilson intervals")
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(RESULTS / "reward_mtrag_splits.png", dpi=120)
    print(f"wrote {RESULTS / 'reward_mtrag_splits.png'}")


if __name__ == "__main__":
    main()
