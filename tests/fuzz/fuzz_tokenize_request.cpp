// POST /tokenize and POST /detokenize bodies: server::parse_tokenize_request and parse_detokenize_request on the
// same bytes (only ApiError may come out), and what parses through the engine's tokenize API on tiny-realtok-bf16
// (the Qwen3 tokenizer): a text's ids decode to its normalized form, split special tokens leave no special id, the
// pieces add up to the decoded text, ids that are no token are refused by index, and a chat without media renders.
#include "core/error.h"
#include "engine/tokenize.h"
#include "fuzz_common.h"
#include "server/api_error.h"
#include "server/tokenize_request.h"
#include "tokenizer/unicode_text.h"

namespace {

const qwen3vl::LoadedModel& model() {
  static const std::unique_ptr<qwen3vl::LoadedModel> loaded = [] {
    qwen3vl::LoadOptions options;
    options.threads = 1;
    return qwen3vl::load_model(QWEN3VL_FIXTURES_DIR "/models/tiny-realtok-bf16", options);
  }();
  return *loaded;
}

void check_text(const qwen3vl::server::TokenizeRequest& request) {
  qwen3vl::TokenizeOptions options;
  options.parse_special = request.parse_special;
  const std::vector<int32_t> ids = qwen3vl::tokenize(model(), request.content, options);
  const std::vector<int64_t> wide(ids.begin(), ids.end());
  const std::string text = qwen3vl::detokenize(model(), wide);
  if (request.parse_special) qwen3vl::fuzz::check(text == model().tokenizer->normalize(request.content), "normalized");
  for (int32_t id : ids)
    qwen3vl::fuzz::check(request.parse_special || !model().tokenizer->is_special(id), "no special id when split");
  std::string bytes;
  for (const qwen3vl::TokenPiece& piece : qwen3vl::token_pieces(model(), wide)) {
    qwen3vl::fuzz::check(piece.utf8 == qwen3vl::unicode::is_valid_utf8(piece.bytes), "piece utf8 flag");
    bytes += piece.bytes;
  }
  qwen3vl::fuzz::check(qwen3vl::unicode::replace_invalid_utf8(bytes) == text, "pieces add up to the text");
}

void check_ids(const std::vector<int64_t>& ids) {
  try {
    qwen3vl::fuzz::check(qwen3vl::unicode::is_valid_utf8(qwen3vl::detokenize(model(), ids)), "valid UTF-8");
  } catch (const qwen3vl::Error& error) {
    qwen3vl::fuzz::check(std::string(error.what()).rfind("tokens[", 0) == 0, "the refusal names the index");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  try {
    const qwen3vl::server::TokenizeRequest request = qwen3vl::server::parse_tokenize_request(body);
    if (!request.chat) {
      check_text(request);
    } else if (request.chat->media.empty()) {
      try {
        qwen3vl::tokenize_chat(model(), request.chat->messages, {});
      } catch (const qwen3vl::Error&) {  // what the template refuses (a tool call without arguments, ...)
      }
    }
  } catch (const qwen3vl::server::ApiError&) {
  }
  try {
    check_ids(qwen3vl::server::parse_detokenize_request(body));
  } catch (const qwen3vl::server::ApiError&) {
  }
  return 0;
}
