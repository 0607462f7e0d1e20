// AdamW, clip_grad_norm_ and the learning-rate schedules against torch 2.15 / transformers 5.23 (goldens by
// scripts/reference/dump_optimizer_goldens.py, tests/fixtures/train/optimizer). All comparisons are bit for bit:
// 1,000 AdamW steps over odd-sized tensors in several parameter groups with a schedule changing the lr every step
// (one run also clipping), the float32 norms of tensors of every tail length, torch.sqrt, and the lrs LambdaLR
// writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "test_util.h"
#include "train/adamw.h"
#include "train/grad_clip.h"
#include "train/lr_schedule.h"
#include "train/vml_sqrt.h"

namespace qwen3vl {
namespace {

using nlohmann::json;

std::string golden_dir() { return testing::fixtures_dir() + "/train/optimizer"; }

const json& golden_index() {
  static const json index = json::parse(testing::read_file(golden_dir() + "/index.json"));
  return index;
}

std::vector<float> golden_f32(const json& file) { return testing::read_f32(golden_dir() + "/" + file.get<std::string>()); }

std::vector<double> golden_f64(const json& file) {
  const std::string bytes = testing::read_file(golden_dir() + "/" + file.get<std::string>());
  std::vector<double> values(bytes.size() / sizeof(double));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(double));
  return values;
}

uint64_t bits_of(double x) {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
}

// Distance in units in the last place between two finite floats of the same sign (0 when bit-identical).
int64_t ulps_between(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, sizeof ia);
  std::memcpy(&ib, &b, sizeof ib);
  return ia > ib ? int64_t{ia} - ib : int64_t{ib} - ia;
}

// Counts the values that differ and reports the largest distance.
void expect_bit_identical(const std::vector<float>& ours, const std::vector<float>& torch, const std::string& what) {
  ASSERT_EQ(ours.size(), torch.size()) << what;
  size_t differing = 0;
  int64_t max_ulps = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    const int64_t ulps = ulps_between(ours[i], torch[i]);
    if (ulps != 0) ++differing;
    max_ulps = std::max(max_ulps, ulps);
  }
  EXPECT_EQ(differing, 0u) << what << ": " << differing << " of " << ours.size() << " values differ, up to "
                           << max_ulps << " ulps";
}

// The script's generator: ((state >> 40) * 2^-24 - 0.5) * 2^exponent after each LCG step.
class Lcg {
 public:
  explicit Lcg(uint64_t seed) : state_(seed) {}
  std::vector<float> tensor(size_t size, int exponent) {
    std::vector<float> values(size);
    const float scale = std::ldexp(1.0f, exponent);
    for (float& v : values) {
      state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
      v = (static_cast<float>(state_ >> 40) * 0x1p-24f - 0.5f) * scale;
    }
    return values;
  }

 private:
  uint64_t state_;
};

int grad_exponent(int64_t step, size_t tensor) { return static_cast<int>((step * 5 + tensor) % 13) - 8; }
bool has_grad(int64_t step, size_t tensor) { return !(tensor == 3 && step % 5 == 4); }

LrSchedule schedule_of(const json& entry) {
  LrSchedule schedule;
  schedule.kind = parse_lr_schedule(entry["schedule"].get<std::string>());
  schedule.total_steps = entry["total_steps"].get<int64_t>();
  schedule.warmup_steps = warmup_steps_for(entry["warmup_steps_arg"].get<double>(), schedule.total_steps);
  return schedule;
}

std::vector<float> concatenated(const std::vector<std::vector<float>>& tensors) {
  std::vector<float> all;
  for (const auto& t : tensors) all.insert(all.end(), t.begin(), t.end());
  return all;
}

// Replays one "adamw" run of the goldens and compares every stored value.
void replay_adamw_run(const std::string& name, ThreadPool* pool) {
  const json& index = golden_index();
  const json& run = index["adamw"][name];
  const std::vector<size_t> sizes = index["tensor_sizes"].get<std::vector<size_t>>();
  const int64_t steps = index["steps"].get<int64_t>();
  const LrSchedule schedule = schedule_of(run);
  ASSERT_EQ(schedule.warmup_steps, run["warmup_steps"].get<int64_t>());

  Lcg rng(run["seed"].get<uint64_t>());
  std::vector<std::vector<float>> params, grads(sizes.size());
  for (size_t size : sizes) params.push_back(rng.tensor(size, 1));

  AdamW optimizer;
  std::vector<double> base_lrs;
  std::vector<size_t> tensor_of;  // optimizer parameter -> tensor index
  for (const json& g : run["groups"]) {
    AdamWGroup group;
    group.lr = g["lr"].get<double>();
    group.weight_decay = g["weight_decay"].get<double>();
    group.beta1 = g["betas"][0].get<double>();
    group.beta2 = g["betas"][1].get<double>();
    group.eps = g["eps"].get<double>();
    const int id = optimizer.add_group(group);
    base_lrs.push_back(group.lr);
    for (size_t t : g["params"].get<std::vector<size_t>>()) {
      optimizer.add_param(id, "tensor" + std::to_string(t), params[t].data(), nullptr, params[t].size());
      tensor_of.push_back(t);
    }
  }

  const std::vector<double> golden_lrs = golden_f64(run["lrs"]);
  const bool clips = !run["max_grad_norm"].is_null();
  const std::vector<float> golden_norms = clips ? golden_f32(run["grad_norms"]) : std::vector<float>();
  size_t lr_mismatches = 0, norm_mismatches = 0;
  for (int64_t step = 1; step <= steps; ++step) {
    std::vector<GradSpan> spans;
    for (size_t t = 0; t < sizes.size(); ++t) {
      grads[t] = has_grad(step, t) ? rng.tensor(sizes[t], grad_exponent(step, t)) : std::vector<float>();
      if (!grads[t].empty()) spans.push_back(GradSpan{grads[t].data(), grads[t].size()});
    }
    for (size_t i = 0; i < optimizer.param_count(); ++i) {
      const size_t t = tensor_of[i];
      optimizer.param(i).grad = grads[t].empty() ? nullptr : grads[t].data();
    }
    if (clips) {
      const float norm = clip_grad_norm(spans, run["max_grad_norm"].get<double>(), pool);
      if (ulps_between(norm, golden_norms[step - 1]) != 0) ++norm_mismatches;
    }
    for (int g = 0; g < optimizer.group_count(); ++g) {
      optimizer.group(g).lr = schedule.lr(base_lrs[g], step - 1);
      if (bits_of(optimizer.group(g).lr) != bits_of(golden_lrs[(step - 1) * base_lrs.size() + g])) ++lr_mismatches;
    }
    optimizer.step(pool);

    const std::string key = std::to_string(step);
    if (!run["checkpoints"].contains(key)) continue;
    const json& checkpoint = run["checkpoints"][key];
    std::vector<std::vector<float>> exp_avg(sizes.size()), exp_avg_sq(sizes.size());
    std::vector<int64_t> state_steps(sizes.size());
    for (size_t i = 0; i < optimizer.param_count(); ++i) {
      const size_t t = tensor_of[i];
      exp_avg[t] = optimizer.state(i).exp_avg;
      exp_avg_sq[t] = optimizer.state(i).exp_avg_sq;
      state_steps[t] = optimizer.state(i).step;
    }
    const std::string where = name + " step " + key;
    expect_bit_identical(concatenated(params), golden_f32(checkpoint["params"]), where + " params");
    expect_bit_identical(concatenated(exp_avg), golden_f32(checkpoint["exp_avg"]), where + " exp_avg");
    expect_bit_identical(concatenated(exp_avg_sq), golden_f32(checkpoint["exp_avg_sq"]), where + " exp_avg_sq");
    EXPECT_EQ(state_steps, checkpoint["steps"].get<std::vector<int64_t>>()) << where;
  }
  EXPECT_EQ(lr_mismatches, 0u) << name << ": group lrs differing from torch's param_group[\"lr\"]";
  EXPECT_EQ(norm_mismatches, 0u) << name << ": clip_grad_norm_ totals differing from torch's";
}

TEST(OptimizerGolden, AdamWCosineThreeGroupsBitIdentical) { replay_adamw_run("cosine_three_groups", nullptr); }

TEST(OptimizerGolden, AdamWLinearClippedBitIdentical) { replay_adamw_run("linear_clipped", nullptr); }

TEST(OptimizerGolden, AdamWSameBitsOnAThreadPool) {
  ThreadPool pool(2);
  replay_adamw_run("linear_clipped", &pool);
}

// torch.sqrt on the goldens' CPU is MKL's generic kernel, not the correctly rounded root: one input per RSQRTPS
// table entry plus MKL's scalar-path inputs (zero, subnormals, the top of the range, infinity).
TEST(OptimizerGolden, SqrtAsTorchComputesIt) {
  const json& entry = golden_index()["sqrt"];
  const std::vector<float> inputs = golden_f32(entry["inputs"]);
  std::vector<float> ours, correctly_rounded;
  for (float x : inputs) {
    ours.push_back(vml_generic_sqrt(x));
    correctly_rounded.push_back(std::sqrt(x));
  }
  const std::vector<float> roots = golden_f32(entry["roots"]);
  expect_bit_identical(ours, roots, "torch.sqrt");
  size_t differing_from_sqrt = 0;
  for (size_t i = 0; i < roots.size(); ++i) differing_from_sqrt += ulps_between(roots[i], correctly_rounded[i]) != 0;
  EXPECT_EQ(differing_from_sqrt, entry["not_correctly_rounded"].get<size_t>());
  EXPECT_GT(differing_from_sqrt, 0u) << "the goldens come from a CPU whose torch.sqrt is correctly rounded";
}

TEST(OptimizerGolden, ClipGradNormBitIdentical) {
  const json& index = golden_index();
  const std::vector<size_t> sizes = index["clip_sizes"].get<std::vector<size_t>>();
  const size_t scaled_limit = index["scaled_limit"].get<size_t>();
  for (const auto& [name, entry] : index["clip"].items()) {
    Lcg rng(entry["seed"].get<uint64_t>());
    std::vector<std::vector<float>> grads;
    std::vector<GradSpan> spans;
    std::vector<float> norms;
    for (size_t t = 0; t < sizes.size(); ++t) grads.push_back(rng.tensor(sizes[t], static_cast<int>(t % 5) - 2));
    for (auto& g : grads) {
      spans.push_back(GradSpan{g.data(), g.size()});
      norms.push_back(torch_vector_norm2(g.data(), g.size()));
    }
    expect_bit_identical(norms, golden_f32(entry["norms"]), name + " per-tensor norms");
    const float total = clip_grad_norm(spans, entry["max_norm"].get<double>());
    EXPECT_EQ(ulps_between(total, entry["total_norm"].get<float>()), 0) << name << ": " << total;
    std::vector<float> scaled;
    for (const auto& g : grads) {
      if (g.size() <= scaled_limit) scaled.insert(scaled.end(), g.begin(), g.end());
    }
    expect_bit_identical(scaled, golden_f32(entry["scaled"]), name + " scaled gradients");
  }
}

TEST(OptimizerGolden, LrSchedulesBitIdentical) {
  const json& index = golden_index();
  const std::vector<double> base_lrs = index["base_lrs"].get<std::vector<double>>();
  const int64_t steps = index["steps"].get<int64_t>();
  for (const auto& [name, entry] : index["schedules"].items()) {
    LrSchedule schedule;
    schedule.kind = parse_lr_schedule(entry["kind"].get<std::string>());
    schedule.total_steps = entry["total_steps"].get<int64_t>();
    schedule.warmup_steps = warmup_steps_for(entry["warmup_steps_arg"].get<double>(), schedule.total_steps);
    EXPECT_EQ(schedule.warmup_steps, entry["warmup_steps"].get<int64_t>()) << name;
    const std::vector<double> golden = golden_f64(entry["lrs"]);
    ASSERT_EQ(golden.size(), static_cast<size_t>(steps) * base_lrs.size()) << name;
    size_t mismatches = 0;
    for (int64_t step = 0; step < steps; ++step) {
      for (size_t g = 0; g < base_lrs.size(); ++g) {
        if (bits_of(schedule.lr(base_lrs[g], step)) != bits_of(golden[step * base_lrs.size() + g])) ++mismatches;
      }
    }
    EXPECT_EQ(mismatches, 0u) << name << ": lrs differing from LambdaLR's";
  }
}

}  // namespace
}  // namespace qwen3vl
