// Boxes and points in a model reply (engine/grounding.h), which a user can steer: parse_grounding never throws on
// the reply, every pixel coordinate lies inside the image, and grounding_to_json prints valid JSON with one entry per
// item. The image size comes from the input's first bytes.
#include <nlohmann/json.hpp>

#include "engine/grounding.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qwen3vl::fuzz::InputReader in(data, size);
  const int64_t width = in.in_range(1, 1 << 16), height = in.in_range(1, 1 << 16);
  const std::string reply = in.rest();
  const qwen3vl::GroundingResult result = qwen3vl::parse_grounding(reply, width, height);
  for (const qwen3vl::GroundingItem& item : result.items)
    for (size_t i = 0; i < item.pixels.size(); ++i)
      qwen3vl::fuzz::check(item.pixels[i] >= 0 && item.pixels[i] <= double(i % 2 == 0 ? width : height),
                           "pixel coordinates inside the image");
  const nlohmann::json printed = nlohmann::json::parse(qwen3vl::grounding_to_json(result), nullptr, false);
  qwen3vl::fuzz::check(!printed.is_discarded() && printed.is_array() && printed.size() == result.items.size(),
                       "grounding_to_json prints a JSON array with one entry per item");
  for (const qwen3vl::GroundingItem& item : result.items)
    qwen3vl::fuzz::check(!nlohmann::json::parse(item.extra_json, nullptr, false).is_discarded(), "extra_json parses");
  return 0;
}
