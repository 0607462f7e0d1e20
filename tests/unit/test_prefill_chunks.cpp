// A long prefill runs the dense MLP in row chunks (model/text_decoder.h, mlp_chunk_rows): the chunk sizes, and a
// 260-token prefill (3 chunks of 87 rows) against the same tokens fed one at a time (no chunking, the decode path):
// the last row's logits agree to float summation order. A chunk written to the wrong rows, or a row of one chunk
// read with another's activations, moves them by whole units.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/text_decoder.h"
#include "model/text_weights.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

TEST(PrefillChunks, ChunkRowsSplitEvenly) {
  EXPECT_EQ(mlp_chunk_rows(1), 1);
  EXPECT_EQ(mlp_chunk_rows(128), 128);
  EXPECT_EQ(mlp_chunk_rows(129), 65);   // two chunks, never a tiny tail
  EXPECT_EQ(mlp_chunk_rows(260), 87);   // 87 + 87 + 86
  EXPECT_EQ(mlp_chunk_rows(512), 128);
}

TEST(PrefillChunks, ChunkedPrefillEqualsTokenByToken) {
  const std::string dir = testing::model_fixture("tiny-fp32-tied");
  const ModelConfig config = load_model_config(dir + "/config.json");
  const TensorStore store = TensorStore::open_dir(dir);
  const TextWeights weights = bind_text_weights(store, config);
  const TextDecoder decoder(config, weights);
  const int64_t n = 260, hidden = config.text_config.hidden_size;
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>((i * 37 + 11) % 200 + 1);
  std::vector<float> embeds(static_cast<size_t>(n * hidden));
  decoder.embed(ids.data(), n, embeds.data());

  KVCache whole_cache = decoder.make_cache(n);
  DecoderWorkspace work;
  std::vector<float> whole;
  decoder.forward(embeds.data(), n, text_positions(0, n), whole_cache, work, LogitsRows::Last, whole);

  KVCache step_cache = decoder.make_cache(n);
  std::vector<float> step;
  for (int64_t i = 0; i < n; ++i)
    decoder.forward(embeds.data() + i * hidden, 1, text_positions(i, 1), step_cache, work, LogitsRows::Last, step);

  ASSERT_EQ(whole.size(), step.size());
  float scale = 0.f, worst = 0.f;
  for (size_t j = 0; j < whole.size(); ++j) {
    scale = std::max(scale, std::fabs(whole[j]));
    worst = std::max(worst, std::fabs(whole[j] - step[j]));
  }
  EXPECT_GT(scale, 0.f);
  EXPECT_LE(worst, 1e-4f * scale) << "largest logit difference";
}

}  // namespace
}  // namespace qwen3vl
