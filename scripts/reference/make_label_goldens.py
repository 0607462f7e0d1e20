#!/usr/bin/env python3
"""Fine-tuning label goldens: the input ids, labels, grids and 3-D positions that qwen-vl-finetune's preprocessing
gives for the committed conversations in tests/fixtures/train/data/sft_mixed.jsonl.

Offline fixture generation only (CI never runs this). Needs torchcodec (the video decoder of transformers'
processor; it loads Debian's FFmpeg 5.1 libraries, including libavdevice59 and libavfilter8).

What runs, per item (a packed record, a JSON list, gives one sample per item, as _get_packed_item calls _get_item):
  - build_messages: a copy of _build_messages (QwenLM/Qwen3-VL, qwen-vl-finetune/qwenvl/data/data_processor.py) for
    "conversations" items; "messages" items are passed as given, with image_url / video_url parts rewritten to the
    {"type": "image", "image": path} form transformers' processor loads (the template renders both alike).
  - processor.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt"), the
    Qwen3VLProcessor of tests/fixtures/models/tiny-realtok-bf16 (real Qwen tokenizer and Qwen3-VL Instruct template),
    with the budgets below set as update_processor_pixels intends (size.shortest_edge / longest_edge of the image
    and video processors, fps, min/max frames). In transformers 5.23 the official function itself leaves the image
    processor unchanged, because `size` is a SizeDict there and the function tests isinstance(size, dict).
  - official_labels: a copy of the label scan of preprocess_qwen_visual, in both forms it has had: any "assistant"
    token opens a span (the code up to at least 96588727, 2026-01-30: `labels`), or only one right after
    <|im_start|> (pull request #2027: `labels_after_im_start`).
  - Qwen3VLModel.get_rope_index (the arithmetic of the official rope2d.py get_rope_index_3): `position_ids` (T, H, W).

Media paths in the data file are relative to tests/fixtures (the media root, "../.." from the data file).
Writes OUT_DIR/sft_mixed.json. Deterministic.
Usage:  $VENV/bin/python scripts/reference/make_label_goldens.py tests/fixtures/train/labels
"""
from __future__ import annotations

import copy
import json
import re
import sys
import warnings
from pathlib import Path

import torch
import transformers
from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
DATA = FIXTURES / "train" / "data" / "sft_mixed.jsonl"
MEDIA_ROOT = FIXTURES
CHECKPOINT = FIXTURES / "models" / "tiny-realtok-bf16"
# Small budgets keep the fixture small: images 4..16 merged tokens, videos 4096..24576 pixels over all frames.
BUDGET = {"min_pixels": 4096, "max_pixels": 16384, "video_min_pixels": 4096, "video_max_pixels": 24576,
          "video_fps": 2.0, "video_min_frames": 4, "video_max_frames": 8}
IGNORE_INDEX = -100


def make_abs_path(base: Path, file: str) -> str:
    """_make_abs_paths."""
    return f"{(base / file).resolve()}"


def build_messages(item: dict, base_path: Path) -> list[dict]:
    """A copy of data_processor.py _build_messages."""
    images = item.get("image") or []
    if isinstance(images, str):
        images = [images]
    videos = item.get("video") or []
    if isinstance(videos, str):
        videos = [videos]
    image_pool = [{"type": "image", "image": make_abs_path(base_path, img)} for img in images]
    video_pool = [{"type": "video", "video": make_abs_path(base_path, vid)} for vid in videos]
    messages = []
    for turn in item["conversations"]:
        role = "user" if turn["from"] == "human" else "assistant"
        text: str = turn["value"]
        if role == "user":
            content = []
            for seg in re.split(r"(<image>|<video>)", text):
                if seg == "<image>":
                    if not image_pool:
                        raise ValueError("Number of <image> placeholders exceeds the number of provided images")
                    content.append(image_pool.pop(0))
                elif seg == "<video>":
                    if not video_pool:
                        raise ValueError("Number of <video> placeholders exceeds the number of provided videos")
                    content.append(video_pool.pop(0))
                elif seg.strip():
                    content.append({"type": "text", "text": seg.strip()})
            messages.append({"role": role, "content": content})
        else:
            messages.append({"role": role, "content": [{"type": "text", "text": text}]})
    if image_pool:
        raise ValueError(f"{len(image_pool)} image(s) remain unused (not consumed by placeholders)")
    if video_pool:
        raise ValueError(f"{len(video_pool)} video(s) remain unused (not consumed by placeholders)")
    return messages


def openai_messages(item: dict, base_path: Path) -> list[dict]:
    """An OpenAI-format item as transformers' processor loads it: media parts as {"type", "image"/"video": path}."""
    messages = copy.deepcopy(item["messages"])
    for message in messages:
        if not isinstance(message["content"], list):
            continue
        for k, part in enumerate(message["content"]):
            if "image" in part or "image_url" in part or part.get("type") == "image":
                url = part.get("image_url", part.get("image"))
                url = url["url"] if isinstance(url, dict) else url
                message["content"][k] = {"type": "image", "image": make_abs_path(base_path, url)}
            elif "video" in part or "video_url" in part or part.get("type") == "video":
                url = part.get("video_url", part.get("video"))
                url = url["url"] if isinstance(url, dict) else url
                message["content"][k] = {"type": "video", "video": make_abs_path(base_path, url)}
    return messages


def official_labels(input_ids: list[int], assistant: int, im_start: int, im_end: int,
                    after_im_start: bool) -> list[int]:
    """The label scan of data_processor.py preprocess_qwen_visual (list form of its tensor slices)."""
    labels = [IGNORE_INDEX] * len(input_ids)
    L = len(input_ids)
    pos = 0
    while pos < L:
        if input_ids[pos] == assistant and (not after_im_start or (pos > 0 and input_ids[pos - 1] == im_start)):
            ans_start = pos + 2
            ans_end = ans_start
            while ans_end < L and input_ids[ans_end] != im_end:
                ans_end += 1
            if ans_end < L:
                labels[ans_start:ans_end + 2] = input_ids[ans_start:ans_end + 2]
                pos = ans_end
        pos += 1
    return labels


def apply_budget(processor) -> None:
    """What update_processor_pixels sets, written so that it takes effect in transformers 5.23 too."""
    ip, vp = processor.image_processor, processor.video_processor
    ip.size["shortest_edge"] = BUDGET["min_pixels"]
    ip.size["longest_edge"] = BUDGET["max_pixels"]
    vp.size["shortest_edge"] = BUDGET["video_min_pixels"]
    vp.size["longest_edge"] = BUDGET["video_max_pixels"]
    vp.fps = BUDGET["video_fps"]
    vp.min_frames = BUDGET["video_min_frames"]
    vp.max_frames = BUDGET["video_max_frames"]


def main(out_dir: Path) -> int:
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    processor = AutoProcessor.from_pretrained(str(CHECKPOINT))
    apply_budget(processor)
    tok = processor.tokenizer
    assistant, im_start, im_end = (tok.convert_tokens_to_ids(t) for t in ("assistant", "<|im_start|>", "<|im_end|>"))
    assert (assistant, im_start, im_end) == (77091, 151644, 151645), "the real Qwen vocabulary"
    model = Qwen3VLForConditionalGeneration.from_pretrained(str(CHECKPOINT))

    samples = []
    for line_number, line in enumerate(DATA.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        items = record if isinstance(record, list) else [record]
        for k, item in enumerate(items):
            if "conversations" in item:
                messages = build_messages(item, MEDIA_ROOT)
            else:
                messages = openai_messages(item, MEDIA_ROOT)
            out = processor.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt")
            ids = out["input_ids"][0].tolist()
            position_ids, _ = model.model.get_rope_index(
                out["input_ids"], mm_token_type_ids=out["mm_token_type_ids"],
                image_grid_thw=out.get("image_grid_thw"), video_grid_thw=out.get("video_grid_thw"))
            sample = {
                "line": line_number,
                "packed_index": k if isinstance(record, list) else -1,
                "format": "conversations" if "conversations" in item else "messages",
                "input_ids": ids,
                "labels": official_labels(ids, assistant, im_start, im_end, after_im_start=False),
                "labels_after_im_start": official_labels(ids, assistant, im_start, im_end, after_im_start=True),
                "image_grid_thw": out["image_grid_thw"].tolist() if "image_grid_thw" in out else [],
                "video_grid_thw": out["video_grid_thw"].tolist() if "video_grid_thw" in out else [],
                "position_ids": position_ids[:, 0, :].tolist(),
            }
            samples.append(sample)
            differs = sample["labels"] != sample["labels_after_im_start"]
            print(f"line {line_number}[{k}]: {len(ids)} tokens, "
                  f"{sum(l != IGNORE_INDEX for l in sample['labels'])} supervised"
                  f"{' (rules differ)' if differs else ''}, images {sample['image_grid_thw']}, "
                  f"videos {sample['video_grid_thw']}")
    assert any(s["labels"] != s["labels_after_im_start"] for s in samples), "the quirk sample must show the quirk"

    golden = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "checkpoint": "tests/fixtures/models/tiny-realtok-bf16",
        "data": "tests/fixtures/train/data/sft_mixed.jsonl",
        "media_root": "tests/fixtures",
        "budget": BUDGET,
        "source": "QwenLM/Qwen3-VL qwen-vl-finetune/qwenvl/data/data_processor.py: _build_messages, "
                  "preprocess_qwen_visual; positions: transformers Qwen3VLModel.get_rope_index",
        "samples": samples,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(golden, ensure_ascii=False, indent=1)
    # One sample's id/label/position lists on one line each keeps the file short and diffable.
    text = re.sub(r"\[\s+(-?\d+(?:,\s+-?\d+)*)\s+\]", lambda m: "[" + re.sub(r"\s+", "", m.group(1)) + "]", text)
    (out_dir / "sft_mixed.json").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_label_goldens.py OUT_DIR")
    sys.exit(main(Path(sys.argv[1])))
