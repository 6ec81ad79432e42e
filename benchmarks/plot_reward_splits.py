"""The MT-RAG reward model across task-level splits: one figure and one table from saved results.

Reads ``benchmarks/results/reward_mtrag_sft_body.json`` (the compiler's split) and every
``reward_mtrag_sft_body_split*.json`` (``reward_mtrag.py --split-salt S``: fresh draws of the same
30 % of tasks), rebuilds each split's held-out pairs (only their answer lengths are needed) and
compares, pair by pair, the length-controlled reward with the fitted length-only baseline
("shorter wins" or "longer wins", whichever ranks that split's training pairs better):

* accuracy of each, with a 95 % Wilson interval;
* the discordant pairs (one right, the other wrong) and an exact two-sided sign test on them,
  the paired test for "is the reward better than length on these pairs";
* the same pooled over the splits (the splits share tasks, so pooled pairs are not independent:
  the pooled figure is a summary, not a stronger test).

Writes ``reward_mtrag_splits.json`` and ``reward_mtrag_splits.png``; trains nothing (seconds).

    .venv/bin/python benchmarks/plot_reward_splits.py
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from reward_mtrag import RESULTS, split_pairs  # noqa: E402


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for k successes out of n."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial (sign) test p-value of ``wins`` against ``losses`` at 1/2."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def per_pair(result: dict) -> dict:
    """Per held-out pair: is the length-controlled reward right, is the length fit right."""
    from training.reward import length_controlled_scores

    _, held_out = split_pairs(result.get("split_salt"))
    if len(held_out) != result["held_out_pairs"]:
        raise SystemExit(
            f"{result['_file']}: {len(held_out)} held-out pairs rebuilt, {result['held_out_pairs']} saved"
        )
    chosen, rejected = zip(*result["scores"], strict=True)
    w = result["length_control_weights"]
    margins, _ = length_controlled_scores(held_out, chosen, rejected, (w["score"], w["log_length_ratio"]))
    sign = 1 if result["length_fit_direction"] == "longer" else -1
    length = [
        sign * (len(p["chosen"][-1]["content"]) - len(p["rejected"][-1]["content"])) > 0 for p in held_out
    ]
    return {
        "reward": [m > 0 for m in margins],
        "raw": [c > r for c, r in zip(chosen, rejected, strict=True)],
        "length": length,
    }


def summarise(name: str, right: dict) -> dict:
    n = len(right["length"])
    wins = sum(r and not x for r, x in zip(right["reward"], right["length"], strict=True))
    losses = sum(x and not r for r, x in zip(right["reward"], right["length"], strict=True))
    row = {"split": name, "pairs": n}
    for key in ("reward", "raw", "length"):
        k = sum(right[key])
        row[key] = {"right": k, "accuracy": round(k / n, 4), "wilson95": [round(v, 4) for v in wilson(k, n)]}
    row["reward_right_length_wrong"] = wins
    row["length_right_reward_wrong"] = losses
    row["sign_test_p"] = round(sign_test(wins, losses), 4)
    return row


def main() -> None:
    files = [
        RESULTS / "reward_mtrag_sft_body.json",
        *sorted(RESULTS.glob("reward_mtrag_sft_body_split*.json")),
    ]
    rows, pooled = [], {"reward": [], "raw": [], "length": []}
    for path in files:
        result = {**json.loads(path.read_text()), "_file": path.name}
        if "length_control_weights" not in result:
            raise SystemExit(f"{path.name}: run with --length-control first")
        right = per_pair(result)
        name = f"salt {result['split_salt']}" if result.get("split_salt") else "compiler split"
        rows.append(
            {
                **summarise(name, right),
                "length_fit_direction": result["length_fit_direction"],
                "train_pairs": result["train_pairs"],
                "file": path.name,
            }
        )
        for key in pooled:
            pooled[key] += right[key]
    rows.append({**summarise("pooled", pooled), "file": None})

    for row in rows:
        print(
            f"{row['split']:>15}: {row['pairs']:3d} pairs  length-controlled reward {row['reward']['accuracy']:.3f} "
            f"[{row['reward']['wilson95'][0]:.2f}, {row['reward']['wilson95'][1]:.2f}]  raw {row['raw']['accuracy']:.3f}  "
            f"length fit {row['length']['accuracy']:.3f}  discordant {row['reward_right_length_wrong']}-"
            f"{row['length_right_reward_wrong']} (sign test p={row['sign_test_p']:.2f})"
        )
    (RESULTS / "reward_mtrag_splits.json").write_text(json.dumps(rows, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    bars = (
        ("length", "length-only (fit on train)"),
        ("raw", "reward score"),
        ("reward", "length-controlled reward"),
    )
    width = 0.27
    for i, (key, label) in enumerate(bars):
        xs = [j + (i - 1) * width for j in range(len(rows))]
        acc = [r[key]["accuracy"] for r in rows]
        err = [
            [a - r[key]["wilson95"][0] for a, r in zip(acc, rows, strict=True)],
            [r[key]["wilson95"][1] - a for a, r in zip(acc, rows, strict=True)],
        ]
        ax.bar(xs, acc, width, yerr=err, capsize=3, label=label)
    ax.axhline(0.65, color="grey", linestyle="--", linewidth=1, label="target 0.65")
    ax.set_xticks(range(len(rows)), [f"{r['split']}\n({r['pairs']} pairs)" for r in rows])
    ax.set_ylim(0.3, 1.0)
    ax.set_ylabel("held-out pairwise accuracy")
    ax.set_title("MT-RAG reward model (SFT body) across task-level splits, 95% Wilson intervals")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "reward_mtrag_splits.png", dpi=120)
    print(f"wrote {RESULTS / 'reward_mtrag_splits.png'}")


if __name__ == "__main__":
    main()
