#!/usr/bin/env bash
# The sanitizer stages of .ci/run (docs/testing.md), each in its own clang build folder:
#   scripts/ci_sanitizers.sh asan   the whole test suite under ASan+UBSan (build-asan; the same folder also builds the
#                                   libFuzzer targets for scripts/fuzz.sh, whose coverage hooks do not affect tests)
#   scripts/ci_sanitizers.sh tsan   the thread-pool, kernel, server and LoRA-server concurrency tests under TSan (build-tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: ci_sanitizers.sh asan|tsan}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
clang_build() {  # FOLDER CMAKE_OPTION...
  local folder=$1
  shift
  # -O1 with asserts on, as sanitizer builds usually are; it compiles faster than -O2 on 2 cores.
  cmake -S . -B "$folder" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 \
        -DCMAKE_CXX_COMPILER=clang++-14 "${launcher[@]}" "$@" >/dev/null
}
symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
export ASAN_SYMBOLIZER_PATH=$symbolizer TSAN_SYMBOLIZER_PATH=$symbolizer
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

case "$mode" in
  asan)
    clang_build build-asan -DQWEN3VL_FUZZ=ON
    cmake --build build-asan -j"$(nproc)"
    export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:check_initialization_order=1
    ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 900
    ;;
  tsan)
    clang_build build-tsan -DQWEN3VL_SANITIZE=thread
    cmake --build build-tsan -j"$(nproc)" --target qwen3vl_tests qwen3vl
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
    build-tsan/bin/qwen3vl_tests --gtest_filter='ThreadPool*:Kernel*:ServerConcurrency*:ServerLora.Concurrent*'
    ;;
  *)
    echo "usage: ci_sanitizers.sh asan|tsan" >&2
    exit 2
    ;;
esac
