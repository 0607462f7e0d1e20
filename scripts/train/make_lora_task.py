#!/usr/bin/env python3
"""The LoRA example's task: reading a three-digit code, which the demo model was never taught (its text task is one
digit or one word).

  python scripts/train/make_lora_task.py held-out --out tests/fixtures/eval/lora-code      # 100 items, seed 3000003
  python scripts/train/make_lora_task.py train --out DIR --codes 6000 --replay 2000 --seed 1

An item is a 128x128 image with a code such as "482" rendered as the text task renders its digit (same fonts, sizes
range widened so three digits fit, colours and backgrounds), asked "Read the code." with the code as the answer.
`held-out` writes the `qwen3vl eval` set (DIR/test.jsonl, DIR/images/); `train` writes a qwen-vl-finetune JSONL
(DIR/train.jsonl, DIR/images/) of code items plus `--replay` items of the demo model's own image tasks
(make_sft_data.py's records, its default mix), so the adapter learns the new task without unlearning the others.
Item i of either kind is drawn from random.Random(seed * 100003 + i); training seeds stay below 1,000,000 and the
replay items take indices after the codes, so nothing repeats a held-out item.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_sft_data as sft  # noqa: E402
import make_synthetic_data as syn  # noqa: E402

QUESTION = "Read the code."
HELD_OUT_SEED = 3000003
CODE_FONT_SIZES = (28, 40)


def code_item(rng: random.Random) -> tuple:
    """(image, code): three digits at a random place, size and ink colour."""
    code = "".join(str(rng.randint(0, 9)) for _ in range(3))
    img = Image.new("RGB", (syn.SIZE, syn.SIZE), syn._background(rng))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=rng.randint(*CODE_FONT_SIZES))
    x0, y0, x1, y1 = draw.textbbox((0, 0), code, font=font)
    x = rng.randint(2, max(2, syn.SIZE - (x1 - x0) - 2)) - x0
    y = rng.randint(2, max(2, syn.SIZE - (y1 - y0) - 2)) - y0
    draw.text((x, y), code, fill=rng.choice([(0, 0, 0), (30, 30, 120), (120, 20, 20), (20, 90, 20)]), font=font)
    return img, code


def save_png(img: Image.Image, path: Path) -> None:
    partial = path.with_name(path.name + ".part")
    img.save(partial, format="PNG", optimize=True)
    partial.rename(path)


def write_held_out(out: Path, count: int, seed: int) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        img, code = code_item(random.Random(seed * sft.SEED_STRIDE + i))
        name = f"images/{i:04d}.png"
        save_png(img, out / name)
        lines.append(json.dumps({"id": f"c{i:03d}", "image": name, "question": QUESTION, "answer": code,
                                 "category": "code"}))
    (out / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {count} held-out items to {out}/test.jsonl")


def write_train(out: Path, codes: int, replay: int, seed: int) -> None:
    if seed * sft.SEED_STRIDE + codes + replay >= sft.FIRST_TEST_SEED * sft.SEED_STRIDE:
        raise SystemExit(f"--seed: items must draw seeds below the held-out sets' ({sft.FIRST_TEST_SEED})")
    (out / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(codes):
        img, code = code_item(random.Random(seed * sft.SEED_STRIDE + i))
        name = f"images/{i:07d}.png"
        save_png(img, out / name)
        lines.append(json.dumps({"image": name, "conversations": sft.conversation("<image>", QUESTION, code),
                                 "category": "code"}))
    mix = sft.parse_mix("")
    for i in range(codes, codes + replay):
        lines.append(json.dumps(sft.image_record(out, seed, i, mix), ensure_ascii=False))
    random.Random(seed).shuffle(lines)
    (out / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {codes} code and {replay} replay items to {out}/train.jsonl")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    held = sub.add_parser("held-out", help="the qwen3vl eval set")
    held.add_argument("--out", type=Path, required=True)
    held.add_argument("--count", type=int, default=100)
    held.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    train = sub.add_parser("train", help="the finetune JSONL")
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--codes", type=int, default=6000)
    train.add_argument("--replay", type=int, default=2000, help="items of the demo model's own tasks")
    train.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.what == "held-out":
        write_held_out(args.out, args.count, args.seed)
    else:
        write_train(args.out, args.codes, args.replay, args.seed)


if __name__ == "__main__":
    main()
