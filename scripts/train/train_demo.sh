#!/usr/bin/env bash
# Trains the demo model from a seeded random initialisation with `qwen3vl finetune` on the CPU, then scores it with
# `qwen3vl eval` on the committed held-out sets. One command; run it again after an interruption and it continues.
#
#   scripts/train/train_demo.sh            # everything under $QWEN3VL_DEMO_WORK (default ~/.cache/qwen3vl/demo-train)
#
# Stages: the training items are made in shards (make_sft_data.py, seed = shard number, so no shard repeats another
# or a held-out item); stage k fine-tunes stage k-1's checkpoint on shard k for EPOCHS passes at a constant learning
# rate after a short warmup, the rate stepping down a cosine over the stages. Shards keep memory bounded: finetune
# holds every sample's pixels in memory (~0.4 MB per image, ~2 MB per video). Resuming: finished data and stages are
# kept; an unfinished stage continues from its last checkpoint-<step> (--save-steps) with `--resume latest`. Use a new
# QWEN3VL_DEMO_WORK when the settings change (the stages of one folder must come from one configuration).
#
# Settings (environment): QWEN3VL (the CLI, default build/bin/qwen3vl), PYTHON (the pinned venv of
# scripts/reference/README.md, default python3; make_sft_data.py also needs the ffmpeg CLI), SIZE (tiny|small|base,
# train_tiny_qwen3vl.py SIZES), POS_INIT (the vision position table's init: sincos or normal), INIT_FROM (a
# checkpoint to continue instead of the random init, e.g. models/qwen3vl-tiny-shapes), SHARDS, IMAGES and VIDEOS (per shard), MIX (image task weights, make_sft_data.py
# --mix), EPOCHS (per shard), LR (peak), BATCH, THREADS (default: finetune's, one per core), SAVE_STEPS,
# EVAL_EVERY (score the held-out sets after every N-th stage, into $QWEN3VL_DEMO_WORK/eval; 0: only at the end).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${QWEN3VL_DEMO_WORK:-$HOME/.cache/qwen3vl/demo-train}
qwen3vl=${QWEN3VL:-$repo/build/bin/qwen3vl}
python=${PYTHON:-python3}
size=${SIZE:-tiny}
init_from=${INIT_FROM:-}
shards=${SHARDS:-60}
images=${IMAGES:-5000}
videos=${VIDEOS:-700}
# grounding answers are ~35 supervised tokens against 2-3 for the others: at weight 1 they would be 2/3 of the loss;
# describe (training only) supervises every object of a scene at once
mix=${MIX:-grounding=0.35,count=1.5,position=1.5,choice=1.5,describe=3}
pos_init=${POS_INIT:-sincos}
epochs=${EPOCHS:-3}
lr=${LR:-2e-3}
batch=${BATCH:-32}
threads=${THREADS:+-t $THREADS}
save_steps=${SAVE_STEPS:-50}
eval_every=${EVAL_EVERY:-5}

[ -x "$qwen3vl" ] || { echo "error: $qwen3vl: not built (cmake --build build), or set QWEN3VL" >&2; exit 1; }
command -v ffmpeg > /dev/null || { echo "error: make_sft_data.py needs the ffmpeg CLI (apt-get install ffmpeg)" >&2
                                   exit 1; }
mkdir -p "$work"
log() { echo "train_demo [$(date +%H:%M:%S)] $*"; }

# The learning rate of stage k (1-based): the cosine from lr down to lr/20, taken at the middle of the stage.
stage_lr() {
  awk -v k="$1" -v n="$shards" -v lr="$lr" \
    'BEGIN { printf "%.3e", lr * (0.05 + 0.95 * 0.5 * (1 + cos(3.141592653589793 * (k - 0.5) / n))) }'
}

# Scores a checkpoint on both held-out sets: $work/eval/NAME-{test,video}.txt (the tables) and predictions.
evaluate() {
  local model=$1
  local name=$2
  mkdir -p "$work/eval"
  for set in test video; do
    "$qwen3vl" eval -m "$model" --data "$repo/tests/fixtures/eval/synthetic/$set.jsonl" \
      --predictions "$work/eval/$name-$set.predictions.jsonl" 2> "$work/eval/$name-$set.log" \
      > "$work/eval/$name-$set.txt"
  done
  log "$name: images $(awk '$1 == "overall" { print $3 }' "$work/eval/$name-test.txt")," \
    "videos $(awk '$1 == "overall" { print $3 }' "$work/eval/$name-video.txt")"
}

# Makes shard k (unless it is there) with $2 processes; with $3 = exec the calling background subshell becomes
# make_sft_data.py, so stopping the job stops the generator.
make_shard() {
  local k=$1
  local dir=$work/data/shard-$k
  local how=${3:-}
  [ -f "$dir/train.jsonl" ] && return 0
  $how "$python" "$repo/scripts/train/make_sft_data.py" --out "$dir" --images "$images" --videos "$videos" \
    --seed "$k" --mix "$mix" --workers "$2" > "$dir.log" 2>&1
}

init=$work/init
if [ -n "$init_from" ]; then
  init=$init_from
  [ -f "$init/model.safetensors" ] || { echo "error: $init: no model.safetensors to start from" >&2; exit 1; }
elif [ ! -f "$init/model.safetensors" ]; then
  log "writing the seeded random initialisation ($size) to $init"
  rm -rf "$init.partial"
  "$python" "$repo/scripts/train/train_tiny_qwen3vl.py" --init-only --size "$size" --video-vocab --seed 0 \
    --pos-init "$pos_init" --out "$init.partial"
  mv "$init.partial" "$init"
fi

mkdir -p "$work/data"
trap 'kill $(jobs -p) 2> /dev/null || true' EXIT  # an interrupted run leaves no shard writer behind
previous=$init
start=$(date +%s)
for k in $(seq 1 "$shards"); do
  out=$work/stage-$k
  if [ ! -f "$out/model.safetensors" ]; then
    log "stage $k/$shards: data"
    make_shard "$k" 2
    # the next shard is made while this stage trains (ffmpeg and PNG writing take the other core)
    if [ "$k" -lt "$shards" ]; then make_shard $((k + 1)) 1 exec & fi
    resume=()
    compgen -G "$out/checkpoint-*" > /dev/null && resume=(--resume latest)
    log "stage $k/$shards: finetune from $previous, lr $(stage_lr "$k") ${resume[*]}"
    "$qwen3vl" finetune -m "$previous" --data "$work/data/shard-$k/train.jsonl" -o "$out" \
      --tune-mm-llm --tune-mm-mlp --tune-mm-vision --lr "$(stage_lr "$k")" \
      --lr-scheduler constant_with_warmup --warmup-steps 20 --adam-beta2 0.98 --weight-decay 0.01 \
      --batch-size "$batch" --epochs "$epochs" --seed "$k" --save-steps "$save_steps" $threads "${resume[@]}"
    rm -rf "$out"/checkpoint-*  # the stage's output is its checkpoint now
    # finetune copies every non-weight file of its base into the output, train_log.jsonl included, so a stage's own
    # log would be replaced by the previous stage's: the logs live in $work/logs, out of the checkpoints
    mkdir -p "$work/logs"
    mv "$out/train_log.jsonl" "$work/logs/stage-$k.jsonl"
    if [ "$eval_every" -gt 0 ] && [ $((k % eval_every)) -eq 0 ] && [ "$k" -lt "$shards" ]; then
      evaluate "$out" "stage-$k"
    fi
    wait  # the next shard
  fi
  previous=$out
done
log "training done ($(( ($(date +%s) - start) / 60 )) min this run); model: $previous"

evaluate "$previous" final
cat "$work/eval/final-test.txt" "$work/eval/final-video.txt"
