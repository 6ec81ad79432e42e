#!/usr/bin/env bash
# Rebuild the shipped tuned default (agent/default_model) with supportloop's own commands:
# the data mix, SFT with LoRA, packaging with a manifest, and the side-by-side benchmark.
#   on a GPU (the shipped halcyon-tuned-2: 2,229 rows x 2 epochs, 105 s of training on one H200):
#     MIX=default-mix-full RECIPE=gpu-lora bash scripts/build-default-model.sh
#   on a 2-core CPU (halcyon-tuned-1: the CPU-sized mix, one epoch, about 55 min of training):
#     bash scripts/build-default-model.sh
#   candidates to compare before shipping one (other training seeds, into their own folders, no
#   benchmark; then `python -m benchmarks.tuned_default --questions dev.jsonl --extra s7=DIR ...`):
#     for s in 7 1234; do SEED=$s NAME=candidate-s$s OUT_MODEL=.cache/candidates/s$s BENCH=0 \
#       MIX=default-mix-full RECIPE=gpu-lora bash scripts/build-default-model.sh; done
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
WORK=${WORK:-.cache/default-model}
MIX=${MIX:-default-mix}
RECIPE=${RECIPE:-cpu}
SEED=${SEED:-}                            # the trainer's seed; empty: the recipe's own
OUT_MODEL=${OUT_MODEL:-agent/default_model}
BENCH=${BENCH:-1}
export SUPPORTLOOP_HOME="$WORK/home" SUPPORTLOOP_SHIPPED_MODEL=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ "$RECIPE" = cpu ]; then
  TRAIN=(--learning-rate 3e-4 --max-examples 100000) OVERRIDES='{"learning_rate": 0.0003, "max_examples": 100000}'
  NAME=${NAME:-halcyon-tuned-1}
else
  TRAIN=(--epochs 2) OVERRIDES='{"num_train_epochs": 2}'
  NAME=${NAME:-halcyon-tuned-2}
fi
if [ -n "${MAX_STEPS:-}" ]; then  # a smoke run of the whole script: MAX_STEPS=2 BENCH=0 OUT_MODEL=/tmp/x
  TRAIN+=(--max-steps "$MAX_STEPS") OVERRIDES="${OVERRIDES%\}}, \"max_steps\": $MAX_STEPS}"
fi
if [ -n "$SEED" ]; then
  TRAIN+=(--set "seed=$SEED") OVERRIDES="${OVERRIDES%\}}, \"seed\": $SEED}"
fi
rm -rf "$WORK/home" "$WORK/run"
"$BIN/supportloop" data mix "$MIX" --out "$WORK/mix"
"$BIN/supportloop" train sft --data "$WORK/mix/sft_train.jsonl" --recipe "$RECIPE" "${TRAIN[@]}" --out "$WORK/run" --json
"$BIN/supportloop" models ship v1 --name "$NAME" --mix "$WORK/mix" --out "$OUT_MODEL"
# The mix, the command-line overrides and this command into the manifest's recipe.
MIX="$MIX" RECIPE="$RECIPE" SEED="$SEED" MAX_STEPS="${MAX_STEPS:-}" OVERRIDES="$OVERRIDES" OUT_MODEL="$OUT_MODEL" "$BIN/python" - <<'PY'
import json, os
from pathlib import Path

path = Path(os.environ["OUT_MODEL"]) / "manifest.json"
manifest = json.loads(path.read_text())
mix, recipe = os.environ["MIX"], os.environ["RECIPE"]
command = "bash scripts/build-default-model.sh"
if (mix, recipe) != ("default-mix", "cpu"):
    command = f"MIX={mix} RECIPE={recipe} {command}"
for name in ("SEED", "MAX_STEPS"):
    if os.environ.get(name):
        command = f"{name}={os.environ[name]} {command}"
overrides = json.loads(os.environ["OVERRIDES"])
manifest["recipe"].update(mix=f"training/recipes/{mix}.yaml", overrides=overrides, command=command)
manifest["reproduce"] = command
path.write_text(json.dumps(manifest, indent=2) + "\n")
PY
# The full equivalence check of the compiled engine (token agreement, the gate's primary metric) into the manifest.
"$BIN/supportloop" models export v1 --format ct2 --out "$WORK/ct2" --manifest "$OUT_MODEL/manifest.json"
[ "$BENCH" = 1 ] || exit 0
"$BIN/python" -m benchmarks.tuned_default --tuned "$OUT_MODEL" --changed --mtrag 20 --record --home "$WORK/bench"
