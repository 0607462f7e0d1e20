#include "bench_command.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "core/timer.h"
#include "engine/bench_metrics.h"
#include "engine/generate.h"
#include "engine/loaded_model.h"
#include "lora_options.h"
#include "model/text_decoder.h"
#include "model/vision_encoder.h"
#include "ops/cpu/kernels.h"
#include "vision/image_decode.h"
#include "vision/image_processor.h"
#include "vision/video_processor.h"
#include "vision/video_sampling.h"

namespace qwen3vl {
namespace cli {

CLI::App* add_bench_command(CLI::App& app, BenchOptions& o) {
  CLI::App* bench = app.add_subcommand("bench", "Measure prompt processing, generation and image encode speed");
  bench->add_option("-m,--model", o.model_dir, "Checkpoint directory (Hugging Face layout)")->required();
  bench->add_option("-r,--repetitions", o.repetitions, "Timed runs of each test (default 3)")
      ->check(CLI::PositiveNumber);
  bench->add_option("--warmup", o.warmup, "Untimed runs of each test before the timed ones (default 1)")
      ->check(CLI::NonNegativeNumber);
  bench->add_option("-t,--threads", o.threads, "Threads (default: one per processor core)")
      ->check(CLI::NonNegativeNumber);
  add_weight_format_options(bench, o.formats);
  bench->add_option("--isa", o.isa, "Kernel set: avx512, avx2 or scalar (default: the best the processor has)")
      ->check(CLI::IsMember({"avx512", "avx2", "scalar"}));
  bench->add_option("-p,--n-prompt", o.prompt, "Prompt lengths to test (default 512; 0 skips)")->delimiter(',');
  bench->add_option("-n,--n-gen", o.generate, "Generated lengths to test (default 128; 0 skips)")->delimiter(',');
  bench->add_option("--image", o.images, "Image sizes WxH to encode, or image files (default 448x448,1024x768; 'none' skips)")
      ->delimiter(',');
  bench->add_option("--video-seconds", o.video_seconds, "Length of the synthetic clip to encode (default 10; 0 skips)")
      ->check(CLI::NonNegativeNumber);
  bench->add_option("--video-size", o.video_size, "Frame size WxH of the synthetic clip (default 640x360)");
  bench->add_option("--video-fps", o.video_fps, "Native frame rate of the synthetic clip (default 24)")
      ->check(CLI::PositiveNumber);
  bench->add_option("--bandwidth-mib", o.bandwidth_mib,
                    "Buffer of the streaming-read bandwidth measurement in MiB (default 1024; 0 skips it and the "
                    "peak FLOP/s measurement)")
      ->check(CLI::NonNegativeNumber);
  add_lora_options(bench, o.lora);
  bench->add_flag("--json", o.json, "Print one JSON object instead of a markdown table");
  return bench;
}

namespace {

struct Result {
  std::string test;
  std::string unit;  // "tok/s" or "s"
  std::vector<double> values;
  double flops = 0;            // per run (pp, img, video)
  double tokens = 0;           // tokens per run (pp, tg): converts tok/s to seconds
  double bytes_per_token = 0;  // weights read per decode step (tg)
  int64_t visual_tokens = 0;   // img, video: tokens the language model would see
  GridTHW grid{0, 0, 0};       // img, video
  std::string detail;          // img, video: grid and frames; sampled tg: the sampling parameters
  double sampler_fraction = 0;      // sampled tg: share of decode time spent in the sampler
  double sampler_ms_per_token = 0;  // sampled tg
  double mean() const {
    double sum = 0;
    for (double v : values) sum += v;
    return values.empty() ? 0.0 : sum / static_cast<double>(values.size());
  }
  double stddev() const {
    if (values.size() < 2) return 0.0;
    const double m = mean();
    double sum = 0;
    for (double v : values) sum += (v - m) * (v - m);
    return std::sqrt(sum / static_cast<double>(values.size() - 1));
  }
};

// Runs `once` warmup + repetitions times and keeps the timed values.
template <typename Fn>
Result repeat(const std::string& test, const std::string& unit, const BenchOptions& o, Fn once) {
  Result result;
  result.test = test;
  result.unit = unit;
  if (!o.json) std::fprintf(stderr, "%s ...\n", test.c_str());
  for (int i = 0; i < o.warmup; ++i) once();
  for (int i = 0; i < o.repetitions; ++i) {
    result.values.push_back(once());
    if (!o.json)
      std::fprintf(stderr, "  %s run %d: %.3f %s\n", test.c_str(), i + 1, result.values.back(), unit.c_str());
  }
  return result;
}

std::vector<int32_t> random_ids(int64_t count, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (auto& id : ids) id = pick(rng);
  return ids;
}

// A deterministic synthetic photo-like image: smooth gradients plus texture, so nothing about it is degenerate.
Image synthetic_image(int width, int height) {
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.resize(static_cast<size_t>(width) * height * 3);
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> noise(-12, 12);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &image.rgb[(static_cast<size_t>(y) * width + x) * 3];
      const int base[3] = {255 * x / width, 255 * y / height, 128 + ((x / 16 + y / 16) % 2) * 64};
      for (int c = 0; c < 3; ++c) p[c] = static_cast<uint8_t>(std::clamp(base[c] + noise(rng), 0, 255));
    }
  return image;
}

// Frame `index` of a synthetic clip: the image pattern with a moving square and a drift, so frames differ.
Image synthetic_frame(int width, int height, int64_t index) {
  Image frame = synthetic_image(width, height);
  const int shift = static_cast<int>(index * 3 % std::max(width, 1));
  const int side = std::max(8, std::min(width, height) / 5);
  const int x0 = static_cast<int>(index * 7 % std::max(width - side, 1)), y0 = (height - side) / 2;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &frame.rgb[(static_cast<size_t>(y) * width + x) * 3];
      p[0] = static_cast<uint8_t>((p[0] + shift) & 0xff);
      if (x >= x0 && x < x0 + side && y >= y0 && y < y0 + side) p[1] = 255 - p[1];
    }
  return frame;
}

bool parse_size(const std::string& text, int* width, int* height) {
  return std::sscanf(text.c_str(), "%dx%d", width, height) == 2 && *width > 0 && *height > 0;
}

std::string processor_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos)
      return line.substr(line.find(':') + 2);
  return "unknown processor";
}

// The checkpoint's generation defaults, sampling on whatever do_sample says (bench measures the sampled path).
SamplingParams bench_sampling(const GenerationConfig& generation) {
  SamplingParams params = default_sampling(generation);
  params.do_sample = true;
  params.seed = 1;
  return params;
}

std::string sampling_description(const SamplingParams& p) {
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, "temperature %g, top_k %lld, top_p %g, min_p %g, repetition_penalty %g",
                p.temperature, static_cast<long long>(p.top_k), p.top_p, p.min_p, p.repetition_penalty);
  return buffer;
}

double peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0;  // Linux: kilobytes
}

}  // namespace

int bench_command(const BenchOptions& o) {
  const ops::cpu::Kernels* kernels =
      o.isa.empty() ? &ops::cpu::best_kernels() : ops::cpu::kernels_for(ops::cpu::parse_isa(o.isa.c_str()));
  if (!kernels) throw_error("--isa ", o.isa, ": this processor does not support it");
  LoadOptions load_options;
  load_options.require_tokenizer = false;
  load_options.threads = o.threads;
  apply_weight_formats(o.formats, load_options);
  const auto model = load_model(o.model_dir, load_options);
  const ops::Context ctx{model->pool.get(), kernels};
  const auto adapters = load_lora_specs(o.lora, *model);
  const TextWeights& text_weights = adapters ? adapters->text() : model->text_weights;
  const VisionWeights& vision_weights = adapters && adapters->vision() ? *adapters->vision() : model->vision_weights;
  const TextDecoder decoder(model->config, text_weights, ctx);
  const VisionEncoder vision(model->config, vision_weights, ctx);
  std::string lora_description = "none";
  if (adapters) {
    lora_description.clear();
    for (const ActiveAdapter& a : adapters->adapters())
      lora_description += (lora_description.empty() ? "" : ", ") + a.adapter->dir() + " (" +
                          std::to_string(a.adapter->modules().size()) + " modules, r " +
                          std::to_string(a.adapter->config().r) + ")";
  }
  const TextConfig& tc = model->config.text_config;
  const int64_t hidden = tc.hidden_size;
  const std::string dtype = dtype_name(model->text_weights.dtype);

  std::vector<Result> results;
  for (int64_t n : o.prompt) {
    if (n <= 0) continue;
    const auto ids = random_ids(n, tc.vocab_size, 1);
    std::vector<float> embeds(static_cast<size_t>(n * hidden)), logits;
    decoder.embed(ids.data(), n, embeds.data());
    DecoderWorkspace work;
    const MropePositions positions = text_positions(0, n);
    results.push_back(repeat("pp" + std::to_string(n), "tok/s", o, [&] {
      KVCache cache = decoder.make_cache(n);
      Stopwatch clock;
      decoder.forward(embeds.data(), n, positions, cache, work, LogitsRows::Last, logits);
      return static_cast<double>(n) / clock.seconds();
    }));
    results.back().flops = text_forward_flops(model->config, n);
    results.back().tokens = static_cast<double>(n);
  }
  // tg: greedy (argmax) and sampled with the checkpoint's generation_config (Qwen3-VL Instruct: temperature 0.7,
  // top_k 20, top_p 0.8), the sampler timed on its own so that its share of decode shows.
  const SamplingParams sampling = bench_sampling(model->generation);
  for (int64_t n : o.generate) {
    if (n <= 0) continue;
    std::vector<float> embeds(static_cast<size_t>(hidden)), logits;
    DecoderWorkspace work;
    KVCache cache = decoder.make_cache(n);
    std::vector<MropePositions> positions;
    for (int64_t i = 0; i < n; ++i) positions.push_back(text_positions(i, 1));
    for (const bool sampled : {false, true}) {
      double sampler_seconds = 0, decode_seconds = 0;
      results.push_back(repeat("tg" + std::to_string(n) + (sampled ? " sampled" : ""), "tok/s", o, [&] {
        cache.set_length(0);
        Sampler sampler(sampling);
        std::vector<int32_t> generated;
        int32_t token = 1;
        Stopwatch clock;
        for (int64_t i = 0; i < n; ++i) {
          decoder.embed(&token, 1, embeds.data());
          decoder.forward(embeds.data(), 1, positions[static_cast<size_t>(i)], cache, work, LogitsRows::Last, logits);
          if (sampled) {
            Stopwatch sampler_clock;
            token = sampler.next(logits, generated, generated);
            sampler_seconds += sampler_clock.seconds();
            generated.push_back(token);
          } else {
            token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
          }
        }
        const double seconds = clock.seconds();
        decode_seconds += seconds;
        return static_cast<double>(n) / seconds;
      }));
      results.back().tokens = static_cast<double>(n);
      results.back().bytes_per_token = decode_weight_bytes(model->config, text_weights);
      if (sampled) {
        // Warmup runs included in both sums: the share is a ratio over the same runs.
        results.back().sampler_fraction = decode_seconds > 0 ? sampler_seconds / decode_seconds : 0.0;
        results.back().sampler_ms_per_token =
            1e3 * sampler_seconds / static_cast<double>(n * (o.warmup + o.repetitions));
        results.back().detail = sampling_description(sampling);
      }
    }
  }
  for (const std::string& size : o.images) {
    if (size == "none") continue;
    int width = 0, height = 0;
    // WxH: a synthetic image; anything else: an image file (so other engines can be given the same pixels).
    const Image image = parse_size(size, &width, &height) ? synthetic_image(width, height) : decode_image_file(size);
    const std::string test = "img" + std::to_string(image.width) + "x" + std::to_string(image.height);
    GridTHW grid;
    results.push_back(repeat(test, "s", o, [&] {
      Stopwatch clock;
      const ProcessedImage processed = preprocess_image(image, model->image_processor);
      const VisionOutput out = vision.forward(processed.pixel_values.data(), {processed.grid});
      grid = processed.grid;
      return clock.seconds();
    }));
    results.back().flops = vision_forward_flops(model->config, {grid});
    results.back().visual_tokens = grid.merged_tokens(model->config.vision_config.spatial_merge_size);
    results.back().grid = grid;
    results.back().detail = "grid " + std::to_string(grid.t) + "x" + std::to_string(grid.h) + "x" +
                            std::to_string(grid.w);
  }
  nlohmann::ordered_json video_json;
  if (o.video_seconds > 0) {
    int width = 0, height = 0;
    if (!parse_size(o.video_size, &width, &height))
      throw_error("--video-size ", o.video_size, ": expected WIDTHxHEIGHT, e.g. 640x360");
    const VideoProcessorConfig video_config = load_video_processor_config(model->dir);
    const int64_t total_frames = std::max<int64_t>(1, std::llround(o.video_seconds * o.video_fps));
    const SampledFrames sampled =
        sample_frames(total_frames, o.video_fps, FrameSamplingOptions{}, video_config.sampling, "synthetic clip");
    std::vector<Image> frames;
    for (int64_t index : sampled.indices) frames.push_back(synthetic_frame(width, height, index));
    char name[32];
    std::snprintf(name, sizeof name, "video%gs", o.video_seconds);
    GridTHW grid;
    int64_t resized_w = 0, resized_h = 0;
    results.push_back(repeat(name, "s", o, [&] {
      Stopwatch clock;
      const ProcessedVideo processed = preprocess_video_frames(frames, sampled.indices, sampled.fps, video_config);
      const VisionOutput out = vision.forward(processed.pixel_values.data(), {processed.grid});
      grid = processed.grid;
      resized_w = processed.resized_width, resized_h = processed.resized_height;
      return clock.seconds();
    }));
    results.back().flops = vision_forward_flops(model->config, {grid});
    results.back().visual_tokens = grid.merged_tokens(model->config.vision_config.spatial_merge_size);
    results.back().grid = grid;
    results.back().detail = std::to_string(frames.size()) + " of " + std::to_string(total_frames) + " frames " +
                            o.video_size + " -> " + std::to_string(resized_w) + "x" + std::to_string(resized_h) +
                            ", grid " + std::to_string(grid.t) + "x" + std::to_string(grid.h) + "x" +
                            std::to_string(grid.w);
    video_json = {{"seconds", o.video_seconds},
                  {"size", o.video_size},
                  {"native_fps", o.video_fps},
                  {"frames", total_frames},
                  {"frames_sampled", frames.size()},
                  {"resized", std::to_string(resized_w) + "x" + std::to_string(resized_h)},
                  {"grid", {grid.t, grid.h, grid.w}},
                  {"visual_tokens", grid.merged_tokens(model->config.vision_config.spatial_merge_size)},
                  {"pixel_budget", video_config.max_pixels}};
  }

  // Peak resident set first: the measurements below allocate their own buffers.
  const double rss = peak_rss_bytes();
  const int threads = model->pool->size();
  const std::string cpu = processor_name();
  double bandwidth = 0, peak = 0;
  const char* peak_kind = kernels->isa == ops::cpu::Isa::Avx512 ? "bf16"
                          : kernels->isa == ops::cpu::Isa::Avx2 ? "fma"
                                                                 : "";
  if (o.bandwidth_mib > 0) {
    if (!o.json) std::fprintf(stderr, "memory bandwidth and peak FLOP/s ...\n");
    bandwidth = measure_read_bandwidth(*model->pool, o.bandwidth_mib * 1024 * 1024);
    peak = measure_peak_flops(*model->pool, peak_kind);
  }
  // Derived figures of one result: GFLOP/s (and the share of the peak), decode weight traffic.
  auto seconds_per_run = [](const Result& r) {
    return r.unit == "s" ? r.mean() : (r.mean() > 0 ? r.tokens / r.mean() : 0.0);
  };
  auto gflops = [&](const Result& r) {
    const double s = seconds_per_run(r);
    return r.flops > 0 && s > 0 ? r.flops / s / 1e9 : 0.0;
  };
  auto weight_gbs = [](const Result& r) { return r.bytes_per_token * r.mean() / 1e9; };
  if (o.json) {
    nlohmann::ordered_json j;
    j["model"] = o.model_dir;
    j["dtype"] = dtype;
    j["lora"] = lora_description;
    j["processor"] = cpu;
    j["threads"] = threads;
    j["kernels"] = kernels->name;
    j["repetitions"] = o.repetitions;
    j["peak_rss_bytes"] = rss;
    j["memory_bandwidth_gb_per_s"] = bandwidth / 1e9;
    j["peak_gflops"] = peak / 1e9;
    j["peak_kind"] = peak_kind;
    if (!video_json.empty()) j["video"] = video_json;
    j["tests"] = nlohmann::ordered_json::array();
    for (const Result& r : results) {
      nlohmann::ordered_json t = {{"test", r.test}, {"unit", r.unit}, {"mean", r.mean()}, {"stddev", r.stddev()},
                                  {"values", r.values}};
      if (r.flops > 0) {
        t["flops"] = r.flops;
        t["gflops_per_s"] = gflops(r);
        t["peak_fraction"] = peak > 0 ? gflops(r) * 1e9 / peak : 0.0;
      }
      if (r.bytes_per_token > 0) {
        t["weight_bytes_per_token"] = r.bytes_per_token;
        t["weight_read_gb_per_s"] = weight_gbs(r);
        t["bandwidth_fraction"] = bandwidth > 0 ? weight_gbs(r) * 1e9 / bandwidth : 0.0;
      }
      if (r.visual_tokens > 0) {
        t["visual_tokens"] = r.visual_tokens;
        t["grid"] = {r.grid.t, r.grid.h, r.grid.w};
      }
      if (!r.detail.empty()) t["detail"] = r.detail;
      if (r.sampler_ms_per_token > 0) {
        t["sampler_ms_per_token"] = r.sampler_ms_per_token;
        t["sampler_fraction"] = r.sampler_fraction;
      }
      j["tests"].push_back(t);
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("model: %s | dtype %s | lora %s | %s | kernels %s | threads %d | %d repetitions\n\n",
                o.model_dir.c_str(), dtype.c_str(), lora_description.c_str(), cpu.c_str(), kernels->name, threads,
                o.repetitions);
    std::printf("| test | mean | stddev | unit | work |\n|---|---:|---:|---|---|\n");
    for (const Result& r : results) {
      std::string work;
      char buffer[160];
      if (r.flops > 0) {
        std::snprintf(buffer, sizeof buffer, "%.1f GFLOP, %.0f GFLOP/s", r.flops / 1e9, gflops(r));
        work = buffer;
        if (peak > 0) {
          std::snprintf(buffer, sizeof buffer, " (%.0f%% of peak)", 100.0 * gflops(r) * 1e9 / peak);
          work += buffer;
        }
      }
      if (r.bytes_per_token > 0) {
        std::snprintf(buffer, sizeof buffer, "%.2f GB weights/token, %.1f GB/s", r.bytes_per_token / 1e9,
                      weight_gbs(r));
        work = buffer;
        if (bandwidth > 0) {
          std::snprintf(buffer, sizeof buffer, " (%.0f%% of streaming read)", 100.0 * weight_gbs(r) * 1e9 / bandwidth);
          work += buffer;
        }
      }
      if (r.visual_tokens > 0) work += "; " + std::to_string(r.visual_tokens) + " visual tokens, " + r.detail;
      if (r.sampler_ms_per_token > 0) {
        std::snprintf(buffer, sizeof buffer, "; sampler %.3f ms/token (%.1f%% of decode), ", r.sampler_ms_per_token,
                      100.0 * r.sampler_fraction);
        work += buffer + r.detail;
      }
      std::printf("| %s | %.3f | %.3f | %s | %s |\n", r.test.c_str(), r.mean(), r.stddev(), r.unit.c_str(),
                  work.c_str());
    }
    std::printf("\npeak resident memory: %.2f GiB\n", rss / (1024.0 * 1024.0 * 1024.0));
    if (o.bandwidth_mib > 0)
      std::printf("streaming read (%lld MiB, %d threads): %.1f GB/s | peak (%s, %d threads): %.0f GFLOP/s\n",
                  static_cast<long long>(o.bandwidth_mib), threads, bandwidth / 1e9,
                  peak_kind[0] ? peak_kind : "none", threads, peak / 1e9);
  }
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
