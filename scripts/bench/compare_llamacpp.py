#!/usr/bin/env python3
"""Side-by-side CPU speed of `qwen3vl bench` against llama.cpp (and transformers for the vision encoder) on the
same Qwen3-VL-2B-shaped random-weight checkpoint, with the same thread count, alternating the engines' runs.

For each weight-format pair (ours bf16 | q8 | q4 against the GGUF F16 | Q8_0 | Q4_K_M):
  pp512, tg128   `qwen3vl bench -p 512 -n 128` against `llama-bench -p 512 -n 128 -o json`
                 ours q8 / q4 run the checkpoint `qwen3vl quantize` wrote (made when absent), as llama.cpp runs the
                 GGUF llama-quantize wrote; --convert-at-load runs `--weight-format` on the bf16 checkpoint instead
For the vision encoder (ours `--vision-format bf16` against mmproj F16):
  image encode   the same synthetic PNG files (448x448 -> 196 visual tokens, 1024x768 -> 768) through
                 `qwen3vl bench --image FILE` and `llama-mtmd-cli` (its "mtmd batch encoding done in N ms" log line;
                 the token count is checked from its "n_tokens_batch" line) and, as a second peer, transformers'
                 Qwen3-VL vision tower in bf16 on CPU (its image processor + model.visual, torch.set_num_threads(T)).
Every repetition runs each engine once, in turn (ours, llama.cpp, transformers, ours, ...), each process with one
untimed warmup of its own (qwen3vl bench --warmup 1; llama-bench's warmup run; mtmd's warmup encode at load; the
transformers worker encodes once untimed). Peak resident memory is GNU time's "Maximum resident set size" of each
process (max over the repetitions). While measuring, qwen3vl-bench-quiet exists in the temp folder ($TMPDIR or
/tmp; other jobs on the host may pause while it does).

Output: a markdown table (mean +- sample standard deviation, speed ratio ours/theirs: > 1 means ours is faster)
with the conditions, on stdout and in --out-md, and everything (every run's value) in --out-json.

Missing inputs are made when absent: the checkpoint by scripts/bench/make_bench_checkpoint.py, the GGUFs by
llama.cpp's convert_hf_to_gguf.py and llama-quantize. No llama.cpp code is part of this repository: pass the
paths of a llama.cpp build (see scripts/bench/README.md).

Usage: $VENV/bin/python scripts/bench/compare_llamacpp.py [--threads 2] [--reps 3] [--formats bf16,q8,q4]
  default paths (--model, --gguf-dir, --llama-root) are under ~/.cache/qwen3vl ($XDG_CACHE_HOME honoured)
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QUIET_FILE = Path(tempfile.gettempdir()) / "qwen3vl-bench-quiet"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qwen3vl"
# ours --weight-format  ->  GGUF file type (llama-quantize name) and file suffix
FORMATS = {"bf16": ("F16", "f16"), "q8": ("Q8_0", "q8_0"), "q4": ("Q4_K_M", "q4_k_m")}
IMAGES = {"448x448": 196, "1024x768": 768}  # size -> visual tokens both engines must produce


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def run(cmd: list[str], timeout: float = 3600, env: dict | None = None) -> tuple[str, str, float]:
    """Runs cmd under GNU time -v; returns stdout, stderr (time's report removed) and max RSS in bytes."""
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


def stats(values: list[float]) -> dict:
    mean = statistics.fmean(values) if values else float("nan")
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": mean, "stddev": std, "values": values}


# ---------------------------------------------------------------------------------------------------- conditions

def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return commit + ("+local changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def llama_version(llama_root: Path, bench_json: list | None) -> str:
    """The sdist's llama.cpp is not a git checkout, so its build says commit "unknown": prefer a LLAMA_CPP_VERSION
    note beside the build, then llama-cpp-python's CHANGELOG entry, then the build's own commit."""
    note = llama_root / "LLAMA_CPP_VERSION"
    if note.exists():
        return note.read_text().strip()
    for changelog in llama_root.glob("llama_cpp_python-*/CHANGELOG.md"):
        m = re.search(r"llama\.cpp@([0-9a-f]{7,})", changelog.read_text())
        if m:
            return f"ggml-org/llama.cpp@{m.group(1)} ({changelog.parent.name})"
    if bench_json:
        return f"build {bench_json[0].get('build_number')} commit {bench_json[0].get('build_commit')}"
    return "unknown"


# ---------------------------------------------------------------------------------------------------- inputs

def ensure_inputs(args, formats: list[str]) -> dict:
    model = args.model
    if not (model / "config.json").exists():
        log(f"{model}: no checkpoint; writing it with make_bench_checkpoint.py (about 4.3 GB)")
        subprocess.run([sys.executable, str(REPO / "scripts/bench/make_bench_checkpoint.py"), "--out", str(model)],
                       check=True)
    args.gguf_dir.mkdir(parents=True, exist_ok=True)
    convert = args.llama_src / "convert_hf_to_gguf.py"
    f16 = args.gguf_dir / "qwen3vl-2b-f16.gguf"
    mmproj = args.gguf_dir / "mmproj-qwen3vl-2b-f16.gguf"
    if not f16.exists():
        log(f"{f16}: converting the checkpoint")
        subprocess.run([sys.executable, str(convert), str(model), "--outtype", "f16", "--outfile", str(f16)],
                       check=True)
    if not mmproj.exists():
        log(f"{mmproj}: converting the vision tower")
        subprocess.run([sys.executable, str(convert), str(model), "--mmproj", "--outtype", "f16", "--outfile",
                        str(mmproj)], check=True)
    ggufs = {}
    for fmt in formats:
        ftype, suffix = FORMATS[fmt]
        path = args.gguf_dir / f"qwen3vl-2b-{suffix}.gguf"
        if not path.exists():
            log(f"{path}: quantizing")
            subprocess.run([str(args.llama_bin / "llama-quantize"), str(f16), str(path), ftype, str(args.threads)],
                           check=True)
        ggufs[fmt] = path
    ours = {}
    for fmt in formats:
        if fmt == "bf16" or args.convert_at_load:
            continue
        path = model.parent / f"{model.name}-{fmt}"
        if not (path / "config.json").exists():
            log(f"{path}: quantizing with qwen3vl quantize")
            subprocess.run([str(args.qwen3vl), "quantize", "-m", str(model), "-o", str(path), "--format", fmt, "-t",
                            str(args.threads)], check=True)
        ours[fmt] = path
    return {"ggufs": ggufs, "mmproj": mmproj, "f16": f16, "ours": ours}


def synthetic_png(path: Path, width: int, height: int) -> None:
    """Smooth gradients plus texture (as the bench's own synthetic image), deterministic."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(12345)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([255 * x // width, 255 * y // height, 128 + ((x // 16 + y // 16) % 2) * 64], axis=-1)
    pixels = np.clip(base + rng.integers(-12, 13, size=base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels, "RGB").save(path)


# ---------------------------------------------------------------------------------------------------- engines

def ours_supports(binary: Path, flag: str) -> bool:
    proc = subprocess.run([str(binary), "bench", "--help"], capture_output=True, text=True)
    return flag in proc.stdout + proc.stderr


def ours_bench(args, extra: list[str], model: Path | None = None) -> tuple[dict, float]:
    cmd = [str(args.qwen3vl), "bench", "-m", str(model or args.model), "-t", str(args.threads), "-r", "1", "--warmup", "1",
           "--json", "--video-seconds", "0", "--bandwidth-mib", "0"] + extra
    out, _, rss = run(cmd)
    return json.loads(out), rss


def llama_bench(args, gguf: Path) -> tuple[list, float]:
    cmd = [str(args.llama_bin / "llama-bench"), "-m", str(gguf), "-p", "512", "-n", "128", "-t", str(args.threads),
           "-r", "1", "-o", "json"]
    out, _, rss = run(cmd)
    return json.loads(out), rss


def llama_mtmd(args, gguf: Path, mmproj: Path, image: Path) -> tuple[float, int, float]:
    cmd = [str(args.llama_bin / "llama-mtmd-cli"), "-m", str(gguf), "--mmproj", str(mmproj), "--image", str(image),
           "-p", "Describe the image.", "-n", "1", "-t", str(args.threads), "--temp", "0", "-c", "4096", "-v"]
    # -c: the default context is the model's 262144 tokens (a 30 GB KV cache); -v: the token count is a debug line
    out, err, rss = run(cmd)
    text = out + err
    m = re.search(r"mtmd batch encoding done in (\d+) ms", text) or re.search(r"image slice encoded in (\d+) ms", text)
    if not m:
        raise RuntimeError(f"llama-mtmd-cli printed no encode time:\n{text[-3000:]}")
    tokens = sum(int(t) for t in re.findall(r"decoding image batch \d+/\d+, n_tokens_batch = (\d+)", text))
    return int(m.group(1)) / 1000.0, tokens, rss


HF_WORKER = r"""
import json, sys, time, torch
from pathlib import Path
from PIL import Image
from safetensors import safe_open
from transformers import AutoConfig, AutoImageProcessor
from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel
model_dir, threads, images = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
torch.set_num_threads(threads)
config = AutoConfig.from_pretrained(model_dir)
visual = Qwen3VLVisionModel._from_config(config.vision_config, dtype=torch.bfloat16)
index = json.loads((Path(model_dir) / "model.safetensors.index.json").read_text())["weight_map"]
state = {}
for file in sorted(set(index.values())):
    with safe_open(str(Path(model_dir) / file), "pt") as f:
        for name in f.keys():
            if name.startswith("model.visual."):
                state[name[len("model.visual."):]] = f.get_tensor(name)
visual.load_state_dict(state, strict=True)
visual = visual.to(torch.bfloat16).eval()
processor = AutoImageProcessor.from_pretrained(model_dir)
result = {"torch": torch.__version__, "attn": getattr(visual.config, "_attn_implementation", None), "images": {}}
def once(image):
    t0 = time.perf_counter()
    inputs = processor(images=[image], return_tensors="pt")
    visual(inputs["pixel_values"].to(torch.bfloat16), grid_thw=inputs["image_grid_thw"])
    return time.perf_counter() - t0, inputs["image_grid_thw"][0].tolist()
with torch.inference_mode():
    frames = [Image.open(path).convert("RGB") for path in images]
    once(frames[0])  # warmup (the first image only: the tower is slow here)
    for path, image in zip(images, frames):
        seconds, grid = once(image)
        result["images"][path] = {"seconds": seconds, "tokens": grid[0] * grid[1] * grid[2] // 4}
print(json.dumps(result))
"""


def hf_vision(args, images: list[Path]) -> tuple[dict, float]:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out, _, rss = run([sys.executable, "-c", HF_WORKER, str(args.model), str(args.threads)] + [str(p) for p in images],
                      env=env)
    return json.loads(out.strip().splitlines()[-1]), rss


# ---------------------------------------------------------------------------------------------------- report

def fmt(s: dict, unit: str) -> str:
    if not s or not s.get("values"):
        return "-"
    digits = 2 if unit == "s" else 1
    return f"{s['mean']:.{digits}f} +- {s['stddev']:.{digits}f} {unit}"


def speed_ratio(ours: dict, theirs: dict, unit: str) -> str:
    if not ours or not theirs or not ours.get("values") or not theirs.get("values"):
        return "-"
    r = ours["mean"] / theirs["mean"] if unit == "tok/s" else theirs["mean"] / ours["mean"]
    return f"{r:.2f}"


def gib(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{x / 2**30:.2f} GiB"


def markdown(report: dict) -> str:
    c = report["conditions"]
    lines = [
        f"Conditions: {c['cpu']}, {c['threads']} threads for every engine, {c['reps']} alternating runs per engine "
        f"(each process with its own warmup run{c['warmup_note']}), mean +- sample standard deviation; "
        f"qwen3vl {c['qwen3vl_commit']} (q8/q4: {c['ours_q_note']}); "
        f"llama.cpp {c['llama_cpp']}; torch {c['torch']} / transformers {c['transformers']}; {c['date']}. "
        "Speed ratio ours/theirs: > 1 means ours is faster (tok/s ratio; for times, theirs/ours). "
        "Memory: peak resident set of the process (GNU time).",
        "",
        "| test | ours | llama.cpp | speed ours/llama.cpp | transformers | speed ours/transformers |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        unit = row["unit"]
        lines.append(f"| {row['test']} | {fmt(row.get('ours'), unit)} | {fmt(row.get('llama'), unit)} | "
                     f"{speed_ratio(row.get('ours'), row.get('llama'), unit)} | {fmt(row.get('hf'), unit)} | "
                     f"{speed_ratio(row.get('ours'), row.get('hf'), unit)} |")
    for row in report["memory"]:
        lines.append(f"| peak RSS, {row['test']} | {gib(row.get('ours'))} | {gib(row.get('llama'))} | | "
                     f"{gib(row.get('hf'))} | |")
    if report["notes"]:
        lines += [""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=CACHE / "bench-models" / "qwen3vl-2b-bf16",
                    help="Hugging Face checkpoint (made by make_bench_checkpoint.py when absent)")
    ap.add_argument("--gguf-dir", type=Path, default=CACHE / "bench-models" / "gguf")
    ap.add_argument("--llama-root", type=Path, default=CACHE / "llama",
                    help="folder holding the llama.cpp source (llama.cpp-src) and build (build/bin)")
    ap.add_argument("--llama-src", type=Path, default=None, help="default: LLAMA_ROOT/llama.cpp-src")
    ap.add_argument("--llama-bin", type=Path, default=None, help="default: LLAMA_ROOT/build/bin")
    ap.add_argument("--qwen3vl", type=Path, default=REPO / "build" / "bin" / "qwen3vl")
    ap.add_argument("--qwen3vl-commit", default=None,
                    help="what to report as our version (default: this repository's HEAD, +local changes if any)")
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("--formats", default="bf16,q8,q4", help="weight formats to compare: bf16 (vs F16), q8 (vs Q8_0), "
                    "q4 (vs Q4_K_M); ours missing a format is skipped with a note")
    ap.add_argument("--tests", default="text,image", help="text (pp512, tg128) and/or image (encode)")
    ap.add_argument("--images", default="448x448,1024x768")
    ap.add_argument("--no-transformers", action="store_true", help="leave out the transformers vision peer")
    ap.add_argument("--convert-at-load", action="store_true",
                    help="ours q8/q4 convert the bf16 checkpoint at load instead of running a qwen3vl quantize output")
    ap.add_argument("--out-json", type=Path, default=Path("compare_llamacpp.json"))
    ap.add_argument("--out-md", type=Path, default=Path("compare_llamacpp.md"))
    args = ap.parse_args()
    args.llama_src = args.llama_src or args.llama_root / "llama.cpp-src"
    args.llama_bin = args.llama_bin or args.llama_root / "build" / "bin"
    formats = [f for f in args.formats.split(",") if f]
    tests = set(args.tests.split(","))
    for f in formats:
        if f not in FORMATS:
            sys.exit(f"--formats: unknown format {f} (bf16, q8, q4)")
    for tool in ("llama-bench", "llama-mtmd-cli"):
        if not (args.llama_bin / tool).exists():
            sys.exit(f"{args.llama_bin / tool}: not found (build llama.cpp first: scripts/bench/README.md)")
    if not args.qwen3vl.exists():
        sys.exit(f"{args.qwen3vl}: not found (build the project, or pass --qwen3vl)")

    notes: list[str] = []
    has_weight_format = ours_supports(args.qwen3vl, "--weight-format")
    has_vision_format = ours_supports(args.qwen3vl, "--vision-format")
    runnable = []
    for f in formats:
        if f != "bf16" and not has_weight_format:
            notes.append(f"{f}: skipped, this qwen3vl build has no --weight-format option")
            continue
        runnable.append(f)
    inputs = ensure_inputs(args, runnable)

    try:
        import torch
        import transformers
        torch_version, tf_version = torch.__version__, transformers.__version__
    except ImportError:
        torch_version = tf_version = "not installed"
        if not args.no_transformers:
            notes.append("transformers peer skipped: torch/transformers not importable")
            args.no_transformers = True

    workdir = Path(tempfile.mkdtemp(prefix="qwen3vl-compare-"))
    image_files = {}
    for size in args.images.split(","):
        w, h = (int(v) for v in size.split("x"))
        image_files[size] = workdir / f"synthetic_{size}.png"
        synthetic_png(image_files[size], w, h)

    rows, memory, raw = [], [], {"text": {}, "image": {}}
    llama_json_seen = None
    # Another measurement may hold the file already: then leave it to that one to remove.
    made_quiet_file = not QUIET_FILE.exists()
    if made_quiet_file:
        QUIET_FILE.touch()
    try:
        # -------------------------------------------------- text: pp512 and tg128, per format pair
        if "text" in tests:
            for fmt_name in runnable:
                gguf = inputs["ggufs"][fmt_name]
                ours_extra = ["-p", "512", "-n", "128", "--image", "none"]
                ours_model = inputs["ours"].get(fmt_name)
                if has_weight_format and ours_model is None:
                    ours_extra += ["--weight-format", fmt_name]
                got = {"ours": {"pp512": [], "tg128": [], "rss": []}, "llama": {"pp512": [], "tg128": [], "rss": []}}
                for rep in range(args.reps):
                    log(f"[{fmt_name}] rep {rep + 1}/{args.reps}: qwen3vl bench")
                    j, rss = ours_bench(args, ours_extra, ours_model)
                    for t in j["tests"]:  # "tg128 sampled" too: kept in the raw results, not in the table
                        got["ours"].setdefault(t["test"], []).append(t["mean"])
                    got["ours"]["rss"].append(rss)
                    log(f"[{fmt_name}] rep {rep + 1}/{args.reps}: llama-bench")
                    lj, rss = llama_bench(args, gguf)
                    llama_json_seen = llama_json_seen or lj
                    for t in lj:
                        key = f"pp{t['n_prompt']}" if t["n_gen"] == 0 else f"tg{t['n_gen']}"
                        got["llama"][key].append(t["avg_ts"])
                    got["llama"]["rss"].append(rss)
                raw["text"][fmt_name] = got
                ftype = FORMATS[fmt_name][0]
                for key in ("pp512", "tg128"):
                    rows.append({"test": f"{key}, ours {fmt_name} / llama.cpp {ftype}", "unit": "tok/s",
                                 "ours": stats(got["ours"][key]), "llama": stats(got["llama"][key])})
                memory.append({"test": f"text {fmt_name} / {ftype}", "ours": max(got["ours"]["rss"]),
                               "llama": max(got["llama"]["rss"])})

        # -------------------------------------------------- image encode (16-bit vision)
        if "image" in tests:
            f16 = inputs["ggufs"].get("bf16", inputs["f16"])
            ours_extra = ["-p", "0", "-n", "0", "--image", ",".join(str(image_files[s]) for s in image_files)]
            if has_vision_format:
                ours_extra += ["--vision-format", "bf16"]
            got = {e: {s: [] for s in image_files} for e in ("ours", "llama", "hf")}
            rss_got = {"ours": [], "llama": [], "hf": []}
            tokens = {e: {} for e in ("ours", "llama", "hf")}
            for rep in range(args.reps):
                log(f"[image] rep {rep + 1}/{args.reps}: qwen3vl bench")
                j, rss = ours_bench(args, ours_extra)
                rss_got["ours"].append(rss)
                for size, t in zip(image_files, j["tests"]):
                    got["ours"][size].append(t["mean"])
                    tokens["ours"][size] = t.get("visual_tokens")
                for size, path in image_files.items():
                    log(f"[image] rep {rep + 1}/{args.reps}: llama-mtmd-cli {size}")
                    seconds, n_tokens, rss = llama_mtmd(args, f16, inputs["mmproj"], path)
                    got["llama"][size].append(seconds)
                    tokens["llama"][size] = n_tokens
                    rss_got["llama"].append(rss)
                if not args.no_transformers:
                    log(f"[image] rep {rep + 1}/{args.reps}: transformers vision tower")
                    hj, rss = hf_vision(args, list(image_files.values()))
                    rss_got["hf"].append(rss)
                    for size, path in image_files.items():
                        got["hf"][size].append(hj["images"][str(path)]["seconds"])
                        tokens["hf"][size] = hj["images"][str(path)]["tokens"]
            raw["image"] = {"seconds": got, "visual_tokens": tokens, "rss": rss_got}
            for size in image_files:
                counts = {e: tokens[e].get(size) for e in tokens if tokens[e].get(size) is not None}
                expected = IMAGES.get(size)
                if len(set(counts.values())) > 1 or (expected and any(v != expected for v in counts.values())):
                    notes.append(f"image {size}: visual tokens differ between engines: {counts}")
                rows.append({"test": f"image encode {size} ({counts.get('ours', '?')} tokens), ours bf16 / "
                                     f"mmproj F16", "unit": "s", "ours": stats(got["ours"][size]),
                             "llama": stats(got["llama"][size]),
                             "hf": stats(got["hf"][size]) if got["hf"][size] else None})
            memory.append({"test": "image encode (both sizes)", "ours": max(rss_got["ours"]),
                           "llama": max(rss_got["llama"]),
                           "hf": max(rss_got["hf"]) if rss_got["hf"] else None})
            notes.append("image encode: ours times preprocessing + vision tower; llama.cpp's figure is mtmd's encode "
                         "of the preprocessed slice (its log line), peak RSS of llama-mtmd-cli includes the text "
                         "model; transformers times its image processor + model.visual (sdpa attention)")
    finally:
        if made_quiet_file:
            QUIET_FILE.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)

    report = {
        "conditions": {
            "cpu": cpu_model(), "threads": args.threads, "reps": args.reps, "qwen3vl_commit": args.qwen3vl_commit or git_commit(),
            "qwen3vl_binary": str(args.qwen3vl), "llama_cpp": llama_version(args.llama_root, llama_json_seen),
            "llama_bin": str(args.llama_bin), "torch": torch_version, "transformers": tf_version,
            "model": str(args.model), "ggufs": {k: str(v) for k, v in inputs["ggufs"].items()},
            "ours_quantized": {k: str(v) for k, v in inputs["ours"].items()} or "converted at load",
            "mmproj": str(inputs["mmproj"]),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "warmup_note": "; transformers: one warmup on the first image" if "image" in tests and not args.no_transformers
            else "",
            "ours_q_note": "converted at load" if args.convert_at_load else "a qwen3vl quantize checkpoint",
        },
        "rows": rows, "memory": memory, "notes": notes, "raw": raw,
    }
    text = markdown(report)
    print(text)
    args.out_md.write_text(text)
    args.out_json.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.out_md} and {args.out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
