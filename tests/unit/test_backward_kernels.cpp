// The dispatched backward ops (ops/cpu/dispatch_backward.cpp, linear_backward.cpp, attention_backward.cpp) against
// their scalar references, and against themselves at another thread count: every op on 1 and on 3 threads must give
// the same bits (each output is summed in a fixed order by one thread, whatever the split), with each kernel set
// the processor runs. Sizes are chosen so that every op is actually split over the three threads (element counts
// past the split threshold, segments and heads enough for several tasks, linears past one column piece).
//
// Reference bound: relative L2 <= 1e-6 and max |diff| <= 1e-5 * max(1, max |reference|). The kernels sum in float
// where the references sum in double; over these sums (at most ~200 terms) float rounding stays near 1e-7 relative
// (one case with longer sums states its own bound). The measured errors are recorded as test properties.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include "core/quant_layout.h"
#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "ops/backward.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace {

using testing::random_floats;
using Floats = std::vector<float>;

// One op on fresh, seeded inputs: ctx null runs the reference. Returns every output (written and accumulated
// gradients, the loss as raw bits) laid end to end.
struct OpCase {
  std::string name;
  std::function<Floats(const ops::Context*)> run;
  double rel_l2 = 1e-6;  // the reference bound (max |diff| gets ten times it)
};

void append(Floats& all, const Floats& part) { all.insert(all.end(), part.begin(), part.end()); }

// ---- linear ----

struct LinearSetup {
  int64_t n = 0, in = 0, out = 0;
  DType dtype = DType::F32;
  WeightLayout layout = WeightLayout::OutIn;
  bool weight_grad = false, bias_grad = false, accumulate_dx = false, lora = false, dora = false;
  uint32_t seed = 1;
};

Floats run_linear(const LinearSetup& s, const ops::Context* ctx) {
  const Floats x = random_floats(s.n * s.in, s.seed), dy = random_floats(s.n * s.out, s.seed + 1);
  const Floats values = random_floats(s.out * s.in, s.seed + 2, 0.3f);
  std::vector<uint8_t> bytes;
  if (is_quantized(s.dtype)) {
    bytes.resize(quant_matrix_bytes(s.dtype, s.out, s.in));
    quantize_rows(s.dtype, values.data(), s.out, s.in, 0, s.out, bytes.data());
  } else {
    bytes = testing::store_as(s.dtype, values).bytes;  // read as [out, in] or [in, out] per layout
  }
  // Two terms: plain LoRA (r 4) then, when asked, DoRA (r 3) with its scale, norm and magnitude gradient.
  const int64_t ranks[2] = {4, 3};
  std::vector<Floats> a(2), b(2), da(2), db(2);
  const Floats dora_scale = random_floats(s.out, s.seed + 3, 0.1f), dora_norm(s.out, 2.5f);
  Floats f(s.out), dm = random_floats(s.out, s.seed + 4);
  for (int64_t j = 0; j < s.out; ++j) f[j] = 1.0f + dora_scale[j];
  LoraTerm terms[2];
  const int count = s.lora ? (s.dora ? 2 : 1) : 0;
  float* da_ptr[2] = {nullptr, nullptr};
  float* db_ptr[2] = {nullptr, nullptr};
  float* dm_ptr[2] = {nullptr, nullptr};
  for (int t = 0; t < count; ++t) {
    a[t] = random_floats(ranks[t] * s.in, s.seed + 10 + t, 0.3f);
    b[t] = random_floats(s.out * ranks[t], s.seed + 20 + t, 0.3f);
    da[t] = random_floats(a[t].size(), s.seed + 30 + t);
    db[t] = random_floats(b[t].size(), s.seed + 40 + t);
    terms[t].lora_A = WeightMatrix{DType::F32, a[t].data(), ranks[t], s.in};
    terms[t].lora_B = WeightMatrix{DType::F32, b[t].data(), s.out, ranks[t]};
    terms[t].scaling = t == 0 ? 2.0f : 0.5f;
    da_ptr[t] = da[t].data();
    db_ptr[t] = db[t].data();
  }
  if (s.dora) {
    terms[1].dora_scale = f.data();
    terms[1].dora_norm = dora_norm.data();
    dm_ptr[1] = dm.data();
  }
  const WeightMatrix w{s.dtype, bytes.data(), s.out, s.in, s.layout, LoraTerms{terms, count}};
  Floats dx = random_floats(x.size(), s.seed + 5), dw = random_floats(values.size(), s.seed + 6);
  Floats dbias = random_floats(s.out, s.seed + 7);
  ops::LinearGrads grads;
  grads.weight = s.weight_grad ? dw.data() : nullptr;
  grads.bias = s.bias_grad ? dbias.data() : nullptr;
  if (count) {
    grads.lora_A = da_ptr;
    grads.lora_B = db_ptr;
    grads.magnitude = dm_ptr;
  }
  if (ctx) ops::linear_backward(*ctx, x.data(), s.n, w, dy.data(), dx.data(), s.accumulate_dx, grads);
  else ops::reference::linear_backward(x.data(), s.n, w, dy.data(), dx.data(), s.accumulate_dx, grads);
  Floats all = dx;
  if (s.weight_grad) append(all, dw);
  if (s.bias_grad) append(all, dbias);
  for (int t = 0; t < count; ++t) {
    append(all, da[t]);
    append(all, db[t]);
  }
  if (s.dora) append(all, dm);
  return all;
}

std::vector<OpCase> linear_cases() {
  std::vector<OpCase> cases;
  auto add = [&](const std::string& name, LinearSetup s, double rel_l2 = 1e-6) {
    cases.push_back({"linear." + name, [s](const ops::Context* ctx) { return run_linear(s, ctx); }, rel_l2});
  };
  LinearSetup full{37, 96, 80, DType::F32, WeightLayout::OutIn, true, true, true, true, true, 100};
  add("f32.lora_dora_all_grads", full);
  LinearSetup in_out{41, 72, 88, DType::F32, WeightLayout::InOut, true, false, false, false, false, 200};
  add("f32.in_out", in_out);
  LinearSetup bf16{29, 64, 96, DType::BF16, WeightLayout::OutIn, true, true, false, true, false, 300};
  add("bf16.lora", bf16);
  LinearSetup few_rows{2, 96, 80, DType::F32, WeightLayout::OutIn, true, false, true, true, false, 400};
  add("f32.two_rows", few_rows);
  for (DType q : {DType::Q8, DType::Q4}) {
    LinearSetup quant{19, 128, 80, q, WeightLayout::OutIn, false, false, true, true, false, 500};
    add(std::string(dtype_name(q)) + ".lora_dx", quant);
  }
  // Past one dequantized block of rows (linear_backward.cpp kBlockFloats = 2^22 floats): dx sums the blocks. Each
  // dx is a float sum of 65584 terms here, whose rounding grows as sqrt(terms): measured 4.4e-6.
  LinearSetup blocks{3, 64, 65536 + 48, DType::Q8, WeightLayout::OutIn, false, false, false, false, false, 600};
  add("q8.row_blocks", blocks, 2e-5);
  // dW = dy^T x past one block of its rows (2^22 floats / 64 cols), and dx through the f32 weight in one product.
  LinearSetup dw_blocks{3, 64, 65536 + 48, DType::F32, WeightLayout::OutIn, true, false, false, false, false, 700};
  add("f32.weight_grad_row_blocks", dw_blocks, 2e-5);
  return cases;
}

// ---- norms, element-wise ops, rotary ----

constexpr size_t kElements = 100003;  // past three pieces of the element-wise split

std::vector<OpCase> row_cases() {
  std::vector<OpCase> cases;
  cases.push_back({"rms_norm", [](const ops::Context* ctx) {
                     const int64_t rows = 1000, dim = 64;  // not a multiple of the 64-row blocks
                     const Floats x = random_floats(rows * dim, 1), dy = random_floats(rows * dim, 2);
                     const Floats w = random_floats(dim, 3);
                     Floats dx(x.size()), dw = random_floats(dim, 4);
                     const WeightVector weight{DType::F32, w.data(), dim};
                     if (ctx) ops::rms_norm_backward(*ctx, x.data(), rows, dim, weight, 1e-6f, dy.data(), dx.data(),
                                                     dw.data());
                     else ops::reference::rms_norm_backward(x.data(), rows, dim, weight, 1e-6f, dy.data(), dx.data(),
                                                            dw.data());
                     append(dx, dw);
                     return dx;
                   }});
  cases.push_back({"layer_norm", [](const ops::Context* ctx) {
                     const int64_t rows = 777, dim = 96;
                     const Floats x = random_floats(rows * dim, 5), dy = random_floats(rows * dim, 6);
                     const Floats w = random_floats(dim, 7), b = random_floats(dim, 8);
                     Floats dx(x.size()), dw = random_floats(dim, 9), db = random_floats(dim, 10);
                     const WeightVector weight{DType::F32, w.data(), dim}, bias{DType::F32, b.data(), dim};
                     if (ctx) ops::layer_norm_backward(*ctx, x.data(), rows, dim, weight, bias, 1e-6f, dy.data(),
                                                       dx.data(), dw.data(), db.data());
                     else ops::reference::layer_norm_backward(x.data(), rows, dim, weight, bias, 1e-6f, dy.data(),
                                                              dx.data(), dw.data(), db.data());
                     append(dx, dw);
                     append(dx, db);
                     return dx;
                   }});
  cases.push_back({"gelu_tanh", [](const ops::Context* ctx) {
                     const Floats x = random_floats(kElements, 11, 2.f), dy = random_floats(kElements, 12);
                     Floats dx(kElements);
                     if (ctx) ops::gelu_tanh_backward(*ctx, x.data(), dy.data(), kElements, dx.data());
                     else ops::reference::gelu_tanh_backward(x.data(), dy.data(), kElements, dx.data());
                     return dx;
                   }});
  cases.push_back({"gelu_erf", [](const ops::Context* ctx) {
                     const Floats x = random_floats(kElements, 13, 2.f), dy = random_floats(kElements, 14);
                     Floats dx(kElements);
                     if (ctx) ops::gelu_erf_backward(*ctx, x.data(), dy.data(), kElements, dx.data());
                     else ops::reference::gelu_erf_backward(x.data(), dy.data(), kElements, dx.data());
                     return dx;
                   }});
  cases.push_back({"silu_mul", [](const ops::Context* ctx) {
                     const Floats gate = random_floats(kElements, 15, 2.f), up = random_floats(kElements, 16);
                     const Floats dy = random_floats(kElements, 17);
                     Floats dgate(kElements), dup(kElements);
                     if (ctx) ops::silu_mul_backward(*ctx, gate.data(), up.data(), dy.data(), kElements, dgate.data(),
                                                     dup.data());
                     else ops::reference::silu_mul_backward(gate.data(), up.data(), dy.data(), kElements, dgate.data(),
                                                            dup.data());
                     append(dgate, dup);
                     return dgate;
                   }});
  cases.push_back({"rotary", [](const ops::Context* ctx) {
                     const int64_t rows = 700, heads = 4, hd = 32;
                     Floats dx = random_floats(rows * heads * hd, 18);
                     const Floats cos = random_floats(rows * hd, 19), sin = random_floats(rows * hd, 20);
                     if (ctx) ops::apply_rotary_backward(*ctx, dx.data(), rows, heads, hd, cos.data(), sin.data());
                     else ops::reference::apply_rotary_backward(dx.data(), rows, heads, hd, cos.data(), sin.data());
                     return dx;
                   }});
  return cases;
}

// ---- attention and cross-entropy ----

OpCase attention_case(const std::string& name, std::vector<int64_t> cu_seqlens, bool causal,
                      ops::AttentionShape shape, uint32_t seed) {
  return {"attention." + name, [=](const ops::Context* ctx) {
            const int64_t n = cu_seqlens.back(), segments = static_cast<int64_t>(cu_seqlens.size()) - 1;
            const int64_t q_size = n * shape.num_heads * shape.head_dim;
            const int64_t kv_size = n * shape.num_kv_heads * shape.head_dim;
            const Floats q = random_floats(q_size, seed), k = random_floats(kv_size, seed + 1);
            const Floats v = random_floats(kv_size, seed + 2), dout = random_floats(q_size, seed + 3);
            Floats dq(q_size), dk(kv_size), dv(kv_size);
            const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
            if (ctx) ops::attention_backward(*ctx, q.data(), k.data(), v.data(), n, cu_seqlens.data(), segments,
                                             causal, shape, scale, dout.data(), dq.data(), dk.data(), dv.data());
            else ops::reference::attention_backward(q.data(), k.data(), v.data(), n, cu_seqlens.data(), segments,
                                                    causal, shape, scale, dout.data(), dq.data(), dk.data(),
                                                    dv.data());
            append(dq, dk);
            append(dq, dv);
            return dq;
          }};
}

OpCase cross_entropy_case() {
  return {"cross_entropy", [](const ops::Context* ctx) {
            const int64_t rows = 300, vocab = 1000;
            const Floats logits = random_floats(rows * vocab, 21, 3.f);
            std::vector<int32_t> targets(rows);
            for (int64_t r = 0; r < rows; ++r) targets[r] = r % 7 == 0 ? -100 : static_cast<int32_t>((r * 37) % vocab);
            Floats dlogits(logits.size());
            int64_t count = 0;
            const double loss = ctx ? ops::cross_entropy(*ctx, logits.data(), rows, vocab, targets.data(), 0.01f,
                                                         dlogits.data(), &count)
                                    : ops::reference::cross_entropy(logits.data(), rows, vocab, targets.data(), 0.01f,
                                                                    dlogits.data(), &count);
            EXPECT_EQ(count, rows - (rows + 6) / 7);
            // The loss relative to its size, so that the reference bound applies to it like to the gradients.
            dlogits.push_back(static_cast<float>(loss / static_cast<double>(count)));
            return dlogits;
          }};
}

std::vector<OpCase> all_cases() {
  std::vector<OpCase> cases = linear_cases();
  for (OpCase& c : row_cases()) cases.push_back(std::move(c));
  // Packed causal text with GQA (segments past one 64-row block), and vision-style full attention per segment.
  cases.push_back(attention_case("causal_gqa", {0, 70, 150, 163}, true, {4, 2, 16}, 30));
  cases.push_back(attention_case("segments", {0, 100, 130, 200}, false, {2, 2, 24}, 40));
  cases.push_back(cross_entropy_case());
  return cases;
}

ThreadPool& pool_of(int threads) {
  static ThreadPool one(1), three(3);
  return threads == 1 ? one : three;
}

TEST(BackwardKernels, SameBitsOnOneAndThreeThreads) {
  for (const ops::cpu::Kernels* kernels : testing::optimized_kernel_sets())
    for (const OpCase& op : all_cases()) {
      SCOPED_TRACE(op.name + " on " + kernels->name);
      const ops::Context one{&pool_of(1), kernels}, three{&pool_of(3), kernels};
      const Floats a = op.run(&one), b = op.run(&three);
      ASSERT_EQ(a.size(), b.size());
      size_t differing = 0;
      for (size_t i = 0; i < a.size(); ++i) differing += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
      EXPECT_EQ(differing, 0u) << "of " << a.size() << " values";
    }
}

TEST(BackwardKernels, MatchTheScalarReference) {
  const std::vector<OpCase> cases = all_cases();
  std::vector<Floats> references;
  for (const OpCase& op : cases) references.push_back(op.run(nullptr));
  for (const ops::cpu::Kernels* kernels : testing::optimized_kernel_sets())
    for (size_t c = 0; c < cases.size(); ++c) {
      SCOPED_TRACE(cases[c].name + " on " + kernels->name);
      const ops::Context ctx{&pool_of(3), kernels};
      const Floats got = cases[c].run(&ctx);
      const Floats& ref = references[c];
      ASSERT_EQ(got.size(), ref.size());
      double diff2 = 0.0, ref2 = 0.0, max_diff = 0.0, max_ref = 0.0;
      for (size_t i = 0; i < ref.size(); ++i) {
        const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
        diff2 += d * d;
        ref2 += static_cast<double>(ref[i]) * ref[i];
        max_diff = std::max(max_diff, std::isnan(d) ? INFINITY : d);
        max_ref = std::max(max_ref, std::fabs(static_cast<double>(ref[i])));
      }
      ASSERT_GT(ref2, 0.0);
      std::ostringstream measured;
      measured << std::setprecision(3) << std::sqrt(diff2 / ref2);
      ::testing::Test::RecordProperty(cases[c].name + "." + kernels->name, measured.str());
      EXPECT_LE(std::sqrt(diff2 / ref2), cases[c].rel_l2);
      EXPECT_LE(max_diff, 10 * cases[c].rel_l2 * std::max(1.0, max_ref));
    }
}

}  // namespace
}  // namespace qwen3vl
