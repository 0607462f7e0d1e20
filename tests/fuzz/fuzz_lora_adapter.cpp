// PEFT adapter folders: adapter_config.json and adapter_model.safetensors (the input's two parts around its first 0
// byte) read against a fixed tiny checkpoint (tests/fixtures/models/tiny-fp32-tied), and when the adapter loads,
// bound to the weights and run for one token (the server loads adapters a client names, inside its allowed folder).
#include <string>

#include "core/error.h"
#include "engine/adapters.h"
#include "fuzz_common.h"
#include "model/mrope.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<qwen3vl::LoadedModel> model = [] {
    qwen3vl::LoadOptions options;
    options.require_tokenizer = false;
    options.threads = 1;
    return qwen3vl::load_model(QWEN3VL_FIXTURES_DIR "/models/tiny-fp32-tied", options);
  }();
  const std::vector<std::string> parts =
      qwen3vl::fuzz::split_at_zeros(std::string_view(reinterpret_cast<const char*>(data), size), 2);
  qwen3vl::fuzz::TempDir dir;
  dir.write("adapter_config.json", parts[0]);
  if (parts.size() > 1) dir.write("adapter_model.safetensors", parts[1]);
  try {
    const auto adapter = qwen3vl::load_adapter(*model, dir.path());
    const auto adapted = qwen3vl::bind_adapters(*model, {{adapter, 1.0}});
    const qwen3vl::TextDecoder decoder(model->config, adapted->text());
    qwen3vl::KVCache cache = decoder.make_cache(1);
    std::vector<float> embeds(static_cast<size_t>(model->config.text_config.hidden_size)), logits;
    const int32_t id = 1;
    decoder.embed(&id, 1, embeds.data());
    qwen3vl::DecoderWorkspace work;
    decoder.forward(embeds.data(), 1, qwen3vl::text_positions(0, 1), cache, work, qwen3vl::LogitsRows::Last, logits);
    qwen3vl::fuzz::check(logits.size() == static_cast<size_t>(model->config.text_config.vocab_size), "logits size");
  } catch (const qwen3vl::Error&) {
  }
  return 0;
}
