// POST /v1/chat/completions bodies: server::parse_chat_request, the whole JSON validation of a request (messages,
// media parts, sampling and budget options), no model involved. Only ApiError may come out.
#include "server/chat_request.h"
#include "server/api_error.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qwen3vl::server::parse_chat_request(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const qwen3vl::server::ApiError&) {
  }
  return 0;
}
