#include "engine/generate.h"

#include <algorithm>
#include <optional>

#include "core/error.h"
#include "core/timer.h"
#include "engine/stop_strings.h"
#include "engine/vision_prefill.h"

namespace qwen3vl {

SamplingParams default_sampling(const GenerationConfig& config) {
  SamplingParams params;
  params.do_sample = config.do_sample;
  params.temperature = static_cast<float>(config.temperature);
  params.top_k = config.top_k;
  params.top_p = static_cast<float>(config.top_p);
  params.min_p = static_cast<float>(config.min_p);
  params.repetition_penalty = static_cast<float>(config.repetition_penalty);
  return params;
}

GenerationResult generate(const LoadedModel& model, const GenerationRequest& request, const TextCallback& on_text) {
  std::optional<TextDecoder> adapted;  // the decoder over the request's adapter set, when it has one
  if (request.adapters) adapted.emplace(model.config, request.adapters->text(), model.decoder->context());
  const TextDecoder& decoder = adapted ? *adapted : *model.decoder;
  const TextConfig& text_config = model.config.text_config;
  const int64_t n_prompt = static_cast<int64_t>(request.prompt_ids.size());
  if (n_prompt == 0) throw_error("the prompt is empty");
  // Compared as room left, so that a huge max_new_tokens (the CLI's -n) cannot overflow the sum.
  const int64_t max_new = std::max<int64_t>(request.max_new_tokens, 0);
  if (n_prompt > text_config.max_position_embeddings || max_new > text_config.max_position_embeddings - n_prompt)
    throw_error("prompt (", n_prompt, " tokens) plus max new tokens (", request.max_new_tokens,
                ") exceed the model's context of ", text_config.max_position_embeddings);

  GenerationResult result;
  result.stats.prompt_tokens = n_prompt;
  KVCache cache = decoder.make_cache(n_prompt + max_new);
  DecoderWorkspace work;
  std::vector<float> logits;
  Sampler sampler(request.sampling);
  // Without a tokenizer (checkpoints used for id-level tests) generation produces ids only.
  std::optional<StreamDecoder> stream;
  if (model.tokenizer) stream.emplace(*model.tokenizer, /*skip_special_tokens=*/true);
  StopStringFilter stop_filter(request.stop_strings);
  std::vector<int32_t> context = request.prompt_ids;

  Stopwatch vision_clock;
  const PrefillInputs prefill = build_prefill(model, request.prompt_ids, request.images, request.image_features,
                                              request.videos, request.adapters.get());
  result.stats.vision_seconds = vision_clock.seconds();
  const DeepstackInjection deepstack = prefill.deepstack();
  Stopwatch prefill_clock;
  decoder.forward(prefill.embeds.data(), n_prompt, prefill.rope.positions, cache, work, LogitsRows::Last, logits,
                  nullptr, &deepstack);
  result.stats.prefill_seconds = prefill_clock.seconds();

  auto emit = [&](const std::string& text) {
    result.text += text;
    return text.empty() || !on_text || on_text(text);
  };
  std::vector<float> embeds(static_cast<size_t>(text_config.hidden_size));
  Stopwatch decode_clock;
  result.finish_reason = "length";
  for (int64_t step = 0; step < request.max_new_tokens; ++step) {
    const int32_t token = sampler.next(logits, context, result.tokens);
    result.tokens.push_back(token);
    context.push_back(token);
    if (std::find(request.stop_token_ids.begin(), request.stop_token_ids.end(), token) !=
        request.stop_token_ids.end()) {
      result.finish_reason = "stop";
      break;
    }
    if (stream && !emit(stop_filter.push(stream->push(token)))) {
      result.finish_reason = "cancelled";
      break;
    }
    if (stop_filter.stopped()) {
      result.finish_reason = "stop";
      break;
    }
    if (step + 1 == request.max_new_tokens) break;
    // The new token sits at cache index c and gets position c + rope_delta on all three axes.
    const int64_t position = cache.length() + prefill.rope.rope_delta;
    decoder.embed(&token, 1, embeds.data());
    decoder.forward(embeds.data(), 1, text_positions(position, 1), cache, work, LogitsRows::Last, logits);
  }
  if (stream && result.finish_reason != "cancelled") emit(stop_filter.push(stream->flush()) + stop_filter.flush());
  result.stats.generated_tokens = static_cast<int64_t>(result.tokens.size());
  result.stats.decode_seconds = decode_clock.seconds();
  return result;
}

}  // namespace qwen3vl
