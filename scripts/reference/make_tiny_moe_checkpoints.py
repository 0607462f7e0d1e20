#!/usr/bin/env python3
"""Build the tiny random-weight Qwen3-VL MoE checkpoints under tests/fixtures/models/.

Offline fixture generation only (CI never runs this); companion of make_tiny_checkpoints.py, whose weight
filler and helpers it reuses (a separate script so that the dense checkpoints' bytes cannot change). Uses
transformers' Qwen3VLMoeForConditionalGeneration; deterministic (per-tensor seeded generators, sorted JSON).

Checkpoints (see scripts/reference/README.md):
  tiny-moe-fp32   8 experts, top-2, fp32, tied, 3 layers. Expert tensors in the RELEASED on-disk layout
                  (input-major: gate_up_proj [E, H, 2*Im], down_proj [E, Im, H]) and config.json in the released
                  transformers 4.57 spelling (num_experts, norm_topk_prob, rope_scaling + rope_theta).
  tiny-moe-bf16   8 experts, top-3, bf16, tied, 3 layers. Written by transformers 5.23 save_pretrained as is:
                  expert tensors in its in-memory layout (gate_up_proj [E, 2*Im, H], down_proj [E, H, Im]) and
                  config.json in the transformers 5 spelling (num_local_experts, rope_parameters).

transformers 5.23 loads both: its Transpose(1, 2, check_dims=True) conversion transposes a fused expert tensor
whose shape differs from the in-memory one and keeps one whose shape matches. So H != 2*Im and H != Im here, or
the released layout would be read untransposed (an ambiguity of the format itself).

Usage:  $VENV/bin/python scripts/reference/make_tiny_moe_checkpoints.py [--out DIR] [--no-verify]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import GenerationConfig, Qwen3VLMoeConfig, Qwen3VLMoeForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tiny_checkpoints import (  # noqa: E402
    SMALL_BOS, SMALL_EOS, SMALL_IDS, _gen, fill_weights, to_457_spelling, vision, write_json)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "fixtures" / "models"


def moe_text(tie: bool, experts: int, top_k: int, moe_inter: int) -> dict:
    return dict(
        vocab_size=2048, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
        head_dim=32, intermediate_size=128, moe_intermediate_size=moe_inter, num_experts=experts,
        num_experts_per_tok=top_k, decoder_sparse_step=1, mlp_only_layers=[], norm_topk_prob=True,
        rms_norm_eps=1e-6, max_position_embeddings=262144, hidden_act="silu", attention_bias=False,
        rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [6, 5, 5],
                         "mrope_interleaved": True},
        bos_token_id=SMALL_BOS, eos_token_id=SMALL_EOS, tie_word_embeddings=tie,
    )


GEN = dict(bos_token_id=SMALL_BOS, eos_token_id=[SMALL_EOS, SMALL_BOS], pad_token_id=SMALL_BOS)

CHECKPOINTS = {
    "tiny-moe-fp32": dict(seed=6006, dtype=torch.float32, text=moe_text(True, 8, 2, 40), vision=vision(64),
                          ids=SMALL_IDS, tie=True, layout="released", config_style="4.57", gen=GEN),
    "tiny-moe-bf16": dict(seed=7007, dtype=torch.bfloat16, text=moe_text(True, 8, 3, 40), vision=vision(64),
                          ids=SMALL_IDS, tie=True, layout="transformers5", config_style="5", gen=GEN),
}
EXPERT_TENSORS = ("mlp.experts.gate_up_proj", "mlp.experts.down_proj")


@torch.no_grad()
def fill_moe_weights(model: torch.nn.Module, seed: int) -> None:
    """make_tiny_checkpoints.fill_weights, then the fused expert tensors again with N(0, 1/fan_in) where fan_in is
    the expert's own input width (the last dim in memory), not the product of the trailing dims."""
    fill_weights(model, seed)
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if name.endswith(EXPERT_TENSORS):
            v = torch.randn(tuple(p.shape), generator=_gen(seed, name), dtype=torch.float32) / math.sqrt(p.shape[-1])
            p.copy_(v.to(p.dtype))


def build_model(spec: dict) -> Qwen3VLMoeForConditionalGeneration:
    tc = spec["text"]
    assert tc["hidden_size"] not in (tc["moe_intermediate_size"], 2 * tc["moe_intermediate_size"])
    cfg = Qwen3VLMoeConfig(text_config=dict(tc), vision_config=dict(spec["vision"]),
                           tie_word_embeddings=spec["tie"], **spec["ids"])
    torch.manual_seed(spec["seed"])
    model = Qwen3VLMoeForConditionalGeneration(cfg)
    fill_moe_weights(model, spec["seed"])
    model = model.to(spec["dtype"]).eval()
    return model


def to_released_layout(path: Path) -> None:
    """Rewrite model.safetensors with the fused expert tensors transposed (1, 2): the released input-major layout."""
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for k in tensors:
        if k.endswith(EXPERT_TENSORS):
            tensors[k] = tensors[k].transpose(1, 2).contiguous()
    save_file(tensors, path, metadata=metadata)


def released_config(cfg: dict, dtype_name: str) -> dict:
    """The transformers 4.57 spelling of the released Qwen3-VL-30B-A3B config.json."""
    cfg = to_457_spelling(cfg, dtype_name)
    tc = cfg["text_config"]
    tc["num_experts"] = tc.pop("num_local_experts")
    tc["norm_topk_prob"] = True
    vc = cfg["vision_config"]
    vc["model_type"] = "qwen3_vl_moe"
    return cfg


def save_checkpoint(name: str, spec: dict, out_root: Path) -> Qwen3VLMoeForConditionalGeneration:
    d = out_root / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    model = build_model(spec)
    model.save_pretrained(d, safe_serialization=True)
    if spec["layout"] == "released":
        to_released_layout(d / "model.safetensors")
    cfg = json.loads((d / "config.json").read_text())
    if spec["config_style"] == "4.57":
        cfg = released_config(cfg, "float32" if spec["dtype"] == torch.float32 else "bfloat16")
    write_json(d / "config.json", cfg)
    (d / "generation_config.json").unlink(missing_ok=True)
    GenerationConfig(**spec["gen"]).save_pretrained(d)
    write_json(d / "generation_config.json", json.loads((d / "generation_config.json").read_text()))
    return model


@torch.no_grad()
def verify(name: str, spec: dict, ref: Qwen3VLMoeForConditionalGeneration, out_root: Path) -> None:
    d = out_root / name
    tc = spec["text"]
    E, H, Im = tc["num_experts"], tc["hidden_size"], tc["moe_intermediate_size"]
    with safe_open(d / "model.safetensors", "pt") as f:
        gu = f.get_slice("model.language_model.layers.0.mlp.experts.gate_up_proj").get_shape()
        dn = f.get_slice("model.language_model.layers.0.mlp.experts.down_proj").get_shape()
    if spec["layout"] == "released":
        assert (gu, dn) == ([E, H, 2 * Im], [E, Im, H]), (gu, dn)
    else:
        assert (gu, dn) == ([E, 2 * Im, H], [E, H, Im]), (gu, dn)
    loaded = Qwen3VLMoeForConditionalGeneration.from_pretrained(d, attn_implementation="eager").eval()
    sd_ref, sd_new = ref.state_dict(), loaded.state_dict()
    assert sd_ref.keys() == sd_new.keys(), (name, set(sd_ref) ^ set(sd_new))
    for k in sd_ref:
        assert sd_new[k].dtype == spec["dtype"] and torch.equal(sd_ref[k], sd_new[k]), (name, k)
    ltc = loaded.config.text_config
    assert (ltc.num_experts, ltc.num_experts_per_tok, ltc.moe_intermediate_size) == (E, tc["num_experts_per_tok"], Im)
    assert bool(loaded.config.tie_word_embeddings) == spec["tie"]
    if spec["config_style"] == "4.57":
        # the released spelling must load exactly like the native transformers-5 config
        with tempfile.TemporaryDirectory() as tmp:
            for f in d.iterdir():
                if f.name != "config.json":
                    os.symlink(f.resolve(), Path(tmp) / f.name)
            native_cfg = json.loads(json.dumps(ref.config.to_dict()))
            write_json(Path(tmp) / "config.json", native_cfg)
            native = Qwen3VLMoeForConditionalGeneration.from_pretrained(tmp, attn_implementation="eager").eval()
        ids = torch.arange(3, 15).view(1, -1)
        assert torch.equal(loaded(input_ids=ids).logits, native(input_ids=ids).logits), name
    # the vision tower must be usable: one 64x64 image (patch grid 1x4x4 -> 4 merged tokens)
    vc, c = loaded.config.vision_config, loaded.config
    g = torch.Generator().manual_seed(0)
    pix = torch.randn(16, vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2, generator=g).to(spec["dtype"])
    ids = torch.tensor([[5, 6, c.vision_start_token_id] + [c.image_token_id] * 4 + [c.vision_end_token_id, 7, 8]])
    out = loaded(input_ids=ids, pixel_values=pix, image_grid_thw=torch.tensor([[1, 4, 4]]),
                 mm_token_type_ids=(ids == c.image_token_id).int())
    assert torch.isfinite(out.logits).all()
    size = sum(f.stat().st_size for f in d.iterdir())
    print(f"[{name}] reload OK: {len(sd_ref)} tensors bit-equal, experts {E} top-{tc['num_experts_per_tok']}, "
          f"expert layout on disk gate_up {gu} down {dn}, {size} bytes")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, spec in CHECKPOINTS.items():
        if args.only and name not in args.only:
            continue
        model = save_checkpoint(name, spec, args.out)
        if not args.no_verify:
            verify(name, spec, model, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
