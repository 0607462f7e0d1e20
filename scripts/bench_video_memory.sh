#!/usr/bin/env bash
# Manual benchmark (not run by CI): peak memory of decoding + sampling + preprocessing a 10-minute 1080p video.
# Generates the video with the ffmpeg CLI (about 4 minutes on one core; ~300 MB in $TMPDIR), then runs the
# VideoMemoryBenchmark test, which measures the peak-RSS growth in a forked child and checks it against the bound
# stated there (pixel_values + 160 MiB).
# Usage (from the repository root, after a build):  bash scripts/bench_video_memory.sh [build-dir]
set -euo pipefail
build=${1:-build}
video=${TMPDIR:-/tmp}/qwen3vl_10min_1080p.mp4
if [ ! -s "$video" ]; then
  echo "generating $video ..."
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=600" \
    -c:v libx264 -preset ultrafast -crf 40 -pix_fmt yuv420p "$video"
fi
QWEN3VL_VIDEO_BENCH="$video" "$build/bin/qwen3vl_tests" --gtest_filter='VideoMemoryBenchmark.*'
