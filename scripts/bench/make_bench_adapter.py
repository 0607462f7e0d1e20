#!/usr/bin/env python3
"""Write a PEFT LoRA adapter with random weights on every linear layer of a Qwen3-VL checkpoint, for
`qwen3vl bench --lora`. Not a fixture: never committed, written outside the repository.

Targets, as PEFT names them for Qwen3VLForConditionalGeneration: the language model's q/k/v/o_proj and
gate/up/down_proj of every layer, and the vision tower's attn.qkv, attn.proj, mlp.linear_fc1/2 of every block, the
merger's and every DeepStack merger's linear_fc1/2 (target_modules "all-linear" minus lm_head). Shapes come from
the checkpoint's config.json. lora_A ~ N(0, 1/in), lora_B ~ N(0, 0.01/r), float32 (what PEFT saves after training
with its default autocast_adapter_dtype); one seeded generator per tensor.

Usage: python3 scripts/bench/make_bench_adapter.py CHECKPOINT_DIR [--out DIR] [--rank 16] [--alpha 32]
  --out  default CHECKPOINT_DIR-lora-rRANK
Needs numpy and safetensors (pip install numpy safetensors).
"""
from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def linear_modules(config: dict) -> list[tuple[str, int, int]]:
    """(module path, in_features, out_features) of every adapted linear."""
    t, v = config["text_config"], config.get("vision_config")
    head_dim = t.get("head_dim") or t["hidden_size"] // t["num_attention_heads"]
    q, kv, h, i = t["num_attention_heads"] * head_dim, t["num_key_value_heads"] * head_dim, t["hidden_size"], t["intermediate_size"]
    modules = []
    for layer in range(t["num_hidden_layers"]):
        p = f"model.language_model.layers.{layer}."
        modules += [(p + "self_attn.q_proj", h, q), (p + "self_attn.k_proj", h, kv), (p + "self_attn.v_proj", h, kv),
                    (p + "self_attn.o_proj", q, h), (p + "mlp.gate_proj", h, i), (p + "mlp.up_proj", h, i),
                    (p + "mlp.down_proj", i, h)]
    if v:
        d, vi, out = v["hidden_size"], v["intermediate_size"], v["out_hidden_size"]
        merged = d * v["spatial_merge_size"] ** 2
        for block in range(v["depth"]):
            p = f"model.visual.blocks.{block}."
            modules += [(p + "attn.qkv", d, 3 * d), (p + "attn.proj", d, d), (p + "mlp.linear_fc1", d, vi),
                        (p + "mlp.linear_fc2", vi, d)]
        mergers = ["model.visual.merger"] + [f"model.visual.deepstack_merger_list.{k}"
                                             for k in range(len(v.get("deepstack_visual_indexes", [])))]
        for m in mergers:
            modules += [(m + ".linear_fc1", merged, merged), (m + ".linear_fc2", merged, out)]
    return modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=32)
    args = parser.parse_args()
    config = json.loads((args.checkpoint / "config.json").read_text())
    out = args.out or args.checkpoint.with_name(f"{args.checkpoint.name}-lora-r{args.rank}")
    out.mkdir(parents=True, exist_ok=False)
    r = args.rank
    tensors = {}
    for path, fan_in, fan_out in linear_modules(config):
        key = "base_model.model." + path
        a = np.random.default_rng(zlib.crc32((path + ".A").encode())).standard_normal((r, fan_in), dtype=np.float32)
        b = np.random.default_rng(zlib.crc32((path + ".B").encode())).standard_normal((fan_out, r), dtype=np.float32)
        tensors[key + ".lora_A.weight"] = a / np.float32(np.sqrt(fan_in))
        tensors[key + ".lora_B.weight"] = b * np.float32(0.1 / np.sqrt(r))
    save_file(tensors, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    targets = sorted({p.rsplit(".", 1)[-1] for p, _, _ in linear_modules(config)})
    adapter_config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": args.checkpoint.name,
                      "r": r, "lora_alpha": args.alpha, "lora_dropout": 0.0, "bias": "none",
                      "target_modules": targets, "use_rslora": False, "use_dora": False}
    (out / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2) + "\n")
    print(f"{out}: {len(tensors) // 2} modules, rank {r}")


if __name__ == "__main__":
    main()
