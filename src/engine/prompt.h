// Prompt assembly: chat messages -> template text (the checkpoint's Instruct or Thinking flavour) -> token ids.
#pragma once

#include <string>
#include <vector>

#include "engine/loaded_model.h"

namespace qwen3vl {

// A one-turn conversation: optional system message (no default one, as Qwen3-VL's template) and a user text.
std::vector<ChatMessage> single_turn(const std::string& system, const std::string& user);

// The chat template text for `messages` with the generation prompt appended.
std::string render_chat(const LoadedModel& model, const std::vector<ChatMessage>& messages);

std::vector<int32_t> encode_text(const LoadedModel& model, const std::string& text);

}  // namespace qwen3vl
