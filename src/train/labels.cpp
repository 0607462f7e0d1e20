#include "train/labels.h"

#include <algorithm>

#include "core/error.h"

namespace qwen3vl {

LabelTokens label_tokens(const Tokenizer& tokenizer) {
  auto lookup = [&](const char* token) {
    const std::optional<int32_t> id = tokenizer.token_to_id(token);
    if (!id) throw_error("tokenizer: no \"", token, "\" token, which the label mask of fine-tuning needs");
    return *id;
  };
  LabelTokens tokens;
  tokens.assistant = lookup("assistant");
  tokens.im_start = lookup("<|im_start|>");
  tokens.im_end = lookup("<|im_end|>");
  return tokens;
}

// The scan of preprocess_qwen_visual: after a span, the search goes on from the token after its <|im_end|> (that
// token, the "\n", is itself inspected again, as `pos = ans_end; pos += 1` does).
std::vector<int32_t> assistant_labels(const std::vector<int32_t>& input_ids, const LabelTokens& tokens,
                                      AssistantSpanRule rule) {
  const size_t n = input_ids.size();
  std::vector<int32_t> labels(n, kIgnoreLabel);
  for (size_t pos = 0; pos < n; ++pos) {
    if (input_ids[pos] != tokens.assistant) continue;
    if (rule == AssistantSpanRule::AfterImStart && (pos == 0 || input_ids[pos - 1] != tokens.im_start)) continue;
    const size_t start = pos + 2;
    size_t end = start;
    while (end < n && input_ids[end] != tokens.im_end) ++end;
    if (end >= n) continue;  // no <|im_end|>: nothing supervised, the scan goes on at pos + 1
    const size_t stop = std::min(end + 2, n);  // labels[0, ans_start : ans_end + 2], clipped like a slice
    std::copy(input_ids.begin() + static_cast<std::ptrdiff_t>(start),
              input_ids.begin() + static_cast<std::ptrdiff_t>(stop), labels.begin() + static_cast<std::ptrdiff_t>(start));
    pos = end;
  }
  return labels;
}

int64_t count_supervised(const std::vector<int32_t>& labels) {
  return std::count_if(labels.begin(), labels.end(), [](int32_t label) { return label != kIgnoreLabel; });
}

}  // namespace qwen3vl
