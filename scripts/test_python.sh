#!/usr/bin/env bash
# The Python package's tests: `pip install .[test]` into a fresh virtualenv (build/python-venv unless VENV is given),
# then pytest python/tests with that venv's `qwen3vl` command and module. When scripts/build.sh has made build/
# already (CI), pip builds in it and compiles only the binding.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-build/python-venv}
rm -rf "$venv"
python3 -m venv "$venv"
pip_args=()
if [ -f build/CMakeCache.txt ]; then
  # The tree's own generator and test targets, so reusing it rebuilds nothing the test suite built.
  pip_args=(-C build-dir=build -C cmake.define.QWEN3VL_BUILD_TESTS=ON)
  export CMAKE_GENERATOR="Unix Makefiles"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pip_args[@]}" ".[test]"
PATH="$(cd "$venv/bin" && pwd):$PATH" "$venv/bin/python" -m pytest -q python/tests
