#!/usr/bin/env bash
# Installs what is missing, builds, and asks the bundled tiny trained model (models/qwen3vl-tiny-shapes, real
# Qwen3-VL architecture, trained on synthetic shapes: scripts/train/) about the bundled example image.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/bin/qwen3vl run -m models/qwen3vl-tiny-shapes --image examples/shapes.png -p "What color is the triangle?"
./build/bin/qwen3vl run -m models/qwen3vl-tiny-shapes --image examples/shapes.png --grounding \
  -p "Locate the blue triangle, output bbox_2d coordinates in JSON."
