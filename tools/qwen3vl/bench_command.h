// `qwen3vl bench -m DIR`: fixed, documented measurements of one checkpoint, in llama-bench's terms.
//   pp<N>   prompt processing: one decoder forward over N random token ids (empty cache, logits of the last row);
//           N / seconds tok/s
//   tg<N>   text generation: N single-token decoder forwards from an empty cache, each feeding back the argmax of
//           the last logits; N / seconds tok/s
//   img<W>x<H> image encode: a synthetic RGB image of W x H pixels through the real preprocessing (smart_resize,
//           resize, normalize, patchify) and the vision tower (blocks, mergers, DeepStack); seconds per image.
//           --image also takes image files (the test is named by the file's size), so other engines can be timed
//           on the same pixels
//   video<S>s video encode: a synthetic S-second clip (--video-size at --video-fps native frames per second) through
//           the real frame sampling (the checkpoint's video processor config: fps 2, its pixel budget), resize,
//           patchify and the vision tower; seconds per clip (the sampled frames are drawn before the clock starts)
// Every test runs --warmup times untimed, then -r times; the report gives mean and sample standard deviation, the
// conditions (processor, kernels, threads, dtype) and the peak resident set (getrusage; mapped weight pages that
// were touched count). Next to the timings (engine/bench_metrics.h): GFLOP/s of pp, img and video (FLOPs counted
// from the config) against the measured peak of the kernels' instruction (vdpbf16ps or FMA on every thread), and
// for tg the weight bytes read per token x tok/s against the measured streaming-read bandwidth (both measured after
// the tests, so their buffers do not count in the peak resident set). Markdown by default, one JSON object with
// --json.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "weight_format_options.h"

namespace qwen3vl {
namespace cli {

struct BenchOptions {
  std::string model_dir;
  int repetitions = 3;
  int warmup = 1;
  int threads = 0;                 // 0: one per processor core
  WeightFormatOptions formats;     // --weight-format / --vision-format
  std::vector<std::string> lora;   // --lora DIR[:SCALE]: the decoder and tower run with these adapters
  std::string isa;                 // kernel set: "" (best the processor has), "avx512", "avx2", "scalar"
  std::vector<int64_t> prompt = {512};
  std::vector<int64_t> generate = {128};
  std::vector<std::string> images = {"448x448", "1024x768"};
  double video_seconds = 10;       // 0 skips the video test
  std::string video_size = "640x360";
  double video_fps = 24;           // the synthetic clip's native frame rate
  int64_t bandwidth_mib = 1024;    // streaming-read buffer; 0 skips the bandwidth and peak measurements
  bool json = false;
};

CLI::App* add_bench_command(CLI::App& app, BenchOptions& options);
int bench_command(const BenchOptions& options);

}  // namespace cli
}  // namespace qwen3vl
