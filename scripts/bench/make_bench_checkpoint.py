#!/usr/bin/env python3
"""Write a Qwen3-VL-2B-shaped checkpoint with random bf16 weights, for `qwen3vl bench`. Not a fixture: never
committed, written outside the repository (about 4.3 GB).

Shapes are those of the released Qwen3-VL-2B-Instruct config.json: text hidden 2048, 28 layers, 16 query / 8 KV
heads, head_dim 128, intermediate 6144, vocab 151936, tied embeddings, mrope_section [24, 20, 20], rope_theta 5e6;
vision depth 24, hidden 1024, 16 heads, intermediate 4096, out_hidden 2048, patch 16, temporal patch 2, merge 2,
48x48 learned position table, DeepStack [5, 11, 17]. config.json names the architecture
(Qwen3VLForConditionalGeneration) as the released one does, and the image and video preprocessor configs are the
released ones, so llama.cpp's convert_hf_to_gguf.py takes the checkpoint as it is. The tokenizer is the real Qwen3
one (the vendored tests/fixtures/tokenizer/qwen3), so `qwen3vl run` works on the checkpoint too (its replies are
noise: the weights are random).

Weights: norm weights U(0.5, 1.5), biases N(0, 0.1^2), token embedding N(0, 0.25^2), pos_embed N(0, 0.5^2),
Linear / Conv N(0, 1/fan_in) (the scheme of scripts/reference/make_tiny_checkpoints.py), one seeded generator per
tensor, so the file is the same on every run. Tensors are generated from the model's parameter list built on the
meta device (no 8 GB float32 model in memory) and written in ~2 GB safetensors shards with an index.

Usage: $VENV/bin/python scripts/bench/make_bench_checkpoint.py [--out DIR]
  --out  default ~/.cache/qwen3vl/bench-models/qwen3vl-2b-bf16 ($XDG_CACHE_HOME honoured)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import zlib
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

REPO = Path(__file__).resolve().parents[2]
QWEN3_TOKENIZER = REPO / "tests" / "fixtures" / "tokenizer" / "qwen3"  # vendored, see its NOTICE
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qwen3vl"
CHAT_TEMPLATE = REPO / "scripts" / "reference" / "templates" / "qwen3vl_instruct.jinja"
SEED = 2026
SHARD_BYTES = 2 * 1024**3

TEXT = dict(
    vocab_size=151936, hidden_size=2048, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
    head_dim=128, intermediate_size=6144, rms_norm_eps=1e-6, max_position_embeddings=262144, hidden_act="silu",
    attention_bias=False, tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151645,
    rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [24, 20, 20],
                     "mrope_interleaved": True},
)
VISION = dict(
    depth=24, hidden_size=1024, num_heads=16, intermediate_size=4096, out_hidden_size=2048, patch_size=16,
    temporal_patch_size=2, spatial_merge_size=2, in_channels=3, num_position_embeddings=2304,
    deepstack_visual_indexes=[5, 11, 17], hidden_act="gelu_pytorch_tanh",
)
# As released: the pixel budget is over all sampled frames (T*h*w), fps 2 (the processor's default).
VIDEO_PREPROCESSOR = {
    "size": {"longest_edge": 25165824, "shortest_edge": 4096}, "patch_size": 16, "temporal_patch_size": 2,
    "merge_size": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor", "video_processor_type": "Qwen3VLVideoProcessor"}
IDS = dict(image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653)


def seeded_generator(name: str) -> torch.Generator:
    """One generator per tensor, seeded from its name, so a tensor's values do not depend on the others."""
    g = torch.Generator()
    g.manual_seed((SEED * 1_000_003 + zlib.crc32(name.encode())) % (2**63))
    return g


def random_tensor(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    g = seeded_generator(name)
    parent, leaf = name.split(".")[-2], name.rsplit(".", 1)[-1]
    if ("norm" in parent) and leaf == "weight":
        v = torch.rand(shape, generator=g) + 0.5
    elif leaf == "bias":
        v = torch.randn(shape, generator=g) * 0.1
    elif name.endswith("embed_tokens.weight"):
        v = torch.randn(shape, generator=g) * 0.25
    elif name.endswith("pos_embed.weight"):
        v = torch.randn(shape, generator=g) * 0.5
    else:
        v = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
    return v.to(torch.bfloat16)


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def write_checkpoint(out: Path, config, model_class, tensor=random_tensor) -> None:
    """Writes `config` with seeded random bf16 weights to `out` (replaced), with the released preprocessor configs,
    the vendored tokenizer and the Instruct chat template. tensor(name, in-memory shape) gives each weight as it is
    stored."""
    if REPO in out.parents or out == REPO:
        sys.exit(f"{out}: write benchmark checkpoints outside the repository")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with torch.device("meta"):
        model = model_class(config)
    params = {name: tuple(p.shape) for name, p in model.state_dict().items()}
    if config.tie_word_embeddings:
        params.pop("lm_head.weight", None)  # tied to model.language_model.embed_tokens.weight
    total = sum(math.prod(s) for s in params.values())
    print(f"{len(params)} tensors, {total / 1e9:.3f} B parameters, {2 * total / 1e9:.2f} GB bf16", flush=True)

    weight_map, shard, shard_bytes, shard_count = {}, {}, 0, 0

    def flush() -> None:  # shard files are renamed to NNNNN-of-TOTAL at the end
        nonlocal shard, shard_bytes, shard_count
        if shard:
            shard_count += 1
            save_file(shard, out / f"shard-{shard_count}.safetensors", metadata={"format": "pt"})
            weight_map.update({name: shard_count for name in shard})
        shard, shard_bytes = {}, 0

    for name in sorted(params):
        t = tensor(name, params[name])
        if shard_bytes + 2 * t.numel() > SHARD_BYTES:
            flush()
        shard[name] = t
        shard_bytes += 2 * t.numel()
    flush()
    files = {i: f"model-{i:05d}-of-{shard_count:05d}.safetensors" for i in range(1, shard_count + 1)}
    for i, file in files.items():
        (out / f"shard-{i}.safetensors").rename(out / file)
        print(f"wrote {file}", flush=True)
    write_json(out / "model.safetensors.index.json",
               {"metadata": {"total_size": 2 * total},
                "weight_map": {name: files[i] for name, i in sorted(weight_map.items())}})

    write_json(out / "config.json", config.to_dict())
    write_json(out / "generation_config.json",
               {"bos_token_id": 151643, "eos_token_id": [151645, 151643], "pad_token_id": 151643,
                "do_sample": True, "temperature": 0.7, "top_k": 20, "top_p": 0.8})
    write_json(out / "preprocessor_config.json", {
        "size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16, "temporal_patch_size": 2,
        "merge_size": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "processor_class": "Qwen3VLProcessor", "image_processor_type": "Qwen2VLImageProcessorFast"})
    write_json(out / "video_preprocessor_config.json", VIDEO_PREPROCESSOR)
    shutil.copy(QWEN3_TOKENIZER / "tokenizer.json", out / "tokenizer.json")
    tok_config = json.loads((QWEN3_TOKENIZER / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok_config.pop("chat_template", None)
    write_json(out / "tokenizer_config.json", tok_config)
    if CHAT_TEMPLATE.exists():
        write_json(out / "chat_template.json", {"chat_template": CHAT_TEMPLATE.read_text(encoding="utf-8")})
    print(f"checkpoint written to {out}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=CACHE / "bench-models" / "qwen3vl-2b-bf16")
    args = ap.parse_args()
    config = Qwen3VLConfig(text_config=dict(TEXT), vision_config=dict(VISION), tie_word_embeddings=True, **IDS)
    config.dtype = torch.bfloat16
    config.architectures = ["Qwen3VLForConditionalGeneration"]  # as the released config.json; converters key on it
    write_checkpoint(args.out.resolve(), config, Qwen3VLForConditionalGeneration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
