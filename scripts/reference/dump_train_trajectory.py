#!/usr/bin/env python3
"""PyTorch trajectory goldens for the C++ trainer: 20 optimizer steps on tiny-fp32-untied-sharded, full fine-tuning
and LoRA, as transformers 5.23's Trainer runs them with qwen-vl-finetune's optimizer groups, reproduced by hand (and,
with --check-trainer, checked bit for bit against a real transformers.Trainer run).

Offline fixture generation only (CI never runs this). CPU, one thread, deterministic algorithms, eager attention,
float32, model.train() (no dropout anywhere). The three samples of train_batch.py, one per micro-batch, in the fixed
order text, two_images, video, text, ... (micro-batch k is sample k % 3); each micro-batch is one sample alone
(position_ids [4, 1, L], row 0 = arange(L)).

Per optimizer step (transformers trainer.py Trainer._inner_training_loop / training_step, accelerate 1.16):
  for each of the GA = 2 micro-batches: loss = model(**inputs).loss (ForCausalLMLoss, mean over the micro-batch's
      labels); Qwen3VLModel.accepts_loss_kwargs = False, so training_step divides by current_gradient_accumulation_steps
      (loss_is_scaled_for_ga False) and backward()s loss / 2; gradients add up in .grad
  grad_norm = Accelerator.clip_grad_norm_(model.parameters(), 1.0) -> _clip_grad_norm_dtensor_aware:
      torch.nn.utils.get_total_norm(grads) (foreach norm per tensor, then the norm of the norms), then
      vector_norm(stack([that])) and clip_grads_with_norm_: g *= clamp(1.0 / (total + 1e-6), max=1.0)
  optimizer.step()  torch.optim.AdamW, single-tensor path (foreach and fused off: the CPU default)
  lr_scheduler.step()  get_cosine_schedule_with_warmup(num_warmup_steps=3, num_training_steps=20): LambdaLR, so the
      lr used by optimizer step s (0-based) is base_lr * lambda(s); lambda(0) = 0
  model.zero_grad()  (set_to_none)
Optimizer groups: qwen-vl-finetune trainer.py create_optimizer (monkey-patched onto Trainer), with mm_projector_lr
and vision_tower_lr set (full fine-tuning) or unset (LoRA, as its LoRA scripts run): decay names =
Trainer.get_decay_parameter_names (not inside nn.LayerNorm, and no name matching bias / layernorm / rmsnorm /
(^|.)norm($|.) / _norm($|.), case-insensitive) minus names containing "bias"; projector = names containing "merger"
(visual.merger and visual.deepstack_merger_list); vision = names containing "visual" minus the projector; groups in
its order: decay rest, decay vision, no-decay rest, no-decay vision, decay projector, no-decay projector.

Writes OUT_DIR/<case>/ (case = full, lora): index.json (settings, groups with their parameter names, per step the
two micro-batch losses (before the division by GA), the total gradient norm before clipping, the lr of every group
used by that step, and the L2 norm of every trainable tensor after the step) and weights_step<N>.safetensors
(float32, the trainable tensors after step N; HF names for full fine-tuning, PEFT's saved keys for LoRA). Full
fine-tuning stores step 20 only (2.2 MB a snapshot; the per-step norms localise a divergence); LoRA stores steps 10
and 20. --snapshots changes that.

Usage:  $VENV/bin/python scripts/reference/dump_train_trajectory.py OUT_DIR [--check-trainer] [--snapshots N ...]
        (OUT_DIR: tests/fixtures/train/trajectory; ~1 min, --check-trainer ~1 more)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach the hub

import torch
from peft import PeftModel
from peft.utils.save_and_load import get_peft_model_state_dict
from transformers import Trainer, get_cosine_schedule_with_warmup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dump_moe_goldens import load_model  # noqa: E402
from dump_text_goldens import to_json  # noqa: E402
from dump_train_goldens import settings, write_tensors  # noqa: E402
from train_batch import SEED, make_samples, model_inputs  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CKPT = "tiny-fp32-untied-sharded"
MODEL_DIR = REPO / "tests" / "fixtures" / "models" / CKPT
ADAPTER = REPO / "tests" / "fixtures" / "train" / "grads" / CKPT / "lora"  # from dump_train_goldens.py, case (b)
STEPS, GA, WARMUP, MAX_GRAD_NORM = 20, 2, 3, 1.0
ADAM = dict(betas=(0.9, 0.999), eps=1e-8)
HPARAMS = {
    "full": dict(learning_rate=1e-3, vision_tower_lr=2e-4, mm_projector_lr=5e-4, weight_decay=0.01),
    "lora": dict(learning_rate=1e-3, vision_tower_lr=None, mm_projector_lr=None, weight_decay=0.01),
}
GROUP_NAMES = ["decay", "decay_vision", "no_decay", "no_decay_vision", "decay_projector", "no_decay_projector"]


def decay_parameter_names(model) -> list[str]:
    """qwen-vl-finetune create_optimizer: Trainer.get_decay_parameter_names minus names containing "bias"."""
    names = Trainer.get_decay_parameter_names(None, model)
    return [n for n in names if "bias" not in n]


def optimizer_groups(model, hp: dict) -> tuple[list[dict], list[dict]]:
    """qwen-vl-finetune trainer.py create_optimizer's parameter groups (the 6-group branch when both extra lrs are
    set, else decay / no-decay at the base lr), and a description of each for index.json."""
    decay = set(decay_parameter_names(model))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    projector = {n for n, _ in named if "merger" in n}
    vision = {n for n, _ in named if "visual" in n}
    wd = hp["weight_decay"]
    if hp["mm_projector_lr"] and hp["vision_tower_lr"]:
        rules = [("decay", lambda n: n in decay and n not in projector and n not in vision, wd, None),
                 ("decay_vision", lambda n: n in decay and n not in projector and n in vision, wd,
                  hp["vision_tower_lr"]),
                 ("no_decay", lambda n: n not in decay and n not in projector and n not in vision, 0.0, None),
                 ("no_decay_vision", lambda n: n not in decay and n not in projector and n in vision, 0.0,
                  hp["vision_tower_lr"]),
                 ("decay_projector", lambda n: n in decay and n in projector, wd, hp["mm_projector_lr"]),
                 ("no_decay_projector", lambda n: n not in decay and n in projector, 0.0, hp["mm_projector_lr"])]
    else:
        rules = [("decay", lambda n: n in decay, wd, None), ("no_decay", lambda n: n not in decay, 0.0, None)]
    groups, described = [], []
    for name, rule, group_wd, lr in rules:
        members = [(n, p) for n, p in named if rule(n)]
        g = {"params": [p for _, p in members], "weight_decay": group_wd}
        if lr is not None:
            g["lr"] = lr
        groups.append(g)
        described.append({"name": name, "lr": lr if lr is not None else hp["learning_rate"], "weight_decay": group_wd,
                          "params": [n for n, _ in members]})
    assert sum(len(g["params"]) for g in groups) == len(named)
    return groups, described


def clip_like_accelerate(model) -> torch.Tensor:
    """Accelerator.clip_grad_norm_ (non-distributed): _clip_grad_norm_dtensor_aware."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.get_total_norm([p.grad for p in params], 2.0)
    total = torch.linalg.vector_norm(torch.stack([norm]), 2.0)
    torch.nn.utils.clip_grads_with_norm_(params, MAX_GRAD_NORM, total)
    return total


def build(case: str):
    model = load_model(MODEL_DIR)
    if case == "lora":
        model = PeftModel.from_pretrained(model, ADAPTER, is_trainable=True)
    model.train()
    return model


def trainable_state(model, case: str) -> dict[str, torch.Tensor]:
    """The trainable tensors by the names their files use: HF names, or PEFT's saved adapter keys."""
    named = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return dict(sorted(get_peft_model_state_dict(model, state_dict=named).items())) if case == "lora" else named


def saved_names(model, case: str, names: list[str]) -> list[str]:
    """named_parameters names -> the names trainable_state uses (LoRA: "...lora_A.default.weight" ->
    "...lora_A.weight", as PEFT saves them)."""
    if case != "lora":
        return names
    tagged = get_peft_model_state_dict(model, state_dict={n: torch.tensor([i]) for i, n in enumerate(names)})
    by_index = {int(t): k for k, t in tagged.items()}
    return [by_index[i] for i in range(len(names))]


def run(case: str, samples, snapshots: list[int], d: Path) -> dict:
    hp = HPARAMS[case]
    model = build(case)
    groups, described = optimizer_groups(model, hp)
    for g in described:
        g["params"] = saved_names(model, case, g["params"])
    opt = torch.optim.AdamW(groups, lr=hp["learning_rate"], foreach=False, fused=False, **ADAM)
    sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=WARMUP, num_training_steps=STEPS)
    inputs = [model_inputs(model, [s]) for s in samples]
    steps, files = [], {}
    for step in range(STEPS):
        losses = []
        for micro in range(GA):
            k = step * GA + micro
            loss = model(**inputs[k % len(samples)], use_cache=False).loss
            losses.append({"micro_batch": k, "sample_index": k % len(samples), "sample": samples[k % len(samples)].kind,
                           "loss": loss.item()})
            (loss / GA).backward()
        grad_norm = clip_like_accelerate(model)
        lrs = [g["lr"] for g in opt.param_groups]
        opt.step()
        sched.step()
        model.zero_grad()
        state = trainable_state(model, case)
        steps.append({"step": step + 1, "micro_batches": losses, "grad_norm_before_clip": grad_norm.item(),
                      "clipped": bool(grad_norm.item() + 1e-6 > MAX_GRAD_NORM), "lr": lrs,
                      "param_l2": [float(t.double().norm()) for t in state.values()]})
        names = list(state)
        if step + 1 in snapshots:
            name = f"weights_step{step + 1}.safetensors"
            files[str(step + 1)] = {"file": name, "entries": write_tensors(d / name, state)}
        print(f"[{case}] step {step + 1}: losses {[round(m['loss'], 6) for m in losses]} "
              f"norm {grad_norm.item():.6g} lr {lrs[0]:.6g}")
    return {"groups": described, "tensors": names, "steps": steps, "snapshots": files, "_model": model}


def write_case(case: str, result: dict, d: Path, trainer_check: dict | None) -> None:
    hp = HPARAMS[case]
    index = {
        "checkpoint": CKPT, "case": case,
        "start": ("the checkpoint" if case == "full" else
                  f"the checkpoint + the adapter of ../../grads/{CKPT}/lora (adapter_config.json, "
                  "adapter_model.safetensors), loaded with PeftModel.from_pretrained(is_trainable=True)"),
        "trainable": "every parameter" if case == "full" else "the adapter tensors (lora_A, lora_B)",
        "batch": "../../grads/batch (samples: text, two_images, video); micro-batch k = sample k % 3 alone",
        "hyperparameters": {**hp, "optimizer": "torch.optim.AdamW(foreach=False, fused=False)", **ADAM,
                            "gradient_accumulation_steps": GA, "max_grad_norm": MAX_GRAD_NORM,
                            "lr_scheduler": "get_cosine_schedule_with_warmup", "num_warmup_steps": WARMUP,
                            "num_training_steps": STEPS, "num_cycles": 0.5},
        "loss_per_micro_batch": "ForCausalLMLoss mean over the micro-batch's labels, before the division by GA "
                                "(backward runs on loss / GA)",
        "lr": "per group, in the order of groups: the lr optimizer.step() used (python floats, exact)",
        "param_l2": "float64 L2 norm of each trainable float32 tensor after the step, in the order of tensors",
        "groups": result["groups"], "tensors": result["tensors"], "steps": result["steps"], "snapshots": result["snapshots"],
        "hf_trainer_check": trainer_check,
        "settings": settings({"seed": SEED, "script": "scripts/reference/dump_train_trajectory.py"}),
    }
    (d / "index.json").write_text(to_json(index) + "\n", encoding="utf-8")


def check_with_trainer(case: str, samples, result: dict) -> dict:
    """The same run through transformers.Trainer (sequential sampler, the official create_optimizer groups):
    every logged loss, grad norm and lr and the final weights must equal the by-hand run bit for bit."""
    from transformers import TrainingArguments, TrainerCallback
    import tempfile
    hp = HPARAMS[case]
    model = build(case)
    micro = [model_inputs(model, [s]) for s in samples]
    data = [{k: v for k, v in micro[k % len(samples)].items()} for k in range(STEPS * GA)]

    class Seq(Trainer):
        def _get_train_sampler(self, *args, **kwargs):
            return torch.utils.data.SequentialSampler(self.train_dataset)

        def create_optimizer(self, *args, **kwargs):
            if self.optimizer is None:
                groups, _ = optimizer_groups(self.model, hp)
                cls, kw = Trainer.get_optimizer_cls_and_kwargs(self.args)
                self.optimizer = cls(groups, **kw)
            return self.optimizer

    logged = []

    class Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "grad_norm" in logs:
                logged.append(dict(logs))

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, max_steps=STEPS, per_device_train_batch_size=1,
                                 gradient_accumulation_steps=GA, learning_rate=hp["learning_rate"],
                                 weight_decay=hp["weight_decay"], adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
                                 max_grad_norm=MAX_GRAD_NORM, lr_scheduler_type="cosine", warmup_steps=WARMUP,
                                 optim="adamw_torch", logging_steps=1, save_strategy="no", report_to=[],
                                 use_cpu=True, dataloader_num_workers=0, remove_unused_columns=False, seed=SEED,
                                 disable_tqdm=True)
        trainer = Seq(model=model, args=args, train_dataset=data, data_collator=lambda b: b[0],
                      callbacks=[Log()])
        trainer.train()
    mine = trainable_state(result["_model"], case)
    theirs = trainable_state(model, case)
    weights_equal = all(torch.equal(mine[n], theirs[n]) for n in mine)
    norms = [s["grad_norm_before_clip"] for s in result["steps"]]
    norms_equal = [float(l["grad_norm"]) for l in logged] == norms
    losses_hand = [sum(m["loss"] for m in s["micro_batches"]) / GA for s in result["steps"]]
    loss_diff = max(abs(float(l["loss"]) - h) for l, h in zip(logged, losses_hand))
    lr_equal = [float(l["learning_rate"]) for l in logged] == [s["lr"][0] for s in result["steps"]]
    out = {"final_weights_bit_identical": weights_equal, "grad_norms_identical": norms_equal,
           "logged_lr_identical": lr_equal, "logged_loss_max_abs_diff": loss_diff, "steps_logged": len(logged),
           "how": "transformers.Trainer with a SequentialSampler, collator = the prepared micro-batch, "
                  "create_optimizer = the groups above, use_cpu, optim adamw_torch; logged loss = mean of the "
                  "two micro-batch losses (rounded by the Trainer's logging)"}
    print(f"[{case}] HF Trainer check: {out}")
    assert weights_equal and norms_equal and lr_equal, out
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path, help="output folder (tests/fixtures/train/trajectory)")
    ap.add_argument("--check-trainer", action="store_true", help="also run transformers.Trainer and compare")
    ap.add_argument("--snapshots", type=int, nargs="*", default=None,
                    help="steps whose weights are written (default: full 20, lora 10 20)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)
    assert (ADAPTER / "adapter_model.safetensors").exists(), "run dump_train_goldens.py first"
    samples = make_samples(load_model(MODEL_DIR).config)
    for case in ("full", "lora"):
        d = args.out.resolve() / case
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        snapshots = args.snapshots or ([STEPS] if case == "full" else [STEPS // 2, STEPS])
        result = run(case, samples, snapshots, d)
        check = check_with_trainer(case, samples, result) if args.check_trainer else None
        write_case(case, result, d, check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
