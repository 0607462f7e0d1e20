// WEBP through its decoder alone (see fuzz_image_format.h).
#define QWEN3VL_FUZZ_DECODER qwen3vl::image_formats::decode_webp
#include "fuzz_image_format.h"
