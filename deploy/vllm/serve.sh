#!/bin/sh
# vLLM's OpenAI-compatible server for supportloop: the base model plus the production LoRA adapter
# served under the name "production", the name supportloop's API sends by default (a request's
# `model`). `python -m deploy.vllm_args` prints the same command for every registry version.
#
#   BASE_MODEL=HuggingFaceTB/SmolLM2-135M-Instruct PRODUCTION_ADAPTER=/data/runs/sft-1/adapter \
#     sh deploy/vllm/serve.sh [more vllm serve flags]
#
# EXTRA_LORA_MODULES="v2=/data/runs/sft-2/adapter v3=..." serves more versions by name.
# Configured, not run where it was written (no GPU there): see deploy/README.md.
set -eu
BASE_MODEL="${BASE_MODEL:-HuggingFaceTB/SmolLM2-135M-Instruct}"
set -- --host 0.0.0.0 --port "${PORT:-8000}" --max-model-len "${MAX_MODEL_LEN:-4096}" "$@"
if [ -n "${PRODUCTION_ADAPTER:-}" ]; then
  # shellcheck disable=SC2086  # EXTRA_LORA_MODULES is a space-separated list of name=path
  exec vllm serve "$BASE_MODEL" --served-model-name base \
    --enable-lora --lora-modules "production=$PRODUCTION_ADAPTER" ${EXTRA_LORA_MODULES:-} \
    --max-loras "${MAX_LORAS:-4}" --max-lora-rank "${MAX_LORA_RANK:-64}" "$@"
fi
# Nothing promoted yet: production is the base model, served under both names.
exec vllm serve "$BASE_MODEL" --served-model-name production base "$@"
