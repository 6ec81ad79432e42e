"""DPO and KTO from an SFT parent: does the held-out chosen-minus-rejected margin rise?

* Pairs: MT-RAG rated responses through the compiler (rating = mean over annotators of the mean
  of the four criteria, ties dropped, split by task, 30% held out), passages and then earlier
  turns cut as in ``reward_mtrag.py`` until a row fits ``--max-length`` (TRL would truncate it).
* SFT parent: the default model + LoRA trained on ``prompt -> chosen`` of the training pairs.
* DPO: from the SFT adapter (TRL's frozen ``ref`` copy of it is the reference) on the pairs.
* KTO: from the same SFT adapter on the pairs unpaired (chosen -> desirable, rejected -> not).
* Measure: mean over held-out pairs of log p(chosen) - log p(rejected) (summed over answer
  tokens) and the share of pairs ranked right, for the SFT parent, DPO and KTO.

    .venv/bin/python benchmarks/train_preference.py [--train-pairs 64] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "mtrag" / "rated_responses.jsonl"
RESULTS = REPO / "benchmarks" / "results"


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
    args = parser.parse_args()

    import random
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reward_mtrag import fit
    from train_sft_dstc11 import bench_home

    from agent.models import load_resolved, resolve_spec
    from training.data import compile_dataset
    from training.preference import logprob_margin, train_dpo, train_kto
    from training.sft import train_sft

    home = bench_home(args.home, "bench-pref-")
    record_file = home / "train_preference_train.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}

    # 1. Pairs split by task; a seeded training subset.
    data = compile_dataset([DATA], val_fraction=0.3)
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
    results = {}
    for name, trained in stages.items():
        model, tokenizer = load_resolved(resolve_spec(trained["version"], home=home))
        results[name] = {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in logprob_margin(model, tokenizer, held_out).items()
        }
        print(name, trained["version"], results[name], flush=True)
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
        "home": str(home),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train_preference.json").write_text(json.dumps(out, indent=2))
    for name, trained in stages.items():
        png = Path(trained["loss_png"]) if trained["loss_png"] else None
        if name != "sft" and png and png.is_file():
            (RESULTS / f"preference_{name}_loss.png").write_bytes(png.read_bytes())
    print(json.dumps(out["margin_rise"]))


if __name__ == "__main__":
    main()
