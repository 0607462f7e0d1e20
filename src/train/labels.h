// Label masks of supervised fine-tuning, as qwen-vl-finetune builds them (Qwen3-VL repository,
// qwen-vl-finetune/qwenvl/data/data_processor.py, preprocess_qwen_visual): every label starts ignored (-100); each
// "assistant" token at `pos` opens a span from pos + 2 (past "assistant" and "\n") to the next <|im_end|>, and the
// span's tokens up to and including that <|im_end|> and the token after it ("\n") are copied from the input ids.
// So the answer, its <|im_end|> and the newline are supervised; the system and user turns, the image and video
// pads and every "<|im_start|>assistant\n" are not. Labels are not shifted: label t supervises the logits of t - 1.
//
// The official code has had two rules for finding a span:
//   AnyAssistantToken (the code as released up to at least commit 96588727, 2026-01-30): any "assistant" token
//     opens a span, also one inside a user's text: "assistant: hi" at the start of a user line makes the rest of
//     that turn, its <|im_end|> and "\n" supervised. Reproduced for parity with runs made with that code.
//   AfterImStart (QwenLM/Qwen3-VL pull request #2027, "prevent false label masking when 'assistant' appears in
//     user content"): only an "assistant" token right after <|im_start|> opens a span.
// A span without a closing <|im_end|> is not supervised, as in the official loop.
#pragma once

#include <cstdint>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace qwen3vl {

constexpr int32_t kIgnoreLabel = -100;  // IGNORE_INDEX, the ignore_index of the cross-entropy

enum class AssistantSpanRule { AnyAssistantToken, AfterImStart };

// The ids the label rule looks for. The released Qwen vocabulary has assistant 77091, <|im_start|> 151644,
// <|im_end|> 151645; test tokenizers may differ, so they are looked up.
struct LabelTokens {
  int32_t assistant = 77091, im_start = 151644, im_end = 151645;
};

// Looks the three tokens up in `tokenizer`. Throws Error when one is missing.
LabelTokens label_tokens(const Tokenizer& tokenizer);

// The labels of `input_ids`, one per id.
std::vector<int32_t> assistant_labels(const std::vector<int32_t>& input_ids, const LabelTokens& tokens,
                                      AssistantSpanRule rule = AssistantSpanRule::AnyAssistantToken);

// Labels other than kIgnoreLabel.
int64_t count_supervised(const std::vector<int32_t>& labels);

}  // namespace qwen3vl
