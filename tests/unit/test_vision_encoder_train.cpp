// VisionEncoderTrainer (model/vision_encoder_train.h): its forward is the inference tower's bit for bit, activation
// checkpointing changes no bit of any gradient, and frozen parts cost no backward work (the gradients of the parts
// that do train are then bit-identical to a fully trained run's). The gradients themselves are checked against
// PyTorch in tests/golden/test_vision_train_golden.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/vision_encoder.h"
#include "model/vision_encoder_train.h"
#include "kernel_test_util.h"
#include "vision_train_util.h"

namespace qwen3vl {
namespace {

using testing::VisionCheckpoint;
using testing::VisionGradBuffers;

struct Case {
  std::string checkpoint;
  std::vector<GridTHW> grids;  // two images and a 2-slice video in one call
};

const Case kUntied{"tiny-fp32-untied-sharded", {{1, 4, 6}, {1, 8, 4}, {2, 4, 4}}};
const Case kHd24{"tiny-vision-hd24-fp32", {{1, 6, 10}, {1, 12, 4}, {2, 4, 6}}};  // depth 3, deepstack [0, 2]

int64_t patches(const std::vector<GridTHW>& grids) {
  int64_t n = 0;
  for (const GridTHW& g : grids) n += g.patches();
  return n;
}

// One forward and backward with seeded output gradients; level `skip_level` gets a null gradient, or a zero one
// with zero_level.
VisionBackwardWork train_step(const VisionCheckpoint& c, const Case& tc, const ops::Context& ctx, bool checkpointing,
               VisionGradBuffers& buffers, int skip_level = -1, bool zero_level = false) {
  const VisionEncoderTrainer trainer(c.config, c.weights, ctx, checkpointing);
  const int64_t n = patches(tc.grids);
  const auto pixels = testing::random_floats(static_cast<size_t>(n * trainer.patch_dim()), 7);
  VisionActivations acts;
  const VisionOutput out = trainer.forward(pixels.data(), tc.grids, acts);
  const size_t out_size = out.embeds.size();
  const auto d_embeds = testing::random_floats(out_size, 8);
  std::vector<std::vector<float>> d_levels;
  std::vector<const float*> d_deepstack;
  for (size_t k = 0; k < out.deepstack.size(); ++k) {
    d_levels.push_back(testing::random_floats(out_size, 9 + static_cast<uint32_t>(k)));
    if (static_cast<int>(k) == skip_level && zero_level) d_levels.back().assign(out_size, 0.f);
    d_deepstack.push_back(static_cast<int>(k) == skip_level && !zero_level ? nullptr : d_levels.back().data());
  }
  return trainer.backward(acts, d_embeds.data(), d_deepstack, buffers.grads);
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool all_zero(const std::vector<float>& v) {
  for (float x : v)
    if (x != 0.f) return false;
  return true;
}

// The buffers of `part` equal those of `full` bit for bit, and none is all zero.
void expect_same_gradients(const VisionGradBuffers& part, const VisionGradBuffers& full) {
  ASSERT_FALSE(part.buffers.empty());
  for (const auto& [name, values] : part.buffers) {
    ASSERT_TRUE(full.buffers.count(name)) << name;
    EXPECT_EQ(values, full.buffers.at(name)) << name;
    EXPECT_FALSE(all_zero(values)) << name;
  }
}

TEST(VisionEncoderTrain, ForwardEqualsInferenceBitForBit) {
  ThreadPool pool(2);
  for (const Case& tc : {kUntied, kHd24}) {
    const VisionCheckpoint c = testing::open_vision_checkpoint(tc.checkpoint);
    for (const ops::Context ctx : {ops::Context{}, ops::Context{&pool, nullptr}}) {
      const VisionEncoder encoder(c.config, c.weights, ctx);
      ASSERT_EQ(encoder.precision(), Precision::F32);
      const int64_t n = patches(tc.grids);
      const auto pixels = testing::random_floats(static_cast<size_t>(n * encoder.patch_dim()), 3);
      const VisionOutput expected = encoder.forward(pixels.data(), tc.grids);
      for (bool checkpointing : {false, true}) {
        SCOPED_TRACE(tc.checkpoint + (checkpointing ? " checkpointed" : "") + (ctx.pool ? " 2 threads" : ""));
        const VisionEncoderTrainer trainer(c.config, c.weights, ctx, checkpointing);
        VisionActivations acts;
        const VisionOutput out = trainer.forward(pixels.data(), tc.grids, acts);
        EXPECT_EQ(out.embeds, expected.embeds);
        ASSERT_EQ(out.deepstack.size(), expected.deepstack.size());
        for (size_t k = 0; k < out.deepstack.size(); ++k) EXPECT_EQ(out.deepstack[k], expected.deepstack[k]) << k;
        // What a block keeps: its input, and its intermediates unless checkpointed.
        ASSERT_EQ(acts.blocks.size(), static_cast<size_t>(c.config.vision_config.depth));
        for (const VisionBlockActivations& a : acts.blocks) {
          EXPECT_EQ(a.input.size(), static_cast<size_t>(n * c.config.vision_config.hidden_size));
          EXPECT_EQ(a.fc1.empty(), checkpointing);
          EXPECT_EQ(a.q.empty(), checkpointing);
        }
      }
    }
  }
}

TEST(VisionEncoderTrain, CheckpointingGivesBitIdenticalGradients) {
  ThreadPool pool(2);
  for (const Case& tc : {kUntied, kHd24}) {
    SCOPED_TRACE(tc.checkpoint);
    const VisionCheckpoint c = testing::open_vision_checkpoint(tc.checkpoint);
    const auto everything = [](const std::string&) { return true; };
    VisionGradBuffers plain(c.weights, everything), checkpointed(c.weights, everything);
    const VisionBackwardWork a = train_step(c, tc, {&pool, nullptr}, false, plain);
    const VisionBackwardWork b = train_step(c, tc, {&pool, nullptr}, true, checkpointed);
    const int64_t depth = c.config.vision_config.depth;
    EXPECT_EQ(a.blocks, depth);
    EXPECT_EQ(a.recomputed_blocks, 0);
    EXPECT_EQ(b.blocks, depth);
    EXPECT_EQ(b.recomputed_blocks, depth);
    EXPECT_EQ(a.linear_backward_calls, b.linear_backward_calls);
    // 4 linears per block, 2 per merger, and patch_embed.
    const int64_t levels = static_cast<int64_t>(c.weights.deepstack_merger_list.size());
    EXPECT_EQ(a.linear_backward_calls, 4 * depth + 2 * (1 + levels) + 1);
    expect_same_gradients(checkpointed, plain);
    EXPECT_EQ(checkpointed.buffers.size(), plain.buffers.size());
  }
}

// Frozen parts: no buffer is touched but the trainable ones, no block is differentiated unless it or something
// below it trains, and what does train gets exactly the fully trained run's gradient.
TEST(VisionEncoderTrain, FrozenPartsCostNoWork) {
  const Case& tc = kHd24;  // depth 3, deepstack_visual_indexes [0, 2]
  const VisionCheckpoint c = testing::open_vision_checkpoint(tc.checkpoint);
  VisionGradBuffers full(c.weights, [](const std::string&) { return true; });
  train_step(c, tc, {}, false, full);

  {  // --tune-mm-mlp: the main merger only
    VisionGradBuffers merger(c.weights, [](const std::string& name) { return starts_with(name, "merger."); });
    const VisionBackwardWork run = train_step(c, tc, {}, false, merger);
    EXPECT_EQ(run.blocks, 0);
    EXPECT_EQ(run.mergers, 1);
    EXPECT_EQ(run.linear_backward_calls, 2);
    EXPECT_EQ(merger.buffers.size(), 6u);  // norm, linear_fc1, linear_fc2: weight and bias
    expect_same_gradients(merger, full);
  }
  {  // --tune-deepstack: the DeepStack mergers only
    VisionGradBuffers deepstack(c.weights,
                                [](const std::string& name) { return starts_with(name, "deepstack_merger_list."); });
    const VisionBackwardWork run = train_step(c, tc, {}, false, deepstack);
    EXPECT_EQ(run.blocks, 0);
    EXPECT_EQ(run.mergers, 2);
    expect_same_gradients(deepstack, full);
  }
  {  // the last block only: blocks 0 and 1 below it are not differentiated, and it needs no input gradient
    VisionGradBuffers last(c.weights, [](const std::string& name) { return starts_with(name, "blocks.2."); });
    const VisionBackwardWork run = train_step(c, tc, {}, false, last);
    EXPECT_EQ(run.blocks, 1);
    EXPECT_EQ(run.mergers, 2);  // the main merger and deepstack_merger_list.1 (block 2's tap)
    EXPECT_EQ(run.linear_backward_calls, 4 + 2 * 2);
    expect_same_gradients(last, full);
  }
  {  // the position table only: every block passes the gradient down, none computes weight gradients
    VisionGradBuffers pos(c.weights, [](const std::string& name) { return name == "pos_embed.weight"; });
    const VisionBackwardWork run = train_step(c, tc, {}, false, pos);
    EXPECT_EQ(run.blocks, 3);
    expect_same_gradients(pos, full);
  }
  {  // nothing trains: nothing runs
    VisionGradBuffers none(c.weights, [](const std::string&) { return false; });
    EXPECT_TRUE(none.buffers.empty());
    const VisionBackwardWork run = train_step(c, tc, {}, false, none);
    EXPECT_EQ(run.blocks + run.mergers + run.linear_backward_calls, 0);
  }
}

// A null DeepStack gradient is a zero one (bit for bit) that costs no work.
TEST(VisionEncoderTrain, NullDeepStackGradientIsZero) {
  const Case& tc = kUntied;
  const VisionCheckpoint c = testing::open_vision_checkpoint(tc.checkpoint);
  const auto everything = [](const std::string&) { return true; };
  VisionGradBuffers null_level(c.weights, everything), zero_level(c.weights, everything);
  const VisionBackwardWork a = train_step(c, tc, {}, false, null_level, /*skip_level=*/1, /*zero_level=*/false);
  const VisionBackwardWork b = train_step(c, tc, {}, false, zero_level, /*skip_level=*/1, /*zero_level=*/true);
  EXPECT_EQ(a.mergers + 1, b.mergers);
  for (const auto& [name, values] : null_level.buffers) EXPECT_EQ(values, zero_level.buffers.at(name)) << name;
  EXPECT_TRUE(all_zero(null_level.buffers.at("deepstack_merger_list.1.linear_fc2.weight")));
  EXPECT_FALSE(all_zero(null_level.buffers.at("deepstack_merger_list.0.linear_fc2.weight")));
}

// Gradients accumulate: a second backward into the same buffers doubles them (up to the order of the sums).
TEST(VisionEncoderTrain, GradientsAccumulate) {
  const Case& tc = kUntied;
  const VisionCheckpoint c = testing::open_vision_checkpoint(tc.checkpoint);
  const auto everything = [](const std::string&) { return true; };
  VisionGradBuffers once(c.weights, everything), twice(c.weights, everything);
  train_step(c, tc, {}, false, once);
  train_step(c, tc, {}, false, twice);
  train_step(c, tc, {}, false, twice);
  for (const auto& [name, values] : once.buffers) {
    const std::vector<float>& doubled = twice.buffers.at(name);
    float largest = 0.f;
    for (float v : values) largest = std::max(largest, std::fabs(v));
    ASSERT_GT(largest, 0.f) << name;
    for (size_t i = 0; i < values.size(); ++i)
      ASSERT_NEAR(doubled[i], 2.f * values[i], 1e-6f * largest) << name << "[" << i << "]";
  }
}

// A bf16 checkpoint trains in float32: its weights are read as their exact float values, so the train forward
// differs from the bf16 inference forward only by the latter's bf16 roundings.
TEST(VisionEncoderTrain, Bf16CheckpointRunsInFloat32) {
  const VisionCheckpoint c = testing::open_vision_checkpoint("tiny-bf16-untied");
  const VisionEncoder encoder(c.config, c.weights);
  ASSERT_EQ(encoder.precision(), Precision::BF16);
  const std::vector<GridTHW> grids = kUntied.grids;
  const auto pixels = testing::random_floats(static_cast<size_t>(patches(grids) * encoder.patch_dim()), 3);
  const VisionOutput bf16 = encoder.forward(pixels.data(), grids);
  const VisionEncoderTrainer trainer(c.config, c.weights);
  VisionActivations acts;
  const VisionOutput f32 = trainer.forward(pixels.data(), grids, acts);
  ASSERT_EQ(f32.embeds.size(), bf16.embeds.size());
  double err2 = 0, ref2 = 0;
  int64_t off_bf16_grid = 0;  // float32 results are not all bf16 values (the bf16 forward's are)
  for (size_t i = 0; i < f32.embeds.size(); ++i) {
    err2 += double(f32.embeds[i] - bf16.embeds[i]) * (f32.embeds[i] - bf16.embeds[i]);
    ref2 += double(bf16.embeds[i]) * bf16.embeds[i];
    off_bf16_grid += !testing::is_bf16_value(f32.embeds[i]);
  }
  EXPECT_LT(std::sqrt(err2 / ref2), 0.05);
  EXPECT_GT(off_bf16_grid, static_cast<int64_t>(f32.embeds.size() / 2));
}

}  // namespace
}  // namespace qwen3vl
