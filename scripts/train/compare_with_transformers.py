#!/usr/bin/env python3
"""Greedy predictions of transformers on an eval JSONL, scored like `qwen3vl eval`, and compared with the engine.

  # VENV: the reference venv (scripts/reference/README.md); OUT: any scratch folder, e.g. OUT=$(mktemp -d)
  # 1. transformers' greedy replies (and generated token ids) for every item
  $VENV/bin/python scripts/train/compare_with_transformers.py -m models/qwen3vl-tiny-shapes \
      --data tests/fixtures/eval/synthetic/test.jsonl --out "$OUT/hf_predictions.jsonl"
  # 2. compare with the engine's predictions file (`qwen3vl eval ... --predictions FILE`)
  $VENV/bin/python scripts/train/compare_with_transformers.py -m models/qwen3vl-tiny-shapes \
      --data tests/fixtures/eval/synthetic/test.jsonl --out "$OUT/hf_predictions.jsonl" --engine FILE

For every item whose generated token ids differ, the report names the first differing step and transformers' logit
margin there: logit(transformers' token) - logit(engine's token) (a small margin means a near tie that float
rounding can flip). The prompt is built exactly as the engine builds it: the Instruct chat template, the images
first in the user turn (then the video for video items), multiple-choice options and the instruction appended to the question.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_synthetic_data import mc_question  # noqa: E402


def user_text(item: dict) -> str:
    return mc_question(item["question"], item["choices"]) if item.get("choices") else item["question"]


@torch.no_grad()
def greedy(model, processor, item: dict, base: Path, max_new: int, eos: set):
    content, kwargs = [], {}
    if "image" in item:
        content.append({"type": "image"})
        kwargs["images"] = [Image.open(base / item["image"]).convert("RGB")]
    if "video" in item:  # the file itself: transformers decodes it (torchcodec) and samples frames (fps from the
        content.append({"type": "video"})  # checkpoint's video_preprocessor_config.json unless the item sets one)
        kwargs["videos"] = [str(base / item["video"])]
        if item.get("fps"):
            kwargs["fps"] = item["fps"]
        if item.get("num_frames"):
            kwargs["num_frames"] = item["num_frames"]
    msgs = [{"role": "user", "content": content + [{"type": "text", "text": user_text(item)}]}]
    text = processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    enc = processor(text=[text], return_tensors="pt", **kwargs)
    out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, output_logits=True,
                         return_dict_in_generate=True)
    n = enc["input_ids"].shape[1]
    toks = out.sequences[0, n:].tolist()
    logits = [lg[0].float() for lg in out.logits]
    reply_ids = [t for t in toks if t not in eos]
    reply = processor.tokenizer.decode(reply_ids, skip_special_tokens=True)
    return reply, toks, logits


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="transformers' predictions JSONL (written)")
    ap.add_argument("--engine", type=Path, default=None, help="the engine's predictions JSONL to compare with")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = Qwen3VLForConditionalGeneration.from_pretrained(args.model, attn_implementation="eager").eval()
    processor = AutoProcessor.from_pretrained(args.model)
    gc = model.generation_config
    eos = set(gc.eos_token_id if isinstance(gc.eos_token_id, list) else [gc.eos_token_id])
    base = args.data.parent
    items = []
    for line in args.data.read_text(encoding="utf-8").splitlines():
        try:
            it = json.loads(line)
            media = it.get("image") or it.get("video")
            if isinstance(media, str) and (base / media).exists():
                items.append(it)
        except json.JSONDecodeError:
            pass
    if args.limit:
        items = items[: args.limit]
    engine = {}
    if args.engine:
        for line in args.engine.read_text(encoding="utf-8").splitlines():
            p = json.loads(line)
            engine[p["id"]] = p

    t0 = time.time()
    agree, compared, disagreements = 0, 0, []
    with args.out.open("w", encoding="utf-8") as f:
        for k, it in enumerate(items):
            reply, toks, logits = greedy(model, processor, it, base, args.max_new_tokens, eos)
            f.write(json.dumps({"id": it["id"], "prediction": reply, "tokens": toks, "answer": it["answer"],
                                "category": it.get("category", "")}, ensure_ascii=False) + "\n")
            e = engine.get(it["id"])
            if e is not None and "tokens" in e:
                compared += 1
                et = e["tokens"]
                if et == toks:
                    agree += 1
                else:
                    step = next((i for i in range(min(len(et), len(toks))) if et[i] != toks[i]),
                                min(len(et), len(toks)))
                    margin = None
                    if step < len(logits) and step < len(et):
                        lg = logits[step]
                        margin = float(lg[toks[step]] - lg[et[step]])
                    disagreements.append({"id": it["id"], "step": step, "margin": margin,
                                          "transformers": reply, "engine": e.get("prediction")})
            if (k + 1) % 50 == 0:
                el = time.time() - t0
                print(f"{k + 1}/{len(items)} items, {el:.0f} s, ETA {el / (k + 1) * (len(items) - k - 1):.0f} s",
                      file=sys.stderr, flush=True)
    if args.engine:
        print(f"agreement: {agree}/{compared} items have identical generated token ids "
              f"({100.0 * agree / max(compared, 1):.2f}%)")
        for d in disagreements:
            print(f"  {d['id']}: first differing step {d['step']}, transformers' margin "
                  f"{d['margin'] if d['margin'] is None else round(d['margin'], 6)}: "
                  f"transformers {d['transformers']!r} vs engine {d['engine']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
