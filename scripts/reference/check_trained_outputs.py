#!/usr/bin/env python3
"""Checks what the C++ trainer writes against PEFT and transformers (issue 16, done-when 7).

Loads an adapter folder written by write_peft_adapter with PeftModel.from_pretrained on the base checkpoint, or a
checkpoint folder written by write_hf_checkpoint with AutoModelForImageTextToText.from_pretrained, and checks:
- adapter: the file's keys are exactly the keys PEFT's get_peft_model_state_dict gives for the adapter it built from
  our adapter_config.json (no missing, no unexpected), with the same shapes and dtypes, and PEFT holds our values;
  adapter_config.json is what LoraConfig.from_pretrained + save_pretrained writes back (lists compared as sets, since
  PEFT writes its sets in hash order), with no warning while loading;
- checkpoint: output_loading_info has no missing, unexpected or mismatched keys and no error; a tie_word_embeddings
  checkpoint comes back tied;
then runs the token ids through the loaded model (eager attention, float32 as stored, CPU, one thread) and prints the
largest |logit difference| against ours.

Inputs written by tests/unit/test_checkpoint_writer.cpp when QWEN3VL_TRAINED_OUTPUT_DIR is set, one folder per case:
  adapter/ or model/   the folder our code wrote
  input_ids.bin        int32 little-endian [n], one text-only sample (positions 0..n-1)
  logits.bin           float32 little-endian [n, vocab], the C++ trainer's logits for it

Usage:  $VENV/bin/python scripts/reference/check_trained_outputs.py --base BASE_DIR (--adapter DIR | --full DIR)
            --ids input_ids.bin --logits logits.bin [--max-diff 2e-5]
Exits 1 when a check fails or the logits differ by more than --max-diff (the fp32 logits bar).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach the hub

import numpy as np
import torch
from peft import LoraConfig, PeftModel
from peft.utils.save_and_load import get_peft_model_state_dict
from safetensors import safe_open
from transformers import AutoModelForImageTextToText


def fail(message: str) -> None:
    print(f"FAIL: {message}")
    sys.exit(1)


def load_base(path: Path):
    return AutoModelForImageTextToText.from_pretrained(path, attn_implementation="eager", dtype="auto").eval()


def check_adapter_config(adapter: Path) -> None:
    ours = json.loads((adapter / "adapter_config.json").read_text())
    with tempfile.TemporaryDirectory() as resaved:
        LoraConfig.from_pretrained(adapter).save_pretrained(resaved)
        theirs = json.loads((Path(resaved) / "adapter_config.json").read_text())
    as_sets = {"target_modules", "modules_to_save"}
    norm = lambda c: {k: sorted(v) if k in as_sets and isinstance(v, list) else v for k, v in c.items()}
    if norm(ours) != norm(theirs):
        keys = sorted(set(ours) | set(theirs))
        diff = {k: (ours.get(k, "<absent>"), theirs.get(k, "<absent>"))
                for k in keys if norm(ours).get(k) != norm(theirs).get(k)}
        fail(f"adapter_config.json differs from LoraConfig's own: {diff}")
    print(f"adapter_config.json: {len(ours)} fields, as LoraConfig.save_pretrained writes them")


def load_adapter(base: Path, adapter: Path):
    check_adapter_config(adapter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(load_base(base), adapter).eval()
    # Deprecations between the pinned libraries (PEFT calling transformers' is_gradient_checkpointing) say nothing
    # about the adapter; anything else (missing adapter keys, unknown config fields, tying) fails.
    relevant = [w for w in caught if not issubclass(w.category, (DeprecationWarning, FutureWarning))]
    for w in caught:
        print(f"warning while loading ({w.category.__name__}): {w.message}")
    if relevant:
        fail("PEFT warned while loading the adapter")
    expected = get_peft_model_state_dict(model, save_embedding_layers=False)
    with safe_open(adapter / "adapter_model.safetensors", "pt") as f:
        ours = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    if metadata != {"format": "pt"}:
        fail(f"metadata {metadata}")
    missing = sorted(set(expected) - set(ours))
    unexpected = sorted(set(ours) - set(expected))
    if missing or unexpected:
        fail(f"missing keys {missing[:5]} ({len(missing)}), unexpected keys {unexpected[:5]} ({len(unexpected)})")
    for k, v in ours.items():
        e = expected[k]
        if v.shape != e.shape or v.dtype != e.dtype:
            fail(f"{k}: ours {tuple(v.shape)} {v.dtype}, PEFT's {tuple(e.shape)} {e.dtype}")
        if not torch.equal(v, e.to(v.dtype)):
            fail(f"{k}: PEFT holds other values than the file")
    print(f"adapter: {len(ours)} tensors, no missing or unexpected keys, shapes, dtypes and values as PEFT holds them")
    return model


def load_full(path: Path):
    model, info = AutoModelForImageTextToText.from_pretrained(
        path, attn_implementation="eager", dtype="auto", output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        fail(f"loading info {problems}")
    model.eval()
    config = json.loads((path / "config.json").read_text())
    tied = config.get("tie_word_embeddings", config.get("text_config", {}).get("tie_word_embeddings", False))
    same = model.lm_head.weight.data_ptr() == model.model.language_model.embed_tokens.weight.data_ptr()
    if tied != same:
        fail(f"tie_word_embeddings {tied} but lm_head {'shares' if same else 'does not share'} embed_tokens")
    print(f"checkpoint: no missing, unexpected or mismatched keys; lm_head {'tied' if same else 'untied'}")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, help="the base checkpoint (needed with --adapter)")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--adapter", type=Path)
    group.add_argument("--full", type=Path)
    parser.add_argument("--ids", type=Path, required=True)
    parser.add_argument("--logits", type=Path, required=True)
    parser.add_argument("--max-diff", type=float, default=2e-5)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    if args.adapter:
        if not args.base:
            parser.error("--adapter needs --base")
        model = load_adapter(args.base, args.adapter)
    else:
        model = load_full(args.full)
    ids = np.fromfile(args.ids, dtype="<i4")
    ours = np.fromfile(args.logits, dtype="<f4")
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(ids.astype(np.int64))[None]).logits[0].float().numpy()
    if ours.size != logits.size:
        fail(f"{args.logits} holds {ours.size} values, the model gives {logits.shape}")
    diff = float(np.abs(ours.reshape(logits.shape) - logits).max())
    print(f"logits [{logits.shape[0]}, {logits.shape[1]}]: max |ours - reference| = {diff:.3g} (bar {args.max_diff:g})")
    if not diff <= args.max_diff:
        fail("logits differ")


if __name__ == "__main__":
    main()
