#!/usr/bin/env bash
# The web page test alone (it also runs in the suite, scripts/test.sh): headless Chromium uploads an image, asks a
# question, watches the streamed answer and saves a screenshot to $QWEN3VL_ARTIFACTS_DIR (default build/artifacts).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "chromium is not installed: bash scripts/install-deps.sh" >&2; exit 1; }
[ -x build/bin/qwen3vl_tests ] || bash scripts/build.sh
export QWEN3VL_ARTIFACTS_DIR=${QWEN3VL_ARTIFACTS_DIR:-$PWD/build/artifacts}
build/bin/qwen3vl_tests --gtest_filter='ServerBrowser.*'
