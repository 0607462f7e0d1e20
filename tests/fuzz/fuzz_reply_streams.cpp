// Streamed replies, differentially: ReasoningStream fed the reply in random pieces must give exactly
// split_reasoning(reply), and StopStringFilter fed random pieces must release the reply up to a stop string and
// nothing of it. Input: two stop strings (each ended by a 0 byte), a byte that seeds the split points, the reply.
#include <random>

#include "engine/reasoning.h"
#include "engine/stop_strings.h"
#include "fuzz_common.h"

namespace {

std::vector<std::string> random_pieces(const std::string& text, std::minstd_rand& random) {
  std::vector<std::string> pieces;
  for (size_t pos = 0; pos < text.size();) {
    const size_t length = std::min<size_t>(text.size() - pos, random() % 8);
    pieces.push_back(text.substr(pos, length));
    pos += length;
  }
  return pieces;
}

void check_reasoning(const std::string& reply, const std::vector<std::string>& pieces) {
  qwen3vl::ReasoningStream stream;
  std::string reasoning, answer;
  auto route = [&](const std::vector<qwen3vl::ReplyPiece>& out) {
    for (const qwen3vl::ReplyPiece& piece : out)
      (piece.channel == qwen3vl::ReplyChannel::Reasoning ? reasoning : answer) += piece.text;
  };
  for (const std::string& piece : pieces) route(stream.push(piece));
  route(stream.finish());
  const qwen3vl::ReasoningSplit expected = qwen3vl::split_reasoning(reply);
  qwen3vl::fuzz::check(reasoning == expected.reasoning, "streamed reasoning == split_reasoning");
  qwen3vl::fuzz::check(answer == expected.answer, "streamed answer == split_reasoning");
  qwen3vl::fuzz::check(stream.reasoning_finished() == expected.reasoning_finished, "reasoning_finished agrees");
}

// When several stop strings complete in the same piece, which one cuts the text depends on the split (as it does
// for a server checking after each token), so the check is what holds for every split: the released text is a
// prefix of the reply holding no stop string, and when the filter stopped, a stop string starts right after it.
void check_stop_strings(const std::string& reply, const std::vector<std::string>& stops,
                        const std::vector<std::string>& pieces) {
  qwen3vl::StopStringFilter filter(stops);
  std::string released;
  for (const std::string& piece : pieces) released += filter.push(piece);
  released += filter.flush();
  qwen3vl::fuzz::check(reply.compare(0, released.size(), released) == 0, "released text is a prefix of the reply");
  bool occurs = false, starts_after_released = false;
  for (const std::string& stop : stops) {
    if (stop.empty()) continue;
    occurs |= reply.find(stop) != std::string::npos;
    starts_after_released |= reply.compare(released.size(), stop.size(), stop) == 0;
    qwen3vl::fuzz::check(released.find(stop) == std::string::npos, "no stop string in the released text");
  }
  qwen3vl::fuzz::check(filter.stopped() == occurs, "stopped() iff a stop string occurs");
  qwen3vl::fuzz::check(filter.stopped() ? starts_after_released : released == reply,
                       "a stop string follows the released text, or everything was released");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qwen3vl::fuzz::InputReader in(data, size);
  std::vector<std::string> stops;
  stops.push_back(in.string_until_zero(16));
  stops.push_back(in.string_until_zero(16));
  std::minstd_rand random(in.byte() + 1);
  const std::string reply = in.rest();
  const std::vector<std::string> pieces = random_pieces(reply, random);
  check_reasoning(reply, pieces);
  check_stop_strings(reply, stops, pieces);
  return 0;
}
