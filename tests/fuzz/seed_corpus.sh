#!/usr/bin/env bash
# Builds the seed corpus of one fuzz target in OUTDIR from the committed fixtures (tests/fixtures, models/) plus the
# target's hand-written seeds (tests/fuzz/seeds/TARGET/, only where no fixture fits). Usage: seed_corpus.sh TARGET OUTDIR
set -euo pipefail
target=$1
out=$2
root="$(cd "$(dirname "$0")/../.." && pwd)"
fixtures="$root/tests/fixtures"
mkdir -p "$out"

copy() { for file in "$@"; do [ -f "$file" ] && cp "$file" "$out/$(basename "$(dirname "$file")")_$(basename "$file")"; done; true; }

# fuzz_safetensors input: [u32 LE zero bytes appended][u16 LE index length][index JSON][safetensors file prefix].
# The seed is a fixture's header (its 8-byte length and JSON) with its data size as the zeros to append.
le_bytes() {  # VALUE COUNT: VALUE as COUNT little-endian bytes
  local value=$1 i
  for ((i = 0; i < $2; ++i)); do printf "\\x$(printf %02x $((value & 255)))"; value=$((value >> 8)); done
}
safetensors_seed() {
  local file=$1 header_length size
  header_length=$(od -An -tu8 -N8 "$file" | tr -d ' ')
  size=$(stat -c %s "$file")
  { le_bytes $((size - 8 - header_length)) 4; le_bytes 0 2; head -c $((8 + header_length)) "$file"; } \
      > "$out/$(basename "$(dirname "$file")")_$(basename "$file")"
}

# One line of tests/fixtures/chat/conversations.json per conversation: its "messages" array (the last key).
conversation_messages() { grep '^{"name"' "$fixtures/chat/conversations.json" | sed -E 's/^.*"messages": (.*)\},?$/\1/'; }

# The fine-tuning fixture's records, one per line, naming the media files the sft_dataset target writes.
sft_records() {
  sed -E 's#images/small_80x48\.png#a.png#g; s#multimodal/images/[a-z0-9_]+\.png#b.jpg#g; s#videos/cfr24_3s\.mp4#v.gif#g' \
      "$fixtures/train/data/sft_mixed.jsonl"
}

# The first bytes of a few fixtures, as arbitrary numbers for the numeric targets.
numeric_seeds() {
  local i=0 file
  for file in "$fixtures"/images/small_80x48.png "$fixtures"/videos/cfr24_3s.mp4 "$fixtures"/chat/expected.json; do
    head -c 128 "$file" > "$out/numbers_$i"; i=$((i + 1))
  done
}

case "$target" in
  safetensors)
    for file in "$fixtures"/models/*/model*.safetensors; do safetensors_seed "$file"; done ;;
  checkpoint_configs)  # config.json \0 generation_config.json \0 preprocessor_config.json \0 video_preprocessor_config
    for dir in "$fixtures"/models/* "$root"/models/*; do
      { for name in config generation_config preprocessor_config video_preprocessor_config; do
          [ -f "$dir/$name.json" ] && cat "$dir/$name.json"; printf '\0'; done; } > "$out/$(basename "$dir")"
    done ;;
  tokenizer_json) copy "$root"/models/qwen3vl-tiny-shapes/tokenizer.json ;;
  tokenize)
    split -l 100 "$fixtures/tokenizer/goldens.jsonl" "$out/goldens_"
    copy "$fixtures"/chat/conversations.json ;;
  chat_json) copy "$fixtures"/chat/*.json "$fixtures"/models/*/config.json "$fixtures"/models/*/chat_template.json ;;
  jinja) copy "$root"/scripts/reference/templates/*.jinja ;;  # plus tests/fuzz/seeds/jinja: feature snippets
  chat_template)
    i=0; while IFS= read -r line; do printf '%s' "$line" > "$out/conversation_$i"; i=$((i + 1)); done \
      < <(conversation_messages) ;;
  chat_request | tokenize_request)  # tokenize_request: plus tests/fuzz/seeds/tokenize_request (texts and ids)
    i=0; while IFS= read -r line; do printf '{"messages": %s}' "$line" > "$out/conversation_$i"; i=$((i + 1)); done \
      < <(conversation_messages) ;;
  image_decode) copy "$fixtures"/images/*.{png,jpg,gif,webp,bmp}; rm -f "$out"/images_large_* "$out"/images_over_max_* ;;
  png) copy "$fixtures"/images/*.png "$fixtures"/videos/frames/*.png ;;
  jpeg) copy "$fixtures"/images/*.jpg; rm -f "$out"/images_large_* "$out"/images_over_max_* ;;
  gif) copy "$fixtures"/images/*.gif "$fixtures"/videos/*.gif ;;
  webp) copy "$fixtures"/images/*.webp ;;
  bmp) copy "$fixtures"/images/*.bmp ;;
  image_preprocess | video_sampling) numeric_seeds ;;
  video_decode) copy "$fixtures"/videos/*.* ;;
  grounding) copy "$fixtures"/eval/mini/mini.jsonl ;;
  reply_streams) copy "$fixtures"/chat/conversations.json ;;
  lora_adapter)  # adapter_config.json \0 adapter_model.safetensors, the adapters made for tiny-fp32-tied
    for dir in "$fixtures"/lora/*/; do
      [ -f "$dir/adapter_config.json" ] && grep -q '"tiny-fp32-tied"' "$dir/adapter_config.json" || continue
      { cat "$dir/adapter_config.json"; printf '\0'; cat "$dir/adapter_model.safetensors"; } > "$out/$(basename "$dir")"
    done ;;
  sft_dataset)  # [options byte][pack length byte][dataset text]: the fixture's records with their media renamed to
                # the target's a.png, b.jpg and v.gif; each line as a JSONL file, the whole as JSONL and as a JSON list
    i=0; while IFS= read -r line; do { printf '\x00\x10'; printf '%s\n' "$line"; } > "$out/sft_line_$i"; i=$((i + 1)); done \
      < <(sft_records)
    { printf '\x00\x40'; sft_records; } > "$out/sft_mixed_jsonl"
    { printf '\x31\x40['; sft_records | paste -sd, -; printf ']\n'; } > "$out/sft_mixed_json" ;;
  train_state) ;;  # tests/fuzz/seeds/train_state: states saved by a LoRA Trainer on tiny-fp32-tied
  logits_file) ;;  # tests/fuzz/seeds/logits_file: two small files written as the format's numpy recipe writes them
  media_source | pretokenizer) ;;
  *) echo "seed_corpus.sh: unknown target $target" >&2; exit 2 ;;
esac
[ -d "$root/tests/fuzz/seeds/$target" ] && cp "$root/tests/fuzz/seeds/$target"/* "$out/"
true
