#!/usr/bin/env python3
"""Train the tiny Qwen3-VL demo model (models/qwen3vl-tiny-shapes) on CPU from seeded synthetic data.

Real Qwen3-VL architecture, small sizes: Qwen3VLForConditionalGeneration with DeepStack (vision taps feeding the
first decoder layers), interleaved MRoPE, GQA (4 query / 2 KV heads), q/k RMSNorm, tied embeddings. A byte-level BPE
tokenizer is trained here with the `tokenizers` library on the task text: Qwen2's pre-tokenizer, normalizer and
decoder copied from the real Qwen3 tokenizer.json, and every one of Qwen's 26 special tokens with the same strings
(appended after the learnt vocabulary, so the ids differ; config.json and generation_config.json name the new ids).
The chat template is the real Qwen3-VL Instruct one (scripts/reference/templates/qwen3vl_instruct.jinja). The
preprocessor keeps images at or below 128x128 pixels (16 visual tokens).

Items are drawn fresh every step from scripts/train/make_synthetic_data.py (training seeds never overlap the test
set's). The loss covers only the answer tokens and the closing <|im_end|>.

  /work/venv/bin/python scripts/train/train_tiny_qwen3vl.py --out models/qwen3vl-tiny-shapes --minutes 40

Pinned environment: scripts/train/requirements.txt. The run is time-budgeted (the learning rate follows a cosine
over --minutes of wall time), so the exact weights depend on the machine's speed; the committed checkpoint's
training log is models/qwen3vl-tiny-shapes/training_log.txt.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoProcessor, GenerationConfig, Qwen3VLConfig, Qwen3VLForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_synthetic_data as syn  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
REAL_TOKENIZER = REPO.parent / "shared" / "tokenizer" / "qwen3"
CHAT_TEMPLATE = REPO / "scripts" / "reference" / "templates" / "qwen3vl_instruct.jinja"
TRAIN_SEED_BASE = 10**13  # test sets use seed * 100003 + i with seed ~1e6, i.e. ~1e11


def write_json(path: Path, obj, indent: int = 2) -> None:
    path.write_text(json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------------------
def corpus(n: int) -> list[str]:
    rng = random.Random(12345)
    out = []
    for _ in range(n):
        it = syn.sample(rng)
        out.append(syn.prompt_of(it))
        out.append(it["answer"])
    out += ["system\nYou are a helpful assistant.", "user\n", "assistant\n", "<think>\n\n</think>\n\n",
            "Describe this image.", "What is in the picture?", "The image shows a red circle and a blue square."]
    out += [f"{i}" for i in range(1001)]
    return out


def build_tokenizer(out: Path, vocab_size: int) -> dict:
    real_json = json.loads((REAL_TOKENIZER / "tokenizer.json").read_text(encoding="utf-8"))
    real = Tokenizer.from_file(str(REAL_TOKENIZER / "tokenizer.json"))
    tok = Tokenizer(models.BPE())
    tok.normalizer = real.normalizer
    tok.pre_tokenizer = real.pre_tokenizer
    tok.decoder = real.decoder
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, special_tokens=[])
    tok.train_from_iterator(corpus(4000), trainer)
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
def make_config(ids: dict, vocab: int) -> Qwen3VLConfig:
    text = dict(vocab_size=vocab, hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                head_dim=32, intermediate_size=384, rms_norm_eps=1e-6, max_position_embeddings=32768,
                hidden_act="silu", attention_bias=False,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [6, 5, 5],
                                 "mrope_interleaved": True},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], tie_word_embeddings=True)
    vision = dict(depth=3, hidden_size=64, num_heads=2, intermediate_size=256, out_hidden_size=128,
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
def make_batch(processor, items: list[dict], prefix_len: int, im_start: int, im_end: int):
    texts, images = [], []
    for it in items:
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": syn.prompt_of(it)}]},
                {"role": "assistant", "content": [{"type": "text", "text": it["answer"]}]}]
        texts.append(processor.apply_chat_template(msgs, tokenize=False))
        images.append(it["image"])
    enc = processor(text=texts, images=images, return_tensors="pt", padding=True, padding_side="right")
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


def fast_batch(tokenizer, items: list[dict], prefix_len: int, ids: dict, pad_id: int):
    """make_batch without the HF processor (its per-image work dominates the step time): 128x128 images need no
    resize, so pixel_values are just normalized and patchified in the processor's layout."""
    size = syn.SIZE
    P, M, Tp = 16, 2, 2
    g = size // P
    n_tok = (g // M) ** 2
    texts = [chat_text(syn.prompt_of(it), it["answer"], n_tok) for it in items]
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
    import numpy as np
    x = torch.from_numpy(np.stack([np.asarray(it["image"], dtype=np.uint8) for it in items]))  # B,H,W,3
    x = (x.permute(0, 3, 1, 2).float() - 127.5) / 127.5  # mean 0.5, std 0.5
    B = x.shape[0]
    x = x.unsqueeze(1).expand(B, Tp, 3, size, size)  # the frame repeated temporal_patch_size times
    x = x.reshape(B, 1, Tp, 3, g // M, M, P, g // M, M, P)
    x = x.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9).reshape(B * g * g, 3 * Tp * P * P)
    return {"input_ids": input_ids, "attention_mask": attn, "pixel_values": x.contiguous(),
            "image_grid_thw": torch.tensor([[1, g, g]] * B), "mm_token_type_ids": (input_ids == ids["<|image_pad|>"]).long(),
            "labels": labels}


class Batches(torch.utils.data.Dataset):
    """Batch number -> a ready batch (items seeded by their global index), built in DataLoader workers."""

    def __init__(self, processor, batch: int, prefix_len: int, ids: dict, fast: bool):
        self.processor, self.batch, self.prefix_len, self.ids, self.fast = processor, batch, prefix_len, ids, fast

    def __len__(self):
        return 10**9

    def __getitem__(self, step: int):
        items = [syn.sample(random.Random(TRAIN_SEED_BASE + step * self.batch + i)) for i in range(self.batch)]
        if self.fast:
            return fast_batch(self.processor.tokenizer, items, self.prefix_len, self.ids,
                              self.ids["<|endoftext|>"])
        return dict(make_batch(self.processor, items, self.prefix_len, self.ids["<|im_start|>"],
                               self.ids["<|im_end|>"]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "models" / "qwen3vl-tiny-shapes")
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--vocab", type=int, default=1024, help="learnt BPE vocabulary (special tokens come on top)")
    ap.add_argument("--save-every", type=float, default=5.0, help="minutes between checkpoint saves")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the committed model was trained on one GPU)")
    ap.add_argument("--tokenizer-dir", type=Path, default=None,
                    help="copy tokenizer.json and tokenizer_config.json from here instead of training them")
    ap.add_argument("--slow-batches", action="store_true", help="build batches with the HF processor")
    ap.add_argument("--check-batches", action="store_true",
                    help="check that the fast batches equal the HF processor's, then exit")
    ap.add_argument("--init-from", type=Path, default=None, help="start from this checkpoint's weights")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes making batches")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    out = args.out
    src = None
    if args.tokenizer_dir:  # reuse a tokenizer built earlier by this script (e.g. on a machine without ../shared)
        src = {f: (args.tokenizer_dir / f).read_bytes() for f in ("tokenizer.json", "tokenizer_config.json")}
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if src:
        for f, data in src.items():
            (out / f).write_bytes(data)
        ids = {a["content"]: a["id"] for a in json.loads(src["tokenizer.json"])["added_tokens"]}
    else:
        ids = build_tokenizer(out, args.vocab)
    vocab = max(ids.values()) + 1
    vocab = (vocab + 63) // 64 * 64
    write_side_files(out, ids)
    cfg = make_config(ids, vocab)
    cfg.save_pretrained(out)
    model = Qwen3VLForConditionalGeneration(cfg)
    if args.init_from:  # continue training earlier weights (same config and tokenizer)
        from safetensors.torch import load_file
        res = model.load_state_dict(load_file(str(args.init_from / "model.safetensors")), strict=False)
        assert not res.unexpected_keys and set(res.missing_keys) <= {"lm_head.weight"}, res
        model.tie_weights()
    model.to(args.device)
    model.train()
    processor = AutoProcessor.from_pretrained(out)
    prefix_len = len(processor.tokenizer("<|im_start|>assistant\n")["input_ids"])
    if args.check_batches:
        items = [syn.sample(random.Random(i)) for i in range(16)]
        a = make_batch(processor, items, prefix_len, ids["<|im_start|>"], ids["<|im_end|>"])
        b = fast_batch(processor.tokenizer, items, prefix_len, ids, ids["<|endoftext|>"])
        for k in b:
            assert a[k].shape == b[k].shape, (k, a[k].shape, b[k].shape)
            if k == "pixel_values":
                assert (a[k] - b[k]).abs().max() < 1e-5, (a[k] - b[k]).abs().max()
            else:
                assert torch.equal(a[k], b[k]), k
        print("fast batches == processor batches")
        return 0
    n_params = sum(p.numel() for p in model.parameters())
    log = [f"params {n_params}, vocab {vocab}, batch {args.batch}, lr {args.lr}, minutes {args.minutes}"]
    print(log[0], flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    budget = args.minutes * 60
    warm = 60.0
    t0 = time.time()
    last_save = t0
    step, ema = 0, None
    loader = iter(torch.utils.data.DataLoader(Batches(processor, args.batch, prefix_len, ids, not args.slow_batches), batch_size=None,
                                              shuffle=False, num_workers=args.workers,
                                              prefetch_factor=4 if args.workers else None))
    while True:
        el = time.time() - t0
        if el >= budget:
            break
        frac = el / budget
        lr = args.lr * min(1.0, (el + 1) / warm) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        batch = {k: v.to(args.device) for k, v in next(loader).items()}
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        step += 1
        if step % 20 == 0:
            line = f"step {step} t {el / 60:.1f} min lr {lr:.2e} loss {loss.item():.4f} ema {ema:.4f}"
            print(line, flush=True)
            log.append(line)
        if time.time() - last_save > args.save_every * 60:
            save(model, out, ids, log)  # safetensors from GPU tensors are written the same
            last_save = time.time()
            print(f"saved at step {step}", flush=True)
    model.to("cpu")
    log.append(f"done: {step} steps, {(time.time() - t0) / 60:.1f} min, final ema loss {ema:.4f}")
    print(log[-1], flush=True)
    save(model, out, ids, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
