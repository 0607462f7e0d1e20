#!/usr/bin/env bash
# ctest's FuzzReplay.TARGET: runs the target's entry point (qwen3vl_fuzz_replay) on its seed corpus and on every
# committed crash regression. Usage: replay_test.sh REPLAY_BINARY TARGET WORK_DIR
set -euo pipefail
replay=$1
target=$2
corpus="$3/$target"
here="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$corpus"
bash "$here/seed_corpus.sh" "$target" "$corpus"
"$replay" "$target" "$corpus" "$here/regressions/$target"
