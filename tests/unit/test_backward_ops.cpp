// The backward ops (ops/backward.h) against central finite differences in double. For each op the gradient of
//   L = sum(forward(inputs) * R)        (R seeded random, so the op's output gradient is R)
// is compared with central differences of L, where the forward is written out here in double from the formulas of
// the PyTorch modules the ops follow (so the finite differences carry no float rounding). Every op runs twice: the
// scalar reference and the dispatched version on two threads. The fp32 PyTorch autograd side is
// tests/golden/test_backward_ops_golden.cpp.
//
// Bound: relative L2 error <= 1e-5 and max |diff| <= 1e-5 * max(1, max |finite difference|). The op is float32
// (relative rounding ~1e-7 over these short sums) and the differences in double with step 1e-5 are good to ~1e-9,
// so 1e-5 leaves two orders of margin: measured worst 1.8e-7 (moe dx, gelu_tanh dx), recorded per gradient as test
// properties (--gtest_output=xml shows them).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/quant_layout.h"
#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "model/moe_train.h"
#include "model/mrope.h"
#include "model/vision_positions.h"
#include "ops/backward.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace {

using testing::random_floats;
using Doubles = std::vector<double>;
using Inputs = std::vector<Doubles>;
using Functional = std::function<double(const Inputs&)>;

constexpr double kStep = 1e-5;
constexpr double kBound = 1e-5;
constexpr float kGarbage = 1e30f;  // prefill of written (not accumulated) gradients

Doubles to_doubles(const std::vector<float>& v) { return Doubles(v.begin(), v.end()); }

double dot(const Doubles& a, const std::vector<float>& r) {
  double sum = 0.0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * r[i];
  return sum;
}

// dL/d inputs[which] by central differences.
Doubles central_differences(const Functional& f, Inputs inputs, size_t which) {
  Doubles grad(inputs[which].size());
  for (size_t i = 0; i < grad.size(); ++i) {
    const double saved = inputs[which][i];
    inputs[which][i] = saved + kStep;
    const double plus = f(inputs);
    inputs[which][i] = saved - kStep;
    const double minus = f(inputs);
    inputs[which][i] = saved;
    grad[i] = (plus - minus) / (2 * kStep);
  }
  return grad;
}

// `got` against `expected` within kBound (above); `offset` is subtracted from `got` first (the prefill of an
// accumulated gradient). Records the relative L2 error as property `what`.
void expect_gradient(const std::string& what, const std::vector<float>& got, const Doubles& expected,
                     double offset = 0.0) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  double diff2 = 0.0, ref2 = 0.0, max_diff = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(got[i] - offset - expected[i]);
    diff2 += diff * diff;
    ref2 += expected[i] * expected[i];
    max_diff = std::max(max_diff, std::isnan(diff) ? INFINITY : diff);
    max_ref = std::max(max_ref, std::fabs(expected[i]));
  }
  ASSERT_GT(ref2, 0.0) << what << ": an all-zero gradient checks nothing";
  const double rel = std::sqrt(diff2 / ref2);
  EXPECT_LE(rel, kBound) << what;
  EXPECT_LE(max_diff, kBound * std::max(1.0, max_ref)) << what;
  std::ostringstream measured;
  measured << std::setprecision(3) << rel;
  ::testing::Test::RecordProperty(what, measured.str());
}

void expect_fd(const std::string& what, const Functional& f, const Inputs& inputs, size_t which,
               const std::vector<float>& got, double offset = 0.0) {
  expect_gradient(what, got, central_differences(f, inputs, which), offset);
}

ThreadPool& two_threads() {
  static ThreadPool pool(2);
  return pool;
}

// GetParam(): true runs ops::* on two threads, false ops::reference::*.
class BackwardOps : public ::testing::TestWithParam<bool> {
 protected:
  bool dispatched() const { return GetParam(); }
  ops::Context ctx() const { return {&two_threads(), nullptr}; }
};

// ---- linear with LoRA / DoRA terms ----

struct TermData {
  int64_t r = 0;
  float scaling = 1.f;
  bool dora = false;
  std::vector<float> a, b, magnitude, norm, scale;
};

struct LinearProblem {
  int64_t n = 3, in = 10, out = 7;
  WeightLayout layout = WeightLayout::OutIn;
  std::vector<float> x, w, bias, dy;  // w as stored; bias empty: none
  std::vector<TermData> data;
  std::vector<LoraTerm> terms;

  double w_at(const Doubles& stored, int64_t j, int64_t k) const {
    return layout == WeightLayout::OutIn ? stored[j * in + k] : stored[k * out + j];
  }
  WeightMatrix weight() const {
    return WeightMatrix{DType::F32, w.data(), out, in, layout, LoraTerms{terms.data(), static_cast<int>(terms.size())}};
  }
};

// Term t's factors; a DoRA term gets a magnitude and PEFT's detached norm ||W + s B A|| per output row.
LinearProblem make_linear(WeightLayout layout, bool bias, const std::vector<bool>& dora_terms, uint32_t seed) {
  LinearProblem p;
  p.layout = layout;
  p.x = random_floats(p.n * p.in, seed);
  p.w = random_floats(p.out * p.in, seed + 1, 0.5f);
  if (bias) p.bias = random_floats(p.out, seed + 2);
  p.dy = random_floats(p.n * p.out, seed + 3);
  const Doubles w = to_doubles(p.w);
  for (size_t t = 0; t < dora_terms.size(); ++t) {
    TermData d;
    d.r = 3 - static_cast<int64_t>(t);
    d.scaling = 2.0f / static_cast<float>(d.r);
    d.dora = dora_terms[t];
    d.a = random_floats(d.r * p.in, seed + 10 + 3 * t, 0.5f);
    d.b = random_floats(p.out * d.r, seed + 11 + 3 * t, 0.5f);
    if (d.dora) {
      d.magnitude = random_floats(p.out, seed + 12 + 3 * t);
      for (int64_t j = 0; j < p.out; ++j) {
        double sum = 0.0;
        for (int64_t k = 0; k < p.in; ++k) {
          double delta = 0.0;
          for (int64_t l = 0; l < d.r; ++l) delta += double{d.b[j * d.r + l]} * d.a[l * p.in + k];
          const double v = p.w_at(w, j, k) + d.scaling * delta;
          sum += v * v;
        }
        d.norm.push_back(static_cast<float>(std::sqrt(sum)));
        d.scale.push_back(d.magnitude[j] / d.norm[j]);
      }
    }
    p.data.push_back(std::move(d));
  }
  for (const TermData& d : p.data) {
    LoraTerm term;
    term.lora_A = WeightMatrix{DType::F32, d.a.data(), d.r, p.in};
    term.lora_B = WeightMatrix{DType::F32, d.b.data(), p.out, d.r};
    term.scaling = d.scaling;
    if (d.dora) {
      term.dora_scale = d.scale.data();
      term.dora_norm = d.norm.data();
    }
    p.terms.push_back(term);
  }
  return p;
}

// a [m, k] times b [p, k]^T.
Doubles times_transposed(const Doubles& a, const Doubles& b, int64_t m, int64_t k, int64_t p) {
  Doubles c(static_cast<size_t>(m * p), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < p; ++j)
      for (int64_t l = 0; l < k; ++l) c[i * p + j] += a[i * k + l] * b[j * k + l];
  return c;
}

// PEFT's Linear.forward in double. inputs: x, W (as stored), bias, then A, B, magnitude of every term. A DoRA term
// scales the chain so far (without the bias) and its own delta by m / c, c the detached norm held constant.
double linear_loss(const LinearProblem& p, const Inputs& in) {
  Doubles w(static_cast<size_t>(p.out * p.in));
  for (int64_t j = 0; j < p.out; ++j)
    for (int64_t k = 0; k < p.in; ++k) w[j * p.in + k] = p.w_at(in[1], j, k);
  Doubles z = times_transposed(in[0], w, p.n, p.in, p.out);
  for (size_t t = 0; t < p.data.size(); ++t) {
    const TermData& d = p.data[t];
    const Doubles h = times_transposed(in[0], in[3 + 3 * t], p.n, p.in, d.r);
    const Doubles delta = times_transposed(h, in[4 + 3 * t], p.n, d.r, p.out);
    for (int64_t i = 0; i < p.n; ++i)
      for (int64_t j = 0; j < p.out; ++j) {
        double& v = z[i * p.out + j];
        v += d.scaling * delta[i * p.out + j];
        if (d.dora) v *= in[5 + 3 * t][j] / d.norm[j];
      }
  }
  if (!p.bias.empty())
    for (int64_t i = 0; i < p.n; ++i)
      for (int64_t j = 0; j < p.out; ++j) z[i * p.out + j] += in[2][j];
  return dot(z, p.dy);
}

struct LinearCase {
  const char* name;
  WeightLayout layout;
  bool bias;
  std::vector<bool> dora_terms;  // one entry per LoRA term
  bool accumulate_dx;
};

TEST_P(BackwardOps, LinearMatchesFiniteDifferences) {
  const std::vector<LinearCase> cases = {
      {"outin_bias", WeightLayout::OutIn, true, {}, false},
      {"inout_lora", WeightLayout::InOut, false, {false}, true},
      {"outin_two_lora", WeightLayout::OutIn, true, {false, false}, false},
      {"outin_lora_then_dora", WeightLayout::OutIn, true, {false, true}, true},
      {"inout_dora", WeightLayout::InOut, true, {true}, false},
  };
  uint32_t seed = 100;
  for (const LinearCase& c : cases) {
    SCOPED_TRACE(c.name);
    const LinearProblem p = make_linear(c.layout, c.bias, c.dora_terms, seed += 50);
    // Weight gradients accumulate onto 0.25; dx accumulates onto a prefill or overwrites garbage.
    constexpr float kPrefill = 0.25f;
    std::vector<float> dw(p.w.size(), kPrefill), db(p.bias.size(), kPrefill);
    const std::vector<float> dx_prefill = c.accumulate_dx ? random_floats(p.x.size(), seed + 7)
                                                          : std::vector<float>(p.x.size(), kGarbage);
    std::vector<float> dx = dx_prefill;
    std::vector<std::vector<float>> da, dbt, dm;
    std::vector<float*> da_ptr, db_ptr, dm_ptr;
    for (const TermData& d : p.data) {
      da.emplace_back(d.a.size(), kPrefill);
      dbt.emplace_back(d.b.size(), kPrefill);
      dm.emplace_back(d.dora ? p.out : 0, kPrefill);
    }
    for (size_t t = 0; t < p.data.size(); ++t) {
      da_ptr.push_back(da[t].data());
      db_ptr.push_back(dbt[t].data());
      dm_ptr.push_back(p.data[t].dora ? dm[t].data() : nullptr);
    }
    ops::LinearGrads grads;
    grads.weight = dw.data();
    grads.bias = c.bias ? db.data() : nullptr;
    grads.lora_A = da_ptr.data();
    grads.lora_B = db_ptr.data();
    grads.magnitude = dm_ptr.data();
    const WeightMatrix w = p.weight();
    if (dispatched())
      ops::linear_backward(ctx(), p.x.data(), p.n, w, p.dy.data(), dx.data(), c.accumulate_dx, grads);
    else
      ops::reference::linear_backward(p.x.data(), p.n, w, p.dy.data(), dx.data(), c.accumulate_dx, grads);

    Inputs inputs = {to_doubles(p.x), to_doubles(p.w), to_doubles(p.bias)};
    for (const TermData& d : p.data) {
      inputs.push_back(to_doubles(d.a));
      inputs.push_back(to_doubles(d.b));
      inputs.push_back(to_doubles(d.magnitude));
    }
    const Functional f = [&p](const Inputs& in) { return linear_loss(p, in); };
    const std::string name = std::string("linear.") + c.name;
    if (c.accumulate_dx)
      for (size_t i = 0; i < dx.size(); ++i) dx[i] -= dx_prefill[i];
    expect_fd(name + ".dx", f, inputs, 0, dx);
    expect_fd(name + ".dW", f, inputs, 1, dw, kPrefill);
    if (c.bias) expect_fd(name + ".db", f, inputs, 2, db, kPrefill);
    for (size_t t = 0; t < p.data.size(); ++t) {
      const std::string term = name + ".term" + std::to_string(t);
      expect_fd(term + ".dA", f, inputs, 3 + 3 * t, da[t], kPrefill);
      expect_fd(term + ".dB", f, inputs, 4 + 3 * t, dbt[t], kPrefill);
      if (p.data[t].dora) expect_fd(term + ".dmagnitude", f, inputs, 5 + 3 * t, dm[t], kPrefill);
    }
  }
}

// dx through a bf16, q8 or q4 base weight (with a LoRA term, as LoRA on a quantized model runs) equals dx through
// the float weight those bytes hold: the backward reads the same weights the forward does.
TEST_P(BackwardOps, LinearDxThroughStoredFormatsEqualsDequantized) {
  const int64_t n = 4, in = 70, out = 20, r = 3;  // cols past one quant group, rows past one tile
  const std::vector<float> x = random_floats(n * in, 31), values = random_floats(out * in, 32, 0.3f);
  const std::vector<float> dy = random_floats(n * out, 33);
  const std::vector<float> a = random_floats(r * in, 34, 0.3f), b = random_floats(out * r, 35, 0.3f);
  LoraTerm term;
  term.lora_A = WeightMatrix{DType::F32, a.data(), r, in};
  term.lora_B = WeightMatrix{DType::F32, b.data(), out, r};
  term.scaling = 0.5f;
  for (DType format : {DType::BF16, DType::Q8, DType::Q4}) {
    SCOPED_TRACE(dtype_name(format));
    std::vector<uint8_t> bytes;
    if (is_quantized(format)) {
      bytes.resize(quant_matrix_bytes(format, out, in));
      quantize_rows(format, values.data(), out, in, 0, out, bytes.data());
    } else {
      bytes = testing::store_as(format, values).bytes;
    }
    const WeightMatrix stored{format, bytes.data(), out, in, WeightLayout::OutIn, LoraTerms{&term, 1}};
    std::vector<float> dense(values.size());
    for (int64_t j = 0; j < out; ++j) {
      if (is_quantized(format)) dequantize_row(stored, j, dense.data() + j * in);
      else convert_to_f32(format, bytes.data() + j * in * 2, dense.data() + j * in, static_cast<size_t>(in));
    }
    const WeightMatrix as_float{DType::F32, dense.data(), out, in, WeightLayout::OutIn, LoraTerms{&term, 1}};
    std::vector<float> dx_stored(x.size()), dx_float(x.size());
    for (const auto& [w, dx] : {std::pair{&stored, &dx_stored}, std::pair{&as_float, &dx_float}}) {
      if (dispatched()) ops::linear_backward(ctx(), x.data(), n, *w, dy.data(), dx->data(), false, {});
      else ops::reference::linear_backward(x.data(), n, *w, dy.data(), dx->data(), false, {});
    }
    expect_gradient(std::string("linear.") + dtype_name(format) + ".dx", dx_stored, to_doubles(dx_float));
  }
}

// ---- norms and activations ----

// Qwen3VLTextRMSNorm in double: w * x / sqrt(mean(x^2) + eps). inputs: x, w.
double rms_norm_loss(const Inputs& in, int64_t dim, double eps, const std::vector<float>& r) {
  double loss = 0.0;
  for (size_t row = 0; row * dim < in[0].size(); ++row) {
    const double* x = in[0].data() + row * dim;
    double sum = 0.0;
    for (int64_t d = 0; d < dim; ++d) sum += x[d] * x[d];
    const double inv = 1.0 / std::sqrt(sum / static_cast<double>(dim) + eps);
    for (int64_t d = 0; d < dim; ++d) loss += in[1][d] * x[d] * inv * r[row * dim + d];
  }
  return loss;
}

TEST_P(BackwardOps, RmsNormMatchesFiniteDifferences) {
  // A hidden-state norm, and q_norm over rows = tokens * heads of head_dim.
  for (const auto& [name, rows, dim] : {std::tuple{"hidden", 4, 16}, std::tuple{"q_norm", 3 * 4, 8}}) {
    const float eps = 1e-6f;
    const std::vector<float> x = random_floats(rows * dim, 41), w = random_floats(dim, 42);
    const std::vector<float> dy = random_floats(rows * dim, 43);
    std::vector<float> dx(x.size(), kGarbage), dw(dim, 0.5f);
    const WeightVector weight{DType::F32, w.data(), dim};
    if (dispatched()) ops::rms_norm_backward(ctx(), x.data(), rows, dim, weight, eps, dy.data(), dx.data(), dw.data());
    else ops::reference::rms_norm_backward(x.data(), rows, dim, weight, eps, dy.data(), dx.data(), dw.data());
    const Functional f = [&, dim = dim](const Inputs& in) { return rms_norm_loss(in, dim, eps, dy); };
    const Inputs inputs = {to_doubles(x), to_doubles(w)};
    expect_fd(std::string("rms_norm.") + name + ".dx", f, inputs, 0, dx);
    expect_fd(std::string("rms_norm.") + name + ".dweight", f, inputs, 1, dw, 0.5);
  }
}

// nn.LayerNorm in double (biased variance). inputs: x, w, b.
double layer_norm_loss(const Inputs& in, int64_t dim, double eps, const std::vector<float>& r) {
  double loss = 0.0;
  for (size_t row = 0; row * dim < in[0].size(); ++row) {
    const double* x = in[0].data() + row * dim;
    double mean = 0.0, var = 0.0;
    for (int64_t d = 0; d < dim; ++d) mean += x[d] / static_cast<double>(dim);
    for (int64_t d = 0; d < dim; ++d) var += (x[d] - mean) * (x[d] - mean) / static_cast<double>(dim);
    const double rstd = 1.0 / std::sqrt(var + eps);
    for (int64_t d = 0; d < dim; ++d) loss += ((x[d] - mean) * rstd * in[1][d] + in[2][d]) * r[row * dim + d];
  }
  return loss;
}

TEST_P(BackwardOps, LayerNormMatchesFiniteDifferences) {
  const int64_t rows = 5, dim = 12;
  const float eps = 1e-6f;
  const std::vector<float> x = random_floats(rows * dim, 51, 2.f), w = random_floats(dim, 52);
  const std::vector<float> b = random_floats(dim, 53), dy = random_floats(rows * dim, 54);
  std::vector<float> dx(x.size(), kGarbage), dw(dim, 0.5f), db(dim, 0.5f);
  const WeightVector weight{DType::F32, w.data(), dim}, bias{DType::F32, b.data(), dim};
  if (dispatched())
    ops::layer_norm_backward(ctx(), x.data(), rows, dim, weight, bias, eps, dy.data(), dx.data(), dw.data(), db.data());
  else
    ops::reference::layer_norm_backward(x.data(), rows, dim, weight, bias, eps, dy.data(), dx.data(), dw.data(),
                                        db.data());
  const Functional f = [&](const Inputs& in) { return layer_norm_loss(in, dim, eps, dy); };
  const Inputs inputs = {to_doubles(x), to_doubles(w), to_doubles(b)};
  expect_fd("layer_norm.dx", f, inputs, 0, dx);
  expect_fd("layer_norm.dweight", f, inputs, 1, dw, 0.5);
  expect_fd("layer_norm.dbias", f, inputs, 2, db, 0.5);
}

double gelu_tanh_value(double x) {
  const double k = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}
double gelu_erf_value(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

TEST_P(BackwardOps, GeluMatchesFiniteDifferences) {
  const size_t count = 41;
  const std::vector<float> x = random_floats(count, 61, 2.f), dy = random_floats(count, 62);
  using Backward = void (*)(const float*, const float*, size_t, float*);
  struct Form {
    const char* name;
    double (*value)(double);
    void (*op)(const ops::Context&, const float*, const float*, size_t, float*);
    Backward reference;
  };
  for (const Form& form : {Form{"gelu_tanh", gelu_tanh_value, ops::gelu_tanh_backward, ops::reference::gelu_tanh_backward},
                           Form{"gelu_erf", gelu_erf_value, ops::gelu_erf_backward, ops::reference::gelu_erf_backward}}) {
    std::vector<float> dx(count, kGarbage), in_place = dy;
    if (dispatched()) {
      form.op(ctx(), x.data(), dy.data(), count, dx.data());
      form.op(ctx(), x.data(), in_place.data(), count, in_place.data());
    } else {
      form.reference(x.data(), dy.data(), count, dx.data());
      form.reference(x.data(), in_place.data(), count, in_place.data());
    }
    const Functional f = [&](const Inputs& in) {
      double loss = 0.0;
      for (size_t i = 0; i < count; ++i) loss += form.value(in[0][i]) * dy[i];
      return loss;
    };
    expect_fd(std::string(form.name) + ".dx", f, {to_doubles(x)}, 0, dx);
    EXPECT_EQ(in_place, dx) << form.name << ": dx aliasing dy";
  }
}

TEST_P(BackwardOps, SiluMulMatchesFiniteDifferences) {
  const size_t count = 37;
  const std::vector<float> gate = random_floats(count, 71, 2.f), up = random_floats(count, 72);
  const std::vector<float> dy = random_floats(count, 73);
  std::vector<float> dgate(count, kGarbage), dup(count, kGarbage);
  if (dispatched()) ops::silu_mul_backward(ctx(), gate.data(), up.data(), dy.data(), count, dgate.data(), dup.data());
  else ops::reference::silu_mul_backward(gate.data(), up.data(), dy.data(), count, dgate.data(), dup.data());
  const Functional f = [&](const Inputs& in) {
    double loss = 0.0;
    for (size_t i = 0; i < count; ++i) loss += in[0][i] / (1.0 + std::exp(-in[0][i])) * in[1][i] * dy[i];
    return loss;
  };
  const Inputs inputs = {to_doubles(gate), to_doubles(up)};
  expect_fd("silu_mul.dgate", f, inputs, 0, dgate);
  expect_fd("silu_mul.dup", f, inputs, 1, dup);
}

// ---- rotary and attention ----

// rotate_half rotary in double on x [rows, heads, head_dim] with the float tables as constants.
double rotary_loss(const Doubles& x, int64_t heads, int64_t head_dim, const std::vector<float>& cos,
                   const std::vector<float>& sin, const std::vector<float>& r) {
  const int64_t half = head_dim / 2;
  double loss = 0.0;
  for (size_t e = 0; e < x.size(); ++e) {
    const int64_t d = static_cast<int64_t>(e) % head_dim, row = static_cast<int64_t>(e) / (heads * head_dim);
    const double rotated = d < half ? -x[e + half] : x[e - half];
    loss += (x[e] * cos[row * head_dim + d] + rotated * sin[row * head_dim + d]) * r[e];
  }
  return loss;
}

TEST_P(BackwardOps, RotaryMatchesFiniteDifferences) {
  const int64_t head_dim = 16;
  // Text: interleaved MRoPE on positions of an image span (t, h, w differ); vision: the 2-D axial rotary.
  TextConfig config;
  config.head_dim = head_dim;
  config.rope_theta = 5000000.0;
  config.mrope_section = {2, 3, 3};
  MropePositions positions;
  positions.t = {0, 1, 2, 2, 2, 2, 4};
  positions.h = {0, 1, 2, 2, 3, 3, 4};
  positions.w = {0, 1, 2, 3, 2, 3, 4};
  const std::vector<PatchPosition> patches = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {2, 3}, {5, 4}};
  for (const bool text : {true, false}) {
    const int64_t rows = text ? positions.size() : static_cast<int64_t>(patches.size()), heads = text ? 3 : 2;
    std::vector<float> cos(rows * head_dim), sin(rows * head_dim);
    if (text) TextRotary(config).compute(positions, cos.data(), sin.data(), Precision::F32);
    else VisionRotary(head_dim).compute(patches.data(), rows, cos.data(), sin.data());
    const std::vector<float> x = random_floats(rows * heads * head_dim, 81), dy = random_floats(x.size(), 82);
    std::vector<float> dx = dy;
    if (dispatched()) ops::apply_rotary_backward(ctx(), dx.data(), rows, heads, head_dim, cos.data(), sin.data());
    else ops::reference::apply_rotary_backward(dx.data(), rows, heads, head_dim, cos.data(), sin.data());
    const Functional f = [&](const Inputs& in) { return rotary_loss(in[0], heads, head_dim, cos, sin, dy); };
    expect_fd(text ? "rotary.text_mrope.dx" : "rotary.vision.dx", f, {to_doubles(x)}, 0, dx);
  }
}

struct AttentionProblem {
  ops::AttentionShape shape;
  std::vector<int64_t> cu_seqlens;
  bool causal = true;
  int64_t n() const { return cu_seqlens.back(); }
  float scale() const { return 1.0f / std::sqrt(static_cast<float>(shape.head_dim)); }
};

// eager_attention_forward in double per segment (GQA: query head h reads kv head h / group). inputs: q, k, v.
double attention_loss(const AttentionProblem& p, const Inputs& in, const std::vector<float>& r) {
  const int64_t hd = p.shape.head_dim, heads = p.shape.num_heads, kv_heads = p.shape.num_kv_heads;
  const int64_t group = heads / kv_heads;
  double loss = 0.0;
  for (size_t s = 0; s + 1 < p.cu_seqlens.size(); ++s) {
    const int64_t begin = p.cu_seqlens[s], end = p.cu_seqlens[s + 1];
    for (int64_t i = begin; i < end; ++i)
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t last = p.causal ? i + 1 : end, kv = h / group;
        const double* q = in[0].data() + (i * heads + h) * hd;
        Doubles weights;
        double max_score = -INFINITY, sum = 0.0;
        for (int64_t j = begin; j < last; ++j) {
          double score = 0.0;
          for (int64_t d = 0; d < hd; ++d) score += q[d] * in[1][(j * kv_heads + kv) * hd + d];
          weights.push_back(score * p.scale());
          max_score = std::max(max_score, weights.back());
        }
        for (double& w : weights) sum += (w = std::exp(w - max_score));
        for (int64_t d = 0; d < hd; ++d) {
          double out = 0.0;
          for (int64_t j = begin; j < last; ++j) out += weights[j - begin] / sum * in[2][(j * kv_heads + kv) * hd + d];
          loss += out * r[(i * heads + h) * hd + d];
        }
      }
  }
  return loss;
}

TEST_P(BackwardOps, AttentionMatchesFiniteDifferences) {
  const std::vector<std::pair<const char*, AttentionProblem>> cases = {
      // The text decoder on a packed batch of three samples, GQA 4 query heads over 2 kv heads.
      {"causal_packed_gqa", {{4, 2, 8}, {0, 3, 7, 8}, true}},
      // The vision tower: full attention inside each image / temporal slice.
      {"vision_segments", {{2, 2, 8}, {0, 4, 9}, false}},
  };
  for (const auto& [name, p] : cases) {
    const int64_t n = p.n(), q_size = n * p.shape.num_heads * p.shape.head_dim;
    const int64_t kv_size = n * p.shape.num_kv_heads * p.shape.head_dim;
    const std::vector<float> q = random_floats(q_size, 91), k = random_floats(kv_size, 92);
    const std::vector<float> v = random_floats(kv_size, 93), dout = random_floats(q_size, 94);
    std::vector<float> dq(q_size, kGarbage), dk(kv_size, kGarbage), dv(kv_size, kGarbage);
    const int64_t segments = static_cast<int64_t>(p.cu_seqlens.size()) - 1;
    if (dispatched())
      ops::attention_backward(ctx(), q.data(), k.data(), v.data(), n, p.cu_seqlens.data(), segments, p.causal, p.shape,
                              p.scale(), dout.data(), dq.data(), dk.data(), dv.data());
    else
      ops::reference::attention_backward(q.data(), k.data(), v.data(), n, p.cu_seqlens.data(), segments, p.causal,
                                         p.shape, p.scale(), dout.data(), dq.data(), dk.data(), dv.data());
    const Functional f = [&, &p = p](const Inputs& in) { return attention_loss(p, in, dout); };
    const Inputs inputs = {to_doubles(q), to_doubles(k), to_doubles(v)};
    const std::string prefix = std::string("attention.") + name;
    expect_fd(prefix + ".dq", f, inputs, 0, dq);
    expect_fd(prefix + ".dk", f, inputs, 1, dk);
    expect_fd(prefix + ".dv", f, inputs, 2, dv);
  }
}

// ---- cross-entropy and embedding ----

TEST_P(BackwardOps, CrossEntropyMatchesFiniteDifferences) {
  const int64_t rows = 6, vocab = 11;
  const std::vector<int32_t> targets = {3, -100, 0, 10, -100, 5};
  const float grad_scale = 0.25f;  // 1 / supervised rows, as a mean loss scales it
  const std::vector<float> logits = random_floats(rows * vocab, 101, 3.f);
  const auto run = [&](const float* z, float* dz, int64_t* count) {
    return dispatched() ? ops::cross_entropy(ctx(), z, rows, vocab, targets.data(), grad_scale, dz, count)
                        : ops::reference::cross_entropy(z, rows, vocab, targets.data(), grad_scale, dz, count);
  };
  std::vector<float> dlogits(logits.size(), kGarbage), in_place = logits;
  int64_t count = -1;
  const double loss = run(logits.data(), dlogits.data(), &count);
  run(in_place.data(), in_place.data(), nullptr);

  const auto sum_loss = [&](const Doubles& z) {  // sum over supervised rows of logsumexp(z) - z[target], double
    double total = 0.0;
    for (int64_t row = 0; row < rows; ++row) {
      if (targets[row] == -100) continue;
      double max_value = -INFINITY, sum = 0.0;
      for (int64_t j = 0; j < vocab; ++j) max_value = std::max(max_value, z[row * vocab + j]);
      for (int64_t j = 0; j < vocab; ++j) sum += std::exp(z[row * vocab + j] - max_value);
      total += max_value + std::log(sum) - z[row * vocab + targets[row]];
    }
    return total;
  };
  EXPECT_EQ(count, 4);
  EXPECT_NEAR(loss, sum_loss(to_doubles(logits)), 1e-6 * std::fabs(loss));
  const Functional f = [&](const Inputs& in) { return grad_scale * sum_loss(in[0]); };
  expect_fd("cross_entropy.dlogits", f, {to_doubles(logits)}, 0, dlogits);
  for (int64_t row : {1, 4})
    for (int64_t j = 0; j < vocab; ++j) EXPECT_EQ(dlogits[row * vocab + j], 0.f) << "ignored row " << row;
  EXPECT_EQ(in_place, dlogits) << "dlogits aliasing logits";
  for (int32_t bad : {int32_t{11}, int32_t{-1}}) {
    const std::vector<int32_t> wrong = {3, bad};
    EXPECT_THROW(ops::reference::cross_entropy(logits.data(), 2, vocab, wrong.data(), 1.f, nullptr, nullptr), Error);
    EXPECT_THROW(ops::cross_entropy(ctx(), logits.data(), 2, vocab, wrong.data(), 1.f, nullptr, nullptr), Error);
  }
}

INSTANTIATE_TEST_SUITE_P(, BackwardOps, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Dispatched" : "Reference";
                         });

// A gather: dtable[id] gets the sum of its rows' dy, exactly as the float adds run; negative ids and padding_idx
// add nothing (nn.Embedding(padding_idx) leaves that row's gradient zero), so no finite differences are needed.
TEST(BackwardOpsEmbedding, AccumulatesRowsSkippingPaddingAndNegativeIds) {
  const int64_t vocab = 8, dim = 5, padding = 0;
  const std::vector<int32_t> ids = {2, -1, 5, 2, 0, 7, -3, 2};
  const std::vector<float> dy = random_floats(ids.size() * dim, 111);
  std::vector<float> dtable(vocab * dim, 0.5f), expected = dtable;
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] >= 0 && ids[i] != padding)
      for (int64_t d = 0; d < dim; ++d) expected[ids[i] * dim + d] += dy[i * dim + d];
  ops::embedding_backward(ids.data(), static_cast<int64_t>(ids.size()), dy.data(), dim, dtable.data(), padding);
  EXPECT_EQ(dtable, expected);
  EXPECT_EQ(dtable[padding * dim], 0.5f);
}

// ---- the MoE block ----

// Qwen3VLMoeTextSparseMoeBlock in double with the picks of the float forward held fixed (torch.topk's indices
// carry no gradient). inputs: x, router weight [E, hidden], gate_up [E, hidden, 2 Im], down [E, Im, hidden].
double moe_loss(const Inputs& in, const TextConfig& c, const std::vector<int32_t>& picks, const std::vector<float>& r) {
  const int64_t hidden = c.hidden_size, experts = c.num_experts, k = c.num_experts_per_tok;
  const int64_t im = c.moe_intermediate_size, n = static_cast<int64_t>(in[0].size()) / hidden;
  const Doubles logits = times_transposed(in[0], in[1], n, hidden, experts);
  double loss = 0.0;
  for (int64_t t = 0; t < n; ++t) {
    double max_logit = -INFINITY, sum = 0.0, top = 0.0;
    for (int64_t e = 0; e < experts; ++e) max_logit = std::max(max_logit, logits[t * experts + e]);
    for (int64_t e = 0; e < experts; ++e) sum += std::exp(logits[t * experts + e] - max_logit);
    const auto prob = [&](int64_t e) { return std::exp(logits[t * experts + e] - max_logit) / sum; };
    for (int64_t rank = 0; rank < k; ++rank) top += prob(picks[t * k + rank]);
    for (int64_t rank = 0; rank < k; ++rank) {
      const int64_t e = picks[t * k + rank];
      const double* gu = in[2].data() + e * hidden * 2 * im;
      const double* down = in[3].data() + e * im * hidden;
      Doubles act(static_cast<size_t>(im));
      for (int64_t j = 0; j < im; ++j) {
        double g = 0.0, u = 0.0;
        for (int64_t d = 0; d < hidden; ++d) {
          g += in[0][t * hidden + d] * gu[d * 2 * im + j];
          u += in[0][t * hidden + d] * gu[d * 2 * im + im + j];
        }
        act[j] = g / (1.0 + std::exp(-g)) * u;
      }
      for (int64_t d = 0; d < hidden; ++d) {
        double y = 0.0;
        for (int64_t j = 0; j < im; ++j) y += act[j] * down[j * hidden + d];
        loss += prob(e) / top * y * r[t * hidden + d];
      }
    }
  }
  return loss;
}

TEST(BackwardOpsMoe, RouterAndExpertsMatchFiniteDifferences) {
  TextConfig config;
  config.hidden_size = 8;
  config.num_experts = 4;
  config.num_experts_per_tok = 2;
  config.moe_intermediate_size = 6;
  const int64_t n = 6, hidden = 8, experts = 4, im = 6;
  const std::vector<float> x = random_floats(n * hidden, 121), router = random_floats(experts * hidden, 122);
  const std::vector<float> gate_up = random_floats(experts * hidden * 2 * im, 123, 0.5f);
  const std::vector<float> down = random_floats(experts * im * hidden, 124, 0.5f);
  const std::vector<float> dout = random_floats(n * hidden, 125);
  MoeLayerWeights weights;  // the released checkpoints' input-major expert tensors
  weights.gate = WeightMatrix{DType::F32, router.data(), experts, hidden};
  for (int64_t e = 0; e < experts; ++e) {
    weights.gate_up_proj.push_back(
        WeightMatrix{DType::F32, gate_up.data() + e * hidden * 2 * im, 2 * im, hidden, WeightLayout::InOut});
    weights.down_proj.push_back(WeightMatrix{DType::F32, down.data() + e * im * hidden, hidden, im, WeightLayout::InOut});
  }
  std::vector<float> d_router(router.size(), 0.f), d_gate_up(gate_up.size(), 0.f), d_down(down.size(), 0.f);
  MoeLayerGrads grads;
  grads.gate.weight = d_router.data();
  grads.gate_up_proj.resize(experts);
  grads.down_proj.resize(experts);
  for (int64_t e = 0; e < experts; ++e) {
    grads.gate_up_proj[e].weight = d_gate_up.data() + e * hidden * 2 * im;
    grads.down_proj[e].weight = d_down.data() + e * im * hidden;
  }
  const ops::Context ctx{&two_threads(), nullptr};
  MoeTrainActivations acts;
  std::vector<float> out(x.size()), dx(x.size(), kGarbage);
  moe_train_forward(weights, config, x.data(), n, out.data(), acts, ctx);
  moe_train_backward(weights, config, x.data(), n, acts, dout.data(), dx.data(), grads, ctx);
  for (int64_t e = 0; e < experts; ++e) EXPECT_FALSE(acts.group[e].empty()) << "expert " << e << " never picked";

  const Functional f = [&](const Inputs& in) { return moe_loss(in, config, acts.top_index, dout); };
  const Inputs inputs = {to_doubles(x), to_doubles(router), to_doubles(gate_up), to_doubles(down)};
  EXPECT_NEAR(f(inputs), dot(to_doubles(out), dout), 1e-5);  // the double forward is the block the op runs
  expect_fd("moe.dx", f, inputs, 0, dx);
  expect_fd("moe.drouter", f, inputs, 1, d_router);
  expect_fd("moe.dgate_up_proj", f, inputs, 2, d_gate_up);
  expect_fd("moe.ddown_proj", f, inputs, 3, d_down);
}

}  // namespace
}  // namespace qwen3vl
