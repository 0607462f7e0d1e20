#!/usr/bin/env bash
# Writes the small test videos under tests/fixtures/videos/ with the ffmpeg CLI (Debian 12's FFmpeg 5.1).
# Offline fixture generation only: CI never runs this, the outputs are committed. Sources are lavfi's
# deterministic testsrc2 (a moving pattern with a frame counter) and sine; encoders run single-threaded with
# bitexact flags so a rerun on the same FFmpeg gives the same bytes.
#
# Usage (from the repository root):  bash scripts/reference/make_test_videos.sh
set -euo pipefail
out=tests/fixtures/videos
mkdir -p "$out"
ff=(ffmpeg -hide_banner -loglevel error -y -fflags +bitexact)
x264=(-c:v libx264 -preset veryfast -crf 40 -pix_fmt yuv420p -threads 1 -flags:v +bitexact)
src() { echo "testsrc2=size=$1:rate=$2:duration=$3"; }

# 24 fps, 3 s, H.264 in MP4 (B-frames, moov at the end): 72 frames -> 6 sampled at 2 fps.
"${ff[@]}" -f lavfi -i "$(src 96x64 24 3)" "${x264[@]}" "$out/cfr24_3s.mp4"
# 25 fps, 10 s, H.264 in Matroska after an Opus audio stream (the video is stream 1): 250 frames -> 20.
"${ff[@]}" -f lavfi -i "$(src 96x64 25 10)" -f lavfi -i "sine=frequency=440:sample_rate=8000:duration=10" \
  -map 1:a -map 0:v "${x264[@]}" -c:a libopus -b:a 6k "$out/cfr25_10s.mkv"
# 30 fps, 40 s, VP9 in WebM (no frame count in the header): 1200 frames -> 80.
"${ff[@]}" -f lavfi -i "$(src 64x48 30 40)" -c:v libvpx-vp9 -b:v 12k -deadline realtime -cpu-used 8 -g 150 \
  -threads 1 -flags:v +bitexact "$out/cfr30_40s.webm"
# 29.97 fps (30000/1001), 7 s, H.264 in QuickTime with AAC audio: 210 frames -> 14.
"${ff[@]}" -f lavfi -i "$(src 96x64 30000/1001 7)" -f lavfi -i "sine=frequency=300:sample_rate=8000:duration=7" \
  "${x264[@]}" -c:a aac -b:a 8k "$out/ntsc2997_7s.mov"
# 100x60 (not a multiple of 32), 15 fps, 5 s, MPEG-4 part 2 in AVI: 75 frames -> 10.
"${ff[@]}" -f lavfi -i "$(src 100x60 15 5)" -c:v mpeg4 -q:v 20 -threads 1 -flags:v +bitexact "$out/size100x60_5s.avi"
# Animated GIF, 10 fps, 2.5 s: 25 frames -> 5 sampled, an odd count (the last frame is repeated in the patches).
"${ff[@]}" -f lavfi -i "$(src 80x48 10 2.5)" -vf "split[a][b];[a]palettegen=max_colors=32[p];[b][p]paletteuse" \
  "$out/odd5_2.5s.gif"
# Variable frame rate, H.264 in MP4: 2 s at 30 fps then 2 s at 10 fps (80 frames, average 20 fps).
"${ff[@]}" -f lavfi -i "$(src 96x64 30 4)" -vf "select='lt(n\,60)+not(mod(n\,3))'" -fps_mode vfr \
  "${x264[@]}" "$out/vfr_4s.mp4"

# A frame list: five PNG stills (80x48) for the "images as one video" input.
mkdir -p "$out/frames"
"${ff[@]}" -f lavfi -i "$(src 80x48 2 2.5)" -start_number 0 "$out/frames/frame%d.png"

# Error cases: a file with audio only, and a video stream that holds no frame.
"${ff[@]}" -f lavfi -i "sine=frequency=440:sample_rate=8000:duration=0.5" -c:a libopus -b:a 6k "$out/audio_only.mka"
# A video stream that holds no frame: a YUV4MPEG2 header (96x64, 24 fps) and nothing after it.
printf 'YUV4MPEG2 W96 H64 F24:1 Ip A1:1 C420jpeg\n' > "$out/zero_frames.y4m"
ls -l "$out"
