// KVCache: its memory is not touched up front (a request pays for the rows it writes, not for the whole context),
// rows read back as written (float, or rounded to bf16), and writes outside the capacity are refused.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/error.h"
#include "memory_probe.h"
#include "model/kv_cache.h"

namespace qwen3vl {
namespace {

int64_t resident_bytes() { return testing::memory_use().rss_kib * 1024; }

TEST(KVCache, WholeContextIsNotTouchedUpFront) {
  // Qwen3-VL-2B's shape at an 8192-token context in bf16: 28 layers x 2 x 8192 x 8 heads x 128 x 2 bytes = 0.94 GB.
  const int64_t before = resident_bytes();
  KVCache cache(28, 8192, 8, 128, DType::BF16);
  const int64_t after = resident_bytes();
  EXPECT_LT(after - before, int64_t{64} << 20) << "creating the cache made " << (after - before) << " bytes resident";
  // Unwritten rows read as zero (fresh anonymous pages).
  const auto* keys = static_cast<const uint16_t*>(cache.keys(27));
  EXPECT_EQ(keys[8191 * 1024 + 1023], 0);
}

TEST(KVCache, RowsReadBackAsWritten) {
  for (DType dtype : {DType::F32, DType::BF16}) {
    KVCache cache(2, 4, 2, 3, dtype);
    const std::vector<float> k = {1.5f, -2.0f, 3.25f, 0.5f, 8.0f, -1.0f}, v = {4.0f, 5.0f, 6.0f, 7.0f, 8.0f, 9.0f};
    cache.write(1, 2, 1, k.data(), v.data());
    for (int i = 0; i < 6; ++i) {
      float key = 0, value = 0;
      if (dtype == DType::F32) {
        key = static_cast<const float*>(cache.keys(1))[2 * 6 + i];
        value = static_cast<const float*>(cache.values(1))[2 * 6 + i];
      } else {
        key = bf16_to_f32(static_cast<const uint16_t*>(cache.keys(1))[2 * 6 + i]);
        value = bf16_to_f32(static_cast<const uint16_t*>(cache.values(1))[2 * 6 + i]);
      }
      EXPECT_EQ(key, k[i]);
      EXPECT_EQ(value, v[i]);
    }
  }
}

TEST(KVCache, WritesOutsideTheCapacityAreRefused) {
  KVCache cache(2, 4, 1, 2, DType::F32);
  const std::vector<float> rows(16);
  EXPECT_THROW(cache.write(0, 3, 2, rows.data(), rows.data()), Error);
  EXPECT_THROW(cache.write(2, 0, 1, rows.data(), rows.data()), Error);
  EXPECT_THROW(cache.write(0, -1, 1, rows.data(), rows.data()), Error);
  cache.write(1, 0, 4, rows.data(), rows.data());  // exactly the capacity
}

}  // namespace
}  // namespace qwen3vl
