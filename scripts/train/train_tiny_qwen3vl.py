#!/usr/bin/env python3
"""Train the tiny Qwen3-VL demo model (models/qwen3vl-tiny-shapes) on CPU from seeded synthetic data.

Real Qwen3-VL architecture, small sizes: Qwen3VLForConditionalGeneration with DeepStack (vision taps feeding the
first decoder layers), interleaved MRoPE, GQA (4 query / 2 KV heads), q/k RMSNorm, tied embeddings. A byte-level BPE
tokenizer is trained here with the `tokenizers` library on the task text: Qwen2's pre-tokenizer, normalizer and
decoder copied from the real Qwen3 tokenizer.json, and every one of Qwen's 26 special tokens with the same strings
(appended after the learnt vocabulary, so the ids differ; config.json and generation_config.json name the new ids).
The chat template is the real Qwen3-VL Instruct one (scripts/reference/templates/qwen3vl_instruct.jinja). The
preprocessor keeps images at or below 128x128 pixels (16 visual tokens).

Items are drawn fresh every step from scripts/train/make_synthetic_data.py and make_synthetic_video.py (training
seeds never overlap the test sets'); `--mix` weights the tasks (video timing included). The loss covers only the
answer tokens and the closing <|im_end|>.

CPU step rate (the model is tiny, so Python and threading overheads, not FLOPs, set it): batches, including the 3-D
rope position ids (transformers' own get_rope_index) and the videos' frame sampling and resize, are built in a
DataLoader worker process; the vision tower's attention runs once per distinct segment length instead of once per
image (batch_vision_attention: same math); AdamW updates all parameters with foreach kernels; the training process
uses one torch thread (two threads on the shared 2-core machine made every tiny op wait for the other thread: 6x
slower). --check-batches verifies the fast batches and the batched attention against the HF processor and model.
The loop sleeps while qwen3vl-bench-quiet exists in the temp folder (benchmarks running); paused time does not count.

  $VENV/bin/python scripts/train/train_tiny_qwen3vl.py --out models/qwen3vl-tiny-shapes --minutes 40

`--init-only` writes the same checkpoint folder with seeded random weights and no training: the starting point of the
CPU recipe (scripts/train/train_demo.sh, `qwen3vl finetune`); `--size` picks larger SIZES, `--video-vocab` trains the
tokenizer on the video questions and timestamps too.

Pinned environment: scripts/train/requirements.txt. The run is time-budgeted (the learning rate follows a cosine
over --minutes of wall time), so the exact weights depend on the machine's speed; the committed checkpoint's
training log is models/qwen3vl-tiny-shapes/training_log.txt.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import torch
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoProcessor, GenerationConfig, Qwen3VLConfig, Qwen3VLForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_synthetic_data as syn  # noqa: E402
import make_synthetic_video as syv  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
REAL_TOKENIZER = REPO / "tests" / "fixtures" / "tokenizer" / "qwen3"  # vendored, see its NOTICE
CHAT_TEMPLATE = REPO / "scripts" / "reference" / "templates" / "qwen3vl_instruct.jinja"
TRAIN_SEED_BASE = 10**13  # test sets use seed * 100003 + i with seed ~1e6, i.e. ~1e11


def write_json(path: Path, obj, indent: int = 2) -> None:
    path.write_text(json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------------------
def corpus(n: int, video_text: bool = False) -> list[str]:
    rng = random.Random(12345)
    out = []
    for _ in range(n):
        it = syn.sample(rng)
        out.append(syn.prompt_of(it))
        out.append(it["answer"])
    if video_text:  # the video questions and the processor's `<t.t seconds>` stamps (12 byte tokens each without)
        out += [syv.sample_video(rng)["question"] for _ in range(n // 10)]
        out += [f"<{t / 10:.1f} seconds>" for t in range(400)]
    out += ["system\nYou are a helpful assistant.", "user\n", "assistant\n", "<think>\n\n</think>\n\n",
            "Describe this image.", "What is in the picture?", "The image shows a red circle and a blue square."]
    out += [f"{i}" for i in range(1001)]
    return out


def build_tokenizer(out: Path, vocab_size: int, video_text: bool = False) -> dict:
    real_json = json.loads((REAL_TOKENIZER / "tokenizer.json").read_text(encoding="utf-8"))
    real = Tokenizer.from_file(str(REAL_TOKENIZER / "tokenizer.json"))
    tok = Tokenizer(models.BPE())
    tok.normalizer = real.normalizer
    tok.pre_tokenizer = real.pre_tokenizer
    tok.decoder = real.decoder
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, special_tokens=[])
    tok.train_from_iterator(corpus(4000, video_text), trainer)
    for a in sorted(real_json["added_tokens"], key=lambda a: a["id"]):
        at = AddedToken(a["content"], single_word=a["single_word"], lstrip=a["lstrip"], rstrip=a["rstrip"],
                        normalized=a["normalized"], special=a["special"])
        (tok.add_special_tokens if a["special"] else tok.add_tokens)([at])
    # same top-level layout as the real file (post_processor etc.), our model and added tokens
    mine = json.loads(tok.to_str())
    doc = dict(real_json)
    doc["model"] = mine["model"]
    doc["added_tokens"] = mine["added_tokens"]
    (out / "tokenizer.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    ids = {a["content"]: a["id"] for a in mine["added_tokens"]}
    tc = json.loads((REAL_TOKENIZER / "tokenizer_config.json").read_text(encoding="utf-8"))
    tc.pop("chat_template", None)
    old_to_new = {str(a["id"]): ids[a["content"]] for a in real_json["added_tokens"]}
    if "added_tokens_decoder" in tc:
        tc["added_tokens_decoder"] = {str(old_to_new[k]): v for k, v in tc["added_tokens_decoder"].items()}
    tc["model_max_length"] = 262144
    write_json(out / "tokenizer_config.json", tc)
    return ids


# ----------------------------------------------------------------------------------------------------------------
# Checkpoint files
# ----------------------------------------------------------------------------------------------------------------
# Sizes: text hidden, layers, query heads, KV heads, MLP; vision hidden, depth, heads, MLP (head_dim 32 throughout,
# so mrope_section [6, 5, 5] stays valid). "tiny" is models/qwen3vl-tiny-shapes.
SIZES = {
    "tiny": dict(text=(128, 4, 4, 2, 384), vision=(64, 3, 2, 256)),
    "small": dict(text=(192, 4, 6, 2, 576), vision=(96, 3, 3, 384)),
    "base": dict(text=(256, 4, 8, 4, 640), vision=(128, 3, 4, 384)),
}


def sincos_position_table(side: int, dim: int) -> torch.Tensor:
    """[side*side, dim] 2-D sine-cosine table (row-major grid): the first half of the channels encode the row, the
    second half the column, each as sin/cos pairs at frequencies spread geometrically from one period over the grid
    to the Nyquist rate, so every cell differs from its neighbours from the first step. transformers' normal(0, 0.02)
    init leaves the position signal ~20x weaker than the patch content (measured after 190k samples here), which
    kept the position-dependent tasks (left/right, boxes, reading) at chance long after shape and colour were
    learnt."""
    quarter = dim // 4
    freqs = torch.pi / side * (side ** (torch.arange(quarter, dtype=torch.float64) / max(1, quarter - 1)))
    pos = torch.arange(side, dtype=torch.float64)[:, None] * freqs[None, :]  # [side, quarter]
    axis = torch.cat([pos.sin(), pos.cos()], dim=1)  # [side, dim / 2]
    rows = axis[:, None, :].expand(side, side, dim // 2)
    cols = axis[None, :, :].expand(side, side, dim // 2)
    return torch.cat([rows, cols], dim=2).reshape(side * side, dim).float()


def make_config(ids: dict, vocab: int, size: str = "tiny") -> Qwen3VLConfig:
    hidden, layers, heads, kv_heads, mlp = SIZES[size]["text"]
    v_hidden, v_depth, v_heads, v_mlp = SIZES[size]["vision"]
    text = dict(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                num_key_value_heads=kv_heads, head_dim=32, intermediate_size=mlp, rms_norm_eps=1e-6,
                max_position_embeddings=32768,
                hidden_act="silu", attention_bias=False,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [6, 5, 5],
                                 "mrope_interleaved": True},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], tie_word_embeddings=True)
    vision = dict(depth=v_depth, hidden_size=v_hidden, num_heads=v_heads, intermediate_size=v_mlp,
                  out_hidden_size=hidden,
                  patch_size=16, temporal_patch_size=2, spatial_merge_size=2, in_channels=3,
                  num_position_embeddings=64, deepstack_visual_indexes=[0, 1], hidden_act="gelu_pytorch_tanh")
    return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True,
                         image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                         vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])


def write_side_files(out: Path, ids: dict) -> None:
    write_json(out / "chat_template.json", {"chat_template": CHAT_TEMPLATE.read_text(encoding="utf-8")})
    write_json(out / "preprocessor_config.json", {
        "size": {"longest_edge": 128 * 128, "shortest_edge": 64 * 64},
        "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "processor_class": "Qwen3VLProcessor", "image_processor_type": "Qwen2VLImageProcessorFast",
    }, indent=4)
    # the released layout has one for videos too (transformers' processor needs it); same small per-frame budget
    write_json(out / "video_preprocessor_config.json", {
        "size": {"longest_edge": 128 * 128 * 8, "shortest_edge": 64 * 64},
        "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "fps": 2, "min_frames": 4, "max_frames": 32, "do_sample_frames": True,
        "processor_class": "Qwen3VLProcessor", "video_processor_type": "Qwen3VLVideoProcessor",
    }, indent=4)


def save(model, out: Path, ids: dict, log_lines: list[str]) -> None:
    tmp = out.with_name(out.name + ".saving")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(out, tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    cfg = json.loads((tmp / "config.json").read_text())
    write_json(tmp / "config.json", cfg)
    (tmp / "generation_config.json").unlink(missing_ok=True)
    gc = GenerationConfig(bos_token_id=ids["<|endoftext|>"], eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
                          pad_token_id=ids["<|endoftext|>"], do_sample=False, max_new_tokens=64)
    gc.save_pretrained(tmp)
    write_json(tmp / "generation_config.json", json.loads((tmp / "generation_config.json").read_text()))
    (tmp / "training_log.txt").write_text("\n".join(log_lines) + "\n")
    shutil.rmtree(out)
    tmp.rename(out)


# ----------------------------------------------------------------------------------------------------------------
# Batches
# ----------------------------------------------------------------------------------------------------------------
def sample_item(rng: random.Random, mix: dict | None = None) -> dict:
    """One training item: an image task or a video-timing clip; `mix` weights the categories (default: the image
    tasks uniformly, as the first two stages were trained)."""
    if not mix:
        return syn.sample(rng)
    cats = list(mix)
    cat = rng.choices(cats, weights=[mix[c] for c in cats])[0]
    if cat == "video":
        return syv.sample_video(rng)
    return syn.sample(rng, cat)


def video_frames(item: dict) -> tuple[np.ndarray, list[int], list[float]]:
    """The frames the video processor would sample from the encoded clip (yuv420p round trip instead of the
    encoder), their indices and times."""
    fps = item["native_fps"]
    idx = syv.sampled_indices(len(item["frames"]), fps)
    frames = np.stack([syv.yuv420_roundtrip(np.asarray(item["frames"][i], dtype=np.uint8)) for i in idx])
    return frames, idx, [i / fps for i in idx]


def _messages(it: dict, with_answer: bool = True) -> list:
    media = {"type": "video"} if "frames" in it else {"type": "image"}
    msgs = [{"role": "user", "content": [media, {"type": "text", "text": syn.prompt_of(it)}]}]
    if with_answer:
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": it["answer"]}]})
    return msgs


def make_batch(processor, items: list[dict], prefix_len: int, im_start: int, im_end: int):
    """The reference batch: the HF chat template and processor (used by --check-batches and --slow-batches)."""
    from transformers.video_utils import VideoMetadata
    texts = [processor.apply_chat_template(_messages(it), tokenize=False) for it in items]
    images = [it["image"] for it in items if "image" in it]
    videos, metas = [], []
    for it in items:
        if "frames" in it:
            frames, idx, _ = video_frames(it)
            videos.append(frames)
            metas.append(VideoMetadata(total_num_frames=len(it["frames"]), fps=it["native_fps"],
                                       frames_indices=idx))
    kw = {}
    if images:
        kw["images"] = images
    if videos:
        kw.update(videos=videos, video_metadata=metas, do_sample_frames=False)
    enc = processor(text=texts, return_tensors="pt", padding=True, padding_side="right", **kw)
    ids = enc["input_ids"]
    labels = torch.full_like(ids, -100)
    for r in range(ids.shape[0]):
        row = ids[r].tolist()
        start = max(i for i, t in enumerate(row) if t == im_start) + prefix_len
        end = row.index(im_end, start)
        labels[r, start:end + 1] = ids[r, start:end + 1]
    enc["labels"] = labels
    return enc


def chat_text(prompt: str, answer: str, n_image_tokens: int) -> str:
    """What the Instruct template renders for one user turn (one image first) and the assistant's reply, with the
    image placeholder already expanded (checked against apply_chat_template + the processor by --check-batches)."""
    return ("<|im_start|>user\n<|vision_start|>" + "<|image_pad|>" * n_image_tokens + "<|vision_end|>" + prompt
            + "<|im_end|>\n<|im_start|>assistant\n" + answer + "<|im_end|>\n")


def video_chat_text(prompt: str, answer: str, stamps: list[float], tokens_per_pair: int) -> str:
    """The same for one video: transformers 5 replaces only <|video_pad|>, so the template's own <|vision_start|> /
    <|vision_end|> stay around the per-pair `<t.t seconds><|vision_start|>pads<|vision_end|>`."""
    body = "".join(f"<{t:.1f} seconds><|vision_start|>" + "<|video_pad|>" * tokens_per_pair + "<|vision_end|>"
                   for t in stamps)
    return ("<|im_start|>user\n<|vision_start|>" + body + "<|vision_end|>" + prompt
            + "<|im_end|>\n<|im_start|>assistant\n" + answer + "<|im_end|>\n")


def fast_batch(tokenizer, items: list[dict], prefix_len: int, ids: dict, pad_id: int, spatial_merge: int = 2,
               video_processor=None):
    """make_batch without the HF processor (its per-image work dominates the step time): 128x128 images need no
    resize, so pixel_values are just normalized and patchified in the processor's layout; videos are resized by the
    HF video processor (exactly its kernel) and stamped here. Also returns the 3-D rope position ids
    (Qwen3VLModel.get_rope_index), so the training process does not compute them."""
    size = syn.SIZE
    P, M, Tp = 16, 2, 2
    g = size // P
    n_tok = (g // M) ** 2
    texts, vid_rows, vid_grids = [], [], []
    for it in items:
        if "frames" in it:
            frames, idx, times = video_frames(it)
            from transformers.video_utils import VideoMetadata
            out = video_processor(videos=[frames], video_metadata=[VideoMetadata(
                total_num_frames=len(it["frames"]), fps=it["native_fps"], frames_indices=idx)],
                do_sample_frames=False, return_tensors="pt")
            grid = out["video_grid_thw"][0]
            vid_rows.append(out["pixel_values_videos"])
            vid_grids.append(grid)
            stamps = syv.pair_stamps(times)
            texts.append(video_chat_text(syn.prompt_of(it), it["answer"], stamps,
                                         int(grid[1] * grid[2]) // (M * M)))
        else:
            texts.append(chat_text(syn.prompt_of(it), it["answer"], n_tok))
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    L = max(len(e) for e in enc)
    input_ids = torch.full((len(items), L), pad_id, dtype=torch.long)
    attn = torch.zeros((len(items), L), dtype=torch.long)
    labels = torch.full((len(items), L), -100, dtype=torch.long)
    for r, e in enumerate(enc):
        input_ids[r, :len(e)] = torch.tensor(e)
        attn[r, :len(e)] = 1
        start = max(i for i, t in enumerate(e) if t == ids["<|im_start|>"]) + prefix_len
        end = e.index(ids["<|im_end|>"], start)
        labels[r, start:end + 1] = input_ids[r, start:end + 1]
    mm = (input_ids == ids["<|image_pad|>"]).long() + 2 * (input_ids == ids["<|video_pad|>"]).long()
    batch = {"input_ids": input_ids, "attention_mask": attn, "mm_token_type_ids": mm, "labels": labels}
    imgs = [it["image"] for it in items if "image" in it]
    if imgs:
        x = torch.from_numpy(np.stack([np.asarray(im, dtype=np.uint8) for im in imgs]))  # B,H,W,3
        x = (x.permute(0, 3, 1, 2).float() - 127.5) / 127.5  # mean 0.5, std 0.5
        B = x.shape[0]
        x = x.unsqueeze(1).expand(B, Tp, 3, size, size)  # the frame repeated temporal_patch_size times
        x = x.reshape(B, 1, Tp, 3, g // M, M, P, g // M, M, P)
        x = x.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9).reshape(B * g * g, 3 * Tp * P * P)
        batch["pixel_values"] = x.contiguous()
        batch["image_grid_thw"] = torch.tensor([[1, g, g]] * B)
    if vid_rows:
        batch["pixel_values_videos"] = torch.cat(vid_rows)
        batch["video_grid_thw"] = torch.stack(vid_grids)
    batch["position_ids"] = rope_index(batch, spatial_merge)
    return batch


class _RopeConfig:  # what Qwen3VLModel.get_rope_index reads from self
    def __init__(self, spatial_merge: int):
        self.config = type("C", (), {"vision_config": type("V", (), {"spatial_merge_size": spatial_merge})()})()


def rope_index(batch: dict, spatial_merge: int) -> torch.Tensor:
    """transformers' own get_rope_index (the same function, called on a stand-in self) for a ready batch."""
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLModel
    me = _RopeConfig(spatial_merge)
    me.get_vision_position_ids = Qwen3VLModel.get_vision_position_ids.__get__(me)
    pos, _ = Qwen3VLModel.get_rope_index(me, batch["input_ids"], mm_token_type_ids=batch["mm_token_type_ids"],
                                         image_grid_thw=batch.get("image_grid_thw"),
                                         video_grid_thw=batch.get("video_grid_thw"),
                                         attention_mask=batch["attention_mask"])
    return pos


class Batches(torch.utils.data.Dataset):
    """Batch number -> a ready batch (items seeded by their global index), built in DataLoader workers."""

    def __init__(self, processor, batch: int, prefix_len: int, ids: dict, fast: bool, mix: dict | None = None,
                 seed_base: int = 0):
        self.processor, self.batch, self.prefix_len, self.ids, self.fast = processor, batch, prefix_len, ids, fast
        self.mix, self.seed_base = mix, seed_base

    def __len__(self):
        return 10**9

    def __getitem__(self, step: int):
        items = [sample_item(random.Random(TRAIN_SEED_BASE + self.seed_base + step * self.batch + i), self.mix)
                 for i in range(self.batch)]
        if self.fast:
            return fast_batch(self.processor.tokenizer, items, self.prefix_len, self.ids,
                              self.ids["<|endoftext|>"], video_processor=self.processor.video_processor)
        return dict(make_batch(self.processor, items, self.prefix_len, self.ids["<|im_start|>"],
                               self.ids["<|im_end|>"]))


def _original_vision_attention():
    from transformers.models.qwen3_vl import modeling_qwen3_vl as m
    return m.Qwen3VLVisionAttention.forward


ORIGINAL_VISION_ATTENTION = _original_vision_attention()


def batch_vision_attention() -> None:
    """Qwen3VLVisionAttention without its Python loop over images: transformers runs attention once per image (per
    frame pair for videos) with the sdpa/eager kernels; segments of equal length are independent problems of the
    same shape, so they are stacked and run in one call. Same math, one kernel call per distinct length."""
    from transformers.models.qwen3_vl import modeling_qwen3_vl as m

    def forward(self, hidden_states, cu_seqlens, position_embeddings=None, max_seqlen=None, **kwargs):
        n = hidden_states.shape[0]
        q, k, v = self.qkv(hidden_states).reshape(n, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
        cos, sin = position_embeddings
        q, k = m.apply_rotary_pos_emb_vision(q, k, cos, sin)
        attend = m.ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, m.eager_attention_forward)
        lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).tolist()
        # [seq, heads, d] -> per segment [heads, len, d]
        segs = [t.split(lengths, dim=0) for t in (q, k, v)]
        outs = [None] * len(lengths)
        for L in sorted(set(lengths)):
            which = [i for i, x in enumerate(lengths) if x == L]
            qs, ks, vs = (torch.stack([s[i] for i in which]).transpose(1, 2) for s in segs)  # [n, heads, L, d]
            o = attend(self, qs, ks, vs, attention_mask=None, scaling=self.scaling, dropout=0.0, is_causal=False,
                       **kwargs)[0]  # [n, L, heads, d]
            for j, i in enumerate(which):
                outs[i] = o[j]
        out = torch.cat(outs, dim=0).reshape(n, -1).contiguous()
        return self.proj(out)

    m.Qwen3VLVisionAttention.forward = forward


QUIET_FILE = Path(tempfile.gettempdir()) / "qwen3vl-bench-quiet"


def wait_while_quiet() -> float:
    """Sleeps while QUIET_FILE exists (benchmarks run on this machine then); returns the seconds paused."""
    t = time.time()
    announced = False
    while QUIET_FILE.exists():
        if not announced:
            print(f"{QUIET_FILE} exists: pausing", flush=True)
            announced = True
        time.sleep(5)
    return time.time() - t if announced else 0.0


def parse_mix(text: str) -> dict:
    out = {}
    for part in filter(None, text.split(",")):
        k, v = part.split("=")
        if k not in syn.CATEGORIES and k != "video":
            raise SystemExit(f"--mix: unknown task {k!r} ({', '.join(syn.CATEGORIES)}, video)")
        out[k] = float(v)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "models" / "qwen3vl-tiny-shapes")
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--vocab", type=int, default=1024, help="learnt BPE vocabulary (special tokens come on top)")
    ap.add_argument("--save-every", type=float, default=5.0, help="minutes between checkpoint saves")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the training process (the ops are tiny: more threads mostly wait)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the committed model was trained on one GPU)")
    ap.add_argument("--tokenizer-dir", type=Path, default=None,
                    help="copy tokenizer.json and tokenizer_config.json from here instead of training them")
    ap.add_argument("--slow-batches", action="store_true", help="build batches with the HF processor")
    ap.add_argument("--check-batches", action="store_true",
                    help="check that the fast batches equal the HF processor's, then exit")
    ap.add_argument("--init-from", type=Path, default=None, help="start from this checkpoint's weights")
    ap.add_argument("--workers", type=int, default=1,
                    help="DataLoader worker processes making batches (0: in the training process)")
    ap.add_argument("--mix", default="",
                    help="task weights, e.g. position=3,count=3,choice=3,text=2,color=1,shape=0.5,grounding=1,video=3 "
                         "(default: the image tasks uniformly)")
    ap.add_argument("--seed-base", type=int, default=0, help="offset of the training item seeds (a new stage: new items)")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: only --minutes)")
    ap.add_argument("--profile", action="store_true", help="print where the time of steps 5..25 goes, then exit")
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny", help="model sizes (SIZES)")
    ap.add_argument("--video-vocab", action="store_true",
                    help="train the tokenizer on the video questions and timestamps too")
    ap.add_argument("--pos-init", choices=["normal", "sincos"], default="normal",
                    help="vision position table init: transformers' normal(0, 0.02), or a 2-D sine-cosine table "
                         "(see sincos_position_table)")
    ap.add_argument("--init-only", action="store_true",
                    help="write the checkpoint with its seeded random initial weights (--seed) and exit: the "
                         "starting point of `qwen3vl finetune` (scripts/train/train_demo.sh)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    batch_vision_attention()
    mix = parse_mix(args.mix)
    torch.manual_seed(args.seed)

    out = args.out
    src = None
    if args.tokenizer_dir:  # reuse a tokenizer built earlier by this script
        src = {f: (args.tokenizer_dir / f).read_bytes() for f in ("tokenizer.json", "tokenizer_config.json")}
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if src:
        for f, data in src.items():
            (out / f).write_bytes(data)
        ids = {a["content"]: a["id"] for a in json.loads(src["tokenizer.json"])["added_tokens"]}
    else:
        ids = build_tokenizer(out, args.vocab, args.video_vocab)
    vocab = max(ids.values()) + 1
    vocab = (vocab + 63) // 64 * 64
    write_side_files(out, ids)
    cfg = make_config(ids, vocab, args.size)
    cfg.save_pretrained(out)
    model = Qwen3VLForConditionalGeneration(cfg)
    if args.init_from:  # continue training earlier weights (same config and tokenizer)
        from safetensors.torch import load_file
        res = model.load_state_dict(load_file(str(args.init_from / "model.safetensors")), strict=False)
        assert not res.unexpected_keys and set(res.missing_keys) <= {"lm_head.weight"}, res
        model.tie_weights()
    if args.pos_init == "sincos":
        with torch.no_grad():
            table = model.model.visual.pos_embed.weight
            table.copy_(sincos_position_table(int(round(table.shape[0] ** 0.5)), table.shape[1]))
    if args.init_only:
        n_params = sum(p.numel() for p in model.parameters())
        save(model, out, ids, [f"random init: params {n_params}, vocab {vocab}, size {args.size}, seed {args.seed}"])
        print(f"wrote the initial checkpoint ({n_params} parameters) to {out}")
        return 0
    model.to(args.device)
    model.train()
    processor = AutoProcessor.from_pretrained(out)
    prefix_len = len(processor.tokenizer("<|im_start|>assistant\n")["input_ids"])
    if args.check_batches:
        for items in ([syn.sample(random.Random(i)) for i in range(16)],
                      [sample_item(random.Random(i), {"video": 1, "count": 1}) for i in range(16)]):
            a = make_batch(processor, items, prefix_len, ids["<|im_start|>"], ids["<|im_end|>"])
            a["position_ids"] = model.model.get_rope_index(a["input_ids"], a["mm_token_type_ids"],
                                                           a.get("image_grid_thw"), a.get("video_grid_thw"),
                                                           a["attention_mask"])[0]
            b = fast_batch(processor.tokenizer, items, prefix_len, ids, ids["<|endoftext|>"],
                           video_processor=processor.video_processor)
            assert set(a) >= set(b), (set(a), set(b))
            for k in b:
                assert a[k].shape == b[k].shape, (k, a[k].shape, b[k].shape)
                if k.startswith("pixel_values"):
                    assert (a[k] - b[k]).abs().max() < 1e-5, (a[k] - b[k]).abs().max()
                else:
                    assert torch.equal(a[k], b[k].to(a[k].dtype)), k
            # the stacked vision attention gives transformers' numbers (loop per image) to rounding
            with torch.no_grad():
                fast = model(**b).logits
                from transformers.models.qwen3_vl import modeling_qwen3_vl as m
                patched = m.Qwen3VLVisionAttention.forward
                m.Qwen3VLVisionAttention.forward = ORIGINAL_VISION_ATTENTION
                ref = model(**{k: v for k, v in a.items()}).logits
                m.Qwen3VLVisionAttention.forward = patched
            assert (fast - ref).abs().max() < 1e-4, (fast - ref).abs().max()
        print("fast batches == processor batches (images and videos), batched vision attention == per image")
        return 0
    n_params = sum(p.numel() for p in model.parameters())
    log = [f"params {n_params}, vocab {vocab}, batch {args.batch}, lr {args.lr}, minutes {args.minutes}"
           + (f", init from {args.init_from.name}" if args.init_from else "") + (f", mix {args.mix}" if mix else "")
           + f", threads {args.threads}, workers {args.workers}"]
    print(log[0], flush=True)

    # foreach: one kernel per operation over all ~100 parameters instead of ~10 small ops per parameter
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01, foreach=True)
    budget = args.minutes * 60
    warm = 60.0
    t0 = time.time()
    last_save = t0
    step, ema = 0, None
    loader = iter(torch.utils.data.DataLoader(
        Batches(processor, args.batch, prefix_len, ids, not args.slow_batches, mix, args.seed_base), batch_size=None,
        shuffle=False, num_workers=args.workers, prefetch_factor=4 if args.workers else None,
        worker_init_fn=lambda _: torch.set_num_threads(1)))
    paused = 0.0
    prof = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    rate_t, rate_step = t0, 0
    while True:
        paused += wait_while_quiet()
        el = time.time() - t0 - paused  # the schedule runs on training time, not on pauses
        if el >= budget or (args.steps and step >= args.steps):
            break
        frac = el / budget
        lr = args.lr * min(1.0, (el + 1) / warm) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        ta = time.perf_counter()
        batch = {k: v.to(args.device) for k, v in next(loader).items()}
        tb = time.perf_counter()
        loss = model(**batch).loss
        tc = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        td = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        te = time.perf_counter()
        if 5 <= step < 25:
            for k, v in zip(prof, (tb - ta, tc - tb, td - tc, te - td)):
                prof[k] += v
        if args.profile and step == 25:
            print("seconds per step (steps 5..25): " + ", ".join(f"{k} {v / 20:.3f}" for k, v in prof.items()))
            return 0
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        step += 1
        if step % 20 == 0:
            now = time.time()
            rate = (step - rate_step) / max(now - rate_t, 1e-9)
            rate_t, rate_step = now, step
            line = (f"step {step} t {el / 60:.1f} min lr {lr:.2e} loss {loss.item():.4f} ema {ema:.4f} "
                    f"{rate:.2f} steps/s")
            print(line, flush=True)
            log.append(line)
        if time.time() - last_save > args.save_every * 60:
            save(model, out, ids, log)  # safetensors from GPU tensors are written the same
            last_save = time.time()
            print(f"saved at step {step}", flush=True)
    model.to("cpu")
    log.append(f"done: {step} steps, {(time.time() - t0 - paused) / 60:.1f} min (+{paused / 60:.1f} min paused), "
               f"final ema loss {ema:.4f}")
    print(log[-1], flush=True)
    save(model, out, ids, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
