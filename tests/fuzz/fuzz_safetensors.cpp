// Checkpoint weights: a safetensors file (and optionally a sharded index naming it) loaded against a fixed tiny
// config (tests/fixtures/models/tiny-fp32-tied), and when every weight binds, one 1-token forward pass.
// Input: [u32 LE: zero bytes appended to the file][u16 LE: index length][index JSON][safetensors file bytes]. The
// appended zeros let the corpus hold only the headers (the part the parser reads) of multi-megabyte checkpoints.
#include <string>

#include "core/error.h"
#include "engine/loaded_model.h"
#include "fuzz_common.h"
#include "model/mrope.h"

namespace {

constexpr uint32_t kMaxAppendedZeros = 8u << 20;
const char* const kShardName = "model-00001-of-00001.safetensors";

uint64_t little_endian(const uint8_t* data, size_t size, size_t count) {
  uint64_t value = 0;
  for (size_t i = 0; i < count && i < size; ++i) value |= uint64_t{data[i]} << (8 * i);
  return value;
}

void forward_one_token(const qwen3vl::LoadedModel& model) {
  const qwen3vl::TextDecoder& decoder = *model.decoder;
  qwen3vl::KVCache cache = decoder.make_cache(1);
  std::vector<float> embeds(static_cast<size_t>(model.config.text_config.hidden_size));
  const int32_t id = 1;
  decoder.embed(&id, 1, embeds.data());
  qwen3vl::DecoderWorkspace work;
  std::vector<float> logits;
  decoder.forward(embeds.data(), 1, qwen3vl::text_positions(0, 1), cache, work, qwen3vl::LogitsRows::Last, logits);
  qwen3vl::fuzz::check(logits.size() == static_cast<size_t>(model.config.text_config.vocab_size), "logits size");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string config =
      qwen3vl::fuzz::read_file(QWEN3VL_FIXTURES_DIR "/models/tiny-fp32-tied/config.json");
  if (size < 6) return 0;
  const uint64_t zeros = little_endian(data, size, 4);
  const size_t index_length = std::min<size_t>(little_endian(data + 4, size - 4, 2), size - 6);
  if (zeros > kMaxAppendedZeros) return 0;
  const std::string_view index(reinterpret_cast<const char*>(data + 6), index_length);
  std::string file(reinterpret_cast<const char*>(data + 6 + index_length), size - 6 - index_length);
  file.append(zeros, '\0');

  qwen3vl::fuzz::TempDir dir;
  dir.write("config.json", config);
  if (index.empty()) {
    dir.write("model.safetensors", file);
  } else {
    dir.write("model.safetensors.index.json", index);
    dir.write(kShardName, file);
  }
  try {
    qwen3vl::LoadOptions options;
    options.require_tokenizer = false;
    options.threads = 1;
    forward_one_token(*qwen3vl::load_model(dir.path(), options));
  } catch (const qwen3vl::Error&) {
  }
  return 0;
}
