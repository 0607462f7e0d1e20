#!/usr/bin/env python3
"""Dump vision-tower golden tensors from HF transformers (Qwen3VLVisionModel) for the tiny checkpoints.

Offline fixture generation only (CI never runs this). Reads tests/fixtures/models/<ckpt>/ (made by
make_tiny_checkpoints.py) and writes tests/fixtures/goldens/vision/<ckpt>/index.json plus raw little-endian
float32 C-order .bin files.

HF's model.model.visual runs on CPU, one thread, attn_implementation="eager", in the checkpoint's own dtype
(bf16 checkpoints in bf16; bf16 activations are widened to float32 exactly when written).

Inputs. No image preprocessing: pixel_values [sum(t*h*w), 3*2*16*16] come from a tiny integer generator that the
C++ test reproduces bit for bit, so the (large) input is not stored:
    state <- state * 6364136223846793005 + 1442695040888963407  (mod 2**64), state_0 = seed
    each value takes two draws a, b = state >> 41 (23-bit integers) and is  (a + b) * 2**-23 - 1
i.e. a triangular ("normal-ish") distribution on [-1, 1), every value exact in float32, row-major order.
All images/videos of a case go through ONE call with their grid_thw rows, like Qwen3VLModel.get_image_features.

Stages stored per case (N = sum t*h*w patches, M = N/4 merged tokens, D = vision hidden, O = out_hidden_size):
    patch_embed       [N, D]  output of visual.patch_embed (Conv3d)
    pos_embed         [N, D]  the interpolated position embedding as added to it (cast to the activation dtype),
                              recomputed with HF's own helper + table exactly as Qwen3VLVisionModel.forward does
                              (checked: patch_embed + pos_embed == the input of blocks[0], bit for bit)
    interp_indices    [N, 4]  get_vision_interpolation_indices_and_weights indices (as float32; exact)
    interp_weights    [N, 4]  ... and weights (float32)
    rotary_cos/_sin   [N, head_dim]  visual.rotary_pos_emb output (float32)
    block{i}          [N, D]  output of visual.blocks[i]
    deepstack{k}      [M, O]  output of visual.deepstack_merger_list[k]
    merger            [M, O]  output of visual.merger (pooler_output)
Plus, model-free, the index math at released sizes (see dump_index_math): axis_taps.json, index_math.json.

Usage:  $VENV/bin/python scripts/reference/dump_vision_goldens.py [--models DIR] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import Qwen3VLForConditionalGeneration
from transformers.vision_utils import get_vision_interpolation_indices_and_weights

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "fixtures" / "models"
GOLDENS = REPO / "tests" / "fixtures" / "goldens" / "vision"

# checkpoint -> list of (case name, seed, grids). Grids: two images of different shapes plus a video-like entry
# with t = 2 (two temporal slices = two separate attention segments), all in one call.
CASES = {
    "tiny-fp32-tied": [("mixed", 11, [[1, 4, 6], [1, 8, 4], [2, 4, 4]])],
    "tiny-bf16-untied": [("mixed", 22, [[1, 4, 6], [1, 8, 4], [2, 4, 4]]),
                         ("large", 23, [[1, 12, 8], [2, 8, 4]])],  # more bf16 roundings to compare
    "tiny-vision-hd24-fp32": [("mixed", 33, [[1, 6, 10], [1, 12, 4], [2, 4, 6]])],
}

LCG_MUL = 6364136223846793005
LCG_ADD = 1442695040888963407
MASK64 = (1 << 64) - 1


def pixel_values(n_rows: int, n_cols: int, seed: int) -> torch.Tensor:
    state = seed & MASK64
    out = np.empty(n_rows * n_cols, dtype=np.float32)
    for i in range(out.size):
        state = (state * LCG_MUL + LCG_ADD) & MASK64
        a = state >> 41
        state = (state * LCG_MUL + LCG_ADD) & MASK64
        b = state >> 41
        out[i] = np.float32((a + b) * 2.0**-23 - 1.0)  # exact: a 24-bit integer times 2^-23, minus 1
    return torch.from_numpy(out.reshape(n_rows, n_cols))


def to_json(obj, indent: int = 0) -> str:
    """JSON with dicts indented one key per line and lists of scalars kept on one line."""
    pad, pad1 = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad1}{json.dumps(k)}: {to_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        items = [pad1 + to_json(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False)


def write_bin(path: Path, t: torch.Tensor) -> list[int]:
    a = np.ascontiguousarray(t.detach().to(torch.float32).contiguous().numpy(), dtype="<f4")
    path.write_bytes(a.tobytes(order="C"))
    return list(a.shape)


@torch.no_grad()
def run_case(visual, name: str, seed: int, grids: list[list[int]], out_dir: Path) -> dict:
    cfg = visual.config
    dtype = visual.patch_embed.proj.weight.dtype
    n = sum(t * h * w for t, h, w in grids)
    cols = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size ** 2
    pix = pixel_values(n, cols, seed)
    grid_thw = torch.tensor(grids, dtype=torch.long)

    captured: dict[str, torch.Tensor] = {}
    hooks = [
        visual.patch_embed.register_forward_hook(lambda _m, _i, o: captured.__setitem__("patch_embed", o.clone())),
        visual.rotary_pos_emb.register_forward_hook(
            lambda _m, _i, o: captured.update(cos=o[0].clone(), sin=o[1].clone())),
        visual.blocks[0].register_forward_pre_hook(
            lambda _m, args, kwargs: captured.__setitem__("block0_input", (args[0] if args else
                                                                           kwargs["hidden_states"]).clone()),
            with_kwargs=True),
        visual.merger.register_forward_hook(lambda _m, _i, o: captured.__setitem__("merger", o.clone())),
    ]
    for i, blk in enumerate(visual.blocks):
        hooks.append(blk.register_forward_hook(lambda _m, _i, o, i=i: captured.__setitem__(f"block{i}", o.clone())))
    for k, mod in enumerate(visual.deepstack_merger_list):
        hooks.append(mod.register_forward_hook(lambda _m, _i, o, k=k: captured.__setitem__(f"deepstack{k}", o.clone())))
    out = visual(pix, grid_thw=grid_thw)
    for h in hooks:
        h.remove()

    # The interpolated position embedding, exactly the two lines of Qwen3VLVisionModel.forward.
    idx, wts = get_vision_interpolation_indices_and_weights(
        grid_thw, num_grid_per_side=visual.num_grid_per_side, mode=visual.interpolation_mode,
        align_corners=visual.interpolation_align_corners, spatial_merge_size=cfg.spatial_merge_size)
    pos = (visual.pos_embed(idx) * wts[:, :, None]).sum(1).to(dtype)
    assert torch.equal(captured["patch_embed"] + pos, captured["block0_input"]), "pos_embed recomputation differs"
    assert torch.equal(out.pooler_output, captured["merger"])
    assert len(out.deepstack_features) == len(cfg.deepstack_visual_indexes)
    for k, f in enumerate(out.deepstack_features):
        assert torch.equal(f, captured[f"deepstack{k}"])
    assert captured["patch_embed"].dtype == dtype and captured["cos"].dtype == torch.float32

    files: dict[str, str] = {}
    shapes: dict[str, list[int]] = {}

    def save(key: str, t: torch.Tensor) -> None:
        fn = f"{name}.{key}.bin"
        shapes[key] = write_bin(out_dir / fn, t)
        files[key] = fn

    save("patch_embed", captured["patch_embed"])
    save("pos_embed", pos)
    save("interp_indices", idx.to(torch.float32))
    save("interp_weights", wts)
    save("rotary_cos", captured["cos"])
    save("rotary_sin", captured["sin"])
    for i in range(len(visual.blocks)):
        save(f"block{i}", captured[f"block{i}"])
    for k in range(len(visual.deepstack_merger_list)):
        save(f"deepstack{k}", captured[f"deepstack{k}"])
    save("merger", captured["merger"])

    return {
        "name": name,
        "grid_thw": grids,
        "pixel_seed": seed,
        "pixel_values_shape": [n, cols],
        "pixel_values_head": pix.view(-1)[:8].tolist(),
        "pixel_values_sum": float(pix.double().sum()),
        "files": files,
        "shapes": shapes,
        "max_abs": {k: float(captured[k].float().abs().max()) for k in
                    ["patch_embed"] + [f"block{i}" for i in range(len(visual.blocks))] +
                    [f"deepstack{k}" for k in range(len(visual.deepstack_merger_list))] + ["merger"]},
    }


def dump_checkpoint(ckpt: str, models_dir: Path, out_root: Path) -> None:
    out_dir = out_root / ckpt
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model = Qwen3VLForConditionalGeneration.from_pretrained(models_dir / ckpt, attn_implementation="eager").eval()
    visual = model.model.visual
    vc = visual.config
    assert vc._attn_implementation == "eager", vc._attn_implementation
    dtype = {torch.float32: "float32", torch.bfloat16: "bfloat16"}[visual.patch_embed.proj.weight.dtype]
    cases = [run_case(visual, name, seed, grids, out_dir) for name, seed, grids in CASES[ckpt]]
    index = {
        "checkpoint": ckpt,
        "dtype": dtype,
        "vision_hidden_size": vc.hidden_size,
        "num_heads": vc.num_heads,
        "head_dim": vc.hidden_size // vc.num_heads,
        "depth": vc.depth,
        "out_hidden_size": vc.out_hidden_size,
        "num_position_embeddings": vc.num_position_embeddings,
        "deepstack_visual_indexes": list(vc.deepstack_visual_indexes),
        "rope_theta": float(vc.rope_parameters["rope_theta"]),
        "bin_format": "raw little-endian float32, C order; bf16 activations widened exactly",
        "pixel_generator": "LCG state = state*6364136223846793005 + 1442695040888963407 mod 2^64 from state = seed; "
                           "value = ((s1 >> 41) + (s2 >> 41)) * 2^-23 - 1 from two consecutive states; row-major",
        "reference": {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                      "module": "Qwen3VLForConditionalGeneration.model.visual", "device": "cpu",
                      "attn_implementation": "eager", "threads": 1},
        "cases": cases,
    }
    (out_dir / "index.json").write_text(to_json(index) + "\n", encoding="utf-8")
    for c in cases:
        print(f"[{ckpt}] {dtype} case {c['name']}: grids {c['grid_thw']} -> N={c['pixel_values_shape'][0]}; "
              f"max|.| {json.dumps({k: round(v, 3) for k, v in c['max_abs'].items()})}")


# Index math at released-model sizes, without a model: the pos-embed axis taps of a 48x48 table (2B..235B) for
# grid sides that occur in practice, and the vision rotary cos/sin for head_dim 64 (2B/4B) and 72 (8B and up) at
# large patch coordinates. Written to axis_taps.json and rotary_hd{64,72}.{cos,sin}.bin + index_math.json.
AXIS_SIDE = 48
AXIS_SIZES = [2, 4, 6, 30, 48, 86, 96, 128, 254]
ROTARY_HEAD_DIMS = [64, 72]
ROTARY_POSITIONS = [[0, 0], [0, 1], [1, 0], [5, 7], [17, 3], [47, 48], [85, 127], [127, 85], [200, 13], [255, 254],
                    [511, 300], [1000, 999]]


@torch.no_grad()
def dump_index_math(out_root: Path) -> None:
    from transformers.models.qwen3_vl.configuration_qwen3_vl import Qwen3VLVisionConfig
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionRotaryEmbedding
    from transformers.vision_utils import _interpolation_axis_taps_weights

    axis = {"side": AXIS_SIDE, "source": "transformers.vision_utils._interpolation_axis_taps_weights(index, size, "
                                         "side, 'bilinear', align_corners=True)", "cases": []}
    for size in AXIS_SIZES:
        index = torch.arange(size)
        taps, weights = _interpolation_axis_taps_weights(index, torch.tensor(size), AXIS_SIDE, "bilinear", True)
        axis["cases"].append({"size": size, "lo": taps[:, 0].tolist(), "hi": taps[:, 1].tolist(),
                              "weight_lo": weights[:, 0].tolist(), "weight_hi": weights[:, 1].tolist()})
    (out_root / "axis_taps.json").write_text(to_json(axis) + "\n", encoding="utf-8")

    rotary = {"positions": ROTARY_POSITIONS, "bin_format": "raw little-endian float32 [len(positions), head_dim]",
              "source": "Qwen3VLVisionRotaryEmbedding(Qwen3VLVisionConfig(hidden_size=16*head_dim, num_heads=16))",
              "cases": []}
    pos = torch.tensor(ROTARY_POSITIONS, dtype=torch.long)
    for hd in ROTARY_HEAD_DIMS:
        cfg = Qwen3VLVisionConfig(hidden_size=16 * hd, num_heads=16)
        emb = Qwen3VLVisionRotaryEmbedding(cfg)
        cos, sin = emb(torch.zeros(1), pos)
        assert cos.shape == (len(ROTARY_POSITIONS), hd) and cos.dtype == torch.float32
        write_bin(out_root / f"rotary_hd{hd}.cos.bin", cos)
        write_bin(out_root / f"rotary_hd{hd}.sin.bin", sin)
        rotary["cases"].append({"head_dim": hd, "rope_theta": float(cfg.rope_parameters["rope_theta"]),
                                "inv_freq": emb.inv_freq.tolist(), "cos": f"rotary_hd{hd}.cos.bin",
                                "sin": f"rotary_hd{hd}.sin.bin"})
    (out_root / "index_math.json").write_text(to_json(rotary) + "\n", encoding="utf-8")
    print(f"[index math] axis taps for side {AXIS_SIDE}, sizes {AXIS_SIZES}; rotary head_dim {ROTARY_HEAD_DIMS}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=Path, default=MODELS)
    ap.add_argument("--out", type=Path, default=GOLDENS)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    for ckpt in CASES:
        if args.only and ckpt not in args.only:
            continue
        dump_checkpoint(ckpt, args.models, args.out)
    if not args.only:
        dump_index_math(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
