#!/usr/bin/env bash
# Installs what is missing, builds, and runs a short text generation on the bundled tiny test checkpoint
# (random weights, real Qwen3 tokenizer: the text is gibberish, the pipeline is the real one).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/bin/qwen3vl run -m tests/fixtures/models/tiny-realtok-bf16 -p "Describe a sunset in one sentence." \
  -n 24 --seed 42
