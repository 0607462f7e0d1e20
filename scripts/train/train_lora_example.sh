#!/usr/bin/env bash
# Trains the LoRA example adapter (models/lora-code: the demo model learns to read three-digit codes) with
# `qwen3vl finetune`, then scores the base model and the adapter on the code set and on the demo model's own
# held-out images. One command; run it again after an interruption and it continues.
#
#   scripts/train/train_lora_example.sh        # work under $QWEN3VL_LORA_WORK (default ~/.cache/qwen3vl/lora-code)
#
# Settings (environment): QWEN3VL (the CLI, default build/bin/qwen3vl), PYTHON (the pinned venv of
# scripts/reference/README.md), BASE (default models/qwen3vl-tiny-shapes), CODES and REPLAY (training items: code
# items and items of the base model's own tasks), RANK, ALPHA, LR, EPOCHS, BATCH, THREADS, OUT (where the adapter is
# written, default $QWEN3VL_LORA_WORK/adapter).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${QWEN3VL_LORA_WORK:-$HOME/.cache/qwen3vl/lora-code}
qwen3vl=${QWEN3VL:-$repo/build/bin/qwen3vl}
python=${PYTHON:-python3}
base=${BASE:-$repo/models/qwen3vl-tiny-shapes}
codes=${CODES:-6000}
replay=${REPLAY:-3000}
rank=${RANK:-8}
alpha=${ALPHA:-16}
lr=${LR:-2e-3}
epochs=${EPOCHS:-3}
batch=${BATCH:-32}
threads=${THREADS:+-t $THREADS}
out=${OUT:-$work/adapter}
held_out=$repo/tests/fixtures/eval/lora-code/test.jsonl
images=$repo/tests/fixtures/eval/synthetic/test.jsonl

[ -x "$qwen3vl" ] || { echo "error: $qwen3vl: not built (cmake --build build), or set QWEN3VL" >&2; exit 1; }
[ -f "$held_out" ] || { echo "error: $held_out: missing (make_lora_task.py held-out)" >&2; exit 1; }
log() { echo "train_lora_example [$(date +%H:%M:%S)] $*"; }
mkdir -p "$work"

if [ ! -f "$work/data/train.jsonl" ]; then
  log "data: $codes code items, $replay replay items"
  "$python" "$repo/scripts/train/make_lora_task.py" train --out "$work/data" --codes "$codes" --replay "$replay" \
    --seed 1
fi

if [ ! -f "$out/adapter_model.safetensors" ]; then
  resume=()
  compgen -G "$out/checkpoint-*" > /dev/null && resume=(--resume latest)
  log "finetune: LoRA r$rank on all linear layers of $base"
  "$qwen3vl" finetune -m "$base" --data "$work/data/train.jsonl" -o "$out" --lora-target all-linear \
    --lora-r "$rank" --lora-alpha "$alpha" --lr "$lr" --lr-scheduler cosine --warmup-steps 20 \
    --batch-size "$batch" --epochs "$epochs" --seed 1 --save-steps 100 $threads "${resume[@]}"
  rm -rf "$out"/checkpoint-*
fi

# score: the code set and the base tasks, without and with the adapter
score() {  # NAME DATA [LORA]
  local name=$1 data=$2
  shift 2
  "$qwen3vl" eval -m "$base" --data "$data" "$@" --predictions "$work/$name.predictions.jsonl" \
    2> "$work/$name.log" > "$work/$name.txt"
  log "$name: $(awk '$1 == "overall" { print $3 }' "$work/$name.txt")"
}
score code-base "$held_out"
score code-lora "$held_out" --lora "$out"
score images-base "$images"
score images-lora "$images" --lora "$out"
