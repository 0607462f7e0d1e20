#!/usr/bin/env python3
"""Seeded synthetic video-timing items for the tiny Qwen3-VL demo model: short clips where something happens at a
known whole second, drawn with make_synthetic_data.py's shapes and colours.

Every clip is 128x128, 3-6 s long at a native 2, 4, 5 or 10 fps, with one or two static distractor shapes and one
event at second s (1 <= s <= duration - 1). Tasks (the item's "category"):

  video_appear  a shape is absent before s and present from s on: "At what second does the red circle appear?"
  video_color   a shape changes colour at s: "At what second does the square change color?" (or "turn blue")
  video_move    a shape is still until s, then moves in a straight line: "At what second does the star start moving?"

The answer is the whole second ("2"). The model sees the frames the Qwen3-VL video processor samples (2 fps by
default, video_preprocessor_config.json) with `<t.t seconds>` stamps per frame pair; clips are kept only when the
first sampled frame at or after s starts a frame pair and that pair's stamp lies in [s, s + 1), so the answer is the
integer part of the stamp of the first pair that shows the event (learnable, never ambiguous).

  python scripts/train/make_synthetic_video.py --out tests/fixtures/eval/synthetic --count 100 --seed 2000003

encodes DIR/videos/vNNN.mp4 with the ffmpeg CLI (H.264, yuv420p, bit-exact flags, one thread: the same bytes on
every run with the same ffmpeg) and writes DIR/video.jsonl:

  {"id": "v000", "video": "videos/v000.mp4", "question": "At what second does the red circle appear?",
   "answer": "2", "category": "video_appear"}

Training (train_tiny_qwen3vl.py) draws the same clips as raw frames (`sample_video`), passed through the same
sampling arithmetic and a yuv420p round trip instead of the encoder.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import make_synthetic_data as syn

VIDEO_CATEGORIES = ["video_appear", "video_color", "video_move"]
NATIVE_FPS = (2, 4, 5, 10)
DURATIONS = (3, 4, 5, 6)
SAMPLE_FPS, MIN_FRAMES, MAX_FRAMES = 2.0, 4, 32  # the model's video_preprocessor_config.json


def sampled_indices(total: int, native_fps: float, fps: float = SAMPLE_FPS, min_frames: int = MIN_FRAMES,
                    max_frames: int = MAX_FRAMES) -> list[int]:
    """transformers' Qwen3VLVideoProcessor.sample_frames."""
    n = int(total / native_fps * fps)
    n = min(max(n, min_frames), max_frames, total)
    return [int(v) for v in np.linspace(0, total - 1, n).round().astype(int)]


def pair_stamps(times: list[float]) -> list[float]:
    """Qwen3VLProcessor._calculate_timestamps for temporal patch 2 (odd counts repeat the last time)."""
    t = list(times)
    if len(t) % 2:
        t.append(t[-1])
    return [(t[2 * j] + t[2 * j + 1]) / 2 for j in range(len(t) // 2)]


def _learnable(s: int, times: list[float]) -> bool:
    k = next((i for i, t in enumerate(times) if t >= s - 1e-9), None)
    if k is None or k % 2 or k + 1 >= len(times):
        return False
    stamp = float(f"{(times[k] + times[k + 1]) / 2:.1f}")
    return s <= stamp < s + 1


def sample_video(rng: random.Random, category: str | None = None) -> dict:
    """One clip: {"frames": [PIL.Image] at "native_fps", "question", "answer", "category", "event_second"}."""
    cat = category or rng.choice(VIDEO_CATEGORIES)
    while True:
        fps = rng.choice(NATIVE_FPS)
        dur = rng.choice(DURATIONS)
        total = fps * dur
        times = [i / fps for i in sampled_indices(total, fps)]
        s = rng.randint(1, dur - 1)
        if not _learnable(s, times):
            continue
        bg = syn._background(rng)
        n_other = rng.randint(0, 2)
        kinds = rng.sample(syn.SHAPES, 1 + n_other)
        cols = [rng.choice(list(syn.COLORS)) for _ in kinds]
        target, tcol = kinds[0], cols[0]
        boxes = []
        # the target first, with room to move when it moves
        if cat == "video_move":
            speed = rng.uniform(14, 22)  # px per second
            ang = rng.uniform(0, 2 * math.pi)
            dx, dy = math.cos(ang) * speed, math.sin(ang) * speed
            travel = (dur - s) * speed
            size = rng.randint(18, 24)
            lo = int(max(0, -dx * (dur - s))) + 1, int(max(0, -dy * (dur - s))) + 1
            hi = int(syn.SIZE - size - max(0, dx * (dur - s))) - 1, int(syn.SIZE - size - max(0, dy * (dur - s))) - 1
            if hi[0] <= lo[0] or hi[1] <= lo[1]:
                continue
            x, y = rng.randint(lo[0], hi[0]), rng.randint(lo[1], hi[1])
            tbox = (x, y, x + size, y + size)
            # the swept area must stay clear of the distractors
            sweep = (min(x, x + dx * (dur - s)), min(y, y + dy * (dur - s)),
                     max(x, x + dx * (dur - s)) + size, max(y, y + dy * (dur - s)) + size)
            boxes.append(tuple(int(round(v)) for v in sweep))
            del travel
        else:
            tbox = syn._place(rng, boxes, (20, 30))
            if tbox is None:
                continue
            boxes.append(tbox)
        others = []
        ok = True
        for k, c in zip(kinds[1:], cols[1:]):
            b = syn._place(rng, boxes, (16, 26))
            if b is None:
                ok = False
                break
            boxes.append(b)
            others.append((k, b, c))
        if not ok:
            continue
        if cat == "video_color":
            new = rng.choice([c for c in syn.COLORS if c != tcol])
            if rng.random() < 0.5:
                q = f"At what second does the {target} change color?"
            else:
                q = f"At what second does the {target} turn {new}?"
        elif cat == "video_appear":
            q = rng.choice([f"At what second does the {tcol} {target} appear?",
                            f"When does the {target} appear? Answer with the second."])
        else:
            q = rng.choice([f"At what second does the {tcol} {target} start moving?",
                            f"At what second does the {target} start to move?"])
        frames = []
        for i in range(total):
            t = i / fps
            img = Image.new("RGB", (syn.SIZE, syn.SIZE), bg)
            draw = ImageDraw.Draw(img)
            for k, b, c in others:
                syn._draw_shape(draw, k, b, syn.COLORS[c])
            after = t >= s - 1e-9
            if cat == "video_appear":
                if after:
                    syn._draw_shape(draw, target, tbox, syn.COLORS[tcol])
            elif cat == "video_color":
                syn._draw_shape(draw, target, tbox, syn.COLORS[new if after else tcol])
            else:
                off = max(0.0, t - s)
                b = (tbox[0] + dx * off, tbox[1] + dy * off, tbox[2] + dx * off, tbox[3] + dy * off)
                syn._draw_shape(draw, target, b, syn.COLORS[tcol])
            frames.append(img)
        return {"frames": frames, "native_fps": fps, "question": q, "answer": str(s), "category": cat,
                "event_second": s}


def yuv420_roundtrip(rgb: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 -> the colours after BT.601 limited-range yuv420p and back (what encoding does to flat shapes,
    without the encoder): training sees the same colour shifts and chroma blur as the decoded test clips."""
    x = rgb.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16 + 0.2568 * r + 0.5041 * g + 0.0979 * b
    u = 128 - 0.1482 * r - 0.2910 * g + 0.4392 * b
    v = 128 + 0.4392 * r - 0.3678 * g - 0.0714 * b
    h, w = y.shape
    u = u.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)).repeat(2, 0).repeat(2, 1)
    v = v.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)).repeat(2, 0).repeat(2, 1)
    y, u, v = np.round(y) - 16, np.round(u) - 128, np.round(v) - 128
    r = 1.164 * y + 1.596 * v
    g = 1.164 * y - 0.392 * u - 0.813 * v
    b = 1.164 * y + 2.017 * u
    return np.clip(np.round(np.stack([r, g, b], -1)), 0, 255).astype(np.uint8)


def encode(frames: list, fps: int, path: Path) -> None:
    raw = b"".join(f.tobytes() for f in frames)
    w, h = frames[0].size
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "veryslow", "-crf", "26",
           "-pix_fmt", "yuv420p", "-threads", "1", "-x264-params", "threads=1",
           "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1", "-movflags", "+faststart",
           str(path)]
    subprocess.run(cmd, input=raw, check=True)


def write_set(out: Path, count: int, seed: int) -> None:
    (out / "videos").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        rng = random.Random(seed * 100003 + i)
        it = sample_video(rng, VIDEO_CATEGORIES[i % len(VIDEO_CATEGORIES)])
        name = f"v{i:03d}"
        encode(it["frames"], it["native_fps"], out / "videos" / f"{name}.mp4")
        rec = {"id": name, "video": f"videos/{name}.mp4", "question": it["question"], "answer": it["answer"],
               "category": it["category"]}
        lines.append(json.dumps(rec, ensure_ascii=False))
    (out / "video.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seed", type=int, default=2000003, help="test sets use seeds >= 1000000; training < 1000000")
    args = ap.parse_args()
    write_set(args.out, args.count, args.seed)
    print(f"wrote {args.count} video items to {args.out}/video.jsonl")


if __name__ == "__main__":
    main()
