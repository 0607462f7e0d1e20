#!/usr/bin/env python3
"""Dump text-path golden tensors from HF transformers for the tiny checkpoints.

Offline fixture generation only (CI never runs this). Reads tests/fixtures/models/<ckpt>/ (made by
make_tiny_checkpoints.py) and writes tests/fixtures/goldens/<ckpt>/index.json plus raw little-endian
float32 C-order .bin files.

The model runs on CPU, in the dtype it was saved in (fp32 or bf16; transformers 5 loads with dtype "auto"),
attn_implementation="eager", one thread. bf16 activations are widened to float32 exactly when written.

Position ids: in this transformers version Qwen3VLTextModel.forward accepts position_ids of shape
[4, B, S]: row 0 = the 1D "text" positions (only used to build the attention mask), rows 1..3 = the
T, H, W MRoPE positions. (A [3, B, S] tensor is taken as T/H/W with no text row; a [B, S] tensor is
broadcast to all four rows.) generate() builds the same [4, B, S] layout in
Qwen3VLForConditionalGeneration._prepare_position_ids_for_generation. We always pass the 4-row form,
with row 0 = arange(S), and record rows 1..3 in index.json as "position_ids" ([T], [H], [W]).

Usage:  $VENV/bin/python scripts/reference/dump_text_goldens.py [--models DIR] [--out DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoTokenizer, Qwen3VLForConditionalGeneration

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "fixtures" / "models"
GOLDENS = REPO / "tests" / "fixtures" / "goldens"

CHECKPOINTS = ["tiny-fp32-tied", "tiny-fp32-untied-sharded", "tiny-bf16-untied", "tiny-realtok-bf16"]
REAL_VOCAB = {"tiny-realtok-bf16"}
MAX_NEW_TOKENS = 32

CLI_PROMPT = "What is in the picture?"
REAL_TEXT = "<|im_start|>user\nWhat is in the picture?<|im_end|>\n<|im_start|>assistant\n"
REAL_MROPE_PREFIX = "<|im_start|>user\n<|vision_start|>"
REAL_MROPE_BLOCK = "A red bicycle leans against a white fence beside an old oak tree in the park"
REAL_MROPE_SUFFIX = "<|vision_end|>What is in the picture?<|im_end|>\n<|im_start|>assistant\n"

# the 3D block of the "mrope" case: laid out like a merged 3 x 4 vision grid (image grid_thw = 1 x 6 x 8)
GRID_ROWS, GRID_COLS = 3, 4


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
    a = t.detach().to(torch.float32).contiguous().numpy()
    a = np.ascontiguousarray(a, dtype="<f4")
    path.write_bytes(a.tobytes(order="C"))
    return list(a.shape)


def special_ids(cfg) -> set[int]:
    tc = cfg.text_config
    ids = {cfg.image_token_id, cfg.video_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id,
           tc.bos_token_id, tc.eos_token_id}
    return {i for i in ids if i is not None}


def random_ids(n: int, vocab: int, avoid: set[int], seed: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    out: list[int] = []
    while len(out) < n:
        i = int(torch.randint(0, vocab, (1,), generator=g))
        if i not in avoid and i < min(avoid):  # stay below the special-id region of the small vocab
            out.append(i)
    return out


def mrope_positions(n_prefix: int, n_suffix: int) -> torch.Tensor:
    """Hand-made [3, S] T/H/W positions: text prefix, a GRID_ROWS x GRID_COLS block, text suffix.

    Same rule as Qwen3VLModel.get_rope_index: the block starting at p0 gets T = p0, H = p0 + row,
    W = p0 + col; text after it continues at p0 + max(rows, cols)."""
    t, h, w = [], [], []
    for k in range(n_prefix):
        t.append(k); h.append(k); w.append(k)
    p0 = n_prefix
    for r in range(GRID_ROWS):
        for c in range(GRID_COLS):
            t.append(p0); h.append(p0 + r); w.append(p0 + c)
    p1 = p0 + max(GRID_ROWS, GRID_COLS)
    for k in range(n_suffix):
        t.append(p1 + k); h.append(p1 + k); w.append(p1 + k)
    return torch.tensor([t, h, w], dtype=torch.long)


def hf_rope_index(model, n_prefix: int, n_suffix: int) -> torch.Tensor:
    """Cross-check: HF's own get_rope_index for a sequence whose block is marked as one image."""
    S = n_prefix + GRID_ROWS * GRID_COLS + n_suffix
    tt = torch.zeros(1, S, dtype=torch.int32)
    tt[0, n_prefix:n_prefix + GRID_ROWS * GRID_COLS] = 1
    m = model.config.vision_config.spatial_merge_size
    grid = torch.tensor([[1, GRID_ROWS * m, GRID_COLS * m]])
    pos, delta = model.model.get_rope_index(torch.zeros(1, S, dtype=torch.long), mm_token_type_ids=tt,
                                            image_grid_thw=grid)
    return pos[:, 0, :]


@torch.no_grad()
def run_case(model, name: str, ids: list[int], pos3: torch.Tensor, out_dir: Path, real_vocab: bool) -> dict:
    S = len(ids)
    assert pos3.shape == (3, S)
    lm = model.model.language_model
    captured: dict[str, torch.Tensor] = {}
    hooks = []
    for l, layer in enumerate(lm.layers):
        def hook(_m, _inp, out, l=l):
            captured[f"layer{l}"] = (out[0] if isinstance(out, tuple) else out).detach().clone()
        hooks.append(layer.register_forward_hook(hook))
    hooks.append(lm.norm.register_forward_hook(lambda _m, _i, out: captured.__setitem__("norm", out.detach().clone())))

    input_ids = torch.tensor([ids], dtype=torch.long)
    text_pos = torch.arange(S, dtype=torch.long)
    pos4 = torch.cat([text_pos.view(1, 1, S), pos3.view(3, 1, S)], dim=0)
    out = model(input_ids=input_ids, position_ids=pos4, use_cache=False)
    for h in hooks:
        h.remove()
    logits = out.logits[0]  # [S, V], model dtype

    # consistency checks against other ways of feeding the same positions
    alt = model(input_ids=input_ids, position_ids=pos3.view(3, 1, S), use_cache=False).logits[0]
    assert torch.equal(alt, logits), f"{name}: [3,B,S] and [4,B,S] position ids disagree"
    if torch.equal(pos3[0], text_pos) and torch.equal(pos3[1], text_pos) and torch.equal(pos3[2], text_pos):
        alt = model(input_ids=input_ids, use_cache=False).logits[0]
        assert torch.equal(alt, logits), f"{name}: explicit arange positions differ from position_ids=None"
    W = model.lm_head.weight
    re = torch.nn.functional.linear(captured["norm"][0], W)
    assert torch.equal(re, logits), f"{name}: logits != final_norm @ lm_head^T"

    case: dict = {"name": name, "input_ids": ids, "position_ids": pos3.tolist(),
                  "text_position_ids": text_pos.tolist()}
    layer_files = []
    for l in range(len(lm.layers)):
        fn = f"{name}.layer{l}.bin"
        shape = write_bin(out_dir / fn, captured[f"layer{l}"][0])
        assert shape == [S, lm.config.hidden_size]
        layer_files.append(fn)
    case["layer_outputs"] = layer_files
    case["final_norm"] = f"{name}.norm.bin"
    write_bin(out_dir / case["final_norm"], captured["norm"][0])

    lf = logits.float()
    top2 = torch.topk(lf, 2, dim=-1)
    case["logits"] = f"{name}.logits.bin"
    if real_vocab:
        write_bin(out_dir / case["logits"], lf[-1:])
        case["logits_rows"] = "last"
    else:
        write_bin(out_dir / case["logits"], lf)
        case["logits_rows"] = "all"
    case["logits_shape"] = [1 if real_vocab else S, lf.shape[-1]]
    case["top1"] = torch.argmax(logits, dim=-1).tolist()  # first index on ties, as HF greedy does
    case["top1_logit"] = top2.values[:, 0].tolist()
    case["top2_logit"] = top2.values[:, 1].tolist()
    case["max_abs_logit"] = float(lf.abs().max())
    gaps = top2.values[:, 0] - top2.values[:, 1]
    case["min_top1_top2_gap"] = float(gaps.min())
    case["min_top1_top2_gap_last"] = float(gaps[-1])
    case["max_abs_final_norm"] = float(captured["norm"].float().abs().max())
    case["max_abs_layer_output"] = [float(captured[f"layer{l}"].float().abs().max()) for l in range(len(lm.layers))]
    return case


@torch.no_grad()
def run_greedy(model, ids: list[int]) -> dict:
    input_ids = torch.tensor([ids], dtype=torch.long)
    gc = model.generation_config
    res = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                         max_new_tokens=MAX_NEW_TOKENS, return_dict_in_generate=True, output_scores=True,
                         output_logits=True)
    new = res.sequences[0, len(ids):].tolist()
    eos = gc.eos_token_id if isinstance(gc.eos_token_id, list) else [gc.eos_token_id]
    raw = torch.stack([x[0].float() for x in res.logits])  # [steps, V] raw logits (greedy: no processors)
    top2 = torch.topk(raw, 2, dim=-1).values
    assert torch.argmax(raw, dim=-1).tolist() == new[: raw.shape[0]]
    # generate() computes the lm_head for the last row only (logits_to_keep=1); the different matmul shape can
    # change the last bits compared with the full-sequence forward of the same prompt. Record how much.
    full_last = model(input_ids=input_ids, use_cache=False).logits[0, -1].float()
    return {
        "input_ids": ids,
        "max_new_tokens": MAX_NEW_TOKENS,
        "output_ids": new,
        "num_new_tokens": len(new),
        "stopped_on_eos": bool(len(new) < MAX_NEW_TOKENS and new and new[-1] in eos),
        "eos_token_id": eos,
        "step_max_abs_logit": float(raw.abs().max()),
        "step_min_top1_top2_gap": float((top2[:, 0] - top2[:, 1]).min()),
        "step_top1_top2_gap": (top2[:, 0] - top2[:, 1]).tolist(),
        "step0_vs_full_forward_last_row_max_abs_diff": float((raw[0] - full_last).abs().max()),
        "decode_positions": "prefill: arange(S) on T/H/W; new token at cache index c gets position c on all axes "
                            "(rope_deltas = 0 for text-only input)",
    }


def dump_checkpoint(ckpt: str, models_dir: Path, out_root: Path) -> None:
    mdir = models_dir / ckpt
    out_dir = out_root / ckpt
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model = Qwen3VLForConditionalGeneration.from_pretrained(mdir, attn_implementation="eager").eval()
    cfg = model.config
    tc = cfg.text_config
    dtype = {torch.float32: "float32", torch.bfloat16: "bfloat16"}[model.dtype]
    real_vocab = ckpt in REAL_VOCAB
    seed = int(hashlib.sha256(ckpt.encode()).hexdigest()[:8], 16)
    avoid = special_ids(cfg)

    cases = []
    if real_vocab:
        tok = AutoTokenizer.from_pretrained(mdir)
        text_ids = tok(REAL_TEXT, add_special_tokens=False)["input_ids"]
        assert text_ids[:3] == [151644, 872, 198] and len(text_ids) >= 12, text_ids
        pre = tok(REAL_MROPE_PREFIX, add_special_tokens=False)["input_ids"]
        blk = tok(REAL_MROPE_BLOCK, add_special_tokens=False)["input_ids"][: GRID_ROWS * GRID_COLS]
        suf = tok(REAL_MROPE_SUFFIX, add_special_tokens=False)["input_ids"]
        assert pre == [151644, 872, 198, 151652] and len(blk) == GRID_ROWS * GRID_COLS and suf[0] == 151653
        mrope_ids = pre + blk + suf
        n_pre, n_suf = len(pre), len(suf)
        text_str, mrope_str = REAL_TEXT, tok.decode(mrope_ids, skip_special_tokens=False)
    else:
        text_ids = random_ids(16, tc.vocab_size, avoid, seed)
        body = random_ids(3 + GRID_ROWS * GRID_COLS + 5, tc.vocab_size, avoid, seed + 1)
        pre = body[:3] + [cfg.vision_start_token_id]
        blk = body[3:3 + GRID_ROWS * GRID_COLS]
        suf = [cfg.vision_end_token_id] + body[3 + GRID_ROWS * GRID_COLS:]
        mrope_ids = pre + blk + suf
        n_pre, n_suf = len(pre), len(suf)
        text_str = mrope_str = None

    S = len(text_ids)
    pos_text = torch.arange(S).view(1, S).expand(3, S).clone()
    c = run_case(model, "text", text_ids, pos_text, out_dir, real_vocab)
    if text_str is not None:
        c["text"] = text_str
    cases.append(c)

    pos_m = mrope_positions(n_pre, n_suf)
    assert torch.equal(pos_m, hf_rope_index(model, n_pre, n_suf)), "hand-made positions != get_rope_index"
    c = run_case(model, "mrope", mrope_ids, pos_m, out_dir, real_vocab)
    c["mrope_block"] = {"start": n_pre, "rows": GRID_ROWS, "cols": GRID_COLS,
                        "equivalent_image_grid_thw": [1, GRID_ROWS * 2, GRID_COLS * 2],
                        "note": "block tokens are ordinary embeddings (no pixel input, no DeepStack); positions "
                                "equal Qwen3VLModel.get_rope_index with this block marked as one image"}
    if mrope_str is not None:
        c["text"] = mrope_str
    cases.append(c)

    greedy = run_greedy(model, text_ids)
    cli_greedy = None
    if real_vocab:
        # What `qwen3vl run -m DIR -p CLI_PROMPT --temp 0` must print: the chat template of the checkpoint gives
        # exactly REAL_TEXT, and the reply is the greedy ids decoded without special tokens (eos dropped).
        template = json.loads((mdir / "chat_template.json").read_text(encoding="utf-8"))["chat_template"]
        rendered = tok.apply_chat_template([{"role": "user", "content": CLI_PROMPT}], chat_template=template,
                                           tokenize=False, add_generation_prompt=True)
        assert rendered == REAL_TEXT, rendered
        reply = [t for t in greedy["output_ids"] if t not in greedy["eos_token_id"]]
        cli_greedy = {"prompt": CLI_PROMPT, "max_new_tokens": MAX_NEW_TOKENS,
                      "text": tok.decode(reply, skip_special_tokens=True)}

    rp = tc.rope_parameters
    index = {
        "checkpoint": ckpt,
        "dtype": dtype,
        "hidden_size": tc.hidden_size,
        "vocab_size": tc.vocab_size,
        "num_layers": tc.num_hidden_layers,
        "head_dim": tc.head_dim,
        "rope_theta": float(rp["rope_theta"]),
        "mrope_section": list(rp["mrope_section"]),
        "tie_word_embeddings": bool(cfg.tie_word_embeddings),
        "bin_format": "raw little-endian float32, C order; bf16 activations widened exactly",
        "position_ids_fed_as": "[4,1,S] to Qwen3VLForConditionalGeneration.forward: row 0 = text_position_ids "
                               "(attention-mask positions), rows 1..3 = position_ids (T,H,W)",
        "reference": {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                      "device": "cpu", "attn_implementation": "eager", "threads": 1},
        "cases": cases,
        "greedy": greedy,
    }
    if cli_greedy is not None:
        index["cli_greedy"] = cli_greedy
    (out_dir / "index.json").write_text(to_json(index) + "\n", encoding="utf-8")
    print(f"[{ckpt}] {dtype}: text S={len(text_ids)} max|logit|={cases[0]['max_abs_logit']:.3f} "
          f"gap={cases[0]['min_top1_top2_gap']:.4g}; mrope S={len(mrope_ids)} "
          f"gap={cases[1]['min_top1_top2_gap']:.4g}; greedy {greedy['num_new_tokens']} new "
          f"(eos stop={greedy['stopped_on_eos']}, min step gap={greedy['step_min_top1_top2_gap']:.4g}): "
          f"{greedy['output_ids']}")


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
