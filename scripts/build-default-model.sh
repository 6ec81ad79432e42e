#!/usr/bin/env bash
# Rebuild the shipped tuned default (agent/default_model) with supportloop's own commands:
# the data mix, SFT with LoRA, packaging with a manifest, and the side-by-side benchmark.
# About 35 min on a 2-core CPU (see the manifest for the recorded run); minutes on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
WORK=${WORK:-.cache/default-model}
export SUPPORTLOOP_HOME="$WORK/home" SUPPORTLOOP_SHIPPED_MODEL=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
rm -rf "$WORK/home" "$WORK/run"
"$BIN/supportloop" data mix default-mix --out "$WORK/mix"
"$BIN/supportloop" train sft --data "$WORK/mix/sft_train.jsonl" --recipe cpu --learning-rate 3e-4 \
  --max-examples 100000 --out "$WORK/run" --json
"$BIN/supportloop" models ship v1 --name halcyon-tuned-1 --mix "$WORK/mix" --out agent/default_model
# The full equivalence check of the compiled engine (token agreement, the gate's primary metric) into the manifest.
"$BIN/supportloop" models export v1 --format ct2 --out "$WORK/ct2" --manifest agent/default_model/manifest.json
"$BIN/python" -m benchmarks.tuned_default --tuned agent/default_model --changed --mtrag 20 --record --home "$WORK/bench"
