#!/usr/bin/env python3
"""Training throughput and peak memory of `qwen3vl finetune` against PyTorch + PEFT on the same CPU, thread count,
batch, samples and steps, alternating the two engines' runs.

Cases (--cases, comma separated):
  demo-lora   the shipped demo model (models/qwen3vl-tiny-shapes, fp32), LoRA r=16 alpha 32 on all linear layers,
              samples of --demo-tokens tokens with one synthetic image each (so the vision tower runs)
  demo-full   the same model and samples, full fine-tuning (--tune-mm-llm --tune-mm-mlp --tune-mm-vision)
  2b-lora     the 2B-shaped bf16 checkpoint (scripts/bench/make_bench_checkpoint.py), LoRA r=16 alpha 32 on all
              linear layers, text-only samples of --2b-tokens tokens (1,024 by default)
  2b-lora-image  the same with one synthetic image per sample (the tower's LoRA layers train too)

Both engines see the same samples: a synthetic dataset (qwen-vl-finetune `conversations` JSONL: a human turn of
random words, optionally after `<image>`, and a gpt turn of random words) whose templated length is fitted, with
the checkpoint's tokenizer, to the requested token count. Ours: `qwen3vl finetune ... --batch-size 1
--gradient-accumulation-steps 1 --no-shuffle --max-steps S`, tokens/s over steps 2..S from OUT/train_log.jsonl
(step 1 is the warm-up; its time includes building that step's sample, as every step's does). PyTorch: the
checkpoint loaded with AutoModelForImageTextToText in its own dtype (--torch-dtype to override), PEFT's
LoraConfig(r=16, lora_alpha=32, target_modules="all-linear") or every parameter trainable, AdamW, clip_grad_norm_
(1.0, as ours by default), the same samples preprocessed once before the timed loop by the checkpoint's processor
(chat template, labels masked up to the answer), one sample per step, tokens/s over steps 2..S likewise.
Peak memory: GNU time's maximum resident set of each process. While measuring, qwen3vl-bench-quiet exists in the
temp folder ($TMPDIR or /tmp; other jobs on the host may pause while it does).

Output: a markdown table on stdout and in --out-md, every step's figures in --out-json.

Usage: $VENV/bin/python scripts/bench/compare_finetune.py [--threads 2] [--reps 1] [--cases demo-lora,demo-full,2b-lora]
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QUIET_FILE = Path(tempfile.gettempdir()) / "qwen3vl-bench-quiet"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qwen3vl"
LORA_ARGS = ["--lora-target", "all-linear", "--lora-r", "16", "--lora-alpha", "32"]
FULL_ARGS = ["--tune-mm-llm", "--tune-mm-mlp", "--tune-mm-vision"]


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def run(cmd: list[str], timeout: float = 7200, env: dict | None = None) -> tuple[str, str, float]:
    """Runs cmd under GNU time -v; returns stdout, stderr and max RSS in bytes."""
    with tempfile.NamedTemporaryFile(prefix="qwen3vl-time-", suffix=".txt", delete=False) as f:
        time_file = f.name
    try:
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", time_file] + cmd, capture_output=True, text=True,
                              timeout=timeout, env=env)
        report = Path(time_file).read_text()
    finally:
        os.unlink(time_file)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}\n{proc.stdout[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    return proc.stdout, proc.stderr, (int(m.group(1)) * 1024 if m else float("nan"))


# ---------------------------------------------------------------------------------------------------- conditions

def cpu_model() -> str:
    """lscpu's model name with family / model (a virtual machine's name may be only "AMD EPYC") and the widest
    vector extension."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor() or "unknown"
    field = {k: (re.search(rf"^{k}:\s*(.+)$", out, re.M) or [None, "?"])[1].strip()
             for k in ("Model name", "CPU family", "Model", "Flags")}
    flags = field["Flags"].split()
    vector = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "no avx2"
    return f"{field['Model name']} (family {field['CPU family']}, model {field['Model']}, {vector})"


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return commit + ("+local changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---------------------------------------------------------------------------------------------------- dataset

def synthetic_png(path: Path, width: int, height: int) -> None:
    """Smooth gradients plus texture, deterministic (as compare_llamacpp.py's)."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(12345)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([255 * x // width, 255 * y // height, 128 + ((x // 16 + y // 16) % 2) * 64], axis=-1)
    pixels = np.clip(base + rng.integers(-12, 13, size=base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels, "RGB").save(path)


def hf_messages(human: str, answer: str, image: Path | None) -> list[dict]:
    """The transformers chat-template form of one conversations record (the image before the text, as
    qwen-vl-finetune's `<image>\\n` prefix puts it)."""
    user = ([{"type": "image", "image": str(image)}] if image else []) + [{"type": "text", "text": human}]
    return [{"role": "user", "content": user}, {"role": "assistant", "content": [{"type": "text", "text": answer}]}]


def templated_length(processor, human: str, answer: str, image: Path | None) -> int:
    ids = processor.apply_chat_template(hf_messages(human, answer, image), tokenize=True, return_dict=True)["input_ids"]
    return len(ids[0]) if ids and isinstance(ids[0], list) else len(ids)


def write_dataset(model: Path, folder: Path, samples: int, tokens: int, image_size: str | None) -> Path:
    """JSONL of `samples` conversations of exactly `tokens` templated tokens each (random lower-case words of the
    checkpoint's vocabulary; the answer is a quarter of the words)."""
    from transformers import AutoProcessor
    processor = AutoProcessor.from_pretrained(str(model))
    vocab = processor.tokenizer.convert_ids_to_tokens(list(range(min(len(processor.tokenizer), 20000))))
    words = sorted({t[1:] for t in vocab if t.startswith("\u0120") and t[1:].isalpha() and t[1:].islower()})
    image = None
    if image_size:
        w, h = (int(v) for v in image_size.split("x"))
        image = folder / "image.png"
        synthetic_png(image, w, h)
    rng = random.Random(1234)
    path = folder / "train.jsonl"
    with path.open("w") as out:
        for _ in range(samples):
            picked: list[str] = []
            length = 0
            while length < tokens:
                picked += [rng.choice(words) for _ in range(max(1, (tokens - length) // 2))]
                cut = len(picked) * 3 // 4
                length = templated_length(processor, " ".join(picked[:cut]), " ".join(picked[cut:]), image)
            while length > tokens:  # trim one word at a time back to the exact length (BPE may merge neighbours)
                picked.pop()
                cut = len(picked) * 3 // 4
                length = templated_length(processor, " ".join(picked[:cut]), " ".join(picked[cut:]), image)
            cut = len(picked) * 3 // 4
            human, answer = " ".join(picked[:cut]), " ".join(picked[cut:])
            record: dict = {"conversations": [{"from": "human", "value": ("<image>\n" if image else "") + human},
                                              {"from": "gpt", "value": answer}]}
            if image:
                record["image"] = image.name
            out.write(json.dumps(record) + "\n")
    return path


# ---------------------------------------------------------------------------------------------------- engines

def steady_tokens_per_s(tokens: list[int], seconds: list[float]) -> float:
    """Tokens per second over steps 2..S (step 1 is the warm-up); seconds[i] is the time at the end of step i."""
    if len(tokens) < 2:
        return float("nan")
    return sum(tokens[1:]) / max(seconds[-1] - seconds[0], 1e-9)


def ours_finetune(args, case: dict, data: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(args.qwen3vl), "finetune", "-m", str(case["model"]), "--data", str(data), "-o", str(out),
           "--max-steps", str(case["steps"]), "--batch-size", "1", "--gradient-accumulation-steps", "1",
           "-t", str(args.threads), "--no-shuffle"] + case["ours_args"]
    _, _, rss = run(cmd)
    steps = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]
    tokens = [s["tokens"] for s in steps]
    seconds = [s["elapsed_s"] for s in steps]
    shutil.rmtree(out, ignore_errors=True)
    return {"tokens": tokens, "seconds": seconds, "losses": [s["loss"] for s in steps], "rss": rss,
            "tok_s": steady_tokens_per_s(tokens, seconds)}


TORCH_WORKER = r"""
import json, sys, time, torch
from pathlib import Path
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor
model_dir, data, mode, steps, threads, dtype = sys.argv[1:7]
steps, threads = int(steps), int(threads)
torch.set_num_threads(threads)
torch.manual_seed(0)
processor = AutoProcessor.from_pretrained(model_dir)
model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype)
model.config.use_cache = False
if mode == "lora":
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear"))
model.train()
params = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
samples = []
for line in Path(data).read_text().splitlines():
    record = json.loads(line)
    human, answer = record["conversations"][0]["value"], record["conversations"][1]["value"]
    image = Path(data).parent / record["image"] if "image" in record else None
    user = ([{"type": "image", "image": Image.open(image).convert("RGB")}] if image else [])
    user.append({"type": "text", "text": human.removeprefix("<image>\n")})
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": [{"type": "text", "text": answer}]}]
    inputs = processor.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt")
    prompt = processor.apply_chat_template(messages[:1], tokenize=True, return_dict=True, return_tensors="pt",
                                           add_generation_prompt=True)["input_ids"].shape[1]
    labels = inputs["input_ids"].clone()
    labels[:, :prompt] = -100
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    samples.append((dict(inputs), labels))
tokens, seconds, losses = [], [], []
start = time.perf_counter()
for step in range(steps):
    inputs, labels = samples[step % len(samples)]
    loss = model(**inputs, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    tokens.append(int(inputs["input_ids"].shape[1]))
    seconds.append(time.perf_counter() - start)
    losses.append(float(loss))
    print(f"step {step + 1}/{steps} loss {float(loss):.4f} {seconds[-1]:.1f} s", file=sys.stderr, flush=True)
import peft, transformers
print(json.dumps({"tokens": tokens, "seconds": seconds, "losses": losses, "dtype": str(model.dtype),
                  "attn": getattr(model.config, "_attn_implementation", None), "trainable": sum(p.numel() for p in params),
                  "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}))
"""


def torch_finetune(args, case: dict, data: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    out, _, rss = run([args.python, "-c", TORCH_WORKER, str(case["model"]), str(data), case["mode"],
                       str(case["steps"]), str(args.threads), args.torch_dtype], env=env)
    result = json.loads(out.strip().splitlines()[-1])
    result["rss"] = rss
    result["tok_s"] = steady_tokens_per_s(result["tokens"], result["seconds"])
    return result


# ---------------------------------------------------------------------------------------------------- cases

def make_cases(args) -> list[dict]:
    demo = {"model": args.demo_model, "tokens": args.demo_tokens, "image": args.demo_image, "steps": args.demo_steps}
    big = {"model": args.model_2b, "tokens": args.tokens_2b, "steps": args.steps_2b}
    table = {
        "demo-lora": dict(demo, mode="lora", ours_args=LORA_ARGS),
        "demo-full": dict(demo, mode="full", ours_args=FULL_ARGS),
        "2b-lora": dict(big, image=None, mode="lora", ours_args=LORA_ARGS),
        "2b-lora-image": dict(big, image=args.image_2b, mode="lora", ours_args=LORA_ARGS),
    }
    cases = []
    for name in args.cases.split(","):
        if name not in table:
            sys.exit(f"--cases: unknown case {name} ({', '.join(table)})")
        cases.append(dict(table[name], name=name))
    return cases


def checkpoint_dtype(model: Path) -> str:
    config = json.loads((model / "config.json").read_text())
    return config.get("dtype") or config.get("torch_dtype") or config.get("text_config", {}).get("dtype", "?")


# ---------------------------------------------------------------------------------------------------- report

def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.fmean(values):.1f} +- {statistics.stdev(values):.1f}"


def gib(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{x / 2**30:.2f} GiB"


def markdown(report: dict) -> str:
    c = report["conditions"]
    lines = [
        f"Conditions: {c['cpu']}, {c['threads']} threads for both engines, batch 1 (one sample per step, no "
        f"accumulation), {c['reps']} alternating run(s) per engine, tokens/s over steps 2..S of each run (step 1 "
        f"is the warm-up); qwen3vl {c['qwen3vl_commit']}; torch {c['torch']} / transformers {c['transformers']} / "
        f"peft {c['peft']} ({c['torch_attn']} attention); {c['date']}. Ratio: ours / PyTorch tokens/s (> 1: ours "
        "faster). Memory: peak resident set of the process (GNU time), max over the runs.",
        "",
        "| case | model (dtype) | mode | threads | tokens/step | steps | ours tok/s | PyTorch tok/s | ratio | "
        "ours peak RSS | PyTorch peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        ours, theirs = row["ours_tok_s"], row["torch_tok_s"]
        ratio = statistics.fmean(ours) / statistics.fmean(theirs) if ours and theirs else float("nan")
        lines.append(f"| {row['case']} | {row['model']} ({row['dtype']}) | {row['mode']} | {c['threads']} | "
                     f"{row['tokens']} | {row['steps']} | {mean_std(ours)} | {mean_std(theirs)} | {ratio:.2f} | "
                     f"{gib(row['ours_rss'])} | {gib(row['torch_rss'])} |")
    if report["notes"]:
        lines += [""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qwen3vl", type=Path, default=REPO / "build" / "bin" / "qwen3vl")
    ap.add_argument("--python", default=sys.executable, help="Python with torch, transformers and peft (default: "
                    "this one)")
    ap.add_argument("--qwen3vl-commit", default=None,
                    help="what to report as our version (default: this repository's HEAD, +local changes if any)")
    ap.add_argument("--cases", default="demo-lora,demo-full,2b-lora")
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("-r", "--reps", type=int, default=1, help="alternating runs per engine and case")
    ap.add_argument("--torch-dtype", default="auto", help="PyTorch's dtype: auto (the checkpoint's), float32, "
                    "bfloat16")
    ap.add_argument("--demo-model", type=Path, default=REPO / "models" / "qwen3vl-tiny-shapes")
    ap.add_argument("--demo-tokens", type=int, default=256, help="templated tokens per demo sample (image included)")
    ap.add_argument("--demo-image", default="224x224", help="synthetic image per demo sample, WxH")
    ap.add_argument("--demo-steps", type=int, default=20)
    ap.add_argument("--model-2b", type=Path, default=CACHE / "bench-models" / "qwen3vl-2b-bf16",
                    help="2B-shaped checkpoint (made by make_bench_checkpoint.py when absent)")
    ap.add_argument("--2b-tokens", dest="tokens_2b", type=int, default=1024)
    ap.add_argument("--2b-image", dest="image_2b", default="448x448", help="image of the 2b-lora-image case, WxH")
    ap.add_argument("--2b-steps", dest="steps_2b", type=int, default=4)
    ap.add_argument("--out-json", type=Path, default=Path("compare_finetune.json"))
    ap.add_argument("--out-md", type=Path, default=Path("compare_finetune.md"))
    args = ap.parse_args()
    if not args.qwen3vl.exists():
        sys.exit(f"{args.qwen3vl}: not found (build the project, or pass --qwen3vl)")
    cases = make_cases(args)
    if any(c["model"] == args.model_2b for c in cases) and not (args.model_2b / "config.json").exists():
        log(f"{args.model_2b}: no checkpoint; writing it with make_bench_checkpoint.py (about 4.3 GB)")
        subprocess.run([args.python, str(REPO / "scripts/bench/make_bench_checkpoint.py"), "--out",
                        str(args.model_2b)], check=True)

    workdir = Path(tempfile.mkdtemp(prefix="qwen3vl-compare-finetune-"))
    rows, raw, notes, versions = [], {}, [], {}
    made_quiet_file = not QUIET_FILE.exists()
    if made_quiet_file:
        QUIET_FILE.touch()
    try:
        for case in cases:
            folder = workdir / case["name"]
            folder.mkdir()
            log(f"[{case['name']}] writing {case['steps']} samples of {case['tokens']} tokens")
            data = write_dataset(case["model"], folder, case["steps"], case["tokens"], case["image"])
            got = {"ours": [], "torch": []}
            for rep in range(args.reps):
                log(f"[{case['name']}] rep {rep + 1}/{args.reps}: qwen3vl finetune")
                got["ours"].append(ours_finetune(args, case, data, folder / "out"))
                log(f"[{case['name']}] rep {rep + 1}/{args.reps}: PyTorch + PEFT")
                got["torch"].append(torch_finetune(args, case, data))
            raw[case["name"]] = got
            theirs = got["torch"][0]
            versions = {k: theirs[k] for k in ("torch", "transformers", "peft", "attn")}
            if got["ours"][0]["tokens"] != theirs["tokens"]:
                notes.append(f"{case['name']}: tokens per step differ: ours {got['ours'][0]['tokens']}, PyTorch "
                             f"{theirs['tokens']}")
            ours_loss, torch_loss = got["ours"][0]["losses"][0], theirs["losses"][0]
            notes.append(f"{case['name']}: first-step loss ours {ours_loss:.4f}, PyTorch {torch_loss:.4f} (same "
                         f"samples; LoRA B starts at zero, so a LoRA run's first loss is the base model's); "
                         f"PyTorch trainable values {theirs['trainable']:,}")
            rows.append({"case": case["name"], "model": case["model"].name, "dtype": theirs["dtype"].replace(
                "torch.", "") + ("" if args.torch_dtype == "auto" else f" (checkpoint {checkpoint_dtype(case['model'])})"),
                "mode": "LoRA r16 all-linear" if case["mode"] == "lora" else "full (llm + mlp + vision)",
                "tokens": case["tokens"], "steps": case["steps"],
                "ours_tok_s": [r["tok_s"] for r in got["ours"]], "torch_tok_s": [r["tok_s"] for r in got["torch"]],
                "ours_rss": max(r["rss"] for r in got["ours"]), "torch_rss": max(r["rss"] for r in got["torch"])})
            if case["image"]:
                notes.append(f"{case['name']}: one synthetic {case['image']} image per sample, resized by each "
                             "engine's preprocessing within the checkpoint's pixel budget (its tokens are counted)")
    finally:
        if made_quiet_file:
            QUIET_FILE.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)

    notes.append("PyTorch's samples are preprocessed once before its timed loop; ours build each step's sample "
                 "inside the step (its time is counted)")
    report = {
        "conditions": {
            "cpu": cpu_model(), "threads": args.threads, "reps": args.reps,
            "qwen3vl_commit": args.qwen3vl_commit or git_commit(), "qwen3vl_binary": str(args.qwen3vl),
            "torch": versions.get("torch", "?"), "transformers": versions.get("transformers", "?"),
            "peft": versions.get("peft", "?"), "torch_attn": versions.get("attn", "?"),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        },
        "rows": rows, "notes": notes, "raw": raw,
    }
    text = markdown(report)
    print(text)
    args.out_md.write_text(text)
    args.out_json.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.out_md} and {args.out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
