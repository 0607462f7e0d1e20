// Prompt assembly: chat messages -> template text (the checkpoint's own chat template) -> token ids.
#pragma once

#include <string>
#include <vector>

#include "engine/loaded_model.h"

namespace qwen3vl {

// A one-turn conversation: optional system message (none added here: a default one is the template's business)
// and a user turn of `image_count` images followed by the text.
std::vector<ChatMessage> single_turn(const std::string& system, const std::string& user, size_t image_count = 0);

// Replaces each <|image_pad|> of the rendered template, in order, by as many copies as its image has merged
// tokens, as Qwen3VLProcessor does before tokenizing. Throws Error when the counts differ.
std::string expand_image_placeholders(const std::string& text, const std::vector<ProcessedImage>& images,
                                      int64_t merge_size);

// The model's chat template rendered for `messages` with the generation prompt appended.
std::string render_chat(const LoadedModel& model, const std::vector<ChatMessage>& messages);

std::vector<int32_t> encode_text(const LoadedModel& model, const std::string& text);

}  // namespace qwen3vl
