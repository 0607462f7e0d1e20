#!/usr/bin/env python3
"""Dump text-path golden tensors from HF transformers for the tiny MoE checkpoints (make_tiny_moe_checkpoints.py).

Offline fixture generation only (CI never runs this). Same format as dump_text_goldens.py (whose case and greedy
code it reuses: tests/fixtures/goldens/<ckpt>/index.json + raw little-endian float32 .bin files), plus per case a
"router" entry for decoder layer 0: the router logits [S, E], the float32 router probabilities softmax(logits)
[S, E], the chosen experts (torch.topk order) [S, k] and their renormalized weights [S, k], and the MoE block
output [S, H]. Statistics over all layers (the smallest gap between the k-th and (k+1)-th probability, ties) tell
how robust the expert choice is.

The model is loaded as a user gets it: from_pretrained(attn_implementation="eager") with transformers' default
experts implementation (recorded; "grouped_mm" in 5.23). For information, the max |logit| difference against the
"eager" experts implementation (per-expert loop, index_add_ in the activation dtype) is recorded too.

The greedy continuation with an image in the prompt comes from the multimodal dump once the C++ vision path
exists: load_model() below picks the right class for a checkpoint directory (dense or MoE), so
dump_multimodal_goldens.py can take these checkpoints by adding them to its list and loading through it.

Usage:  $VENV/bin/python scripts/reference/dump_moe_goldens.py [--models DIR] [--out DIR] [--only NAME..]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch
import transformers
from transformers import Qwen3VLForConditionalGeneration, Qwen3VLMoeForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dump_text_goldens import (  # noqa: E402
    GRID_COLS, GRID_ROWS, hf_rope_index, mrope_positions, random_ids, run_case, run_greedy, special_ids, to_json,
    write_bin)

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "fixtures" / "models"
GOLDENS = REPO / "tests" / "fixtures" / "goldens"
CHECKPOINTS = ["tiny-moe-fp32", "tiny-moe-bf16"]
ROUTER_LAYER = 0


def load_model(mdir: Path, **kwargs):
    """Qwen3VLForConditionalGeneration or Qwen3VLMoeForConditionalGeneration by config.json model_type."""
    model_type = json.loads((mdir / "config.json").read_text())["model_type"]
    cls = Qwen3VLMoeForConditionalGeneration if model_type == "qwen3_vl_moe" else Qwen3VLForConditionalGeneration
    return cls.from_pretrained(mdir, attn_implementation="eager", **kwargs).eval()


class RouterCapture:
    """Forward hooks on every layer's router (mlp.gate) and MoE block (mlp); keeps the first call after arm()."""

    def __init__(self, model):
        self.layers = model.model.language_model.layers
        self.data: dict = {}
        self.armed = False
        self.handles = []
        for l, layer in enumerate(self.layers):
            self.handles.append(layer.mlp.gate.register_forward_hook(
                lambda _m, _i, out, l=l: self._keep(("router", l), tuple(t.detach().clone() for t in out))))
            self.handles.append(layer.mlp.register_forward_hook(
                lambda _m, _i, out, l=l: self._keep(("mlp", l), out.detach().clone())))

    def _keep(self, key, value):
        if self.armed and key not in self.data:
            self.data[key] = value

    def arm(self):
        self.data, self.armed = {}, True

    def close(self):
        for h in self.handles:
            h.remove()


def router_entry(cap: RouterCapture, case_name: str, out_dir: Path, k: int) -> dict:
    logits, scores, indices = cap.data[("router", ROUTER_LAYER)]
    probs = torch.softmax(logits, dim=-1, dtype=torch.float)
    # the router's own recomputation must agree with what it returned
    top_v, top_i = torch.topk(probs, k, dim=-1)
    assert torch.equal(top_i, indices), case_name
    assert torch.equal((top_v / top_v.sum(dim=-1, keepdim=True)).to(logits.dtype), scores), case_name
    prefix = f"{case_name}.layer{ROUTER_LAYER}"
    entry = {"layer": ROUTER_LAYER, "router_logits": f"{prefix}.router_logits.bin",
             "router_probs": f"{prefix}.router_probs.bin", "router_scores": f"{prefix}.router_scores.bin",
             "router_indices": indices.tolist(), "mlp_output": f"{prefix}.mlp.bin"}
    write_bin(out_dir / entry["router_logits"], logits)
    write_bin(out_dir / entry["router_probs"], probs)
    write_bin(out_dir / entry["router_scores"], scores)
    write_bin(out_dir / entry["mlp_output"], cap.data[("mlp", ROUTER_LAYER)][0])
    # robustness of the choice over all layers: gap between the k-th and (k+1)-th probability, exact ties
    gaps, ties = [], 0
    for l in range(len(cap.layers)):
        p = torch.softmax(cap.data[("router", l)][0], dim=-1, dtype=torch.float)
        srt = torch.sort(p, dim=-1, descending=True).values
        gaps.append(float((srt[:, k - 1] - srt[:, k]).min()))
        ties += int((srt[:, :-1] == srt[:, 1:]).any(dim=-1).sum())
    entry["min_topk_boundary_gap_per_layer"] = gaps
    entry["tokens_with_tied_probs_all_layers"] = ties
    return entry


@torch.no_grad()
def dump_checkpoint(ckpt: str, models_dir: Path, out_root: Path) -> None:
    mdir = models_dir / ckpt
    out_dir = out_root / ckpt
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model = load_model(mdir)
    cfg, tc = model.config, model.config.text_config
    k = tc.num_experts_per_tok
    dtype = {torch.float32: "float32", torch.bfloat16: "bfloat16"}[model.dtype]
    seed = int(hashlib.sha256(ckpt.encode()).hexdigest()[:8], 16)
    avoid = special_ids(cfg)
    cap = RouterCapture(model)

    text_ids = random_ids(16, tc.vocab_size, avoid, seed)
    body = random_ids(3 + GRID_ROWS * GRID_COLS + 5, tc.vocab_size, avoid, seed + 1)
    pre = body[:3] + [cfg.vision_start_token_id]
    blk = body[3:3 + GRID_ROWS * GRID_COLS]
    suf = [cfg.vision_end_token_id] + body[3 + GRID_ROWS * GRID_COLS:]
    mrope_ids = pre + blk + suf

    cases = []
    S = len(text_ids)
    cap.arm()
    c = run_case(model, "text", text_ids, torch.arange(S).view(1, S).expand(3, S).clone(), out_dir, False)
    c["router"] = router_entry(cap, "text", out_dir, k)
    cases.append(c)
    pos_m = mrope_positions(len(pre), len(suf))
    assert torch.equal(pos_m, hf_rope_index(model, len(pre), len(suf))), "hand-made positions != get_rope_index"
    cap.arm()
    c = run_case(model, "mrope", mrope_ids, pos_m, out_dir, False)
    c["router"] = router_entry(cap, "mrope", out_dir, k)
    cases.append(c)
    cap.close()

    greedy = run_greedy(model, text_ids)

    # information: the other experts implementation of transformers on the same prompt
    eager = load_model(mdir, experts_implementation="eager")
    ids = torch.tensor([text_ids])
    eager_diff = float((eager(input_ids=ids).logits.float() - model(input_ids=ids).logits.float()).abs().max())

    rp = tc.rope_parameters
    index = {
        "checkpoint": ckpt,
        "dtype": dtype,
        "hidden_size": tc.hidden_size,
        "vocab_size": tc.vocab_size,
        "num_layers": tc.num_hidden_layers,
        "head_dim": tc.head_dim,
        "num_experts": tc.num_experts,
        "num_experts_per_tok": k,
        "moe_intermediate_size": tc.moe_intermediate_size,
        "rope_theta": float(rp["rope_theta"]),
        "mrope_section": list(rp["mrope_section"]),
        "tie_word_embeddings": bool(cfg.tie_word_embeddings),
        "experts_implementation": model.config.text_config._experts_implementation,
        "eager_experts_vs_default_max_abs_logit_diff": eager_diff,
        "bin_format": "raw little-endian float32, C order; bf16 activations widened exactly",
        "position_ids_fed_as": "[4,1,S] to Qwen3VLMoeForConditionalGeneration.forward: row 0 = text_position_ids "
                               "(attention-mask positions), rows 1..3 = position_ids (T,H,W)",
        "reference": {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                      "device": "cpu", "attn_implementation": "eager", "threads": 1},
        "cases": cases,
        "greedy": greedy,
    }
    (out_dir / "index.json").write_text(to_json(index) + "\n", encoding="utf-8")
    print(f"[{ckpt}] {dtype} ({index['experts_implementation']}): text gap={cases[0]['min_top1_top2_gap']:.4g}, "
          f"mrope gap={cases[1]['min_top1_top2_gap']:.4g}, router boundary gaps "
          f"{[round(g, 6) for g in cases[0]['router']['min_topk_boundary_gap_per_layer']]} / "
          f"{[round(g, 6) for g in cases[1]['router']['min_topk_boundary_gap_per_layer']]}, ties "
          f"{cases[0]['router']['tokens_with_tied_probs_all_layers']}+{cases[1]['router']['tokens_with_tied_probs_all_layers']}; "
          f"greedy {greedy['num_new_tokens']} new (min step gap {greedy['step_min_top1_top2_gap']:.4g}); "
          f"eager vs default {eager_diff:.3g}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=Path, default=MODELS)
    ap.add_argument("--out", type=Path, default=GOLDENS)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for ckpt in CHECKPOINTS:
        if args.only and ckpt not in args.only:
            continue
        dump_checkpoint(ckpt, args.models, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
