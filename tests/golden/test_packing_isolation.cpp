// Packing keeps samples apart: the golden batch (a text sample, a two-image sample, a video sample in one row with
// per-sample attention and restarting positions) gives each sample the logits it gets alone and, for a summed loss,
// the gradients of the three samples run alone and added up (fp32 within 1e-6); replacing one sample's tokens
// leaves the others' logits as they were. tiny-fp32-untied-sharded, full fine-tuning (every gradient).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/loaded_model.h"
#include "model/model_trainer.h"
#include "test_util.h"
#include "train/parameters.h"
#include "train_golden.h"

namespace qwen3vl {
namespace {

constexpr double kTol = 1e-6;

struct PackedModel {
  std::unique_ptr<LoadedModel> model;
  std::unique_ptr<ParameterSet> params;
  testing::TrainGoldenBatch batch = testing::load_train_golden_batch();

  PackedModel() {
    LoadOptions options;
    options.require_tokenizer = false;
    options.threads = 1;
    model = load_model(testing::fixtures_dir() + "/models/tiny-fp32-untied-sharded", options);
    params = std::make_unique<ParameterSet>(
        *model, select_modules(model->config, model->text_weights, model->vision_weights,
                               TuneFlags{true, true, true, true}, {}));
  }
  ModelTrainer trainer() const {
    return ModelTrainer(model->config, params->text_weights(), &params->vision_weights(), ops::Context{});
  }
};

// max |a - b| / max(1, max |b|) over b.size() values.
double scaled_max_diff(const float* a, const std::vector<float>& b) {
  double diff = 0.0, scale = 1.0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

TEST(PackingIsolation, EachSampleGetsItsLogitsAndGradientsAlone) {
  PackedModel s;
  const ModelTrainer trainer = s.trainer();
  const int64_t vocab = s.model->config.text_config.vocab_size;
  const std::vector<TrainInputs> alone = testing::sample_inputs(s.batch, s.model->config);
  ASSERT_EQ(alone.size(), 3u);

  std::vector<float> packed_logits;
  trainer.forward(testing::packed_inputs(s.batch), &packed_logits);
  for (size_t k = 0; k < alone.size(); ++k) {
    std::vector<float> logits;
    trainer.forward(alone[k], &logits);
    const float* rows = packed_logits.data() + s.batch.samples[k].start * vocab;
    EXPECT_LE(scaled_max_diff(rows, logits), kTol) << s.batch.samples[k].kind;
  }

  // d(sum of losses): packed once, and the three samples one after the other into the same buffers.
  s.params->zero_grad();
  trainer.forward_backward(testing::packed_inputs(s.batch), 1.0f, s.params->text_grads(), &s.params->vision_grads());
  const std::vector<float> packed(s.params->grads(), s.params->grads() + s.params->numel());
  s.params->zero_grad();
  for (const TrainInputs& sample : alone)
    trainer.forward_backward(sample, 1.0f, s.params->text_grads(), &s.params->vision_grads());
  for (const Parameter& p : s.params->parameters()) {
    const std::vector<float> summed(p.grad, p.grad + p.numel);
    const std::vector<float> from_pack(packed.begin() + (p.grad - s.params->grads()),
                                       packed.begin() + (p.grad - s.params->grads()) + p.numel);
    EXPECT_LE(scaled_max_diff(from_pack.data(), summed), kTol) << p.name;
  }
}

TEST(PackingIsolation, ChangingOneSampleLeavesTheOthersLogits) {
  PackedModel s;
  const ModelTrainer trainer = s.trainer();
  const int64_t vocab = s.model->config.text_config.vocab_size;
  TrainInputs packed = testing::packed_inputs(s.batch);
  std::vector<float> before, after;
  trainer.forward(packed, &before);
  // New text tokens in the first sample (the text one): ids shifted within the vocabulary, placeholders untouched.
  const testing::TrainGoldenSample& first = s.batch.samples[0];
  ASSERT_EQ(first.kind, "text");
  for (int64_t i = first.start + 1; i < first.start + first.length; ++i) {
    int32_t& id = packed.input_ids[static_cast<size_t>(i)];
    id = static_cast<int32_t>((id + 7) % 1000);
  }
  trainer.forward(packed, &after);
  const size_t first_end = static_cast<size_t>((first.start + first.length) * vocab);
  bool first_changed = false;
  for (size_t i = 0; i < first_end; ++i) first_changed = first_changed || before[i] != after[i];
  EXPECT_TRUE(first_changed) << "the edit reaches the edited sample";
  const std::vector<float> rest(before.begin() + static_cast<std::ptrdiff_t>(first_end), before.end());
  EXPECT_LE(scaled_max_diff(after.data() + first_end, rest), kTol);
}

}  // namespace
}  // namespace qwen3vl
