#!/usr/bin/env python3
"""PyTorch / PEFT gradient goldens for the C++ trainer: one packed training batch (train_batch.py: a multi-turn text
sample, a two-image sample and a two-slice video sample in qwen-vl-finetune's flattened form) through the tiny fp32
checkpoints, the loss and the gradient of every trainable tensor, for full fine-tuning and for LoRA / rsLoRA / DoRA.

Offline fixture generation only (CI never runs this). CPU, one thread, torch.use_deterministic_algorithms(True),
attn_implementation="eager", float32, model.train() (every dropout of these models is 0; lora_dropout 0).

Usage:  $VENV/bin/python scripts/reference/dump_train_goldens.py OUT_DIR [--only CKPT ...]
        (OUT_DIR: tests/fixtures/train/grads; ~1 min)

Writes OUT_DIR/batch/ (the packed inputs, the same for every checkpoint: checked) and OUT_DIR/<ckpt>/<case>/ with
index.json, grads.safetensors (float32; HF parameter names for full fine-tuning, PEFT's saved adapter keys
"base_model.model.<path>.lora_A.weight" for LoRA), for full fine-tuning logits.bin (the rows the loss reads; the
adapter cases keep only per-token losses and logsumexps in index.json, to save space) and, for adapters, the adapter
before the step as PEFT's save_pretrained writes it (adapter_config.json, adapter_model.safetensors).

transformers 5.23 behaviour this relies on (asserted below where it can be):
- Packing without flash-attn: Qwen3VLTextModel.forward takes position_ids [4, B, S]; row 0 (text positions) goes to
  create_causal_mask, which, when attention_mask is None and there is no cache, calls masking_utils
  find_packed_sequence_indices (a new segment wherever the row does not increase by exactly 1) and ands the causal
  mask with "same segment". Each sample's logits equal the sample run alone (asserted, check_isolation).
- The vision tower runs once for all images and once for all videos of the batch (Qwen3VLModel.forward ->
  get_image_features / get_video_features); vision_utils.get_vision_cu_seqlens cuts attention per image and per
  temporal slice of a video (h*w patches each, repeat_interleave over t), so samples never mix in the tower.
- ForCausalLMLoss: logits.float(), labels shifted left with -100 appended, cross_entropy mean over labels != -100.
- Eager-mode gradients do not depend on what else is frozen: the gradients of a tune_mm_* subset equal those of the
  full fine-tuning run bit for bit (asserted, check_frozen_subsets), so the full case serves every combination.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach the hub

import numpy as np
import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from peft.utils.save_and_load import get_peft_model_state_dict
from safetensors import safe_open
from safetensors.torch import save_file
from transformers.vision_utils import get_vision_cu_seqlens

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dump_moe_goldens import load_model  # noqa: E402  (dense or MoE class by model_type)
from dump_text_goldens import to_json  # noqa: E402
from train_batch import (  # noqa: E402
    ASSISTANT, IM_END, IM_START, NEWLINE, SEED, USER, make_samples, model_inputs, text_cu_seqlens)

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "fixtures" / "models"
CHECKPOINTS = ["tiny-fp32-tied", "tiny-fp32-untied-sharded", "tiny-vision-hd24-fp32", "tiny-moe-fp32"]
PREFIX = "base_model.model."

# Every nn.Linear of the text decoder and the vision tower (blocks, merger, DeepStack mergers); not
# visual.patch_embed.proj (a Conv3d) and not lm_head. PEFT re.fullmatch-es a str target against the module path.
TEXT_LINEARS = r"model\.language_model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)"
TEXT_ATTENTION = r"model\.language_model\.layers\.\d+\.self_attn\.[qkvo]_proj"
VISION_LINEARS = (r"model\.visual\.(blocks\.\d+\.(attn\.(qkv|proj)|mlp\.linear_fc[12])"
                  r"|(merger|deepstack_merger_list\.\d+)\.linear_fc[12])")
# MoE: the router (Qwen3VLMoeTextTopKRouter.weight) and the fused experts are nn.Parameters, not nn.Linear, so
# "all-linear" leaves them out; LoRA there covers attention and the vision tower (the engine trains the router and
# experts fully or not at all).
LORA = dict(r=4, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False, bias="none", task_type="CAUSAL_LM")


def either(*patterns: str) -> str:
    return "(" + "|".join(patterns) + ")"


def adapter_cases(ckpt: str, moe: bool) -> list[dict]:
    """(b) LoRA on all linear layers of every checkpoint; (c) rsLoRA and DoRA on tiny-fp32-untied-sharded."""
    text = TEXT_ATTENTION if moe else TEXT_LINEARS
    cases = [dict(name="lora", config=dict(LORA, target_modules=either(text, VISION_LINEARS)))]
    if ckpt == "tiny-fp32-untied-sharded":
        cases.append(dict(name="rslora", config=dict(LORA, use_rslora=True,
                                                     target_modules=either(TEXT_LINEARS, VISION_LINEARS))))
        cases.append(dict(name="dora", magnitude=(0.8, 1.2),
                          config=dict(LORA, use_dora=True, target_modules=either(TEXT_LINEARS, VISION_LINEARS))))
    return cases


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def write_raw(path: Path, t: torch.Tensor, dtype: str) -> dict:
    a = np.ascontiguousarray(t.detach().numpy(), dtype={"float32": "<f4", "int32": "<i4"}[dtype])
    path.write_bytes(a.tobytes(order="C"))
    return {"file": path.name, "dtype": dtype, "shape": list(a.shape)}


def write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> list[dict]:
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    return [{"name": k, "dtype": "float32", "shape": list(v.shape)} for k, v in tensors.items()]


def settings(extra: dict | None = None) -> dict:
    out = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__,
           "peft": peft.__version__, "device": "cpu", "threads": 1, "deterministic_algorithms": True,
           "attn_implementation": "eager", "dtype": "float32", "mode": "model.train(), every dropout 0",
           "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    out.update(extra or {})
    return out


def write_batch(out: Path, model, samples, kw: dict) -> dict:
    """OUT/batch: the packed inputs (raw little-endian int32 / float32, C order) and how they were built."""
    d = out / "batch"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    cfg = model.config
    i32 = torch.int32
    files = {"input_ids": write_raw(d / "input_ids.bin", kw["input_ids"][0].to(i32), "int32"),
             "labels": write_raw(d / "labels.bin", kw["labels"][0].to(i32), "int32"),
             "position_ids": write_raw(d / "position_ids.bin", kw["position_ids"][1:, 0].to(i32), "int32"),
             "text_cu_seqlens": write_raw(d / "text_cu_seqlens.bin", torch.tensor(text_cu_seqlens(samples)).to(i32),
                                          "int32"),
             "pixel_values": write_raw(d / "pixel_values.bin", kw["pixel_values"], "float32"),
             "image_grid_thw": write_raw(d / "image_grid_thw.bin", kw["image_grid_thw"].to(i32), "int32"),
             "pixel_values_videos": write_raw(d / "pixel_values_videos.bin", kw["pixel_values_videos"], "float32"),
             "video_grid_thw": write_raw(d / "video_grid_thw.bin", kw["video_grid_thw"].to(i32), "int32")}
    cu = text_cu_seqlens(samples)
    index = {
        "what": "one packed training batch (qwen-vl-finetune data_flatten=True): samples concatenated into one row",
        "files": files,
        "samples": [{"kind": s.kind, "start": cu[i], "length": len(s.ids), "image_grid_thw": s.image_grids,
                     "video_grid_thw": s.video_grids,
                     "supervised_labels": sum(1 for v in kw["labels"][0, cu[i]:cu[i + 1]].tolist() if v != -100)}
                    for i, s in enumerate(samples)],
        "num_supervised_labels": int((kw["labels"] != -100).sum()),
        "position_ids": "[3, S] T, H, W: each sample's own Qwen3VLModel.get_rope_index, restarting at 0; the text "
                        "row fed to transformers (row 0 of its [4, 1, S] form) is arange(length) per sample",
        "text_cu_seqlens": "sample boundaries in the row (qwen-vl-finetune's attention_mask = cu_seqlens)",
        "vision_cu_seqlens": {
            "images": get_vision_cu_seqlens(kw["image_grid_thw"]).tolist(),
            "videos": get_vision_cu_seqlens(kw["video_grid_thw"]).tolist(),
            "rule": "transformers vision_utils.get_vision_cu_seqlens: one attention segment per image and per "
                    "temporal slice (h*w patches); the tower runs once over all images, once over all videos"},
        "labels": "qwen-vl-finetune preprocess_qwen_visual: -100 except answer + <|im_end|> + \\n after each "
                  "'assistant' token; the loss predicts labels[t+1] at row t",
        "chat_token_ids": {"im_start": IM_START, "im_end": IM_END, "user": USER, "assistant": ASSISTANT,
                           "newline": NEWLINE},
        "special_token_ids": {"image": cfg.image_token_id, "video": cfg.video_token_id,
                              "vision_start": cfg.vision_start_token_id, "vision_end": cfg.vision_end_token_id},
        "seed": SEED,
        "pixel_values": "seeded 8-bit levels k as the processor normalises them: (k * (1 / 255) - 0.5) / 0.5 in float32; "
                        "one row per patch (3 * 2 * 16 * 16 values), in processor order",
        "built_by": "scripts/reference/train_batch.py",
    }
    (d / "index.json").write_text(to_json(index) + "\n", encoding="utf-8")
    return index


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def check_isolation(model, samples, packed_logits: torch.Tensor) -> dict:
    """Each sample's rows of the packed logits against the sample run alone; and the same row with one plain
    arange text row (no segments) must differ, or the packed mask would not be what isolates the samples."""
    cu = text_cu_seqlens(samples)
    worst = 0.0
    for i, s in enumerate(samples):
        alone = model(**model_inputs(model, [s]), use_cache=False).logits[0]
        worst = max(worst, float((alone - packed_logits[cu[i]:cu[i + 1]]).abs().max()))
    kw = model_inputs(model, samples)
    kw["position_ids"] = kw["position_ids"].clone()
    kw["position_ids"][0, 0] = torch.arange(kw["position_ids"].shape[-1])
    unpacked = model(**kw, use_cache=False).logits[0]
    leak = float((unpacked[cu[1]:] - packed_logits[cu[1]:]).abs().max())
    scale = float(packed_logits.abs().max())
    # dense: bit-identical; MoE: the grouped experts matmul runs over another set of rows (a few ulp)
    assert worst <= 1e-6 * max(1.0, scale) * (8 if model.config.model_type == "qwen3_vl_moe" else 1), worst
    assert leak > 1e-2, leak
    return {"max_abs_diff_packed_vs_alone": worst, "max_abs_logit": scale,
            "max_abs_diff_vs_one_unsegmented_sequence": leak}


def tune_mm_trainable(name: str, llm: bool, mlp: bool, vision: bool) -> bool:
    """qwen-vl-finetune train_qwen.py set_model: tune_mm_vision toggles model.visual (tower, DeepStack mergers),
    tune_mm_mlp then model.visual.merger, tune_mm_llm model.language_model; lm_head.weight stays trainable
    (set_model assigns a plain attribute on the module, not on the parameter)."""
    if name.startswith("model.visual.merger."):
        return mlp
    if name.startswith("model.visual."):
        return vision
    if name.startswith("model.language_model."):
        return llm
    return True


def check_frozen_subsets(mdir: Path, kw: dict, full: dict[str, torch.Tensor]) -> list[dict]:
    out = []
    for llm, mlp, vision in [(True, True, False), (False, True, True)]:
        model = load_model(mdir)
        model.train()
        for n, p in model.named_parameters():
            p.requires_grad_(tune_mm_trainable(n, llm, mlp, vision))
        model(**kw, use_cache=False).loss.backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
        for n, g in grads.items():
            assert torch.equal(g, full[n]), (llm, mlp, vision, n)
        out.append({"tune_mm_llm": llm, "tune_mm_mlp": mlp, "tune_mm_vision": vision, "trainable_tensors": len(grads),
                    "gradients_equal_full_case": "bit for bit"})
    return out


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------
def loss_outputs(out, kw: dict, d: Path, with_logits: bool) -> dict:
    """The loss, the per-token losses and their rows' logsumexp, and (to keep the fixtures small, only for full
    fine-tuning) the logits of the rows the loss reads."""
    labels = torch.nn.functional.pad(kw["labels"][0], (0, 1), value=-100)[1:]
    rows = (labels != -100).nonzero()[:, 0]
    logits = out.logits[0].detach().float()
    token = torch.nn.functional.cross_entropy(logits[rows], labels[rows], reduction="none")
    entry = {"loss": out.loss.item(), "token_losses": token.tolist(), "loss_rows": rows.tolist(),
             "loss_rows_logsumexp": torch.logsumexp(logits[rows], dim=-1).tolist()}
    if with_logits:
        entry["logits"] = write_raw(d / "logits.bin", logits[rows], "float32")
        entry["logits"]["rows"] = "loss_rows: row t of the packed sequence, whose target is labels[t + 1]"
    assert abs(float(token.mean()) - entry["loss"]) <= 1e-6 * entry["loss"], (float(token.mean()), entry["loss"])
    return entry


def full_case(mdir: Path, kw: dict, d: Path, samples) -> tuple[dict, dict]:
    model = load_model(mdir)
    model.train()
    out = model(**kw, use_cache=False)
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    entry = {"case": "full", "trainable": "every parameter (model.named_parameters(): a tied lm_head.weight is "
                                          "model.language_model.embed_tokens.weight and appears once)"}
    entry.update(loss_outputs(out, kw, d, True))
    entry["tensors"] = {"file": "grads.safetensors", "what": "d loss / d parameter", "entries":
                        write_tensors(d / "grads.safetensors", grads)}
    entry["tied_word_embeddings"] = bool(model.config.tie_word_embeddings)
    entry["packing"] = check_isolation(model, samples, out.logits[0].detach())
    return entry, grads


def perturb_magnitudes(model, spread: tuple[float, float]) -> None:
    """DoRA's magnitude starts as ||W + s B A|| per row (f = 1): scaled by seeded U(lo, hi) so (f - 1) matters."""
    g = torch.Generator().manual_seed(SEED + 7)
    lo, hi = spread
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_magnitude_vector" in n:
                p.mul_(lo + (hi - lo) * torch.rand(p.shape, generator=g))


def adapter_case(mdir: Path, ckpt: str, spec: dict, kw: dict, d: Path) -> dict:
    torch.manual_seed(SEED)  # PEFT's init of A and B (init_lora_weights=False: nn.Linear's kaiming-uniform for both)
    model = get_peft_model(load_model(mdir), LoraConfig(**spec["config"]))
    if "magnitude" in spec:
        perturb_magnitudes(model, spec["magnitude"])
    model.peft_config["default"].base_model_name_or_path = ckpt
    model.save_pretrained(d, save_embedding_layers=False)
    (d / "README.md").unlink()
    model.train()
    out = model(**kw, use_cache=False)
    out.loss.backward()
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    grads = get_peft_model_state_dict(model, state_dict={n: p.grad for n, p in named.items()})
    with safe_open(d / "adapter_model.safetensors", "pt") as f:
        keys = set(f.keys())
        for k in keys:  # the saved adapter is exactly the trained one
            assert k in grads, k
    assert keys == set(grads) and all(g is not None for g in grads.values()), keys ^ set(grads)
    assert len(grads) == len(named)
    cfg = json.loads((d / "adapter_config.json").read_text())
    entry = {"case": spec["name"], "trainable": "the adapter tensors only (base frozen)",
             "adapter": {"files": ["adapter_config.json", "adapter_model.safetensors"],
                         "state": "before the step (the C++ test starts from it)",
                         **{k: cfg.get(k) for k in ("r", "lora_alpha", "use_rslora", "use_dora", "target_modules",
                                                    "target_parameters", "init_lora_weights", "lora_dropout",
                                                    "bias")}}}
    if "magnitude" in spec:
        entry["adapter"]["magnitude"] = (f"lora_magnitude_vector = ||W + s B A|| (row norm, PEFT's init) times "
                                         f"seeded U{tuple(spec['magnitude'])}")
    entry["modules"] = wrapped_modules(model)
    entry.update(loss_outputs(out, kw, d, False))
    entry["tensors"] = {"file": "grads.safetensors", "what": "d loss / d adapter tensor, PEFT's saved key names",
                        "entries": write_tensors(d / "grads.safetensors", dict(sorted(grads.items())))}
    return entry


def wrapped_modules(model) -> list[dict]:
    from peft.tuners.lora import LoraLayer
    rows = []
    for n, m in model.named_modules():
        if isinstance(m, LoraLayer) and "default" in m.r:
            rows.append({"module": n.removeprefix(PREFIX), "kind": type(m).__name__,
                         "parameter": getattr(m, "parameter_name", None), "r": m.r["default"],
                         "scaling": m.scaling["default"], "in": m.in_features, "out": m.out_features})
    return rows


def dump_checkpoint(ckpt: str, out: Path, batch_ids: list | None) -> list:
    mdir = MODELS / ckpt
    model = load_model(mdir)
    samples = make_samples(model.config)
    kw = model_inputs(model, samples)
    if batch_ids is None:
        write_batch(out, model, samples, kw)
    else:
        assert kw["input_ids"][0].tolist() == batch_ids, ckpt  # one batch serves every checkpoint
    root = out / ckpt
    if root.exists():
        shutil.rmtree(root)
    moe = model.config.model_type == "qwen3_vl_moe"
    d = root / "full"
    d.mkdir(parents=True)
    entry, grads = full_case(mdir, kw, d, samples)
    if ckpt == CHECKPOINTS[0]:
        entry["frozen_subsets_checked"] = check_frozen_subsets(mdir, kw, grads)
    finish(entry, ckpt, d)
    for spec in adapter_cases(ckpt, moe):
        d = root / spec["name"]
        d.mkdir(parents=True)
        finish(adapter_case(mdir, ckpt, spec, kw, d), ckpt, d)
    return kw["input_ids"][0].tolist()


def finish(entry: dict, ckpt: str, d: Path) -> None:
    entry = {"checkpoint": ckpt, "batch": "../../batch", **entry,
             "settings": settings({"seed": SEED, "script": "scripts/reference/dump_train_goldens.py"})}
    (d / "index.json").write_text(to_json(entry) + "\n", encoding="utf-8")
    print(f"[{ckpt}] {entry['case']}: loss {entry['loss']:.6f}, {len(entry['tensors']['entries'])} tensors"
          + (f", packed vs alone {entry['packing']['max_abs_diff_packed_vs_alone']:.3g}" if "packing" in entry else ""))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path, help="output folder (tests/fixtures/train/grads)")
    ap.add_argument("--only", nargs="*", default=None, help="checkpoints to dump (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    batch_ids = None
    if (out / "batch" / "input_ids.bin").exists() and args.only:
        batch_ids = np.fromfile(out / "batch" / "input_ids.bin", dtype="<i4").tolist()
    for ckpt in args.only or CHECKPOINTS:
        batch_ids = dump_checkpoint(ckpt, out, batch_ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
