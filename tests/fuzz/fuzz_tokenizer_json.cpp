// tokenizer.json from a checkpoint: the SAX reader of model.vocab / model.merges / added_tokens and the pre-tokenizer
// pattern. When a file loads, a fixed text with an added token goes through encode and decode (the round trip is
// checked on the released tokenizer by fuzz_tokenize: a fuzzed vocabulary need not cover every byte).
#include "core/error.h"
#include "fuzz_common.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qwen3vl::fuzz::TempDir dir;
  const std::string path = dir.write("tokenizer.json", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const qwen3vl::Tokenizer tokenizer = qwen3vl::Tokenizer::from_file(path);
    const std::string text = "Hello, world! 1234 <|im_start|>user\n\xe4\xbd\xa0\xe5\xa5\xbd caf\xc3\xa9 \xff";
    const std::vector<int32_t> ids = tokenizer.encode(text);
    tokenizer.decode(ids);
    for (int32_t id : ids) tokenizer.token_bytes(id);
    tokenizer.decode(ids, /*skip_special_tokens=*/true);
  } catch (const qwen3vl::Error&) {
  }
  return 0;
}
