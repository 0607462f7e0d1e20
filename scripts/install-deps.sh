#!/usr/bin/env bash
# Installs the build and runtime dependencies from Debian 12 packages (see docs/dependencies.md for why each).
# Does nothing when they are all present already.
set -euo pipefail
packages=(cmake g++ make pkg-config nlohmann-json3-dev libcli11-dev libpcre2-dev libutf8proc-dev libgtest-dev
          libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev
          libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
          libcpp-httplib-dev chromium  # chromium: the web page test (tests/e2e/test_server_browser.cpp)
          libopenmpi-dev openmpi-bin   # data-parallel fine-tuning (optional to the build; mpirun runs its test)
          python3-dev python3-venv     # the Python package (pip install ., scripts/test_python.sh)
          clang-14 libclang-rt-14-dev llvm-14)  # sanitizer and libFuzzer builds (docs/testing.md); llvm-symbolizer
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
