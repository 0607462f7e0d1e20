// Figures `qwen3vl bench` puts next to its timings: the arithmetic a test does (FLOPs counted from the config), the
// weight bytes one decode step reads, and the machine's streaming-read bandwidth. Pure arithmetic except
// measure_read_bandwidth, so the counts are tested against hand computations.
//
// FLOPs: a matmul of [M, K] by [K, N] counts 2*M*N*K; attention counts its two products over the (query, key)
// pairs it actually uses (causal: key j <= query i; vision: all pairs inside a segment): 2*d per pair each for
// Q K^T and P V. Norms, rotary, softmax, activations, biases and the embedding lookup are left out (they are
// O(n*hidden), well under 1% of either figure).
#pragma once

#include <cstdint>
#include <vector>

#include "io/model_config.h"
#include "model/text_weights.h"
#include "vision/grid_thw.h"

namespace qwen3vl {

class ThreadPool;

// One decoder forward over n new tokens after `past` cached ones, logits of the last row only (pp<n> with past 0).
// Dense: q, k, v, o, gate, up, down per token and layer; MoE: the router plus num_experts_per_tok experts.
double text_forward_flops(const ModelConfig& config, int64_t n, int64_t past = 0);

// The vision tower on these grids: patch embedding, the blocks (qkv, proj, fc1, fc2, attention within each
// temporal slice of h*w patches), the merger and the DeepStack mergers (fc1, fc2 on the merged tokens).
double vision_forward_flops(const ModelConfig& config, const std::vector<GridTHW>& grids);

// Bytes of weights one decode step reads: every layer's matrices and norms, the final norm, the lm_head and one
// embedding row (MoE: the router and num_experts_per_tok / num_experts of the expert bytes, the expected share).
// Q8 / Q4 matrices count their quants and scales. 0 when a matrix has a format of unknown size.
double decode_weight_bytes(const ModelConfig& config, const TextWeights& weights);

// Streaming read of a `bytes`-sized buffer (filled first, so its pages are resident) split over the pool's
// threads, `passes` times; returns the best pass in bytes per second.
double measure_read_bandwidth(ThreadPool& pool, int64_t bytes, int passes = 5);

// The arithmetic peak the kernels can reach, measured: independent chains of back-to-back vdpbf16ps ("bf16", 64
// FLOP per 512-bit instruction) or 256-bit float FMA ("fma", 16 FLOP) on every thread of the pool, in FLOP/s (best
// of `passes`). Call only with a kind the processor supports (the kernel set in use tells: avx512 implies
// AVX512_BF16, avx2 implies FMA); any other kind returns 0.
double measure_peak_flops(ThreadPool& pool, const char* kind, int passes = 3);

}  // namespace qwen3vl
