#!/usr/bin/env bash
# Load test of `qwen3vl serve` on loopback: CLIENTS concurrent clients x REQUESTS mixed requests each (text,
# streamed text, images already seen, new images, a video, and bad input of several kinds) against the tiny test
# checkpoint. Passes when no response is a 5xx, the server survives, and its resident memory after the run is
# within 10% of the figure before it (measured after one warm-up request of each kind).
#   scripts/load_test.sh [CLIENTS=8] [REQUESTS=50]      (build first: scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-8}
requests=${2:-50}
binary=build/bin/qwen3vl
model=tests/fixtures/models/tiny-realtok-bf16
[ -x "$binary" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A 24-bit BMP of W x H random pixels (new content each call, so its vision output is not cached yet).
random_bmp() {
  local w=$1 h=$2 out=$3 row size
  row=$(( (w * 3 + 3) / 4 * 4 ))
  size=$(( row * h ))
  le32() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $((($1 >> 8) & 255)))\\x$(printf %02x $((($1 >> 16) & 255)))\\x$(printf %02x $((($1 >> 24) & 255)))"; }
  { printf 'BM'; le32 $((54 + size)); le32 0; le32 54; le32 40; le32 "$w"; le32 "$h"; printf '\x01\x00\x18\x00'
    le32 0; le32 "$size"; le32 0; le32 0; le32 0; le32 0; head -c "$size" /dev/urandom; } > "$out"
}
image_body() {  # FILE MIME TEXT STREAM
  printf '{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:%s;base64,%s"}},{"type":"text","text":"%s"}]}],"max_tokens":8,"temperature":0.7,"stream":%s}' \
    "$2" "$(base64 -w0 "$1")" "$3" "$4"
}

# Request bodies: kind 0-1 text, 2 streamed text, 3-4 a known image, 5 a new image, 6-9 bad input, 10 a video.
bodies=$work/bodies
mkdir -p "$bodies"
printf '{"messages":[{"role":"user","content":"Tell me about the sea."}],"max_tokens":12}' > "$bodies/text.json"
printf '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi!"}],"max_tokens":6,"seed":7,"stop":["\\n"]}' > "$bodies/text2.json"
printf '{"messages":[{"role":"user","content":"Stream please."}],"max_tokens":12,"stream":true,"stream_options":{"include_usage":true}}' > "$bodies/stream.json"
image_body tests/fixtures/multimodal/images/shapes_150x97.png image/png "What is this?" false > "$bodies/image_a.json"
image_body tests/fixtures/multimodal/images/shapes_240x60.png image/png "Describe it." true > "$bodies/image_b.json"
printf '{"messages":[{"role":"user","content":[{"type":"video_url","video_url":{"url":"data:video/mp4;base64,%s"}},{"type":"text","text":"What happens?"}]}],"max_tokens":8}' \
  "$(base64 -w0 tests/fixtures/videos/cfr24_3s.mp4)" > "$bodies/video.json"
for k in $(seq 0 $(( (clients + 1) * requests / 10 + 2 ))); do
  random_bmp $((48 + k % 5 * 16)) $((40 + k % 3 * 24)) "$work/new.bmp"
  image_body "$work/new.bmp" image/bmp "And this one?" false > "$bodies/new_$k.json"
done
printf '{"messages": [{"role": "user", "content": "unterminated' > "$bodies/bad_json.json"
printf '{"messages":[{"role":"user","content":"hi"}],"temperature":"hot"}' > "$bodies/bad_type.json"
printf '{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,%s"}}]}]}' \
  "$(head -c 3000 /dev/urandom | base64 -w0)" > "$bodies/bad_image.json"
printf '{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}' > "$bodies/bad_model.json"

"$binary" serve -m "$model" --port 0 --parallel 2 --max-queue 16 ${SERVE_FLAGS:-} 2> "$work/server.log" &
server_pid=$!
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
url=http://127.0.0.1:$port

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
send() {  # BODY-FILE -> prints the HTTP status
  curl -s -o /dev/null -w '%{http_code}' --max-time 120 -H 'Content-Type: application/json' \
    --data-binary "@$1" "$url/v1/chat/completions" || echo 000
}

rss_start=$(rss_kb)
# Warm-up: every kind of request once from as many clients as there are generation slots (--parallel 2), so each
# worker thread has run each path once (per-thread scratch buffers, decoder state) before "before" is taken.
warm_up() { for body in text text2 stream image_a image_b video bad_json bad_type bad_image bad_model; do send "$bodies/$body.json" >/dev/null; done; }
warm_up & warm_up & wait $(jobs -p | grep -v "^$server_pid\$") 2>/dev/null || true
send "$bodies/new_0.json" >/dev/null
rss_before=$(rss_kb)

client() {  # CLIENT-INDEX: REQUESTS requests, kinds rotating with an offset per client
  local c=$1 i kind body new
  for i in $(seq 1 "$requests"); do
    kind=$(( (i + c * 3) % 11 ))
    case $kind in
      0) body=text ;; 1) body=text2 ;; 2) body=stream ;; 3) body=image_a ;; 4) body=image_b ;;
      5) new=$(( (c * requests + i) / 10 + 1 )); body=new_$new ;;
      6) body=bad_json ;; 7) body=bad_type ;; 8) body=bad_image ;; 9) body=bad_model ;; 10) body=video ;;
    esac
    echo "$(send "$bodies/$body.json") $body"
  done > "$work/client_$c.txt"
}
start=$(date +%s.%N)
for c in $(seq 1 "$clients"); do client "$c" & done
wait $(jobs -p | grep -v "^$server_pid\$") 2>/dev/null || true
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
rss_after=$(rss_kb)
for round in $(seq 2 "${ROUNDS:-1}"); do  # ROUNDS>1: run again against the same server, to tell leaks from warm-up
  for c in $(seq 1 "$clients"); do client "$c" & done
  wait $(jobs -p | grep -v "^$server_pid\$") 2>/dev/null || true
  echo "RSS after round $round: $(( $(rss_kb) / 1024 )) MiB"
done

cat "$work"/client_*.txt > "$work/all.txt"
total=$(wc -l < "$work/all.txt")
echo "requests: $total in ${elapsed%????} s ($(echo "scale=1; $total / $elapsed" | bc) req/s), $clients clients"
echo "status counts:"; awk '{print $1}' "$work/all.txt" | sort | uniq -c | sed 's/^/  /'
echo "by kind and status:"; sort "$work/all.txt" | uniq -c | awk '{printf "  %-10s %s x %d\n", $3, $2, $1}'
health=$(curl -s --max-time 5 "$url/health" || true)
echo "health after: $health"
curl -s "$url/metrics" | grep -E '^qwen3vl_(image_cache_(hits|misses)_total|completions(_cancelled)?_total|requests_rejected_total) ' | sed 's/^/  /'
echo "RSS: at start $((rss_start / 1024)) MiB, after warm-up $((rss_before / 1024)) MiB, after the run $((rss_after / 1024)) MiB"
growth=$(echo "scale=2; 100 * ($rss_after - $rss_before) / $rss_before" | bc)
echo "RSS change over the run: ${growth}%"

status=0
if grep -qE '^(5[0-9][0-9]|000) ' "$work/all.txt"; then echo "FAIL: 5xx or failed connections"; status=1; fi
if [ "$total" -ne $((clients * requests)) ]; then echo "FAIL: $total of $((clients * requests)) requests ran"; status=1; fi
case $health in *'"ok"'*) ;; *) echo "FAIL: the server is not healthy"; status=1 ;; esac
if [ "$(echo "$growth > 10 || $growth < -10" | bc)" -eq 1 ]; then echo "FAIL: RSS changed by more than 10%"; status=1; fi
[ $status -eq 0 ] && echo "PASS"
exit $status
