#!/usr/bin/env python3
"""Dump image-prompt goldens from HF transformers: image files -> processor -> vision tower -> fusion ->
decoder -> logits, and a greedy continuation, for the tiny fp32 checkpoints.

Offline fixture generation only (CI never runs this). For each checkpoint it writes
tests/fixtures/multimodal/<ckpt>/index.json with raw little-endian float32 .bin files, and the test images
(PNG, made here with a fixed seed) under tests/fixtures/multimodal/images/. The tiny checkpoints have no
tokenizer, so prompts are built from ids directly: random text ids around
<|vision_start|> <|image_pad|> x n <|vision_end|> groups, n = merged tokens of each image.

Image processor: transformers' Qwen2VLImageProcessor (the torchvision backend, as AutoProcessor picks for
Qwen3-VL) with the pixel budget of the checkpoint's preprocessor_config.json, written here too.
Captured: pixel_values, image_grid_thw, vision merger output and DeepStack features (per image, concatenated),
position ids and rope delta (get_rope_index), decoder layer outputs (forward hooks on the decoder layers: before
the DeepStack addition, as HF's hidden_states record them), final norm, all-row logits, greedy output ids.

Usage:  $VENV/bin/python scripts/reference/dump_multimodal_goldens.py
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from transformers import Qwen2VLImageProcessor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dump_moe_goldens import load_model  # noqa: E402  (dense or MoE class by model_type)
from dump_text_goldens import random_ids, special_ids, to_json, write_bin  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "fixtures" / "models"
OUT = REPO / "tests" / "fixtures" / "multimodal"
CHECKPOINTS = ["tiny-fp32-tied", "tiny-vision-hd24-fp32", "tiny-moe-fp32"]
MAX_NEW_TOKENS = 32
# Small budget so the fixtures stay tiny: 4 .. 64 merged tokens per image.
PREPROCESSOR = {
    "image_processor_type": "Qwen2VLImageProcessorFast", "processor_class": "Qwen3VLProcessor",
    "size": {"shortest_edge": 4096, "longest_edge": 65536}, "patch_size": 16, "temporal_patch_size": 2,
    "merge_size": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 3,
    "rescale_factor": 0.00392156862745098, "do_resize": True, "do_rescale": True, "do_normalize": True,
    "do_convert_rgb": True,
}
# (width, height): a small one scaled up to min_pixels, an odd-sized one, a wide one.
IMAGES = {"shapes_70x50.png": (70, 50), "shapes_150x97.png": (150, 97), "shapes_240x60.png": (240, 60)}


def make_image(name: str, size: tuple[int, int], seed: int) -> Image.Image:
    g = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(v) for v in g.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = int(g.integers(0, size[0])), int(g.integers(0, size[1]))
        x1, y1 = x0 + int(g.integers(4, size[0] // 2 + 5)), y0 + int(g.integers(4, size[1] // 2 + 5))
        colour = tuple(int(v) for v in g.integers(0, 256, 3))
        (draw.ellipse if g.integers(0, 2) else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    return img


@torch.no_grad()
def dump_case(model, processor, name, image_names, out_dir, seed) -> dict:
    cfg = model.config
    images = [Image.open(OUT / "images" / n).convert("RGB") for n in image_names]
    proc = processor(images=images, return_tensors="pt")
    pixel_values, grid = proc["pixel_values"], proc["image_grid_thw"]
    merge = cfg.vision_config.spatial_merge_size
    avoid = special_ids(cfg)
    text = random_ids(4 * (len(images) + 1), cfg.text_config.vocab_size, avoid, seed)
    ids: list[int] = text[:4]
    for k, g in enumerate(grid.tolist()):
        ids += [cfg.vision_start_token_id] + [cfg.image_token_id] * (g[0] * g[1] * g[2] // merge ** 2)
        ids += [cfg.vision_end_token_id] + text[4 * (k + 1):4 * (k + 2)]
    input_ids = torch.tensor([ids])
    mm_types = (input_ids == cfg.image_token_id).int()

    captured = {}
    hooks = [layer.register_forward_hook(lambda _m, _i, out, l=l: captured.__setitem__(f"layer{l}", out[0]))
             for l, layer in enumerate(model.model.language_model.layers)]
    hooks.append(model.model.language_model.norm.register_forward_hook(
        lambda _m, _i, out: captured.__setitem__("norm", out[0])))
    vision = model.model.visual(pixel_values.to(model.dtype), grid_thw=grid, return_dict=True)
    out = model(input_ids=input_ids, pixel_values=pixel_values, image_grid_thw=grid, mm_token_type_ids=mm_types,
                use_cache=False)
    for h in hooks:
        h.remove()
    position_ids, rope_delta = model.model.get_rope_index(input_ids, mm_token_type_ids=mm_types, image_grid_thw=grid)

    case = {"name": name, "images": image_names, "input_ids": ids, "image_grid_thw": grid.tolist(),
            "position_ids": position_ids[:, 0, :].tolist(), "rope_delta": int(rope_delta[0, 0])}
    # pixel_values depend only on the images and the processor: stored once, beside the images.
    pixel_file = OUT / "images" / f"{name}.pixel_values.bin"
    case["pixel_values"] = {"file": str(pixel_file.relative_to(OUT)), "shape": write_bin(pixel_file, pixel_values)}
    files = {"vision_embeds": vision.pooler_output,
             "norm": captured["norm"], "logits": out.logits[0]}
    for k, feat in enumerate(vision.deepstack_features):
        files[f"deepstack{k}"] = feat
    for l in range(len(model.model.language_model.layers)):
        files[f"layer{l}"] = captured[f"layer{l}"]
    for key, tensor in files.items():
        path = out_dir / f"{name}.{key}.bin"
        case[key] = {"file": str(path.relative_to(OUT)), "shape": write_bin(path, tensor)}

    gen = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), pixel_values=pixel_values,
                         image_grid_thw=grid, mm_token_type_ids=mm_types, do_sample=False,
                         max_new_tokens=MAX_NEW_TOKENS, output_logits=True, return_dict_in_generate=True)
    raw = torch.stack([x[0].float() for x in gen.logits])
    top2 = torch.topk(raw, 2, dim=-1).values
    case["greedy"] = {"max_new_tokens": MAX_NEW_TOKENS, "output_ids": gen.sequences[0, len(ids):].tolist(),
                      "step_min_top1_top2_gap": float((top2[:, 0] - top2[:, 1]).min())}
    return case


def main() -> int:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    for seed, (name, size) in enumerate(IMAGES.items()):
        make_image(name, size, 100 + seed).save(OUT / "images" / name, optimize=False)
    processor = Qwen2VLImageProcessor(**{k: v for k, v in PREPROCESSOR.items()
                                         if k not in ("image_processor_type", "processor_class")})
    for ckpt in CHECKPOINTS:
        mdir = MODELS / ckpt
        if not mdir.exists():
            print(f"[{ckpt}] missing, skipped")
            continue
        (mdir / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2) + "\n")
        out_dir = OUT / ckpt
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        model = load_model(mdir)
        names = list(IMAGES)
        cases = [dump_case(model, processor, "one_image", names[1:2], out_dir, 7),
                 dump_case(model, processor, "three_images", names, out_dir, 8)]
        index = {"checkpoint": ckpt, "dtype": "float32", "preprocessor": PREPROCESSOR,
                 "bin_format": "raw little-endian float32, C order; paths relative to tests/fixtures/multimodal",
                 "cases": cases}
        (out_dir / "index.json").write_text(to_json(index) + "\n", encoding="utf-8")
        for c in cases:
            print(f"[{ckpt}] {c['name']}: grids {c['image_grid_thw']} S={len(c['input_ids'])} "
                  f"delta={c['rope_delta']} greedy gap={c['greedy']['step_min_top1_top2_gap']:.4g} "
                  f"{c['greedy']['output_ids']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
