// The released Qwen3 tokenizer (tests/fixtures/tokenizer/qwen3) on arbitrary bytes: decode(encode(s)) must equal
// normalize(s), as tokenizer.h documents, and a StreamDecoder fed the same ids one by one (plus arbitrary ids from the
// input, unknown ones included) must print exactly what decode prints. With split_special_tokens no special id
// may come out.
#include "fuzz_common.h"
#include "tokenizer/tokenizer.h"

namespace {

void check_stream_decoder(const qwen3vl::Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool skip_special) {
  qwen3vl::StreamDecoder stream(tokenizer, skip_special);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  qwen3vl::fuzz::check(streamed == tokenizer.decode(ids, skip_special), "StreamDecoder == decode");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const qwen3vl::Tokenizer tokenizer =
      qwen3vl::Tokenizer::from_file(QWEN3VL_FIXTURES_DIR "/tokenizer/qwen3/tokenizer.json");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = tokenizer.encode(text);
  qwen3vl::fuzz::check(tokenizer.decode(ids) == tokenizer.normalize(text), "decode(encode(s)) == normalize(s)");
  check_stream_decoder(tokenizer, ids, false);
  for (int32_t id : tokenizer.encode(text, /*split_special_tokens=*/true))
    qwen3vl::fuzz::check(!tokenizer.is_special(id), "no special id with split_special_tokens");

  // The input's bytes read as ids, two at a time, spread over the whole id range (and a little past it).
  std::vector<int32_t> arbitrary;
  for (size_t i = 0; i + 3 < size && arbitrary.size() < 64; i += 3)
    arbitrary.push_back(static_cast<int32_t>((data[i] << 16 | data[i + 1] << 8 | data[i + 2]) % 160000));
  check_stream_decoder(tokenizer, arbitrary, size % 2 == 0);
  return 0;
}
