#!/usr/bin/env python3
"""Which parameters train, in which order, and which decay: transformers + PEFT's answer for the tiny checkpoints.

Offline fixture generation only (CI never runs this). For each case below the model is loaded as the trainers load
it and the trainable parameters are read from named_parameters() (requires_grad), in that order, with the weight
decay flag of transformers' Trainer.get_decay_parameter_names. Cases:
  tune_*      qwen-vl-finetune's train_qwen.py set_model, copied below, on tied checkpoints. (On an untied one
              set_model's `model.lm_head.requires_grad = False` sets a module attribute and lm_head.weight keeps
              training; the engine deliberately lets lm_head follow tune_mm_llm, so untied cases here call
              lm_head.requires_grad_(tune_mm_llm) after set_model.)
  lora_*      get_peft_model(model, LoraConfig(...)); modules_to_save are the engine's entries for the fully
              trained parts; one forward pass checks the wrapped model still runs.
Names are written as the engine names parameters: HF names for whole tensors (PEFT's "base_model.model." prefix and
"modules_to_save.default." dropped), PEFT's saved keys for LoRA factors (base_model.model.<module>.lora_A.weight,
.lora_B.weight, .lora_magnitude_vector).

Writes tests/fixtures/train/trainable_parameters.json (or --out FILE). Deterministic (no random values are written).
Usage: $VENV/bin/python scripts/reference/dump_trainable_parameters.py [--out FILE]   (~10 s)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dump_moe_goldens import load_model  # noqa: E402
from dump_text_goldens import to_json  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "fixtures" / "models"

CASES = [
    dict(name="tune_all_tied", base="tiny-fp32-tied", tune=dict(llm=True, mlp=True, vision=True)),
    dict(name="tune_mlp_only", base="tiny-fp32-tied", tune=dict(llm=False, mlp=True, vision=False)),
    dict(name="tune_vision_only", base="tiny-fp32-tied", tune=dict(llm=False, mlp=False, vision=True)),
    dict(name="tune_llm_untied", base="tiny-fp32-untied-sharded", tune=dict(llm=True, mlp=False, vision=False)),
    dict(name="tune_all_moe", base="tiny-moe-fp32", tune=dict(llm=True, mlp=True, vision=True)),
    dict(name="lora_all_linear_dora", base="tiny-fp32-tied", tune=dict(llm=False, mlp=False, vision=False),
         lora=dict(r=4, lora_alpha=8, target_modules="all-linear", use_dora=True)),
    dict(name="lora_mixed_merger", base="tiny-fp32-untied-sharded", tune=dict(llm=False, mlp=True, vision=False),
         lora=dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "qkv", "linear_fc1"],
                   rank_pattern={"v_proj": 2}, modules_to_save=["model.visual.merger"])),
    dict(name="lora_vision_llm_full_moe", base="tiny-moe-fp32", tune=dict(llm=True, mlp=False, vision=False),
         lora=dict(r=2, lora_alpha=4, target_modules=["qkv", "attn.proj", "q_proj"], use_rslora=True,
                   modules_to_save=["model.language_model.embed_tokens", "model.language_model.layers.0",
                                    "model.language_model.layers.1", "model.language_model.norm"])),
]


def set_model(tune: dict, model) -> None:
    """qwen-vl-finetune/qwenvl/train/train_qwen.py set_model (HEAD 96588727e44c)."""
    for _, p in model.model.visual.named_parameters():
        p.requires_grad = tune["vision"]
    for _, p in model.model.visual.merger.named_parameters():
        p.requires_grad = tune["mlp"]
    for _, p in model.model.language_model.named_parameters():
        p.requires_grad = tune["llm"]
    model.lm_head.requires_grad = tune["llm"]  # a module attribute, as the official code writes it


def engine_name(name: str) -> str:
    for wrapped, saved in ((".lora_A.default.weight", ".lora_A.weight"), (".lora_B.default.weight", ".lora_B.weight"),
                           (".lora_magnitude_vector.default.weight", ".lora_magnitude_vector")):
        if name.endswith(wrapped):
            return name[: -len(wrapped)] + saved
    name = name.replace(".modules_to_save.default.", ".")
    return name.removeprefix("base_model.model.")


def run_case(case: dict) -> dict:
    model = load_model(MODELS / case["base"], dtype=torch.float32)
    set_model(case["tune"], model)
    if not model.config.tie_word_embeddings:
        model.lm_head.requires_grad_(case["tune"]["llm"])
    out = {"base": case["base"], "tune": case["tune"]}
    if "lora" in case:
        for p in model.parameters():  # train_qwen.py with lora_enable: everything frozen, then get_peft_model
            p.requires_grad = False
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **case["lora"]))
        out["lora"] = case["lora"]
        out["saved_target_modules"] = sorted(model.peft_config["default"].target_modules)
        with torch.no_grad():
            model(input_ids=torch.tensor([[1, 5, 9, 200]]))
    decay = set(Trainer.get_decay_parameter_names(None, model))
    out["parameters"] = [[engine_name(n), n in decay, list(p.shape)]
                         for n, p in model.named_parameters() if p.requires_grad]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "train" / "trainable_parameters.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    result = {"reference": {"transformers": transformers.__version__, "peft": peft.__version__,
                            "torch": torch.__version__.split("+")[0]},
              "cases": {case["name"]: run_case(case) for case in CASES}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_json(result) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
