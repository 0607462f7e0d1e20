// Image sizes and preprocessing: smart_resize (both rules) and the video smart_resize on the ranges their inputs can
// take (image sides up to Pillow's pixel limit, a patch factor from a checkpoint config, pixel budgets up to the
// server's 2^34 field limit), and preprocess_image on a small random image with a random budget and patch sizes.
// UBSan looks for float -> int overflow in the size arithmetic.
#include "core/error.h"
#include "fuzz_common.h"
#include "vision/image_decode.h"
#include "vision/image_processor.h"
#include "vision/video_processor.h"

namespace {

using qwen3vl::fuzz::InputReader;
constexpr int64_t kMaxBudget = int64_t{1} << 34;

// A side may round to 0 (as in Python) when min_pixels is 0, and in qwen-vl-utils' smart_resize, which floors a
// downscale without a lower bound; preprocess_image refuses that size with an Error.
void check_size(std::pair<int64_t, int64_t> size, int64_t factor, bool may_be_zero = false) {
  const int64_t least = may_be_zero ? 0 : 1;
  qwen3vl::fuzz::check(size.first >= least && size.second >= least && size.first % factor == 0 &&
                           size.second % factor == 0,
                       "resized sides are multiples of the factor, positive unless allowed");
}

void fuzz_sizes(InputReader& in) {
  const int64_t height = in.in_range(1, int64_t{1} << 28), width = in.in_range(1, int64_t{1} << 28);
  if (height * width > qwen3vl::kDecodeHardPixelLimit) return;
  const int64_t factor = in.in_range(1, 1024);
  const int64_t min_pixels = in.in_range(0, kMaxBudget), max_pixels = in.in_range(0, kMaxBudget);
  try {
    check_size(qwen3vl::smart_resize(height, width, factor, min_pixels, max_pixels), factor, min_pixels == 0);
  } catch (const qwen3vl::Error&) {
  }
  try {
    check_size(qwen3vl::smart_resize_qwen_vl_utils(height, width, factor, min_pixels, max_pixels), factor, true);
  } catch (const qwen3vl::Error&) {
  }
  const int64_t frames = in.in_range(1, 100000), temporal_factor = in.in_range(1, 4);
  try {
    check_size(qwen3vl::smart_resize_video(frames, height, width, temporal_factor, factor, min_pixels, max_pixels),
               factor, min_pixels == 0);
  } catch (const qwen3vl::Error&) {
  }
}

void fuzz_preprocess(InputReader& in) {
  qwen3vl::Image image;
  image.width = static_cast<int>(in.in_range(1, 64));
  image.height = static_cast<int>(in.in_range(1, 64));
  image.rgb.resize(size_t(image.width) * size_t(image.height) * 3);
  for (uint8_t& value : image.rgb) value = in.byte();
  qwen3vl::ImageProcessorConfig config;
  config.patch_size = in.in_range(1, 16);
  config.merge_size = in.in_range(1, 2);
  config.temporal_patch_size = in.in_range(1, 2);
  config.min_pixels = in.in_range(1, 64 * 64);
  config.max_pixels = in.in_range(1, 128 * 128);
  config.do_resize = in.byte() != 0;
  qwen3vl::PixelBudget budget;
  if (in.flag()) budget.min_pixels = in.in_range(1, 64 * 64);
  if (in.flag()) budget.max_pixels = in.in_range(1, 128 * 128);
  const auto rule = in.flag() ? qwen3vl::ResizeRule::QwenVlUtils : qwen3vl::ResizeRule::Transformers;
  try {
    const qwen3vl::ProcessedImage processed = qwen3vl::preprocess_image(image, config, budget, rule);
    const int64_t row = 3 * config.temporal_patch_size * config.patch_size * config.patch_size;
    qwen3vl::fuzz::check(processed.pixel_values.size() == size_t(processed.grid.patches() * row),
                         "pixel_values holds grid.patches() rows");
  } catch (const qwen3vl::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  InputReader in(data, size);
  fuzz_sizes(in);
  fuzz_preprocess(in);
  return 0;
}
