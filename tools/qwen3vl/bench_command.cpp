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
#include "engine/loaded_model.h"
#include "model/text_decoder.h"
#include "model/vision_encoder.h"
#include "ops/cpu/kernels.h"
#include "vision/image_processor.h"

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
  bench->add_option("--image", o.images, "Image sizes WxH to encode (default 448x448,1024x768; 'none' skips)")
      ->delimiter(',');
  bench->add_flag("--json", o.json, "Print one JSON object instead of a markdown table");
  return bench;
}

namespace {

struct Result {
  std::string test;
  std::string unit;  // "tok/s" or "s"
  std::vector<double> values;
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
  Result result{test, unit, {}};
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
  const TextDecoder decoder(model->config, model->text_weights, ctx);
  const VisionEncoder vision(model->config, model->vision_weights, ctx);
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
  }
  for (int64_t n : o.generate) {
    if (n <= 0) continue;
    std::vector<float> embeds(static_cast<size_t>(hidden)), logits;
    DecoderWorkspace work;
    KVCache cache = decoder.make_cache(n);
    std::vector<MropePositions> positions;
    for (int64_t i = 0; i < n; ++i) positions.push_back(text_positions(i, 1));
    results.push_back(repeat("tg" + std::to_string(n), "tok/s", o, [&] {
      cache.set_length(0);
      int32_t token = 1;
      Stopwatch clock;
      for (int64_t i = 0; i < n; ++i) {
        decoder.embed(&token, 1, embeds.data());
        decoder.forward(embeds.data(), 1, positions[static_cast<size_t>(i)], cache, work, LogitsRows::Last, logits);
        token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      }
      return static_cast<double>(n) / clock.seconds();
    }));
  }
  for (const std::string& size : o.images) {
    if (size == "none") continue;
    int width = 0, height = 0;
    if (!parse_size(size, &width, &height)) throw_error("--image ", size, ": expected WIDTHxHEIGHT, e.g. 448x448");
    const Image image = synthetic_image(width, height);
    results.push_back(repeat("img" + size, "s", o, [&] {
      Stopwatch clock;
      const ProcessedImage processed = preprocess_image(image, model->image_processor);
      const VisionOutput out = vision.forward(processed.pixel_values.data(), {processed.grid});
      return clock.seconds();
    }));
  }

  const double rss = peak_rss_bytes();
  const int threads = model->pool->size();
  const std::string cpu = processor_name();
  if (o.json) {
    nlohmann::ordered_json j;
    j["model"] = o.model_dir;
    j["dtype"] = dtype;
    j["processor"] = cpu;
    j["threads"] = threads;
    j["kernels"] = kernels->name;
    j["repetitions"] = o.repetitions;
    j["peak_rss_bytes"] = rss;
    for (const Result& r : results)
      j["tests"].push_back({{"test", r.test}, {"unit", r.unit}, {"mean", r.mean()}, {"stddev", r.stddev()},
                            {"values", r.values}});
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("model: %s | dtype %s | %s | kernels %s | threads %d | %d repetitions\n\n", o.model_dir.c_str(),
                dtype.c_str(), cpu.c_str(), kernels->name, threads, o.repetitions);
    std::printf("| test | mean | stddev | unit |\n|---|---:|---:|---|\n");
    for (const Result& r : results)
      std::printf("| %s | %.3f | %.3f | %s |\n", r.test.c_str(), r.mean(), r.stddev(), r.unit.c_str());
    std::printf("\npeak resident memory: %.2f GiB\n", rss / (1024.0 * 1024.0 * 1024.0));
  }
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
