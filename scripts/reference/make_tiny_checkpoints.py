#!/usr/bin/env python3
"""Build the tiny random-weight Qwen3-VL checkpoints under tests/fixtures/models/.

Offline fixture generation only (CI never runs this). Uses the pinned venv of
scripts/reference/requirements.txt. Deterministic: running it twice produces
byte-identical files (weights come from a per-tensor seeded torch.Generator,
JSON is written with sorted keys, safetensors metadata is fixed).

Checkpoints (see scripts/reference/README.md):
  tiny-fp32-tied            small vocab, fp32, tied, config.json in the transformers 4.57 spelling
                            (text_config.rope_scaling + rope_theta; vision model_type "qwen3_vl")
  tiny-fp32-untied-sharded  small vocab, fp32, untied, >= 3 safetensors shards + index,
                            config.json in the transformers 5 spelling (rope_parameters)
  tiny-bf16-untied          small vocab, bf16 weights, untied
  tiny-realtok-bf16         real vocab 151936 + real special ids, bf16, tied, tokenizer files
                            (copied from the vendored tests/fixtures/tokenizer/qwen3)
  tiny-vision-hd24-fp32     text side as tiny-fp32-tied (own seed), fp32, tied, vision tower in the 8B-style
                            geometry: head_dim 24 (not a power of two), depth 3, deepstack [0, 2], 6x6 pos table

Usage:  $VENV/bin/python scripts/reference/make_tiny_checkpoints.py [--out DIR] [--no-verify]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import torch
from transformers import GenerationConfig, Qwen3VLConfig, Qwen3VLForConditionalGeneration

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "fixtures" / "models"
QWEN3_TOKENIZER = REPO / "tests" / "fixtures" / "tokenizer" / "qwen3"  # vendored, see its NOTICE
CHAT_TEMPLATE = REPO / "scripts" / "reference" / "templates" / "qwen3vl_instruct.jinja"

# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------
SMALL_IDS = dict(image_token_id=2040, video_token_id=2041, vision_start_token_id=2038, vision_end_token_id=2039)
SMALL_BOS, SMALL_EOS = 2045, 2046
REAL_IDS = dict(image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653)
REAL_BOS, REAL_EOS = 151643, 151645


def small_text(tie: bool) -> dict:
    return dict(
        vocab_size=2048, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
        head_dim=32, intermediate_size=128, rms_norm_eps=1e-6, max_position_embeddings=262144,
        hidden_act="silu", attention_bias=False,
        rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [6, 5, 5],
                         "mrope_interleaved": True},
        bos_token_id=SMALL_BOS, eos_token_id=SMALL_EOS, tie_word_embeddings=tie,
    )


def real_text() -> dict:
    return dict(
        vocab_size=151936, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
        head_dim=16, intermediate_size=64, rms_norm_eps=1e-6, max_position_embeddings=262144,
        hidden_act="silu", attention_bias=False,
        rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [4, 2, 2],
                         "mrope_interleaved": True},
        bos_token_id=REAL_BOS, eos_token_id=REAL_EOS, tie_word_embeddings=True,
    )


def vision(out_hidden: int) -> dict:
    # 4x4 learned position table (num_position_embeddings must be a square)
    return dict(
        depth=2, hidden_size=32, num_heads=2, intermediate_size=64, out_hidden_size=out_hidden,
        patch_size=16, temporal_patch_size=2, spatial_merge_size=2, in_channels=3,
        num_position_embeddings=16, deepstack_visual_indexes=[0, 1], hidden_act="gelu_pytorch_tanh",
    )


def vision_hd24() -> dict:
    # 8B-style geometry in small: head_dim 48/2 = 24 is not a power of two (8B: 1152/16 = 72), so head_dim/4 = 6
    # rotary frequencies per axis; 6x6 learned position table; deepstack taps at the first and the last block.
    return dict(
        depth=3, hidden_size=48, num_heads=2, intermediate_size=96, out_hidden_size=64,
        patch_size=16, temporal_patch_size=2, spatial_merge_size=2, in_channels=3,
        num_position_embeddings=36, deepstack_visual_indexes=[0, 2], hidden_act="gelu_pytorch_tanh",
    )


# Seeds of the bf16 checkpoints were picked (from 3003.. and 4004..) so that no greedy step of
# dump_text_goldens.py has an exact bf16 top-1/top-2 tie (ties are common with bf16 logits): the greedy golden
# then does not hinge on argmax tie-breaking. Ties at some prompt positions remain and are recorded.
CHECKPOINTS = {
    "tiny-fp32-tied": dict(
        seed=1001, dtype=torch.float32, text=small_text(True), vision=vision(64), ids=SMALL_IDS, tie=True,
        config_style="4.57", shard=None,
        gen=dict(bos_token_id=SMALL_BOS, eos_token_id=[SMALL_EOS, SMALL_BOS], pad_token_id=SMALL_BOS),
    ),
    "tiny-fp32-untied-sharded": dict(
        seed=2002, dtype=torch.float32, text=small_text(False), vision=vision(64), ids=SMALL_IDS, tie=False,
        config_style="5", shard="400KB",
        gen=dict(bos_token_id=SMALL_BOS, eos_token_id=[SMALL_EOS, SMALL_BOS], pad_token_id=SMALL_BOS),
    ),
    "tiny-bf16-untied": dict(
        seed=3011, dtype=torch.bfloat16, text=small_text(False), vision=vision(64), ids=SMALL_IDS, tie=False,
        config_style="5", shard=None,
        gen=dict(bos_token_id=SMALL_BOS, eos_token_id=[SMALL_EOS, SMALL_BOS], pad_token_id=SMALL_BOS),
    ),
    "tiny-realtok-bf16": dict(
        seed=4012, dtype=torch.bfloat16, text=real_text(), vision=vision(32), ids=REAL_IDS, tie=True,
        config_style="5", shard=None,
        gen=dict(bos_token_id=REAL_BOS, eos_token_id=[REAL_EOS, REAL_BOS], pad_token_id=REAL_BOS,
                 do_sample=True, temperature=0.7, top_k=20, top_p=0.8),
        tokenizer=True,
    ),
    "tiny-vision-hd24-fp32": dict(
        seed=5005, dtype=torch.float32, text=small_text(True), vision=vision_hd24(), ids=SMALL_IDS, tie=True,
        config_style="5", shard=None,
        gen=dict(bos_token_id=SMALL_BOS, eos_token_id=[SMALL_EOS, SMALL_BOS], pad_token_id=SMALL_BOS),
    ),
}


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------
def _gen(seed: int, name: str) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63))
    return g


@torch.no_grad()
def fill_weights(model: torch.nn.Module, seed: int) -> None:
    """Overwrite every parameter with seeded values of healthy magnitude.

    Default HF init (std 0.02, norms = 1) gives near-zero logits and all-ones norm weights, which would
    hide bugs (a wrong norm weight, a transposed tiny matrix). Instead:
      * norm weights (RMSNorm / LayerNorm): uniform(0.5, 1.5)
      * biases: N(0, 0.1^2)
      * token embedding: N(0, 0.25^2) (small next to the ~unit-RMS sublayer outputs, so a tied model does
        not just predict its input token and greedy decoding does not collapse onto a fixed point)
      * vision pos_embed: N(0, 0.5^2)
      * Linear / Conv weights: N(0, 1/fan_in)
    Each tensor uses its own generator seeded from (checkpoint seed, tensor name), so the result does not
    depend on module iteration order. Tied lm_head is not a separate parameter and follows the embedding.
    """
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        g = _gen(seed, name)
        shape = tuple(p.shape)
        leaf = name.rsplit(".", 1)[-1]
        is_norm = ("norm" in name.split(".")[-2]) or name.split(".")[-2] in ("norm1", "norm2")
        if is_norm and leaf == "weight":
            v = torch.rand(shape, generator=g, dtype=torch.float32) + 0.5
        elif leaf == "bias":
            v = torch.randn(shape, generator=g, dtype=torch.float32) * 0.1
        elif name.endswith("embed_tokens.weight"):
            v = torch.randn(shape, generator=g, dtype=torch.float32) * 0.25
        elif name.endswith("pos_embed.weight"):
            v = torch.randn(shape, generator=g, dtype=torch.float32) * 0.5
        else:
            fan_in = int(math.prod(shape[1:]))
            v = torch.randn(shape, generator=g, dtype=torch.float32) / math.sqrt(fan_in)
        p.copy_(v.to(p.dtype))


# --------------------------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------------------------
def write_json(path: Path, obj, indent: int = 2) -> None:
    path.write_text(json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def to_457_spelling(cfg: dict, dtype_name: str) -> dict:
    """Rewrite a transformers-5 config.json dict into the spelling of the released (4.57.0.dev0) files."""
    cfg = json.loads(json.dumps(cfg))
    tc = cfg["text_config"]
    rp = tc.pop("rope_parameters")
    tc["rope_scaling"] = {k: rp[k] for k in ("mrope_interleaved", "mrope_section", "rope_type")}
    theta = rp["rope_theta"]
    tc["rope_theta"] = int(theta) if float(theta).is_integer() else theta
    if tc.get("pad_token_id", 0) is None:
        tc.pop("pad_token_id")
    # released files: "dtype" inside text_config, none at top level; tie flag repeated in text_config
    cfg.pop("dtype", None)
    tc["dtype"] = dtype_name
    tc["tie_word_embeddings"] = cfg["tie_word_embeddings"]
    vc = cfg["vision_config"]
    vc.pop("rope_parameters", None)  # vision theta is hard-coded 10000 in 4.57; 5.x fills the same default
    vc["model_type"] = "qwen3_vl"  # released spelling; 5.x maps it to qwen3_vl_vision on load
    return cfg


def preprocessor_config() -> dict:
    # verbatim key set of the released Qwen3-VL preprocessor_config.json (Qwen/Qwen3-VL-*-Instruct on the Hub)
    return {
        "size": {"longest_edge": 16777216, "shortest_edge": 65536},
        "patch_size": 16,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "processor_class": "Qwen3VLProcessor",
        "image_processor_type": "Qwen2VLImageProcessorFast",
    }


def tokenizer_config() -> dict:
    src = json.loads((QWEN3_TOKENIZER / "tokenizer_config.json").read_text(encoding="utf-8"))
    src.pop("chat_template", None)  # Qwen3 text template, not Qwen3-VL's
    src["model_max_length"] = 262144
    return src


# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------
def build_model(spec: dict) -> Qwen3VLForConditionalGeneration:
    cfg = Qwen3VLConfig(text_config=dict(spec["text"]), vision_config=dict(spec["vision"]),
                        tie_word_embeddings=spec["tie"], **spec["ids"])
    torch.manual_seed(spec["seed"])
    model = Qwen3VLForConditionalGeneration(cfg)
    fill_weights(model, spec["seed"])
    if spec["tie"]:
        assert model.lm_head.weight.data_ptr() == model.model.language_model.embed_tokens.weight.data_ptr()
    model = model.to(spec["dtype"])
    model.eval()
    return model


def save_checkpoint(name: str, spec: dict, out_root: Path) -> Qwen3VLForConditionalGeneration:
    d = out_root / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    model = build_model(spec)
    kw = {"safe_serialization": True}
    if spec["shard"]:
        kw["max_shard_size"] = spec["shard"]
    model.save_pretrained(d, **kw)

    # config.json: normalise (sorted keys) and, for the 4.57-spelling checkpoint, rewrite
    cfg = json.loads((d / "config.json").read_text())
    model._native_config_json = cfg  # transformers-5 spelling, kept for verify()
    if spec["config_style"] == "4.57":
        cfg = to_457_spelling(cfg, "float32" if spec["dtype"] == torch.float32 else "bfloat16")
    write_json(d / "config.json", cfg)

    # generation_config.json: ours, not the one derived from the model config
    (d / "generation_config.json").unlink(missing_ok=True)
    gc = GenerationConfig(**spec["gen"])
    gc.save_pretrained(d)
    write_json(d / "generation_config.json", json.loads((d / "generation_config.json").read_text()))

    if (d / "model.safetensors.index.json").exists():
        write_json(d / "model.safetensors.index.json",
                   json.loads((d / "model.safetensors.index.json").read_text()))

    if spec.get("tokenizer"):
        shutil.copyfile(QWEN3_TOKENIZER / "tokenizer.json", d / "tokenizer.json")
        write_json(d / "tokenizer_config.json", tokenizer_config())
        write_json(d / "preprocessor_config.json", preprocessor_config(), indent=4)
        if CHAT_TEMPLATE.exists():
            write_json(d / "chat_template.json", {"chat_template": CHAT_TEMPLATE.read_text(encoding="utf-8")})
        else:
            print(f"[{name}] NOTE: {CHAT_TEMPLATE.relative_to(REPO)} not found; no chat_template.json written")
    return model


# --------------------------------------------------------------------------------------------
# Verification: reload with from_pretrained, compare tensors and a forward pass
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def verify(name: str, spec: dict, ref: Qwen3VLForConditionalGeneration, out_root: Path) -> None:
    d = out_root / name
    loaded = Qwen3VLForConditionalGeneration.from_pretrained(d, attn_implementation="eager")
    loaded.eval()
    sd_ref, sd_new = ref.state_dict(), loaded.state_dict()
    assert sd_ref.keys() == sd_new.keys(), (name, set(sd_ref) ^ set(sd_new))
    for k in sd_ref:
        a, b = sd_ref[k], sd_new[k]
        assert a.dtype == b.dtype == spec["dtype"], (name, k, a.dtype, b.dtype)
        assert torch.equal(a, b), (name, k)
    tc = loaded.config.text_config
    assert tc.rope_parameters["rope_theta"] == 5000000.0, tc.rope_parameters
    assert list(tc.rope_parameters["mrope_section"]) == spec["text"]["rope_parameters"]["mrope_section"]
    assert bool(loaded.config.tie_word_embeddings) == spec["tie"]
    tied = loaded.lm_head.weight.data_ptr() == loaded.model.language_model.embed_tokens.weight.data_ptr()
    assert tied == spec["tie"], (name, tied)
    if spec["config_style"] == "4.57":
        # the rewritten config must load exactly like the native transformers-5 one
        with tempfile.TemporaryDirectory() as tmp:
            for f in d.iterdir():
                if f.name != "config.json":
                    os.symlink(f.resolve(), Path(tmp) / f.name)
            write_json(Path(tmp) / "config.json", ref._native_config_json)
            native = Qwen3VLForConditionalGeneration.from_pretrained(tmp, attn_implementation="eager").eval()
        ca, cb = loaded.config.to_dict(), native.config.to_dict()
        for c in (ca, cb):
            c.pop("transformers_version", None)
            c.pop("_name_or_path", None)
        assert ca == cb, (name, {k: (ca.get(k), cb.get(k)) for k in set(ca) | set(cb) if ca.get(k) != cb.get(k)})
        ids = torch.arange(3, 15).view(1, -1)
        pos = torch.stack([torch.arange(12), torch.arange(12) // 3 + 1, torch.arange(12) % 4 + 2]).view(3, 1, 12)
        pos4 = torch.cat([torch.arange(12).view(1, 1, 12), pos], 0)
        la = loaded(input_ids=ids, position_ids=pos4).logits
        lb = native(input_ids=ids, position_ids=pos4).logits
        assert torch.equal(la, lb), (name, (la - lb).abs().max())
        ra, rb = loaded.model.language_model.rotary_emb, native.model.language_model.rotary_emb
        assert torch.equal(ra.inv_freq, rb.inv_freq) and ra.mrope_section == rb.mrope_section
        print(f"[{name}] 4.57-spelling config loads identically to the native transformers-5 config")
    # the vision tower must be usable: one 64x64 image (patch grid 1x4x4 -> 2x2 = 4 merged tokens)
    vc, c = loaded.config.vision_config, loaded.config
    n_patch_feat = vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2
    g = torch.Generator().manual_seed(0)
    pix = torch.randn(16, n_patch_feat, generator=g).to(spec["dtype"])
    ids = torch.tensor([[5, 6, c.vision_start_token_id] + [c.image_token_id] * 4 + [c.vision_end_token_id, 7, 8]])
    tt = (ids == c.image_token_id).int()
    out = loaded(input_ids=ids, pixel_values=pix, image_grid_thw=torch.tensor([[1, 4, 4]]), mm_token_type_ids=tt)
    assert torch.isfinite(out.logits).all() and out.logits.shape == (1, ids.shape[1], loaded.config.text_config.vocab_size)
    print(f"[{name}] reload OK: {len(sd_ref)} tensors bit-equal, rope_parameters={dict(tc.rope_parameters)}")


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
