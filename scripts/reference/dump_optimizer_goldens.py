#!/usr/bin/env python3
"""Optimizer goldens: torch.optim.AdamW, clip_grad_norm_ and transformers' learning-rate schedules.

Offline fixture generation only (CI never runs this). Writes OUT_DIR/index.json plus raw little-endian .bin files
(float32 "f32", float64 "f64"), read by tests/golden/test_optimizer_golden.cpp and tests/unit/test_lr_schedule.cpp.

Torch runs on CPU with its default thread count; the kernels whose roundings matter (lerp, addcmul, the float32
2-norm) were compiled for AVX2 (torch.backends.cpu.get_cpu_capability() is recorded in the index).

Inputs. Parameters and gradients come from a tiny integer generator that the C++ test reproduces bit for bit, so
they are not stored:
    state <- state * 6364136223846793005 + 1442695040888963407  (mod 2**64), state_0 = seed
    each value is  ((state >> 40) * 2**-24 - 0.5) * 2**e   (exact in float32)
drawn tensor by tensor, element by element: first the initial parameters (e = 1), then per step the gradient of
every tensor that has one at that step (e from grad_exponent below).

Runs ("adamw"): torch.optim.AdamW(foreach=False, fused=False) over TENSOR_SIZES in three parameter groups, with a
transformers scheduler stepping after every optimizer step (the Trainer's order: [clip] -> optimizer.step() ->
lr_scheduler.step()), 1,000 steps. Tensor 3 has no gradient (p.grad = None) on steps where step % 5 == 4, so its
state lags the others. Stored: each group's lr at each step (what param_group["lr"] held during optimizer.step()),
the grad norm returned by clip_grad_norm_ when the run clips, and params / exp_avg / exp_avg_sq / step of every
tensor after the CHECKPOINTS steps.

Clipping ("clip"): clip_grad_norm_ on several tensors (sizes 1 to 100,003: vector bodies and every tail length),
max_norm clipping and not clipping: the per-tensor norms (torch.linalg.vector_norm), the total norm and the
scaled gradients of the small tensors.

Square root ("sqrt"): torch.sqrt on float32, which AdamW's denominator uses. On CPUs where MKL runs its generic
kernel (AMD) it is not correctly rounded (src/train/vml_sqrt.h). Inputs: one per RSQRTPS table entry (both exponent
parities, every top-12-bit mantissa, random lower bits and exponent) plus zeros, subnormals, the largest floats and
infinity; the inputs and torch's roots are stored.

Schedules ("schedules"): transformers.get_scheduler(name, ...) for constant, constant_with_warmup, linear and
cosine; warmup from TrainingArguments(warmup_steps=...).get_warmup_steps(T); 1,000 steps of the lr LambdaLR writes.

Usage:  $VENV/bin/python scripts/reference/dump_optimizer_goldens.py OUT_DIR
        (the committed fixtures: tests/fixtures/train/optimizer)
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import TrainingArguments, get_scheduler

LCG_MUL = 6364136223846793005
LCG_ADD = 1442695040888963407
MASK64 = (1 << 64) - 1

TENSOR_SIZES = [37, 203, 1, 16, 99]
STEPS = 1000
CHECKPOINTS = [1, 2, 10, 100, 1000]

# Per run: parameter groups (tensor indices + torch hyperparameters), the schedule, clipping.
RUNS = {
    "cosine_three_groups": {
        "seed": 101,
        "groups": [
            {"params": [0, 1], "lr": 2e-3, "weight_decay": 0.1, "betas": (0.9, 0.999), "eps": 1e-8},
            {"params": [2, 3], "lr": 5e-4, "weight_decay": 0.0, "betas": (0.9, 0.999), "eps": 1e-8},
            # beta1 < 0.5: lerp's other branch (weight 1 - beta1 >= 0.5)
            {"params": [4], "lr": 1e-3, "weight_decay": 0.01, "betas": (0.3, 0.99), "eps": 1e-6},
        ],
        "schedule": "cosine", "warmup_steps": 0.03, "total_steps": 1000, "max_grad_norm": None,
    },
    "linear_clipped": {
        "seed": 202,
        "groups": [
            {"params": [0, 2, 4], "lr": 1e-2, "weight_decay": 0.05, "betas": (0.9, 0.95), "eps": 1e-8},
            {"params": [1, 3], "lr": 3e-3, "weight_decay": 0.0, "betas": (0.8, 0.999), "eps": 1e-7},
        ],
        "schedule": "linear", "warmup_steps": 20, "total_steps": 900, "max_grad_norm": 1.0,
    },
}

CLIP_SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 21, 37, 203, 1000, 4099, 100003]
CLIP_CASES = [("clips", 303, 1.0), ("keeps", 304, 1e4)]
SCALED_LIMIT = 300  # scaled gradients stored for tensors up to this size

SCHEDULES = [
    ("constant", "constant", 0, 1000),
    ("constant_with_warmup", "constant_with_warmup", 7, 1000),
    ("linear", "linear", 100, 1000),
    ("linear_past_end", "linear", 0.1, 700),
    ("cosine", "cosine", 0.03, 1000),
    ("cosine_no_warmup", "cosine", 0, 1000),
    ("cosine_past_end", "cosine", 50, 600),
    ("cosine_ratio_rounding", "cosine", 0.07, 100),  # 100 * 0.07 = 7.000000000000001: ceil gives 8
]
SCHEDULE_BASE_LRS = [1e-3, 3e-5]
SQRT_SEED = 405


class Lcg:
    def __init__(self, seed: int):
        self.state = seed & MASK64

    def tensor(self, size: int, exponent: int) -> torch.Tensor:
        values = np.empty(size, dtype=np.float32)
        for i in range(size):
            self.state = (self.state * LCG_MUL + LCG_ADD) & MASK64
            values[i] = np.float32(self.state >> 40) * np.float32(2.0**-24) - np.float32(0.5)
        return torch.from_numpy(values * np.float32(2.0**exponent))


def grad_exponent(step: int, tensor: int) -> int:
    """Gradient scale 2**e for 1-based `step`: from 2**-8 to 2**4, so clipping switches on and off."""
    return (step * 5 + tensor) % 13 - 8


def has_grad(step: int, tensor: int) -> bool:
    return not (tensor == 3 and step % 5 == 4)


def warmup_steps(value, total_steps: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        return TrainingArguments(output_dir=tmp, warmup_steps=value).get_warmup_steps(total_steps)


class Writer:
    def __init__(self, out: Path):
        self.out = out
        out.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, array: np.ndarray) -> str:
        kind = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}[array.dtype]
        file = f"{name}.{kind}.bin"
        (self.out / file).write_bytes(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())
        return file


def dump_run(name: str, run: dict, writer: Writer) -> dict:
    rng = Lcg(run["seed"])
    params = [torch.nn.Parameter(rng.tensor(n, 1)) for n in TENSOR_SIZES]
    groups = [{"params": [params[i] for i in g["params"]], "lr": g["lr"], "weight_decay": g["weight_decay"],
               "betas": g["betas"], "eps": g["eps"]} for g in run["groups"]]
    optimizer = torch.optim.AdamW(groups, foreach=False, fused=False)
    warmup = warmup_steps(run["warmup_steps"], run["total_steps"])
    scheduler = get_scheduler(run["schedule"], optimizer, num_warmup_steps=warmup,
                              num_training_steps=run["total_steps"])
    lrs = np.zeros((STEPS, len(groups)), dtype=np.float64)
    grad_norms = np.zeros(STEPS, dtype=np.float32)
    checkpoints = {}
    for step in range(1, STEPS + 1):
        for t, p in enumerate(params):
            p.grad = rng.tensor(p.numel(), grad_exponent(step, t)) if has_grad(step, t) else None
        if run["max_grad_norm"] is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, run["max_grad_norm"])
            grad_norms[step - 1] = norm.item()
        for g, group in enumerate(optimizer.param_groups):
            assert isinstance(group["lr"], float)
            lrs[step - 1, g] = group["lr"]
        optimizer.step()
        scheduler.step()
        if step in CHECKPOINTS:
            checkpoints[str(step)] = {
                "params": writer.write(f"{name}_step{step}_params", torch.cat([p.detach() for p in params]).numpy()),
                "exp_avg": writer.write(f"{name}_step{step}_exp_avg",
                                        torch.cat([optimizer.state[p]["exp_avg"] for p in params]).numpy()),
                "exp_avg_sq": writer.write(f"{name}_step{step}_exp_avg_sq",
                                           torch.cat([optimizer.state[p]["exp_avg_sq"] for p in params]).numpy()),
                "steps": [int(optimizer.state[p]["step"].item()) for p in params],
            }
    entry = {"seed": run["seed"], "groups": [{**g, "betas": list(g["betas"])} for g in run["groups"]],
             "schedule": run["schedule"], "warmup_steps_arg": run["warmup_steps"], "warmup_steps": warmup,
             "total_steps": run["total_steps"], "max_grad_norm": run["max_grad_norm"],
             "lrs": writer.write(f"{name}_lrs", lrs), "checkpoints": checkpoints}
    if run["max_grad_norm"] is not None:
        entry["grad_norms"] = writer.write(f"{name}_grad_norms", grad_norms)
    return entry


def dump_clip(name: str, seed: int, max_norm: float, writer: Writer) -> dict:
    rng = Lcg(seed)
    params = [torch.nn.Parameter(torch.zeros(n)) for n in CLIP_SIZES]
    for t, p in enumerate(params):
        p.grad = rng.tensor(p.numel(), t % 5 - 2)
    norms = np.array([torch.linalg.vector_norm(p.grad, 2).item() for p in params], dtype=np.float32)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    scaled = torch.cat([p.grad for p in params if p.numel() <= SCALED_LIMIT]).numpy()
    return {"seed": seed, "max_norm": max_norm, "norms": writer.write(f"clip_{name}_norms", norms),
            "total_norm": float(total.item()), "scaled": writer.write(f"clip_{name}_scaled", scaled)}


def dump_sqrt(writer: Writer) -> dict:
    rng = np.random.default_rng(SQRT_SEED)
    entries = np.arange(8192, dtype=np.uint32)
    exponents = rng.integers(1, 127, size=8192, dtype=np.uint32) * 2 + (entries >> 12 == 0)  # odd: [1, 2) class
    low_bits = rng.integers(0, 1 << 11, size=8192, dtype=np.uint32)
    table_inputs = (exponents << 23) | ((entries & 0xFFF) << 11) | low_bits
    edge_inputs = np.concatenate([
        np.array([0, 1, 0x007FFFFF, 0x00800000, 0x7F7FF000, 0x7F7FF001, 0x7F7FFFFF, 0x7F800000], dtype=np.uint32),
        rng.integers(1, 0x00800000, size=24, dtype=np.uint32),      # subnormals
        rng.integers(0x7F7FF001, 0x7F800000, size=8, dtype=np.uint32)])  # MKL's scalar path at the top
    inputs = np.concatenate([table_inputs, edge_inputs]).view(np.float32)
    roots = torch.from_numpy(inputs.copy()).sqrt().numpy()
    correctly_rounded = np.sqrt(inputs)
    return {"seed": SQRT_SEED, "inputs": writer.write("sqrt_inputs", inputs), "roots": writer.write("sqrt_roots", roots),
            "not_correctly_rounded": int((roots.view(np.uint32) != correctly_rounded.view(np.uint32)).sum())}


def dump_schedule(name: str, kind: str, warmup_arg, total: int, writer: Writer) -> dict:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in SCHEDULE_BASE_LRS]
    optimizer = torch.optim.AdamW([{"params": [p], "lr": lr} for p, lr in zip(params, SCHEDULE_BASE_LRS)])
    warmup = warmup_steps(warmup_arg, total)
    scheduler = get_scheduler(kind, optimizer, num_warmup_steps=warmup, num_training_steps=total)
    lrs = np.zeros((STEPS, len(SCHEDULE_BASE_LRS)), dtype=np.float64)
    for step in range(STEPS):
        for g, group in enumerate(optimizer.param_groups):
            lrs[step, g] = group["lr"]
        optimizer.step()  # no gradients: nothing changes, but LambdaLR expects the order
        scheduler.step()
    return {"kind": kind, "warmup_steps_arg": warmup_arg, "warmup_steps": warmup, "total_steps": total,
            "lrs": writer.write(f"schedule_{name}", lrs)}


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: dump_optimizer_goldens.py OUT_DIR")
    torch.manual_seed(0)
    writer = Writer(Path(sys.argv[1]))
    index = {
        "torch": torch.__version__, "transformers": transformers.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "tensor_sizes": TENSOR_SIZES, "steps": STEPS, "base_lrs": SCHEDULE_BASE_LRS, "clip_sizes": CLIP_SIZES,
        "scaled_limit": SCALED_LIMIT,
        "adamw": {name: dump_run(name, run, writer) for name, run in RUNS.items()},
        "clip": {name: dump_clip(name, seed, max_norm, writer) for name, seed, max_norm in CLIP_CASES},
        "sqrt": dump_sqrt(writer),
        "schedules": {name: dump_schedule(name, kind, w, t, writer) for name, kind, w, t in SCHEDULES},
    }
    (writer.out / "index.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
