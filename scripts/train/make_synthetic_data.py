#!/usr/bin/env python3
"""Seeded synthetic vision-question data for training and evaluating the tiny Qwen3-VL demo model.

Every item is a small RGB image (128x128 by default) of simple shapes or rendered text plus a plain-English question
with a short answer. Tasks (the item's "category"):

  shape      one object: "What shape is this?" -> "circle"
  color      1-3 objects of different shapes: "What color is the triangle?" -> "blue"
  count      1-5 objects of one shape (+0-2 of another): "How many squares are there?" -> "3"
  position   two objects, one per half: "Is the red circle on the left or the right?" -> "left"
             (or top/bottom)
  text       one rendered digit or short word: "What is written in the image?" -> "7" / "SUN"
  choice     one of the questions above as multiple choice (A-D); the answer is the letter
  grounding  one object: "Locate the blue square, output bbox_2d coordinates in JSON." ->
             [{"bbox_2d": [x1, y1, x2, y2], "label": "blue square"}]   (Qwen3-VL's 0..1000 grid)

Training only (TRAIN_ONLY, never in a held-out set):

  describe   1-6 objects anywhere: "Describe the image." -> "red circle top left, blue star bottom right"
             (every object's colour, shape and quadrant, in reading order: one answer supervises what the
             colour, count, position and grounding questions each ask about a single object)

The same `sample(rng)` feeds training (scripts/train/train_tiny_qwen3vl.py draws fresh items every step) and writes
the committed held-out test set (a different seed range):

  python scripts/train/make_synthetic_data.py --out tests/fixtures/eval/synthetic --count 600 --seed 1000003

writes DIR/images/NNNN.png and DIR/test.jsonl, one JSON object per line, the format `qwen3vl eval` reads:

  {"id": "0001", "image": "images/0001.png", "question": "...", "answer": "...", "category": "color"}
  {"id": "0002", "image": "images/0002.png", "question": "What color is the circle?",
   "choices": ["red", "blue", "green", "yellow"], "answer": "B", "category": "choice"}
  {"id": "0003", ..., "answer": "[{\"bbox_2d\": [...], \"label\": \"blue square\"}]", "metric": "iou",
   "category": "grounding"}

Paths are relative to the JSONL file. "metric" is optional (default: "choice" when there are choices, else "exact").

Video items (make_synthetic_video.py, same drawing code) use the same line with "video" instead of "image":
  {"id": "v000", "video": "videos/v000.mp4", "question": "At what second does the orange square appear?",
   "answer": "3", "category": "video_appear"}
"""
from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = 128
SHAPES = ["circle", "square", "triangle", "star"]
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars"}
COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 50, 170),
    "orange": (245, 130, 20),
}
WORDS = ["SUN", "CAT", "DOG", "BOX", "RED", "SKY", "CAR", "HAT"]
CATEGORIES = ["shape", "color", "count", "position", "text", "choice", "grounding"]
TEXT_FONT_SIZES = (34, 44)


def _background(rng: random.Random) -> tuple:
    g = rng.randint(225, 255)
    return (g, g - rng.randint(0, 10), g - rng.randint(0, 10))


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, box: tuple, color: tuple) -> None:
    x0, y0, x1, y1 = box
    if kind == "circle":
        draw.ellipse(box, fill=color)
    elif kind == "square":
        draw.rectangle(box, fill=color)
    elif kind == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=color)
    elif kind == "star":
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
        pts = []
        for i in range(10):
            a = -math.pi / 2 + i * math.pi / 5
            rr = r if i % 2 == 0 else r * 0.45
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        draw.polygon(pts, fill=color)
    else:
        raise ValueError(kind)


def _place(rng: random.Random, boxes: list, size_range: tuple, region=(0, 0, SIZE, SIZE), tries: int = 200):
    """A square box of random size inside `region` that does not touch the boxes already placed (2 px gap)."""
    rx0, ry0, rx1, ry1 = region
    for _ in range(tries):
        s = rng.randint(*size_range)
        if rx1 - rx0 - s < 2 or ry1 - ry0 - s < 2:
            continue
        x = rng.randint(rx0 + 1, rx1 - s - 1)
        y = rng.randint(ry0 + 1, ry1 - s - 1)
        b = (x, y, x + s, y + s)
        if all(b[2] + 2 < o[0] or o[2] + 2 < b[0] or b[3] + 2 < o[1] or o[3] + 2 < b[1] for o in boxes):
            return b
    return None


def _scene(rng: random.Random, objects: list, size_range=(18, 30), regions=None):
    """objects: [(shape, colour name)]; returns (image, boxes) or None when they do not fit."""
    img = Image.new("RGB", (SIZE, SIZE), _background(rng))
    draw = ImageDraw.Draw(img)
    boxes = []
    for i, (kind, cname) in enumerate(objects):
        b = _place(rng, boxes, size_range, regions[i] if regions else (0, 0, SIZE, SIZE))
        if b is None:
            return None
        boxes.append(b)
        _draw_shape(draw, kind, b, COLORS[cname])
    return img, boxes


def _choices(rng: random.Random, correct: str, pool: list) -> tuple:
    others = [p for p in pool if p != correct]
    opts = rng.sample(others, 3) + [correct]
    rng.shuffle(opts)
    return opts, "ABCD"[opts.index(correct)]


def mc_question(question: str, choices: list) -> str:
    """The multiple-choice prompt: the question, lettered options, and the instruction (as `qwen3vl eval` builds it)."""
    lines = [question] + [f"{'ABCDEFGHIJ'[i]}. {c}" for i, c in enumerate(choices)]
    lines.append("Answer with the option's letter from the given choices directly.")
    return "\n".join(lines)


def _task_shape(rng):
    kind, cname = rng.choice(SHAPES), rng.choice(list(COLORS))
    img, _ = _scene(rng, [(kind, cname)], (28, 56))
    q = rng.choice(["What shape is this?", "What shape is in the image?", "Name the shape."])
    return img, q, kind, SHAPES


def _task_color(rng):
    n = rng.randint(1, 3)
    kinds = rng.sample(SHAPES, n)
    cols = [rng.choice(list(COLORS)) for _ in kinds]
    r = _scene(rng, list(zip(kinds, cols)), (20, 36))
    if r is None:
        return None
    t = rng.randrange(n)
    q = rng.choice([f"What color is the {kinds[t]}?", f"What colour is the {kinds[t]}?"])
    return r[0], q, cols[t], list(COLORS)


def _task_count(rng):
    kind = rng.choice(SHAPES)
    n = rng.randint(1, 5)
    other = rng.choice([s for s in SHAPES if s != kind])
    m = rng.randint(0, 2)
    objs = [(kind, rng.choice(list(COLORS))) for _ in range(n)] + [(other, rng.choice(list(COLORS))) for _ in range(m)]
    rng.shuffle(objs)
    r = _scene(rng, objs, (16, 24))
    if r is None:
        return None
    q = f"How many {PLURAL[kind]} are there?"
    return r[0], q, str(n), [str(i) for i in range(1, 7)]


def _task_position(rng):
    k1, k2 = rng.sample(SHAPES, 2)
    c1, c2 = rng.choice(list(COLORS)), rng.choice(list(COLORS))
    h = SIZE // 2
    if rng.random() < 0.5:
        names, regions = ["left", "right"], [(0, 0, h, SIZE), (h, 0, SIZE, SIZE)]
    else:
        names, regions = ["top", "bottom"], [(0, 0, SIZE, h), (0, h, SIZE, SIZE)]
    first = rng.randrange(2)  # which region the asked object goes to
    regs = [regions[first], regions[1 - first]]
    r = _scene(rng, [(k1, c1), (k2, c2)], (18, 30), regs)
    if r is None:
        return None
    target = f"{c1} {k1}" if rng.random() < 0.5 else k1
    q = f"Is the {target} on the {names[0]} or the {names[1]}?"
    return r[0], q, names[first], ["left", "right", "top", "bottom"]


def _task_text(rng):
    img = Image.new("RGB", (SIZE, SIZE), _background(rng))
    draw = ImageDraw.Draw(img)
    if rng.random() < 0.5:
        s, q = str(rng.randint(0, 9)), rng.choice(["What number is written in the image?", "What digit is shown?"])
        pool = [str(i) for i in range(10)]
    else:
        s, q = rng.choice(WORDS), rng.choice(["What word is written in the image?", "What does the text say?"])
        pool = WORDS
    font = ImageFont.load_default(size=rng.randint(*TEXT_FONT_SIZES))
    x0, y0, x1, y1 = draw.textbbox((0, 0), s, font=font)
    w, hgt = x1 - x0, y1 - y0
    x = rng.randint(2, max(2, SIZE - w - 2)) - x0
    y = rng.randint(2, max(2, SIZE - hgt - 2)) - y0
    col = rng.choice([(0, 0, 0), (30, 30, 120), (120, 20, 20), (20, 90, 20)])
    draw.text((x, y), s, fill=col, font=font)
    return img, q, s, pool


def quadrant(box: tuple) -> str:
    """The image quarter holding the box's centre, in the position task's words."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return f"{'top' if cy < SIZE / 2 else 'bottom'} {'left' if cx < SIZE / 2 else 'right'}"


def _task_describe(rng):
    objs = [(rng.choice(SHAPES), rng.choice(list(COLORS))) for _ in range(rng.randint(1, 6))]
    r = _scene(rng, objs, rng.choice([(16, 24), (18, 30), (20, 36)]))
    if r is None:
        return None
    img, boxes = r
    # reading order: the top half first, then left to right by centre
    order = sorted(range(len(objs)), key=lambda i: (boxes[i][1] + boxes[i][3] >= SIZE, boxes[i][0] + boxes[i][2]))
    ans = ", ".join(f"{objs[i][1]} {objs[i][0]} {quadrant(boxes[i])}" for i in order)
    return img, "Describe the image.", ans


BASIC = {"shape": _task_shape, "color": _task_color, "count": _task_count, "position": _task_position,
         "text": _task_text}


def grid_box(box: tuple) -> list:
    """Pixel box -> Qwen3-VL's 0..1000 grid (relative to the image), integers."""
    return [round(v / SIZE * 1000) for v in box]


def _task_grounding(rng):
    kinds = rng.sample(SHAPES, rng.randint(1, 2))
    cols = [rng.choice(list(COLORS)) for _ in kinds]
    r = _scene(rng, list(zip(kinds, cols)), (22, 44))
    if r is None:
        return None
    img, boxes = r
    label = f"{cols[0]} {kinds[0]}"
    q = f"Locate the {label}, output bbox_2d coordinates in JSON."
    ans = json.dumps([{"bbox_2d": grid_box(boxes[0]), "label": label}])
    return img, q, ans


TRAIN_ONLY = {"describe": _task_describe}


def sample(rng: random.Random, category: str | None = None) -> dict:
    """One item: {"image": PIL.Image, "question", "answer", "category", optional "choices", "metric"}."""
    cat = category or rng.choice(CATEGORIES)
    while True:
        if cat in TRAIN_ONLY:
            r = TRAIN_ONLY[cat](rng)
            if r is None:
                continue
            img, q, a = r
            return {"image": img, "question": q, "answer": a, "category": cat}
        if cat == "grounding":
            r = _task_grounding(rng)
            if r is None:
                continue
            img, q, a = r
            return {"image": img, "question": q, "answer": a, "category": cat, "metric": "iou"}
        base = rng.choice(list(BASIC)) if cat == "choice" else cat
        r = BASIC[base](rng)
        if r is None:
            continue
        img, q, a, pool = r
        if cat == "choice":
            opts, letter = _choices(rng, a, pool)
            return {"image": img, "question": q, "choices": opts, "answer": letter, "category": cat,
                    "prompt": mc_question(q, opts)}
        return {"image": img, "question": q, "answer": a, "category": cat}


def prompt_of(item: dict) -> str:
    """The user text the model sees (multiple choice gets its options and instruction appended)."""
    return item.get("prompt") or (mc_question(item["question"], item["choices"]) if item.get("choices")
                                  else item["question"])


def write_set(out: Path, count: int, seed: int) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        rng = random.Random(seed * 100003 + i)
        cat = CATEGORIES[i % len(CATEGORIES)]
        it = sample(rng, cat)
        name = f"{i:04d}"
        it["image"].save(out / "images" / f"{name}.png", optimize=True)
        rec = {"id": name, "image": f"images/{name}.png", "question": it["question"]}
        if "choices" in it:
            rec["choices"] = it["choices"]
        rec["answer"] = it["answer"]
        rec["category"] = it["category"]
        if "metric" in it:
            rec["metric"] = it["metric"]
        lines.append(json.dumps(rec, ensure_ascii=False))
    (out / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=600)
    ap.add_argument("--seed", type=int, default=1000003, help="test sets use seeds >= 1000000; training < 1000000")
    args = ap.parse_args()
    write_set(args.out, args.count, args.seed)
    print(f"wrote {args.count} items to {args.out}/test.jsonl")


if __name__ == "__main__":
    main()
