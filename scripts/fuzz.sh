#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, -fsanitize=fuzzer,address,undefined) and runs each for SECONDS
# (default 60), two at a time. Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (no TARGET: all of them)
# Each target's working corpus lives in the build folder (BUILD/fuzz-work/TARGET/corpus), starts from its seed corpus
# (tests/fuzz/seed_corpus.sh) and grows across runs; crash inputs land in BUILD/fuzz-work/TARGET/crashes/.
# Environment: QWEN3VL_FUZZ_BUILD (build folder, default build-fuzz; an already configured folder is reused as it is),
# QWEN3VL_FUZZ_JOBS (targets at once, default 2). Prints one table row per target; exits 1 if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
build=${QWEN3VL_FUZZ_BUILD:-build-fuzz}
jobs=${QWEN3VL_FUZZ_JOBS:-2}

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for source in tests/fuzz/fuzz_*.cpp; do name=$(basename "$source" .cpp); targets+=("${name#fuzz_}"); done
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 \
        -DCMAKE_CXX_COMPILER=clang++-14 -DQWEN3VL_FUZZ=ON \
        -DQWEN3VL_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

# libFuzzer options per target: every run is bounded in time per input and in memory; the decoders get an allocation
# cap (a decoder that allocates more than its header's size allows is a finding), JSON parsers a dictionary.
fuzzer_options() {
  local target=$1
  local options=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  case "$target" in
    chat_json | chat_request | chat_template) options+=(-timeout=5 -dict=tests/fuzz/dicts/chat.dict) ;;
    checkpoint_configs | safetensors) options+=(-dict=tests/fuzz/dicts/checkpoint.dict) ;;
    lora_adapter) options+=(-dict=tests/fuzz/dicts/checkpoint.dict -max_len=1048576) ;;
    tokenizer_json) options+=(-dict=tests/fuzz/dicts/json.dict) ;;
    jinja) options+=(-dict=tests/fuzz/dicts/jinja.dict -max_len=16384) ;;
    grounding | reply_streams) options+=(-dict=tests/fuzz/dicts/chat.dict -max_len=4096) ;;
    image_decode | png | jpeg | gif | webp | bmp) options+=(-malloc_limit_mb=512 -max_len=262144) ;;
    video_decode) options+=(-malloc_limit_mb=1024 -max_len=262144) ;;
    tokenize) options+=(-max_len=4096 -timeout=60) ;;  # the first input loads the 151k-token Qwen3 tokenizer
    pretokenizer | media_source) options+=(-max_len=4096) ;;
    tokenize_request) options+=(-dict=tests/fuzz/dicts/chat.dict -max_len=16384 -timeout=30) ;;  # loads a checkpoint
    sft_dataset) options+=(-dict=tests/fuzz/dicts/sft.dict -max_len=8192 -timeout=30) ;;  # loads the Qwen3 tokenizer
    train_state) options+=(-dict=tests/fuzz/dicts/train_state.dict -max_len=65536) ;;
  esac
  echo "${options[@]}"
}

run_target() {
  local target=$1 work="$build/fuzz-work/$1"
  mkdir -p "$work/corpus" "$work/crashes"
  rm -f "$work/crashes"/*
  bash tests/fuzz/seed_corpus.sh "$target" "$work/seeds"
  cp -n "$work/seeds"/* "$work/corpus/" 2>/dev/null || true
  local start=$SECONDS
  # shellcheck disable=SC2046  # the options are words
  "$build/bin/fuzz_$target" $(fuzzer_options "$target") -max_total_time="$seconds" \
      -artifact_prefix="$work/crashes/" "$work/corpus" > "$work/log" 2>&1 || true
  echo $((SECONDS - start)) > "$work/seconds"
}

for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_target "$target" &
done
wait

status=0
printf '%-20s %8s %14s %8s %8s\n' target seconds executions corpus crashes
for target in "${targets[@]}"; do
  work="$build/fuzz-work/$target"
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  crashes=$(find "$work/crashes" -type f | wc -l)
  printf '%-20s %8s %14s %8s %8s\n' "$target" "$(cat "$work/seconds")" "${executions:-?}" \
         "$(find "$work/corpus" -type f | wc -l)" "$crashes"
  if [ -z "$executions" ] && [ "$crashes" -eq 0 ]; then
    status=1
    echo "    did not finish a run: $work/log"
  fi
  if [ "$crashes" -gt 0 ]; then
    status=1
    find "$work/crashes" -type f | sed 's/^/    crash input: /'
    echo "    log: $work/log"
  fi
done
exit $status
