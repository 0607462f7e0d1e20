// The figures `qwen3vl bench` reports next to its timings: FLOP counts against hand computations, decode weight
// bytes against the checkpoint's own tensors. The measurements are only checked to run (never their values).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/thread_pool.h"
#include "engine/bench_metrics.h"
#include "engine/loaded_model.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.model_type = "qwen3_vl";
  TextConfig& t = c.text_config;
  t.vocab_size = 10, t.hidden_size = 8, t.intermediate_size = 16, t.num_hidden_layers = 3;
  t.num_attention_heads = 2, t.num_key_value_heads = 1, t.head_dim = 4;
  VisionConfig& v = c.vision_config;
  v.depth = 2, v.hidden_size = 8, v.intermediate_size = 16, v.num_heads = 2, v.out_hidden_size = 6;
  v.patch_size = 2, v.temporal_patch_size = 2, v.spatial_merge_size = 2, v.in_channels = 3;
  v.deepstack_visual_indexes = {1};
  return c;
}

TEST(BenchMetrics, TextForwardFlopsMatchAHandCount) {
  const ModelConfig c = tiny_config();
  // 5 tokens, per layer: q 2*5*8*8 = 640, k and v 2*(2*5*4*8) = 640, o 640, gate+up 2*(2*5*16*8) = 2560,
  // down 2*5*8*16 = 1280, causal attention 15 pairs * 2 heads * (2*4 + 2*4) = 480: 6240; 3 layers 18720;
  // lm_head on the last row 2*10*8 = 160.
  EXPECT_DOUBLE_EQ(text_forward_flops(c, 5), 18880.0);
  // One token after 2 cached: 3 pairs; matmuls 6240 - 480 for 5 tokens -> 1152 per token.
  EXPECT_DOUBLE_EQ(text_forward_flops(c, 1, 2), 3 * (1152.0 + 3 * 2 * 16) + 160.0);
  EXPECT_DOUBLE_EQ(text_forward_flops(c, 0), 0.0);
}

TEST(BenchMetrics, MoeCountsTheRouterAndTheActiveExperts) {
  ModelConfig c = tiny_config();
  c.model_type = "qwen3_vl_moe";
  c.text_config.num_experts = 4, c.text_config.num_experts_per_tok = 2, c.text_config.moe_intermediate_size = 6;
  // One token: q 128 + k,v 128 + o 128 + router 2*4*8 = 64 + 2 experts * (2*12*8 + 2*8*6) = 576, attention 1 pair
  // * 2 heads * 16 = 32 -> 1056 per layer, 3 layers, lm_head 160.
  EXPECT_DOUBLE_EQ(text_forward_flops(c, 1), 3 * 1056.0 + 160.0);
}

TEST(BenchMetrics, VisionFlopsMatchAHandCount) {
  const ModelConfig c = tiny_config();
  // Grid 2x4x4: 32 patches of 3*2*2*2 = 24 values, 2 temporal slices of 16 patches (512 attention pairs).
  // patch embed 2*32*8*24 = 12288; per block qkv 2*32*24*8 = 12288, proj 4096, fc1 8192, fc2 8192,
  // attention 512 pairs * 2 heads * (2*4 + 2*4) = 16384 -> 49152, 2 blocks 98304; mergers on 8 tokens of 32:
  // fc1 2*8*32*32 = 16384, fc2 2*8*6*32 = 3072, merger + 1 DeepStack merger -> 38912.
  EXPECT_DOUBLE_EQ(vision_forward_flops(c, {GridTHW{2, 4, 4}}), 12288.0 + 98304.0 + 38912.0);
  // Two images: the sum of each.
  EXPECT_DOUBLE_EQ(vision_forward_flops(c, {GridTHW{2, 4, 4}, GridTHW{1, 2, 2}}),
                   vision_forward_flops(c, {GridTHW{2, 4, 4}}) + vision_forward_flops(c, {GridTHW{1, 2, 2}}));
}

TEST(BenchMetrics, TwoBillionShapesGiveTheDocumentedTotals) {
  ModelConfig c;
  c.model_type = "qwen3_vl";
  c.text_config.vocab_size = 151936, c.text_config.hidden_size = 2048, c.text_config.intermediate_size = 6144;
  c.text_config.num_hidden_layers = 28, c.text_config.num_attention_heads = 16, c.text_config.num_key_value_heads = 8;
  c.text_config.head_dim = 128;
  c.vision_config.depth = 24, c.vision_config.hidden_size = 1024, c.vision_config.intermediate_size = 4096;
  c.vision_config.num_heads = 16, c.vision_config.out_hidden_size = 2048, c.vision_config.patch_size = 16;
  c.vision_config.deepstack_visual_indexes = {5, 11, 17};
  EXPECT_DOUBLE_EQ(text_forward_flops(c, 512), 1473854832640.0);                       // pp512: 1.47 TFLOP
  EXPECT_DOUBLE_EQ(vision_forward_flops(c, {GridTHW{1, 48, 64}}), 2947421306880.0);  // 1024x768: 2.95 TFLOP
}

TEST(BenchMetrics, DecodeWeightBytesAreTheTextTensorsReadPerToken) {
  const std::string dir = testing::model_fixture("tiny-bf16-untied");
  LoadOptions options;
  options.require_tokenizer = false;
  options.threads = 1;
  const auto model = load_model(dir, options);
  const TensorStore store = TensorStore::open_dir(dir);
  double expected = 0;
  for (const std::string& name : store.names()) {
    const TensorView& view = store.get(name);
    const double bytes = static_cast<double>(view.numel() * static_cast<int64_t>(dtype_size(view.dtype)));
    if (name.rfind("model.language_model.", 0) == 0 && name.find("embed_tokens") == std::string::npos)
      expected += bytes;
    if (name == "lm_head.weight") expected += bytes;
  }
  expected += 2.0 * static_cast<double>(model->config.text_config.hidden_size);  // one bf16 embedding row
  EXPECT_DOUBLE_EQ(decode_weight_bytes(model->config, model->text_weights), expected);
}

TEST(BenchMetrics, MeasurementsRun) {
  ThreadPool pool(2);
  const double bandwidth = measure_read_bandwidth(pool, 8 << 20, 1);
  EXPECT_TRUE(std::isfinite(bandwidth));
  EXPECT_GT(bandwidth, 0.0);
  EXPECT_EQ(measure_peak_flops(pool, "none"), 0.0);
}

}  // namespace
}  // namespace qwen3vl
