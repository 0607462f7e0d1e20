// Video placeholders in the prompt, as Qwen3VLProcessor expands them: each temporal patch (frame pair) of a video
// becomes `<t.t seconds><|vision_start|>` + <|video_pad|> x (merged tokens per pair) + `<|vision_end|>`, with the
// stamp the mean time of its two source frames, printed as Python's f"{t:.1f}". Every video uses its own metadata.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"
#include "vision/video_processor.h"

namespace qwen3vl {

enum class VideoPlaceholderStyle {
  // transformers 5.x (the installed 5.23): ProcessorMixin replaces only the <|video_pad|> token, so the template's
  // own <|vision_start|> ... <|vision_end|> stay around the expansion:
  //   <|vision_start|><0.3 seconds><|vision_start|>pads<|vision_end|>...<|vision_end|>
  Transformers5,
  // transformers 4.57 (the first Qwen3-VL release; processing_qwen3_vl.py, Qwen3VLProcessor.__call__): the whole
  // <|vision_start|><|video_pad|><|vision_end|> is replaced (a bare <|video_pad|> when the triple is absent).
  Transformers4,
};

// The expansion of one video (what replaces its placeholder).
std::string video_placeholder_text(const ProcessedVideo& video, int64_t merge_size, int64_t temporal_patch_size = 2);

// Replaces each video placeholder of `text`, in order, by its video's expansion. Throws Error when the number of
// placeholders and videos differ.
std::string expand_video_placeholders(const std::string& text, const std::vector<ProcessedVideo>& videos,
                                      int64_t merge_size, int64_t temporal_patch_size = 2,
                                      VideoPlaceholderStyle style = VideoPlaceholderStyle::Transformers5);

// A one-turn conversation: optional system message, then a user turn with the media parts in `media` order
// (Image / Video) followed by the text.
std::vector<ChatMessage> single_turn_with_media(const std::string& system, const std::string& user,
                                                const std::vector<ContentPart::Type>& media);

}  // namespace qwen3vl
