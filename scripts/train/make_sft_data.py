#!/usr/bin/env python3
"""Seeded training items for `qwen3vl finetune`: the synthetic image tasks (make_synthetic_data.py) and video-timing
clips (make_synthetic_video.py) as a qwen-vl-finetune `conversations` JSONL with their PNG images and MP4 videos.

  python scripts/train/make_sft_data.py --out DIR --images 100000 --videos 30000 --seed 1

writes DIR/images/NNNNNNN.png, DIR/videos/vNNNNNN.mp4 and DIR/train.jsonl (paths relative to it):

  {"image": "images/0000000.png", "conversations": [{"from": "human", "value": "<image>\\nWhat shape is this?"},
   {"from": "gpt", "value": "star"}], "category": "shape"}

What the model sees is what `qwen3vl eval` sends for a held-out item: the user turn is the media, then the item's
prompt (make_synthetic_data.prompt_of: the question, plus the lettered options and MMMU's instruction for multiple
choice); no system message. finetune splits the human value at <image>/<video> and strips the pieces, so
"<image>\\n" + prompt renders as eval's [image, text] content. The reply is the held-out set's reference answer
string itself (the digit, word, letter, or grounding JSON).

Item i is drawn from random.Random(seed * 100003 + i), the test sets' rule (make_synthetic_*.write_set) with a seed
below 1,000,000, so no training item can repeat a held-out one (those use seeds >= 1,000,000): images take indices
0..images-1, videos images..images+videos-1. Videos are encoded exactly as the held-out clips (make_synthetic_video.
encode: H.264 yuv420p, the same flags), so training sees the decoder's own frames. Existing media files are kept
(an interrupted run continues); train.jsonl is written last, atomically.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_synthetic_data as syn  # noqa: E402
import make_synthetic_video as syv  # noqa: E402

SEED_STRIDE = 100003  # the test sets' item seed: seed * 100003 + index
FIRST_TEST_SEED = 1000000


def parse_mix(text: str) -> dict:
    """"count=2,choice=2" -> weights of the image categories (the held-out ones keep weight 1, the training-only
    ones 0)."""
    mix = {c: 1.0 for c in syn.CATEGORIES} | {c: 0.0 for c in syn.TRAIN_ONLY}
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        if name not in mix:
            raise SystemExit(f"--mix: unknown image task {name!r} ({', '.join(mix)})")
        mix[name] = float(value)
    return mix


def conversation(media_tag: str, prompt: str, answer: str) -> list:
    return [{"from": "human", "value": f"{media_tag}\n{prompt}"}, {"from": "gpt", "value": answer}]


def image_record(out: Path, seed: int, index: int, mix: dict) -> dict:
    rng = random.Random(seed * SEED_STRIDE + index)
    category = rng.choices(list(mix), weights=list(mix.values()))[0]
    item = syn.sample(rng, category)
    name = f"images/{index:07d}.png"
    if not (out / name).exists():  # written under another name first: an interrupted write is never kept
        partial = out / (name + ".part")
        item["image"].save(partial, format="PNG", optimize=True)
        partial.rename(out / name)
    return {"image": name, "conversations": conversation("<image>", syn.prompt_of(item), item["answer"]),
            "category": item["category"]}


def video_record(out: Path, seed: int, index: int) -> dict:
    rng = random.Random(seed * SEED_STRIDE + index)
    item = syv.sample_video(rng)
    name = f"videos/v{index:07d}.mp4"
    if not (out / name).exists():
        partial = out / (name + ".part.mp4")  # ffmpeg picks the container from the extension
        syv.encode(item["frames"], item["native_fps"], partial)
        partial.rename(out / name)
    return {"video": name, "conversations": conversation("<video>", item["question"], item["answer"]),
            "category": item["category"]}


def make_record(job: tuple) -> str:
    out, seed, index, images, mix = job
    record = image_record(out, seed, index, mix) if index < images else video_record(out, seed, index)
    return json.dumps(record, ensure_ascii=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--images", type=int, default=100000, help="image items (the 7 tasks, weighted by --mix)")
    ap.add_argument("--videos", type=int, default=30000, help="video-timing items (the 3 video tasks uniformly)")
    ap.add_argument("--seed", type=int, default=1, help=f"below {FIRST_TEST_SEED} (the held-out sets' range)")
    ap.add_argument("--mix", default="", help="image task weights, e.g. count=2,choice=2 (others 1)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    total = args.images + args.videos
    if not 0 <= args.seed or (args.seed * SEED_STRIDE + total) >= FIRST_TEST_SEED * SEED_STRIDE:
        raise SystemExit(f"--seed: items must draw seeds below the held-out sets' ({FIRST_TEST_SEED} * {SEED_STRIDE})")
    mix = parse_mix(args.mix)
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    (args.out / "videos").mkdir(parents=True, exist_ok=True)
    jobs = [(args.out, args.seed, i, args.images, mix) for i in range(total)]
    lines = []
    # SIGTERM (train_demo.sh stopping) unwinds through the with-block, whose exit terminates the pool's workers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with multiprocessing.Pool(args.workers) as pool:
        for n, line in enumerate(pool.imap(make_record, jobs, chunksize=64), 1):
            lines.append(line)
            if n % 10000 == 0:
                print(f"{n}/{total} items", flush=True)
    rng = random.Random(args.seed)
    rng.shuffle(lines)  # images and videos interleaved (finetune shuffles per epoch too; this helps --no-shuffle)
    partial = args.out / "train.jsonl.part"
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial.rename(args.out / "train.jsonl")
    print(f"wrote {args.images} image and {args.videos} video items to {args.out}/train.jsonl")


if __name__ == "__main__":
    main()
