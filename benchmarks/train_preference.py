"""DPO and KTO from an SFT parent: does the held-out chosen-minus-rejected margin rise?

* Pairs: MT-RAG rated responses through the compiler (rating = mean over annotators of the mean
  of the four criteria, ties dropped, split by task, 30% held out), passages and then earlier
  turns cut as in ``benchmarks.reward_mtrag`` until a row fits ``--max-length`` (TRL would
  truncate it).
* SFT parent: the default model + LoRA trained on ``prompt -> chosen`` of the training pairs.
* DPO: from the SFT adapter (TRL's frozen ``ref`` copy of it is the reference) on the pairs.
* KTO: from the same SFT adapter on the pairs unpaired (chosen -> desirable, rejected -> not).
* Measure: mean over held-out pairs of log p(chosen) - log p(rejected) (summed over answer
  tokens) and the share of pairs ranked right, for the SFT parent, DPO and KTO; per stage, on
  how many pairs the margin rose over the SFT parent's and the exact two-sided sign test on
  those counts (the paired test of "the margin rises"). Per-pair margins are saved.
* The rise read as an implicit reward model (DPO's reward is beta * the log-ratio to the
  parent): its held-out pairwise accuracy beside the length-only ranking and length +
  groundedness without a model (both fit on the training pairs, ``plot_reward_splits``), with
  the sign test on the pairs where they disagree.

    python -m benchmarks.train_preference [--train-pairs 64] [--epochs 1]
    python -m benchmarks.train_preference --from-saved   # redo analysis + plot, no model
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, bench_home, write_result
from benchmarks.mtrag_pairs import fit, model_free, rated_responses, sign_test, split_pairs, versus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-pairs", type=int, default=64)
    parser.add_argument("--eval-pairs", type=int, default=None, help="default: every held-out pair")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=512, help="the DPO/KTO recipes' max_length")
    parser.add_argument("--stages", default="dpo,kto", help="preference stages after the SFT parent")
    parser.add_argument(
        "--home",
        type=Path,
        help="keep the versions here: the same command resumes after the last trained stage",
    )
    parser.add_argument(
        "--from-saved",
        action="store_true",
        help="redo the implicit-reward analysis and the plot from the saved per-pair margins; "
        "train and score nothing",
    )
    args = parser.parse_args()
    if args.from_saved:
        saved = json.loads((RESULTS / "train_preference.json").read_text())
        saved["implicit_reward"] = implicit_reward(saved["pair_margins"])
        write_result("train_preference", saved, echo=False)
        plot_margin_rises(saved)
        return

    from agent.models import load_resolved, resolve_spec
    from training.data import compile_dataset
    from training.preference import margin_summary, pair_margins, train_dpo, train_kto
    from training.sft import train_sft

    home = bench_home(args.home, "bench-pref-")
    record_file = home / "train_preference_train.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}

    # 1. Pairs split by task; a seeded training subset.
    data = compile_dataset([rated_responses()], val_fraction=0.3)
    pairs = random.Random(0).sample(data.pref_train, min(args.train_pairs, len(data.pref_train)))
    pairs = [fit(r, 300, args.max_length) for r in pairs]
    held_out = [fit(r, 300, args.max_length) for r in data.pref_val][: args.eval_pairs]
    print(f"{len(pairs)} training pairs, {len(held_out)} held-out pairs", flush=True)

    # 2. SFT parent on the chosen answers, then DPO and KTO from it.
    common = {
        "num_train_epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "max_length": args.max_length,
        "data.max_examples": 2 * len(pairs),  # every row, KTO's two per pair (None keeps the recipe's cap)
    }

    def stage(name: str, train: Callable[[], Any]) -> dict[str, Any]:
        if name not in record:
            result = train()
            record[name] = {
                "version": result.version,
                "parent": result.parent,
                "metrics": result.metrics,
                "loss_png": str(result.loss_png) if result.loss_png else None,
            }
            record_file.write_text(json.dumps(record, indent=1))
        print(f"{name}: {record[name]['version']} (parent {record[name]['parent']})", flush=True)
        return record[name]

    sft = stage(
        "sft",
        lambda: train_sft(
            [{"prompt": p["prompt"], "completion": p["chosen"]} for p in pairs],
            base="production",
            home=home,
            overrides={**common, "learning_rate": 2e-4},
        ),
    )
    stages = {"sft": sft}
    if "dpo" in args.stages.split(","):
        stages["dpo"] = stage(
            "dpo", lambda: train_dpo(pairs, base=sft["version"], home=home, overrides=common)
        )
    if "kto" in args.stages.split(","):
        unpaired = [
            {"prompt": p["prompt"], "completion": p[k], "label": k == "chosen"}
            for p in pairs
            for k in ("chosen", "rejected")
        ]
        stages["kto"] = stage(
            "kto", lambda: train_kto(unpaired, base=sft["version"], home=home, overrides=common)
        )

    # 3. Held-out margins.
    results, margins = {}, {}
    for name, trained in stages.items():
        model, tokenizer = load_resolved(resolve_spec(trained["version"], home=home))
        margins[name] = pair_margins(model, tokenizer, held_out, progress=f"{name} margins")
        results[name] = {
            k: round(v, 4) if isinstance(v, float) else v for k, v in margin_summary(margins[name]).items()
        }
        print(name, trained["version"], results[name], flush=True)
    paired = {}
    for name in stages:
        if name != "sft":
            rises = [m - s for m, s in zip(margins[name], margins["sft"], strict=True)]
            up, down = sum(r > 0 for r in rises), sum(r < 0 for r in rises)
            paired[name] = {
                "pairs_rose": up,
                "pairs_fell": down,
                "sign_test_p": round(sign_test(up, down), 4),
                "median_rise": round(statistics.median(rises), 4),
            }
            print(name, "vs sft:", paired[name], flush=True)
    out = {
        "benchmark": "train_preference",
        "train_pairs": len(pairs),
        "held_out_pairs": len(held_out),
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "train_metrics": {name: t["metrics"] for name, t in stages.items()},
        "versions": {name: t["version"] for name, t in stages.items()},
        "parents": {name: t["parent"] for name, t in stages.items() if name != "sft"},
        "held_out": results,
        "margin_rise": {
            name: round(results[name]["margin"] - results["sft"]["margin"], 4)
            for name in stages
            if name != "sft"
        },
        "paired_vs_sft": paired,
        "implicit_reward": implicit_reward(margins),
        "pair_margins": {name: [round(m, 4) for m in ms] for name, ms in margins.items()},
        "home": str(home),
    }
    write_result("train_preference", out, echo=False)
    for name, trained in stages.items():
        png = Path(trained["loss_png"]) if trained["loss_png"] else None
        if name != "sft" and png and png.is_file():
            (RESULTS / f"preference_{name}_loss.png").write_bytes(png.read_bytes())
    plot_margin_rises(out)
    print(json.dumps(out["margin_rise"]))


def implicit_reward(margins: dict[str, list[float]]) -> dict[str, Any]:
    """Each stage's margin rise over the SFT parent as a reward: per held-out pair, is the chosen
    answer's rise larger; against the fitted length ranking and length + groundedness."""
    train, held_out = split_pairs()
    if len(held_out) != len(margins["sft"]):  # --eval-pairs scored a subset: no baselines to match
        print("implicit reward: skipped, the margins do not cover the whole held-out split", flush=True)
        return {}
    right = model_free(train, held_out)
    out: dict[str, Any] = {
        name: {"accuracy": round(sum(ok) / len(ok), 4), "right": sum(ok)} for name, ok in right.items()
    }
    for name in margins:
        if name != "sft":
            right[name] = [m > s for m, s in zip(margins[name], margins["sft"], strict=True)]
            wrong_by_length = [
                ok for ok, by_length in zip(right[name], right["length"], strict=True) if not by_length
            ]
            out[name] = {
                "accuracy": round(sum(right[name]) / len(held_out), 4),
                "right": sum(right[name]),
                "right_where_length_is_wrong": f"{sum(wrong_by_length)} of {len(wrong_by_length)}",
                "vs_length": versus(right, name, "length"),
                "vs_features": versus(right, name, "features"),
            }
            print(f"{name} as an implicit reward: {out[name]}", flush=True)
    return out


def plot_margin_rises(out: dict[str, Any]) -> Path:
    """Per held-out pair, each stage's margin minus the SFT parent's, sorted, with the counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    margins = out["pair_margins"]
    stages = [name for name in margins if name != "sft"]
    fig, axes = plt.subplots(1, len(stages), figsize=(5 * len(stages), 3.6), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], stages, strict=True):
        rises = sorted(m - s for m, s in zip(margins[name], margins["sft"], strict=True))
        ax.bar(range(len(rises)), rises, width=1.0, color=["#c44e52" if r < 0 else "#4c72b0" for r in rises])
        ax.axhline(0, color="black", linewidth=0.8)
        paired = out["paired_vs_sft"][name]
        ax.set_title(
            f"{name.upper()} - SFT parent: rose on {paired['pairs_rose']}, fell on "
            f"{paired['pairs_fell']}\n(sign test p = {paired['sign_test_p']:.4f}, "
            f"mean {out['margin_rise'][name]:+.2f} nats)",
            fontsize=9,
        )
        ax.set_xlabel(f"held-out pair (sorted), n = {len(rises)}")
    axes[0][0].set_ylabel("change in log p(chosen) - log p(rejected)")
    fig.tight_layout()
    path = RESULTS / "preference_margin_rise.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
