#!/usr/bin/env python3
"""Dump fp32 PyTorch autograd goldens of the training backward ops (src/ops/backward.h, the MoE block of
src/model/moe_train.h), one small case per op, through the transformers / PEFT modules themselves.

Offline fixture generation only (CI never runs this). Writes OUT_DIR/ops.safetensors (every float tensor, named
"<case>.<tensor>", float32) and OUT_DIR/ops.json (per case: integer inputs and scalar parameters; "versions": torch,
transformers and peft). CPU, one thread, deterministic algorithms, float32, eval mode; the output is byte-identical
from run to run. Per case, with seeded random inputs and a seeded output gradient dy:
    loss = sum(output * dy)        (cross_entropy: grad_scale * F.cross_entropy(..., reduction="sum"))
    loss.backward()
and "<case>.grad.<input>" holds each input's .grad. The cases:
  rms_norm_hidden, rms_norm_qk   Qwen3VLTextRMSNorm on [4, 16], and as q_norm on [3 tokens, 4 heads, 8]
  layer_norm                     nn.LayerNorm(12, eps=1e-6) (the vision blocks' norm1/norm2)
  gelu_tanh, gelu_erf            ACT2FN["gelu_pytorch_tanh"] (Qwen3VLVisionMLP) and nn.GELU() (the patch merger)
  silu_mul                       Qwen3VLTextMLP's act_fn(gate) * up with ACT2FN["silu"]
  rotary_text                    Qwen3VLTextRotaryEmbedding (interleaved MRoPE, mrope_section [2, 3, 3]) cos/sin on
                                 an image-like position span, apply_rotary_pos_emb on q (4 heads) and k (2 heads)
  rotary_vision                  Qwen3VLVisionRotaryEmbedding cos/sin of (row, col) patches,
                                 apply_rotary_pos_emb_vision on q and k (2 heads)
  attention_text                 eager_attention_forward with GQA (4 query heads, 2 kv heads, repeat_kv) and the
                                 block-diagonal causal mask of a packed batch (cu_seqlens [0, 3, 7, 8])
  attention_vision               eager_attention_forward per cu_seqlens chunk, no mask (Qwen3VLVisionAttention)
  cross_entropy                  F.cross_entropy(ignore_index=-100, reduction="sum") * grad_scale
  embedding                      nn.Embedding(8, 5, padding_idx=0)
  linear_lora, linear_two_lora, linear_lora_dora, linear_dora
                                 PEFT (peft 0.21.2) LoRA on a one-nn.Linear module via get_peft_model
                                 (init_lora_weights=False, so B != 0; DoRA magnitudes scaled off their initial norm);
                                 several adapters active at once through base_model.set_adapter([...]). Dumps the
                                 base weight and bias, per term A, B, scaling, and for DoRA the magnitude and PEFT's
                                 detached norm ||W + s B A|| (DoraLinearLayer.get_weight_norm)
  moe                            Qwen3VLMoeTextSparseMoeBlock (grouped_mm experts, 4 experts, top 2; experts in transformers' in-memory
                                 layout gate_up_proj [E, 2 Im, H], down_proj [E, H, Im]); the router's picks dumped

Usage:  $VENV/bin/python scripts/reference/dump_backward_op_goldens.py OUT_DIR   (~3 s)
        (the committed goldens: OUT_DIR = tests/fixtures/train/ops)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from torch import nn
from transformers.activations import ACT2FN
from transformers.models.qwen3_vl import modeling_qwen3_vl as qwen3_vl
from transformers.models.qwen3_vl.configuration_qwen3_vl import Qwen3VLTextConfig, Qwen3VLVisionConfig
from transformers.models.qwen3_vl_moe.configuration_qwen3_vl_moe import Qwen3VLMoeTextConfig
from transformers.models.qwen3_vl_moe.modeling_qwen3_vl_moe import Qwen3VLMoeTextSparseMoeBlock

TENSORS: dict[str, torch.Tensor] = {}
CASES: dict[str, dict] = {}


def randn(*shape, scale=1.0) -> torch.Tensor:
    return (torch.randn(*shape, dtype=torch.float32) * scale).requires_grad_(True)


def record(case: str, inputs: dict[str, torch.Tensor], output: torch.Tensor | None, extra: dict | None = None,
           params: dict | None = None) -> None:
    """Backpropagates sum(output * dy) (or an already scalar output) and stores inputs, dy and the grads."""
    if output is not None:
        dy = torch.randn(output.shape, dtype=torch.float32)
        (output * dy).sum().backward()
        TENSORS[f"{case}.dy"] = dy
    for name, t in inputs.items():
        TENSORS[f"{case}.{name}"] = t.detach().clone()
        if t.grad is not None:
            TENSORS[f"{case}.grad.{name}"] = t.grad.detach().clone()
    for name, t in (extra or {}).items():
        TENSORS[f"{case}.{name}"] = t.detach().clone()
    CASES[case] = params or {}


def dump_norms() -> None:
    torch.manual_seed(1)
    for case, shape in (("rms_norm_hidden", (4, 16)), ("rms_norm_qk", (3, 4, 8))):
        norm = qwen3_vl.Qwen3VLTextRMSNorm(shape[-1], eps=1e-6)
        with torch.no_grad():
            norm.weight.copy_(1.0 + 0.5 * torch.randn(shape[-1]))
        x = randn(*shape)
        record(case, {"x": x, "weight": norm.weight}, norm(x), params={"eps": norm.variance_epsilon})
    torch.manual_seed(2)
    ln = nn.LayerNorm(12, eps=1e-6)
    with torch.no_grad():
        ln.weight.copy_(1.0 + 0.5 * torch.randn(12))
        ln.bias.copy_(torch.randn(12))
    x = randn(5, 12, scale=2.0)
    record("layer_norm", {"x": x, "weight": ln.weight, "bias": ln.bias}, ln(x), params={"eps": ln.eps})


def dump_activations() -> None:
    torch.manual_seed(3)
    for case, act in (("gelu_tanh", ACT2FN["gelu_pytorch_tanh"]), ("gelu_erf", nn.GELU())):
        x = randn(41, scale=2.0)
        record(case, {"x": x}, act(x))
    gate, up = randn(37, scale=2.0), randn(37)
    record("silu_mul", {"gate": gate, "up": up}, ACT2FN["silu"](gate) * up)


def dump_rotary() -> None:
    torch.manual_seed(4)
    text_config = Qwen3VLTextConfig(head_dim=16, num_attention_heads=4, num_key_value_heads=2, rope_parameters={
        "rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [2, 3, 3], "mrope_interleaved": True})
    positions = torch.tensor([[0, 1, 2, 2, 2, 2, 4], [0, 1, 2, 2, 3, 3, 4], [0, 1, 2, 3, 2, 3, 4]])  # t, h, w
    q, k = randn(7, 4, 16), randn(7, 2, 16)  # [seq, heads, head_dim] as the C++ engine holds them
    cos, sin = qwen3_vl.Qwen3VLTextRotaryEmbedding(text_config)(q, positions[:, None, :])
    q_embed, k_embed = qwen3_vl.apply_rotary_pos_emb(q.transpose(0, 1)[None], k.transpose(0, 1)[None], cos, sin)
    out = torch.cat([q_embed[0].transpose(0, 1).reshape(-1), k_embed[0].transpose(0, 1).reshape(-1)])
    record("rotary_text", {"q": q, "k": k}, out, extra={"cos": cos[0], "sin": sin[0]},
           params={"positions": positions.tolist()})

    vision_config = Qwen3VLVisionConfig(hidden_size=32, num_heads=2)
    patches = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1], [2, 3], [5, 4]])  # (row, col)
    q, k = randn(6, 2, 16), randn(6, 2, 16)
    cos, sin = qwen3_vl.Qwen3VLVisionRotaryEmbedding(vision_config)(q, patches)
    q_embed, k_embed = qwen3_vl.apply_rotary_pos_emb_vision(q, k, cos, sin)
    record("rotary_vision", {"q": q, "k": k}, torch.cat([q_embed.reshape(-1), k_embed.reshape(-1)]),
           extra={"cos": cos, "sin": sin}, params={"patches": patches.tolist()})


class AttentionModule(nn.Module):
    """What eager_attention_forward reads off its module."""

    def __init__(self, groups: int):
        super().__init__()
        self.num_key_value_groups = groups


def block_causal_mask(cu_seqlens: list[int]) -> torch.Tensor:
    n = cu_seqlens[-1]
    allowed = torch.zeros(n, n, dtype=torch.bool)
    for begin, end in zip(cu_seqlens, cu_seqlens[1:]):
        allowed[begin:end, begin:end] = torch.tril(torch.ones(end - begin, end - begin, dtype=torch.bool))
    mask = torch.zeros(n, n).masked_fill(~allowed, torch.finfo(torch.float32).min)
    return mask[None, None]


def dump_attention() -> None:
    torch.manual_seed(5)
    cu, heads, kv_heads, hd = [0, 3, 7, 8], 4, 2, 8
    q, k, v = randn(8, heads, hd), randn(8, kv_heads, hd), randn(8, kv_heads, hd)
    out, _ = qwen3_vl.eager_attention_forward(AttentionModule(heads // kv_heads).eval(), q.transpose(0, 1)[None],
                                              k.transpose(0, 1)[None], v.transpose(0, 1)[None],
                                              block_causal_mask(cu), scaling=hd ** -0.5)
    record("attention_text", {"q": q, "k": k, "v": v}, out[0].reshape(8, heads * hd),
           params={"cu_seqlens": cu, "causal": True, "num_heads": heads, "num_kv_heads": kv_heads, "head_dim": hd,
                   "scale": hd ** -0.5})

    cu, heads, hd = [0, 4, 9], 2, 8
    q, k, v = randn(9, heads, hd), randn(9, heads, hd), randn(9, heads, hd)
    chunks = []
    for begin, end in zip(cu, cu[1:]):  # Qwen3VLVisionAttention: one eager call per chunk, no mask
        part = [t[begin:end].transpose(0, 1)[None] for t in (q, k, v)]
        o, _ = qwen3_vl.eager_attention_forward(AttentionModule(1).eval(), *part, None, scaling=hd ** -0.5)
        chunks.append(o[0].reshape(end - begin, heads * hd))
    record("attention_vision", {"q": q, "k": k, "v": v}, torch.cat(chunks),
           params={"cu_seqlens": cu, "causal": False, "num_heads": heads, "num_kv_heads": heads, "head_dim": hd,
                   "scale": hd ** -0.5})


def dump_loss_and_embedding() -> None:
    torch.manual_seed(6)
    logits = randn(6, 11, scale=3.0)
    targets = [3, -100, 0, 10, -100, 5]
    grad_scale = 0.25
    loss = nn.functional.cross_entropy(logits, torch.tensor(targets), ignore_index=-100, reduction="sum")
    (loss * grad_scale).backward()
    record("cross_entropy", {"logits": logits}, None,
           params={"targets": targets, "grad_scale": grad_scale, "loss": loss.item()})

    embedding = nn.Embedding(8, 5, padding_idx=0)
    ids = [2, 5, 2, 0, 7, 2]
    record("embedding", {"weight": embedding.weight}, embedding(torch.tensor(ids)),
           params={"ids": ids, "padding_idx": 0})


class OneLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(10, 7)

    def forward(self, x):
        return self.proj(x)


# case -> adapters in chain order: (name, r, lora_alpha, use_dora)
LINEAR_CASES = {
    "linear_lora": [("default", 4, 8, False)],
    "linear_two_lora": [("default", 3, 6, False), ("second", 2, 2, False)],
    "linear_lora_dora": [("default", 3, 6, False), ("second", 2, 4, True)],
    "linear_dora": [("default", 4, 8, True)],
}


def dump_linear(case: str, adapters: list, seed: int) -> None:
    torch.manual_seed(seed)
    base = OneLinear()
    model = None
    for name, r, alpha, dora in adapters:
        config = LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], use_dora=dora, init_lora_weights=False)
        if model is None:
            model = get_peft_model(base, config, adapter_name=name)
        else:
            model.add_adapter(name, config)
    model.base_model.set_adapter([a[0] for a in adapters])
    layer = model.base_model.model.proj
    layer.eval()
    inputs = {"weight": layer.base_layer.weight, "bias": layer.base_layer.bias}
    extra, scalings = {}, []
    for t, (name, _, _, dora) in enumerate(adapters):
        inputs[f"lora_A{t}"] = layer.lora_A[name].weight
        inputs[f"lora_B{t}"] = layer.lora_B[name].weight
        scalings.append(layer.scaling[name])
        if dora:
            magnitude = layer.lora_magnitude_vector[name]
            with torch.no_grad():  # off its initial value ||W + s B A||, so that dora_scale != 1
                magnitude.weight.mul_(1.0 + 0.2 * torch.randn(magnitude.weight.shape))
                lora_weight = layer.lora_B[name].weight @ layer.lora_A[name].weight
                extra[f"dora_norm{t}"] = magnitude.get_weight_norm(layer.base_layer.weight, lora_weight,
                                                                   layer.scaling[name])
            inputs[f"magnitude{t}"] = magnitude.weight
    for p in inputs.values():
        p.requires_grad_(True)
    x = randn(3, 10)
    inputs = {"x": x, **inputs}
    record(case, inputs, model(x), extra=extra, params={"scalings": scalings, "dora": [a[3] for a in adapters]})


def dump_moe() -> None:
    torch.manual_seed(13)
    config = Qwen3VLMoeTextConfig(hidden_size=8, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=8,
                                  hidden_act="silu")
    config._experts_implementation = "grouped_mm"  # what from_pretrained picks on CPU (model/moe.h)
    block = Qwen3VLMoeTextSparseMoeBlock(config).eval()
    with torch.no_grad():
        block.gate.weight.copy_(torch.randn(4, 8))
        block.experts.gate_up_proj.copy_(0.5 * torch.randn(4, 16, 8))
        block.experts.down_proj.copy_(0.5 * torch.randn(4, 8, 8))
    x = randn(6, 8)
    _, _, picks = block.gate(x.detach())
    record("moe", {"x": x, "router": block.gate.weight, "gate_up_proj": block.experts.gate_up_proj,
                   "down_proj": block.experts.down_proj}, block(x[None])[0],
           params={"top_index": picks.tolist(), "hidden_size": 8, "num_experts": 4, "num_experts_per_tok": 2,
                   "moe_intermediate_size": 8})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    dump_norms()
    dump_activations()
    dump_rotary()
    dump_attention()
    dump_loss_and_embedding()
    for seed, (case, adapters) in enumerate(LINEAR_CASES.items(), start=20):
        dump_linear(case, adapters, seed)
    dump_moe()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    # No safetensors metadata: its key order is not stable from run to run, so the versions go to ops.json.
    save_file({k: v.contiguous() for k, v in TENSORS.items()}, args.out_dir / "ops.safetensors")
    CASES["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                         "peft": peft.__version__}
    lines = [f"  {json.dumps(case)}: {json.dumps(CASES[case], sort_keys=True)}" for case in sorted(CASES)]
    (args.out_dir / "ops.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")


if __name__ == "__main__":
    main()
