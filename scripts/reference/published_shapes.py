#!/usr/bin/env python3
"""bf16 at the published shapes: our bf16 against transformers' own bf16, both against an fp32 reference.

For each published Qwen3-VL config (2B, 4B, 8B, 32B, 30B-A3B, 235B-A22B) this writes a shape-faithful checkpoint
with seeded random bf16 weights: the real hidden sizes, heads, head_dim 128, mrope [24, 20, 20], 128 experts top-8,
the vision tower at full depth with its real DeepStack taps, the language model truncated to a few layers so that
the fp32 reference fits this machine (scripts/bench/make_bench_checkpoint.py writes the files, with the same weight
scheme; expert tensors get N(0, 1/fan_in) of the expert's own input width, in the released input-major layout).

Two teacher-forced prompts per checkpoint:
  text   the first --positions tokens of tests/fixtures/tokenizer/qwen3/LICENSE, as plain text
  image  the Instruct chat template: a user turn (three pictures of about 480x320, PNG, so that the vision tower's
         noise is drawn three times, and a question) and an assistant turn of LICENSE text, tokenized and expanded
         by transformers' own Qwen3VLProcessor
transformers' logits of every position, three ways (one logits file each, the format of src/io/logits_file.h):
  fp32       weights upcast to float32, float32 compute, eager attention (the reference)
  bf16-eager bf16 as loaded, attn_implementation="eager" (and experts_implementation="eager" for MoE)
  bf16       bf16 as from_pretrained loads it by default (sdpa attention, the default experts kernel)
then ours: `qwen3vl kld -m CKPT --base-logits fp32 [--image PICTURE ...] --save-logits ours`.

Each candidate (transformers bf16-eager, transformers bf16, ours) is compared with the reference here, in float64:
mean and max KL(reference || candidate), top-1 agreement with the reference; and where ours and a transformers bf16
run disagree on top-1, that run's own top-1 minus top-2 logit in bf16 steps at its top-1 logit's magnitude (a
histogram; the same for transformers' eager run against its default, their own spread). Results go to
OUT/results.json and print as a markdown table.

One comparison is one draw of each engine's rounding noise: the order in which every GEMM sums its products is fixed
per implementation, and its errors reach every position alike. --draws N measures the spread: N copies of the
checkpoint with the language model's hidden units (and MLP units) permuted, which changes every summation order of
the language model but not the function it computes in exact arithmetic, each scored by transformers bf16 (default
attention) and ours against the same unpermuted fp32 reference.

Usage:
  $VENV/bin/python scripts/reference/published_shapes.py --qwen3vl build/bin/qwen3vl [--out DIR]
      [--configs 2B,4B,8B,32B,30B-A3B,235B-A22B] [--positions 320] [--threads 2] [--keep] [--draws N]
  --out   default ~/.cache/qwen3vl/published-shapes ($XDG_CACHE_HOME honoured); a checkpoint and its logits files
          are reused when present (delete the folder to redo it); --keep keeps the checkpoints (each 3-9 GB), which
          are deleted after their config is measured otherwise
Memory: the fp32 reference of 235B-A22B with its one layer holds about 16 GB.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (AutoProcessor, Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLMoeConfig,
                          Qwen3VLMoeForConditionalGeneration)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "bench"))
from make_bench_checkpoint import (  # noqa: E402
    CACHE, IDS, SEED, random_tensor, seeded_generator, write_checkpoint, write_json)

LICENSE = REPO / "tests" / "fixtures" / "tokenizer" / "qwen3" / "LICENSE"
IMAGES = REPO / "tests" / "fixtures" / "images"
# (file, crop box or None, size): the whole picture scaled, another scaled, a crop of the first at full resolution.
PICTURES = [("large_2048x1365.jpg", None, (480, 320)), ("over_max_700x500.jpg", None, (448, 320)),
            ("large_2048x1365.jpg", (1024, 512, 1504, 832), (480, 320))]
QUESTION = "Describe these pictures in detail, then quote the license that covers them."

ROPE = {"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [24, 20, 20], "mrope_interleaved": True}
SMALL_TOWER = dict(depth=24, hidden_size=1024, intermediate_size=4096, deepstack_visual_indexes=[5, 11, 17])
LARGE_TOWER = dict(depth=27, hidden_size=1152, intermediate_size=4304, deepstack_visual_indexes=[8, 16, 24])
# The released config.json values (see the spec's per-model table); `layers` is this script's truncation.
PUBLISHED = {
    "2B": dict(hidden=2048, heads=16, kv=8, inter=6144, tie=True, tower=SMALL_TOWER, layers=3),
    "4B": dict(hidden=2560, heads=32, kv=8, inter=9728, tie=True, tower=SMALL_TOWER, layers=3),
    "8B": dict(hidden=4096, heads=32, kv=8, inter=12288, tie=False, tower=LARGE_TOWER, layers=3),
    "32B": dict(hidden=5120, heads=64, kv=8, inter=25600, tie=False, tower=LARGE_TOWER, layers=3),
    "30B-A3B": dict(hidden=2048, heads=32, kv=4, inter=6144, moe_inter=768, tie=False, tower=LARGE_TOWER, layers=3),
    # One layer: its 128 experts of 4096 x 1536 are 2.4 B parameters, 9.7 GB in the fp32 reference.
    "235B-A22B": dict(hidden=4096, heads=64, kv=4, inter=12288, moe_inter=1536, tie=False, tower=LARGE_TOWER,
                      layers=1),
}
EXPERT_TENSORS = ("mlp.experts.gate_up_proj", "mlp.experts.down_proj")
RUNS = ("fp32", "bf16-eager", "bf16")
CANDIDATES = ("bf16-eager", "bf16", "ours")
CASES = ("text", "image")


def make_config(spec: dict):
    text = dict(vocab_size=151936, hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
                num_attention_heads=spec["heads"], num_key_value_heads=spec["kv"], head_dim=128,
                intermediate_size=spec["inter"], rms_norm_eps=1e-6, max_position_embeddings=262144,
                hidden_act="silu", attention_bias=False, tie_word_embeddings=spec["tie"], bos_token_id=151643,
                eos_token_id=151645, rope_parameters=dict(ROPE))
    vision = dict(num_heads=16, out_hidden_size=spec["hidden"], patch_size=16, temporal_patch_size=2,
                  spatial_merge_size=2, in_channels=3, num_position_embeddings=2304, hidden_act="gelu_pytorch_tanh",
                  **spec["tower"])
    moe = "moe_inter" in spec
    if moe:
        text.update(moe_intermediate_size=spec["moe_inter"], num_experts=128, num_experts_per_tok=8,
                    decoder_sparse_step=1, mlp_only_layers=[], norm_topk_prob=True)
    cls, model_cls = ((Qwen3VLMoeConfig, Qwen3VLMoeForConditionalGeneration) if moe
                      else (Qwen3VLConfig, Qwen3VLForConditionalGeneration))
    config = cls(text_config=text, vision_config=vision, tie_word_embeddings=spec["tie"], **IDS)
    config.dtype = torch.bfloat16
    config.architectures = [model_cls.__name__]
    return config, model_cls


def tensor(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """random_tensor, but fused expert tensors (in memory [E, out, in]) get N(0, 1/in), their real fan-in, and are
    stored input-major as the released checkpoints store them: gate_up_proj [E, H, 2*Im], down_proj [E, Im, H]."""
    if not name.endswith(EXPERT_TENSORS):
        return random_tensor(name, shape)
    t = torch.randn(shape, generator=seeded_generator(name)) / math.sqrt(shape[-1])
    return t.to(torch.bfloat16).transpose(1, 2).contiguous()


def write_logits(path: Path, ids: list[int], logits: torch.Tensor) -> None:
    rows = logits.float().numpy()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(b"Q3VLLGT1" + struct.pack("<IIQ", rows.shape[1], 0, len(ids)))
        f.write(np.asarray(ids, dtype="<i4").tobytes())
        f.write(rows.astype("<f4").tobytes())
    tmp.rename(path)


def read_logits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = path.read_bytes()
    assert data[:8] == b"Q3VLLGT1", path
    vocab, _, n = struct.unpack("<IIQ", data[8:24])
    ids = np.frombuffer(data, dtype="<i4", count=n, offset=24)
    rows = np.frombuffer(data, dtype="<f4", count=n * vocab, offset=24 + 4 * n).reshape(n, vocab)
    return ids, rows


def prompts(ckpt: Path, positions: int, pictures: list[Path]) -> dict:
    """Token ids (and the processor's image inputs) of the text and the image prompt."""
    processor = AutoProcessor.from_pretrained(ckpt)
    license_ids = processor.tokenizer(LICENSE.read_text(encoding="utf-8"))["input_ids"]
    text_ids = license_ids[:positions]
    answer = processor.tokenizer.decode(license_ids[:positions // 2])
    messages = [{"role": "user", "content": [{"type": "image"}] * len(pictures) + [{"type": "text", "text": QUESTION}]},
                {"role": "assistant", "content": [{"type": "text", "text": answer}]}]
    chat = processor.apply_chat_template(messages, tokenize=False)
    inputs = processor(text=[chat], images=[Image.open(p) for p in pictures], return_tensors="pt")
    return {"text": {"ids": text_ids, "inputs": {"input_ids": torch.tensor([text_ids])}},
            "image": {"ids": inputs["input_ids"][0].tolist(),
                      "inputs": {k: inputs[k] for k in ("input_ids", "pixel_values", "image_grid_thw")}}}


@torch.no_grad()
def transformers_logits(ckpt: Path, model_cls, run: str, cases: dict, out: Path, suffix: str = "") -> None:
    files = {case: out / f"{case}.{run}{suffix}.logits" for case in cases}
    if all(f.exists() for f in files.values()):
        return
    kwargs = {"fp32": dict(dtype=torch.float32, attn_implementation="eager"),
              "bf16-eager": dict(dtype=torch.bfloat16, attn_implementation="eager"),
              "bf16": dict(dtype=torch.bfloat16)}[run]
    if run == "bf16-eager" and model_cls is Qwen3VLMoeForConditionalGeneration:
        kwargs["experts_implementation"] = "eager"
    if run == "fp32" and model_cls is Qwen3VLMoeForConditionalGeneration:
        # Loaded as bf16 and upcast in place (the same float32 values): a float32 load converts the fused expert
        # tensors through extra copies, which 235B-A22B's reference cannot afford in 24 GB.
        kwargs["dtype"] = torch.bfloat16
    model = model_cls.from_pretrained(ckpt, **kwargs).eval()
    if run == "fp32":
        model = model.to(torch.float32)
    for case, data in cases.items():
        inputs = dict(data["inputs"])
        if "pixel_values" in inputs:
            inputs["mm_token_type_ids"] = (inputs["input_ids"] == model.config.image_token_id).int()
        logits = model(**inputs, use_cache=False).logits[0]
        write_logits(files[case], data["ids"], logits)
        print(f"  transformers {run:10s} {case}: {len(data['ids'])} positions", flush=True)
    del model
    gc.collect()


def our_logits(qwen3vl: Path, ckpt: Path, case: str, out: Path, pictures: list[Path], threads: int,
               suffix: str = "") -> None:
    ours = out / f"{case}.ours{suffix}.logits"
    if ours.exists():
        return
    cmd = [str(qwen3vl), "kld", "-m", str(ckpt), "--base-logits", str(out / f"{case}.fp32.logits"),
           "--save-logits", str(ours), "-t", str(threads), "--json"]
    if case == "image":
        for picture in pictures:
            cmd += ["--image", str(picture)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"  ours                    {case}{suffix}", flush=True)


def write_pictures(root: Path) -> list[Path]:
    """PICTURES as PNG files under root (decoded by Pillow once, so both engines read the same pixels)."""
    paths = []
    for i, (name, box, size) in enumerate(PICTURES):
        path = root / f"picture{i}_{size[0]}x{size[1]}.png"
        if not path.exists():
            picture = Image.open(IMAGES / name).convert("RGB")
            picture = picture.crop(box) if box else picture
            picture.resize(size, Image.Resampling.LANCZOS).save(path)
        paths.append(path)
    return paths


def permuted_tensor(name: str, t: torch.Tensor, hidden: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """t with the language model's hidden units renumbered by `hidden` (and MLP units by `inner`): the same function
    (the vocabulary's order, attention heads and RMSNorm's mean are unchanged), other summation orders."""
    if name.endswith(("embed_tokens.weight", "lm_head.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                      "self_attn.v_proj.weight", "mlp.gate.weight")):
        return t[:, hidden]
    if name.endswith(("input_layernorm.weight", "post_attention_layernorm.weight", "language_model.norm.weight")):
        return t[hidden]
    if name.endswith("self_attn.o_proj.weight"):
        return t[hidden]
    if name.endswith(("mlp.gate_proj.weight", "mlp.up_proj.weight")):
        return t[inner][:, hidden]
    if name.endswith("mlp.down_proj.weight"):
        return t[hidden][:, inner]
    if name.endswith("mlp.experts.gate_up_proj"):  # released layout [E, H, 2*Im]
        return t[:, hidden, :]
    if name.endswith("mlp.experts.down_proj"):  # [E, Im, H]
        return t[:, :, hidden]
    if "merger" in name and ".linear_fc2." in name:  # the vision tower's outputs feed the hidden units
        return t[hidden]
    return t


def write_permuted(ckpt: Path, out: Path, seed: int, spec: dict) -> None:
    if (out / "config.json").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator()
    g.manual_seed(seed)
    hidden = torch.randperm(spec["hidden"], generator=g)
    inner = torch.randperm(spec["inter"], generator=g)
    for f in ckpt.iterdir():
        if f.suffix == ".safetensors":
            with safe_open(f, "pt") as src:
                save_file({k: permuted_tensor(k, src.get_tensor(k), hidden, inner).contiguous() for k in src.keys()},
                          out / f.name, metadata={"format": "pt"})
        else:
            shutil.copy(f, out / f.name)


def permuted_logits(args, ckpt: Path, suffix: str, seed: int, spec: dict, model_cls, cases: dict, out: Path,
                    pictures: list[Path]) -> None:
    """transformers bf16 (default attention) and ours on a copy of ckpt with its units permuted (write_permuted)."""
    copy = out / f"checkpoint{suffix}"
    write_permuted(ckpt, copy, seed, spec)
    transformers_logits(copy, model_cls, "bf16", cases, out, suffix)
    for case in cases:
        our_logits(args.qwen3vl, copy, case, out, pictures, args.threads, suffix)
    if not args.keep:
        shutil.rmtree(copy)


def draw_kls(out: Path, case: str, suffixes: list[str]) -> dict:
    """Mean KL(fp32 reference || run) of transformers bf16 and ours for each draw (suffix "": the unpermuted one)."""
    lp_ref = log_softmax(read_logits(out / f"{case}.fp32.logits")[1])
    return {run: [float(kl_rows(lp_ref, read_logits(out / f"{case}.{run}{suffix}.logits")[1]).mean())
                  for suffix in suffixes] for run in ("bf16", "ours")}


def log_softmax(rows: np.ndarray) -> np.ndarray:
    x = rows.astype(np.float64)
    x -= x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def kl_rows(lp_ref: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """KL(reference || rows) per position, from the reference's log-softmax."""
    return (np.exp(lp_ref) * (lp_ref - log_softmax(rows))).sum(axis=1)


def bf16_steps(top1: np.ndarray, top2: np.ndarray) -> np.ndarray:
    """(top1 - top2) in units of the bf16 spacing at |top1| (8 significant bits)."""
    exponent = np.floor(np.log2(np.maximum(np.abs(top1), 1e-30)))
    return (top1 - top2) / np.exp2(exponent - 7)


def compare(out: Path, case: str) -> dict:
    ids, ref = read_logits(out / f"{case}.fp32.logits")
    lp_ref = log_softmax(ref)
    top1_ref = ref.argmax(axis=1)
    rows = {name: read_logits(out / f"{case}.{name}.logits") for name in CANDIDATES}
    result = {"positions": int(len(ids))}
    for name, (cand_ids, cand) in rows.items():
        assert np.array_equal(cand_ids, ids), f"{case}.{name}: other tokens than the reference"
        kl = kl_rows(lp_ref, cand)
        result[name] = {"mean_kl": float(kl.mean()), "max_kl": float(kl.max()),
                        "top1_agreement": float((cand.argmax(axis=1) == top1_ref).mean())}
    # Where a candidate's top-1 differs from a transformers bf16 run's: that run's own top-1 minus top-2 logit there.
    # transformers eager against its default too, for the spread between transformers' own two bf16 runs.
    for cand, name in (("ours", "bf16-eager"), ("ours", "bf16"), ("bf16-eager", "bf16")):
        theirs = rows[name][1]
        differ = np.nonzero(theirs.argmax(axis=1) != rows[cand][1].argmax(axis=1))[0]
        top2 = np.sort(theirs[differ], axis=1)[:, -2:] if len(differ) else np.zeros((0, 2))
        steps = bf16_steps(top2[:, 1], top2[:, 0]) if len(differ) else np.zeros(0)
        result[cand][f"top1_differs_from_{name}"] = {
            "positions": differ.tolist(), "their_margin_bf16_steps": [round(float(s), 3) for s in steps]}
    return result


def histogram(steps: list[float]) -> str:
    bins = {"0": 0, "(0,1]": 0, "(1,2]": 0, ">2": 0}
    for s in steps:
        bins["0" if s == 0 else "(0,1]" if s <= 1 else "(1,2]" if s <= 2 else ">2"] += 1
    return " ".join(f"{k}:{v}" for k, v in bins.items())


def print_table(results: dict) -> None:
    print("\n| config | prompt | positions | mean KL tf bf16 eager | mean KL tf bf16 | mean KL ours | top-1 tf bf16 "
          "eager | top-1 tf bf16 | top-1 ours | ours vs tf bf16 top-1 differs: their margin in bf16 steps |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in [n for n in PUBLISHED if n in results]:
        for case, r in results[name].items():
            steps = r["ours"]["top1_differs_from_bf16"]["their_margin_bf16_steps"]
            print(f"| {name} | {case} | {r['positions']} | " +
                  " | ".join(f"{r[c]['mean_kl']:.3e}" for c in CANDIDATES) + " | " +
                  " | ".join(f"{100 * r[c]['top1_agreement']:.1f}%" for c in CANDIDATES) +
                  f" | {len(steps)} ({histogram(steps)}) |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qwen3vl", type=Path, required=True, help="the qwen3vl binary")
    ap.add_argument("--out", type=Path, default=CACHE / "published-shapes")
    ap.add_argument("--configs", default=",".join(PUBLISHED))
    ap.add_argument("--positions", type=int, default=320)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--draws", type=int, default=0, help="permuted copies per config (the noise's spread)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = args.out.resolve()
    root.mkdir(parents=True, exist_ok=True)
    pictures = write_pictures(root)
    results_file = root / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for name in args.configs.split(","):
        spec = PUBLISHED[name]
        out = root / name
        ckpt = out / "checkpoint"
        config, model_cls = make_config(spec)
        print(f"{name}: {spec['layers']} text layer(s), vision depth {spec['tower']['depth']}", flush=True)
        done = all((out / f"{c}.{r}.logits").exists() for c in CASES for r in RUNS + ("ours",))
        suffixes = [f".draw{d}" for d in range(1, args.draws + 1)]
        missing = [d for d, suffix in enumerate(suffixes, start=1)
                   if not all((out / f"{c}.{r}{suffix}.logits").exists() for c in CASES for r in ("bf16", "ours"))]
        if (not done or missing) and not (ckpt / "config.json").exists():
            write_checkpoint(ckpt, config, model_cls, tensor)
        cases = prompts(ckpt, args.positions, pictures) if not done or missing else {}
        if not done:
            for run in RUNS:
                transformers_logits(ckpt, model_cls, run, cases, out)
            for case in cases:
                our_logits(args.qwen3vl, ckpt, case, out, pictures, args.threads)
        for d in missing:
            permuted_logits(args, ckpt, suffixes[d - 1], SEED + d, spec, model_cls, cases, out, pictures)
        results[name] = {case: compare(out, case) for case in CASES}
        if args.draws:
            for case in CASES:
                results[name][case]["draws"] = draw_kls(out, case, [""] + suffixes)
        write_json(results_file, results)
        if not args.keep and ckpt.exists():
            shutil.rmtree(ckpt)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
