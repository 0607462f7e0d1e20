#!/usr/bin/env bash
# Configures and builds the library, the qwen3vl CLI (build/bin/qwen3vl) and the tests, in Release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
# QWEN3VL_PYTHON off: scripts/test_python.sh may have turned it on in this tree with a pip build environment since gone.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DQWEN3VL_PYTHON=OFF >/dev/null
cmake --build build -j"$(nproc)"
