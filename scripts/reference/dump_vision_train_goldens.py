#!/usr/bin/env python3
"""Dump vision-tower training goldens: PyTorch autograd gradients of every parameter of transformers'
Qwen3VLVisionModel, fully trained and with a PEFT LoRA adapter, on the tiny fp32 checkpoints.

Offline fixture generation only (CI never runs this). Reads tests/fixtures/models/<ckpt>/ and writes
OUT_DIR/<ckpt>/index.json, raw little-endian float32 C-order .bin gradients and OUT_DIR/<ckpt>/adapter/ (the PEFT
adapter the LoRA gradients belong to, as save_pretrained writes it; README.md dropped). CPU, one thread,
attn_implementation="eager", deterministic algorithms, float32, eval mode (the tower has no dropout).

Per checkpoint, one call of model.model.visual on two images and one 2-slice video (three grid_thw rows), with
pixel_values from dump_vision_goldens.pixel_values (the LCG the C++ tests reproduce; nothing large is stored), and
    loss = sum(pooler_output * R0) + sum_k sum(deepstack_features[k] * R(k+1))
where R0, R1, ... [merged tokens, out_hidden_size] come from the same generator with seeds r_seeds[0], r_seeds[1], ...
(so d embeds = R0 and d deepstack_k = R(k+1) exactly). Dumped:
  full.<param>.bin    grad of every visual parameter (named as in visual.named_parameters(); patch_embed.proj.weight
                      [D, C, T, P, P] flattened to [D, C*T*P*P], the flattened-patch linear of the C++ engine)
  lora.<module>.lora_A.bin / .lora_B.bin   grads of PEFT LoRA (peft 0.21.2, r=4, lora_alpha=8, init_lora_weights=
                      False: A and B both nn.Linear's kaiming-uniform init after torch.manual_seed(lora_seed)) on every
                      block's attn.qkv, attn.proj, mlp.linear_fc1, mlp.linear_fc2 and the linear_fc1/fc2 of merger and
                      deepstack_merger_list; the base weights are frozen, as PEFT leaves them.

Usage:  $VENV/bin/python scripts/reference/dump_vision_train_goldens.py OUT_DIR [--models DIR]   (~10 s)
        (the committed goldens: OUT_DIR = tests/fixtures/train/vision)
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import Qwen3VLForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dump_vision_goldens import pixel_values, to_json, write_bin  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "fixtures" / "models"

# checkpoint -> (grids, pixel seed, first R seed, LoRA init seed). Two images of different shapes and a t=2 video.
CASES = {
    "tiny-fp32-untied-sharded": ([[1, 4, 6], [1, 8, 4], [2, 4, 4]], 51, 510, 5),
    "tiny-vision-hd24-fp32": ([[1, 6, 10], [1, 12, 4], [2, 4, 6]], 53, 530, 7),
}
LORA_TARGETS = (r"model\.visual\.(blocks\.\d+\.(attn\.(qkv|proj)|mlp\.linear_fc[12])"
                r"|(merger|deepstack_merger_list\.\d+)\.linear_fc[12])")
LORA_R, LORA_ALPHA = 4, 8


def load_model(path: Path):
    model = Qwen3VLForConditionalGeneration.from_pretrained(path, attn_implementation="eager", dtype=torch.float32)
    assert model.model.visual.config._attn_implementation == "eager"
    return model.eval()


def tower_loss(visual, pix: torch.Tensor, grid_thw: torch.Tensor, r_seed: int) -> torch.Tensor:
    out = visual(pix, grid_thw=grid_thw)
    outputs = [out.pooler_output] + list(out.deepstack_features)
    loss = torch.zeros((), dtype=torch.float32)
    for k, y in enumerate(outputs):
        loss = loss + (y * pixel_values(y.shape[0], y.shape[1], r_seed + k)).sum()
    return loss


def flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1) if t.dim() > 2 else t


def dump_full(model, pix, grid_thw, r_seed: int, out_dir: Path) -> dict:
    visual = model.model.visual
    visual.zero_grad(set_to_none=True)
    for p in visual.parameters():
        p.requires_grad_(True)
    loss = tower_loss(visual, pix, grid_thw, r_seed)
    loss.backward()
    grads = {}
    for name, p in visual.named_parameters():
        assert p.grad is not None, name
        fn = f"full.{name}.bin"
        grads[name] = {"file": fn, "shape": write_bin(out_dir / fn, flat(p.grad)),
                       "max_abs": float(p.grad.abs().max())}
    return {"loss": float(loss.detach()), "grads": grads}


def dump_lora(ckpt: str, models: Path, pix, grid_thw, r_seed: int, lora_seed: int, out_dir: Path) -> dict:
    torch.manual_seed(lora_seed)
    model = get_peft_model(load_model(models / ckpt),
                           LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, init_lora_weights=False,
                                      target_modules=LORA_TARGETS))
    model.eval()
    visual = model.base_model.model.model.visual
    loss = tower_loss(visual, pix, grid_thw, r_seed)
    loss.backward()
    grads, modules = {}, []
    for name, p in visual.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, name
            continue
        assert ".lora_A.default." in name or ".lora_B.default." in name, name
        module, factor = name.split(".lora_")[0], "lora_" + name.split(".lora_")[1][0]
        if module not in modules:
            modules.append(module)
        fn = f"lora.{module}.{factor}.bin"
        grads[f"{module}.{factor}"] = {"file": fn, "shape": write_bin(out_dir / fn, p.grad),
                                       "max_abs": float(p.grad.abs().max())}
    model.peft_config["default"].base_model_name_or_path = ckpt
    adapter_dir = out_dir / "adapter"
    model.save_pretrained(adapter_dir, save_embedding_layers=False)
    (adapter_dir / "README.md").unlink()
    return {"loss": float(loss.detach()), "r": LORA_R, "lora_alpha": LORA_ALPHA, "lora_seed": lora_seed,
            "adapter": "adapter", "modules": modules, "grads": grads}


def dump_checkpoint(ckpt: str, models: Path, out_root: Path) -> None:
    grids, pixel_seed, r_seed, lora_seed = CASES[ckpt]
    out_dir = out_root / ckpt
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model = load_model(models / ckpt)
    vc = model.model.visual.config
    n = sum(t * h * w for t, h, w in grids)
    pix = pixel_values(n, vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2, pixel_seed)
    grid_thw = torch.tensor(grids, dtype=torch.long)
    full = dump_full(model, pix, grid_thw, r_seed, out_dir)
    lora = dump_lora(ckpt, models, pix, grid_thw, r_seed, lora_seed, out_dir)
    index = {
        "checkpoint": ckpt,
        "grid_thw": grids,
        "pixel_seed": pixel_seed,
        "pixel_values_shape": list(pix.shape),
        "pixel_values_head": pix.view(-1)[:8].tolist(),
        "r_seeds": [r_seed + k for k in range(1 + len(vc.deepstack_visual_indexes))],
        "loss_definition": "sum(pooler_output * R0) + sum_k sum(deepstack_features[k] * R(k+1)), R_i from the "
                           "pixel generator with seed r_seeds[i], shape [merged tokens, out_hidden_size]",
        "bin_format": "raw little-endian float32, C order",
        "reference": {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                      "peft": peft.__version__, "module": "Qwen3VLForConditionalGeneration.model.visual",
                      "device": "cpu", "attn_implementation": "eager", "threads": 1, "dtype": "float32"},
        "full": full,
        "lora": lora,
    }
    (out_dir / "index.json").write_text(to_json(index) + "\n", encoding="utf-8")
    print(f"[{ckpt}] N={n}: full loss {full['loss']:.6g} ({len(full['grads'])} grads), "
          f"LoRA loss {lora['loss']:.6g} ({len(lora['grads'])} grads on {len(lora['modules'])} modules)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--models", type=Path, default=MODELS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    for ckpt in CASES:
        dump_checkpoint(ckpt, args.models, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
