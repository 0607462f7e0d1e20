#!/usr/bin/env bash
# Configures and builds the library, the qwen3vl CLI (build/bin/qwen3vl) and the tests, in Release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
