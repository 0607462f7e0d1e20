#!/usr/bin/env python3
"""Make PEFT LoRA test adapters for the tiny checkpoints, and PEFT's logits, greedy ids and merged weights for them.

Offline fixture generation only (CI never runs this). PEFT itself builds every adapter (get_peft_model with a
LoraConfig, then seeded non-zero A and B, save_pretrained); the goldens come from loading it back exactly as a user
does: a fresh base from_pretrained, PeftModel.from_pretrained(base, dir) with the default autocast_adapter_dtype=True,
eval mode. CPU, one thread, attn_implementation="eager", deterministic algorithms, as dump_text_goldens.py.

Writes (under --out, default tests/fixtures/lora):
  <adapter>/adapter_config.json, adapter_model.safetensors   as PEFT writes them (README.md dropped; the
      target_modules list sorted, because PEFT writes list(set) in hash order; base_model_name_or_path set to the
      checkpoint's folder name instead of the local path it was loaded from)
  <adapter>/merged_changed.safetensors   merge_and_unload() tensors that differ from the base, HF names, base dtype
  goldens/*.bin   raw little-endian float32 C-order logits (bf16 logits widened exactly)
  index.json      per adapter: base, wrapped modules with r / alpha / scaling, inputs, golden files, greedy ids
File paths inside index.json are relative to tests/fixtures, with the output folder spelled by its own name
("lora/..."). The image cases reuse multimodal/tiny-fp32-tied's one_image ids and pixel_values (read from the .bin,
not re-processed), also for tiny-bf16-untied (same vocabulary, special ids and vision geometry, checked).

Usage:  $VENV/bin/python scripts/reference/make_lora_goldens.py [--fixtures DIR] [--out DIR]   (~15 s)

Deterministic: a second run writes byte-identical files on the same machine. Another CPU may sum in another order
(the committed multimodal tiny-fp32-tied logits differ from an AVX2 run by 6.4e-6; index.json records the
cpu_capability); the bf16 seeds were picked so that no bf16 top-1 or greedy step is an exact tie (gaps >= 1 ulp).

PEFT 0.21.2 forward numerics (CPU, eval; lora_dropout 0 is nn.Identity), as read in the pinned source
-------------------------------------------------------------------------------------------------------
Plain LoRA, peft/tuners/lora/layer.py Linear.forward:
    result = base_layer(x)                          # F.linear(x, W, b) in the base dtype (bf16 base: one rounding)
    for each active adapter, in active_adapters order:
        x = self._cast_input_dtype(x, lora_A.weight.dtype)   # tuners_utils.py BaseTunerLayer; bf16 -> fp32 exact
        result = result + lora_B(lora_A(x)) * scaling        # A x, then B(.), both fp32; the scale multiplies the
                                                            # [.., out] product after B; bf16 result + fp32 term
                                                            # promotes to fp32 (bf16 widened exactly)
    result = result.to(torch_result_dtype)          # one rounding to the base dtype, after all adapters
  So a bf16 base with (autocast) fp32 adapter weights gives y = bf16(float(bf16(W x + b)) + (B (A float(x))) * s);
  A x is never rounded to bf16. An fp32 base: y = (W x + b) + (B (A x)) * s, all fp32.
  autocast_adapter_dtype=True (PeftModel.from_pretrained default) -> BaseTuner._cast_adapter_dtype ->
  tuners_utils.cast_adapter_dtype: every fp16/bf16 parameter inside the ModuleDict/ParameterDict entries of a
  BaseTunerLayer (lora_A, lora_B, lora_magnitude_vector, ...) becomes fp32, so a bf16 adapter file is widened exactly.
  ModulesToSaveWrapper is not a BaseTunerLayer (utils/other.py AuxiliaryTrainingWrapper(nn.Module)): a
  modules_to_save copy keeps the base module's dtype (the file tensor is copied into it).
Scaling, LoraLayer.update_layer: scaling = lora_alpha / math.sqrt(r) if use_rslora else lora_alpha / r, a Python
  double; `fp32_tensor * s` on CPU rounds s to fp32 first (checked: x * s == x * float32(s) bit for bit, while
  (double(x) * s) rounded differs in ~30 % of cases). r and alpha per module: LoraModel._create_and_replace takes
  rank_pattern.get(get_pattern_key(rank_pattern.keys(), key), r), the same for alpha_pattern / lora_alpha.
  utils/other.py get_pattern_key returns the FIRST pattern key (dict order = adapter_config.json order, which PEFT
  writes with sort_keys=True, so alphabetical) with re.match(rf"(.*\\.)?({pattern})$", key); the pattern is an
  unescaped regex; key = module path in the transformers model, e.g. "model.language_model.layers.0.self_attn.q_proj".
  LoraLayer.set_scale(adapter, w): scaling = w * lora_alpha / r (rsLoRA: / sqrt(r)); scale_layer(w) multiplies the
  current scaling of the active adapters; helpers.rescale_adapter_scale multiplies every adapter's scaling.
DoRA, peft/tuners/lora/variants.py DoraLinearVariant.forward + dora.py DoraLinearLayer.forward (eval or no dropout):
    base_result = result                            # base_layer(x) = W x + b, base dtype
    lora_weight = lora_B(lora_A(eye(in))).T          # get_lora_weight: B A [out, in] through the Linear modules
    W = base weight .to(x.dtype)                     # x is already in the adapter dtype (fp32)
    weight_norm = torch.linalg.norm(W + scaling * lora_weight.detach(), dim=1)   # get_weight_norm, per output row,
                                                     # in fp32; recomputed every forward (ENABLE_DORA_CACHING False);
                                                     # .detach() only stops gradients
    f = (lora_magnitude_vector / weight_norm).view(1, -1)
    lora_result = lora_B(lora_A(x))                 # not scaled yet
    if base has a bias: base_result = base_result - bias   # (W x + b) - b in the base dtype, not a fresh W x
    result_dora = (f - 1) * base_result + f * lora_result * scaling    # ((f * lora_result) * scaling)
    result = result + result_dora                   # then Linear.forward's final .to(result dtype)
  i.e. y = f (W x + s B A x) + b. (Training with dropout > 0 uses base_result = F.linear(dropout(x), W) instead.)
Merge, layer.py Linear.merge (safe_merge=False, the merge_and_unload default):
    delta = get_delta_weight = (B @ A) * scaling     # bf16/fp16 adapter weights on CPU: A, B -> fp32, product and
                                                     # scale in fp32, cast back to the adapter dtype; after autocast
                                                     # the adapter is fp32, so delta is fp32
    W.data += delta                                  # in place: bf16 W -> bf16(float(W) + delta), one rounding
  DoRA merge_unsafe: delta as above; weight_norm = get_weight_norm(W, delta, scaling=1) = ||W + delta|| per row;
    W = ((m / weight_norm).view(-1, 1) * (W + delta)).to(W dtype); bias untouched. delta uses B @ A, the forward
    uses B(A(eye)).T: equal up to rounding.
lora_bias=True (not used here): lora_B = nn.Linear(r, out, bias=True), forward adds (B (A x) + b_B) * s, merge adds
  b_B * s to the base bias; key "<path>.lora_B.bias".
bias="lora_only" / "all": tuners_utils.py BaseTuner._get_learnable_bias_state_dict saves the biases of the targeted
  layers as "<path>.base_layer.bias" ("all": every key ending in ".bias" of the model state dict, so targeted ones
  as ".base_layer.bias" and the rest as ".bias"). Loading copies them into the base layers (the adapter REPLACES
  the base bias, unscaled); merge_and_unload keeps them, so they appear in merged_changed as "<path>.bias".
modules_to_save (utils/other.py ModulesToSaveWrapper): forward runs modules_to_save[active_adapters[0]] only (not
  additive, not affected by scaling); saved as "base_model.model.<path>.<param>" (e.g. base_model.model.lm_head.weight);
  merge_and_unload puts the copy in place of the module.
Target matching (tuners_utils.check_target_module_exists): a str is re.fullmatch against the module path; a list
  matches key == t or key.endswith("." + t); "all-linear" = every nn.Linear except get_output_embeddings()
  (_maybe_include_all_linear_layers), and the saved adapter_config.json holds the expanded suffix list (here
  "attn.proj", "down_proj", ..., "qkv"), never the string "all-linear"; modules named in modules_to_save are never
  LoRA targets.
Key names for Qwen3-VL (transformers 5 layout): "base_model.model." + module path + ".lora_A.weight" [r, in] /
  ".lora_B.weight" [out, r] / ".lora_magnitude_vector" [out] (DoRA; LoraModel._get_adapter_state_dict strips
  ".weight") / ".base_layer.bias", module paths model.language_model.layers.N.self_attn.{q,k,v,o}_proj,
  model.language_model.layers.N.mlp.{gate,up,down}_proj, model.visual.blocks.N.attn.{qkv,proj},
  model.visual.blocks.N.mlp.linear_fc{1,2}, model.visual.merger.linear_fc{1,2},
  model.visual.deepstack_merger_list.K.linear_fc{1,2}, lm_head.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach the hub

import numpy as np
import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from peft.utils.other import ModulesToSaveWrapper
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dump_moe_goldens import load_model  # noqa: E402  (dense or MoE class by model_type)
from dump_text_goldens import to_json, write_bin  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
MAX_NEW_TOKENS = 32
PREFIX = "base_model.model."
LM_LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# The image prompt shared by every image case: the committed one_image case of tiny-fp32-tied.
IMAGE_SOURCE = ("tiny-fp32-tied", "one_image")

# rel: target size of s * B A next to W (relative, per matrix); bias/magnitude/head: how the extras are perturbed;
# seed: picked so that no bf16 top-1 / greedy step is an exact tie. merge: write merge_and_unload goldens. The other
# adapters' merges add nothing (lm-qkvo-mlp, lm-ov-r2: the same fp32 modules as all-linear; bf16-weights: widened to
# fp32 on load, so it merges exactly like two-ranks; moe-attn: the attention of a dense layer) and would cost ~1.5 MB.
ADAPTERS = [
    dict(name="lm-qkvo-mlp", base="tiny-fp32-tied", rel=0.3,
         config=dict(r=8, lora_alpha=16, target_modules=LM_LINEARS)),
    dict(name="all-linear", base="tiny-fp32-tied", rel=0.3, image=True, bias_std=0.1, merge=True,
         config=dict(r=4, lora_alpha=8, target_modules="all-linear", bias="lora_only")),
    dict(name="rslora", base="tiny-bf16-untied", rel=0.3, image=True, merge=True, seed=21,
         config=dict(r=16, lora_alpha=8, use_rslora=True, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                           "qkv"])),
    dict(name="dora", base="tiny-fp32-tied", rel=0.3, image=True, magnitude=(0.8, 1.2), merge=True,
         config=dict(r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "v_proj", "down_proj", "qkv"])),
    dict(name="modules-to-save", base="tiny-fp32-untied-sharded", rel=0.3, head_rel=0.3, merge=True,
         config=dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"])),
    dict(name="two-ranks", base="tiny-bf16-untied", rel=0.3, merge=True, seed=70,
         config=dict(r=8, lora_alpha=16, target_modules=LM_LINEARS,
                     rank_pattern={"q_proj": 2, "model.language_model.layers.2.mlp.down_proj": 4},
                     alpha_pattern={"q_proj": 4, "layers.2.mlp.down_proj": 12})),
    dict(name="bf16-weights", base="tiny-bf16-untied", rel=0.3, seed=27, save_dtype=torch.bfloat16,
         config=dict(r=4, lora_alpha=8, target_modules=["k_proj", "o_proj", "up_proj"])),
    dict(name="moe-attn", base="tiny-moe-fp32", rel=0.3,
         config=dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])),
    dict(name="lm-ov-r2", base="tiny-fp32-tied", rel=0.3,
         config=dict(r=2, lora_alpha=4, target_modules=["o_proj", "down_proj"])),
]
# adapter_config.json fields repeated in index.json
CONFIG_KEYS = ["base_model_name_or_path", "r", "lora_alpha", "use_rslora", "use_dora", "bias", "lora_bias",
               "target_modules", "modules_to_save", "rank_pattern", "alpha_pattern"]
# Several adapters on one base at once: (case name, [(adapter, scale), ...]).
COMBINATIONS = [
    ("two-active", [("lm-qkvo-mlp", 1.0), ("lm-ov-r2", 1.0)]),
    ("half-scale", [("lm-qkvo-mlp", 0.5)]),
]
SKIPPED = [
    {"what": "LoRA on the fused MoE experts (mlp.experts.gate_up_proj / down_proj)",
     "why": "they are nn.Parameters of Qwen3VLMoeTextExperts, not nn.Linear; PEFT reaches them only through "
            "target_parameters (ParamWrapper), which issue 15 leaves out"},
    {"what": "LoRA on the MoE router (mlp.gate)",
     "why": "Qwen3VLMoeTextTopKRouter is not an nn.Linear, so target_modules cannot wrap it"},
]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
def gen(spec: dict, tensor: str) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(f"{spec['name']}/{spec.get('seed', 0)}/{tensor}".encode()))


def read_bin(path: Path, shape: list[int]) -> torch.Tensor:
    return torch.from_numpy(np.fromfile(path, dtype="<f4").reshape(shape).copy())


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "float32", torch.bfloat16: "bfloat16"}[dtype]


def lora_layers(model) -> list[tuple[str, LoraLayer]]:
    """(module path in the transformers model, layer) for every LoRA-wrapped module, in module order."""
    return [(n.removeprefix(PREFIX), m) for n, m in model.named_modules() if isinstance(m, LoraLayer)]


def logits_summary(logits: torch.Tensor) -> dict:
    top2 = torch.topk(logits.float(), 2, dim=-1).values
    return {"top1": torch.argmax(logits, dim=-1).tolist(), "max_abs_logit": float(logits.float().abs().max()),
            "min_top1_top2_gap": float((top2[:, 0] - top2[:, 1]).min())}


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
class Inputs:
    """The prompts: each checkpoint's text case from goldens/<ckpt>/index.json, and the one_image case."""

    def __init__(self, fixtures: Path):
        self.fixtures = fixtures
        mm_index = json.loads((fixtures / "multimodal" / IMAGE_SOURCE[0] / "index.json").read_text())
        self.image_case = next(c for c in mm_index["cases"] if c["name"] == IMAGE_SOURCE[1])
        pv = self.image_case["pixel_values"]
        self.pixel_values = read_bin(fixtures / "multimodal" / pv["file"], pv["shape"])
        self.image_ref_config = json.loads((fixtures / "models" / IMAGE_SOURCE[0] / "config.json").read_text())

    def text(self, ckpt: str) -> dict:
        index = json.loads((self.fixtures / "goldens" / ckpt / "index.json").read_text())
        case = next(c for c in index["cases"] if c["name"] == "text")
        return {"name": "text", "input_ids": case["input_ids"],
                "from": f"goldens/{ckpt}/index.json cases[name=text]",
                "existing_logits": f"goldens/{ckpt}/{case['logits']}" if case["logits_rows"] == "all" else None,
                "existing_greedy": index["greedy"]["output_ids"]}

    def image(self, ckpt: str, model) -> dict:
        """The one_image prompt; for another checkpoint only if its ids and vision geometry are the same."""
        cfg = model.config
        ref = self.image_ref_config
        for key in ("image_token_id", "vision_start_token_id", "vision_end_token_id"):
            assert getattr(cfg, key) == ref[key], (ckpt, key)
        assert cfg.text_config.vocab_size == ref["text_config"]["vocab_size"], ckpt
        for key in ("patch_size", "temporal_patch_size", "spatial_merge_size", "hidden_size", "depth"):
            assert getattr(cfg.vision_config, key) == ref["vision_config"][key], (ckpt, key)
        c = self.image_case
        same = ckpt == IMAGE_SOURCE[0]
        return {"name": "one_image", "input_ids": c["input_ids"], "image_grid_thw": c["image_grid_thw"],
                "pixel_values": {"file": "multimodal/" + c["pixel_values"]["file"],
                                 "shape": c["pixel_values"]["shape"]},
                "mm_token_type_ids": "1 where input_ids == image_token_id, else 0",
                "from": f"multimodal/{IMAGE_SOURCE[0]}/index.json cases[name={IMAGE_SOURCE[1]}]",
                "existing_logits": "multimodal/" + c["logits"]["file"] if same else None,
                "existing_greedy": c["greedy"]["output_ids"] if same else None}

    def model_kwargs(self, case: dict, model) -> dict:
        ids = torch.tensor([case["input_ids"]])
        kw = {"input_ids": ids}
        if case["name"] == "one_image":
            kw.update(pixel_values=self.pixel_values, image_grid_thw=torch.tensor(case["image_grid_thw"]),
                      mm_token_type_ids=(ids == model.config.image_token_id).int())
        return kw


@torch.no_grad()
def prefill(model, inputs: Inputs, case: dict) -> torch.Tensor:
    return model(**inputs.model_kwargs(case, model), use_cache=False).logits[0]


@torch.no_grad()
def greedy(model, inputs: Inputs, case: dict) -> dict:
    """model.generate(do_sample=False, max_new_tokens=32) with the checkpoint's generation_config (eos honoured),
    as dump_text_goldens.run_greedy."""
    kw = inputs.model_kwargs(case, model)
    res = model.generate(**kw, attention_mask=torch.ones_like(kw["input_ids"]), do_sample=False,
                         max_new_tokens=MAX_NEW_TOKENS, return_dict_in_generate=True, output_logits=True)
    new = res.sequences[0, kw["input_ids"].shape[1]:].tolist()
    raw = torch.stack([x[0].float() for x in res.logits])
    assert torch.argmax(raw, dim=-1).tolist() == new[: raw.shape[0]]
    top2 = torch.topk(raw, 2, dim=-1).values
    eos = model.generation_config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos]
    return {"output_ids": new, "num_new_tokens": len(new),
            "stopped_on_eos": bool(len(new) < MAX_NEW_TOKENS and new and new[-1] in eos),
            "step_min_top1_top2_gap": float((top2[:, 0] - top2[:, 1]).min())}


# --------------------------------------------------------------------------------------------
# Making an adapter
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def fill_adapter(spec: dict, model) -> None:
    """Seeded non-zero A and B (and the extras): s * B A is about spec["rel"] of W per matrix."""
    for path, layer in lora_layers(model):
        r, s = layer.r["default"], layer.scaling["default"]
        a = torch.randn(r, layer.in_features, generator=gen(spec, path + ".lora_A")) / math.sqrt(layer.in_features)
        b = torch.randn(layer.out_features, r, generator=gen(spec, path + ".lora_B"))
        b *= spec["rel"] / (s * math.sqrt(r))
        layer.lora_A["default"].weight.copy_(a)
        layer.lora_B["default"].weight.copy_(b)
        if "magnitude" in spec:
            w = layer.get_base_layer().weight.float()
            norm = torch.linalg.norm(w + s * (b @ a), dim=1)
            lo, hi = spec["magnitude"]
            u = torch.rand(layer.out_features, generator=gen(spec, path + ".lora_magnitude_vector"))
            layer.lora_magnitude_vector["default"].weight.copy_(norm * (lo + (hi - lo) * u))
        bias = layer.get_base_layer().bias
        if "bias_std" in spec and bias is not None:
            bias.add_((torch.randn(bias.shape, generator=gen(spec, path + ".bias")) * spec["bias_std"]).to(bias.dtype))
        if spec.get("save_dtype") is not None:
            layer.lora_A["default"].to(spec["save_dtype"])
            layer.lora_B["default"].to(spec["save_dtype"])
    for path, module in model.named_modules():
        if isinstance(module, ModulesToSaveWrapper):
            copy = module.modules_to_save["default"]
            noise = torch.randn(copy.weight.shape, generator=gen(spec, path.removeprefix(PREFIX) + ".weight"))
            copy.weight.add_((noise * spec["head_rel"] / math.sqrt(copy.in_features)).to(copy.weight.dtype))


def make_adapter(spec: dict, models: Path, out_dir: Path) -> None:
    torch.manual_seed(0)  # PEFT's own init (kaiming A) runs before fill_adapter overwrites it
    base = load_model(models / spec["base"])
    model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", **spec["config"]))
    fill_adapter(spec, model)
    model.peft_config["default"].base_model_name_or_path = spec["base"]
    if out_dir.exists():
        shutil.rmtree(out_dir)
    model.save_pretrained(out_dir, save_embedding_layers=False)
    (out_dir / "README.md").unlink()
    # PEFT writes target_modules as list(set): hash order. Same bytes as PEFT would write, with the list sorted.
    cfg_path = out_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True))


# --------------------------------------------------------------------------------------------
# Goldens
# --------------------------------------------------------------------------------------------
def load_adapter_model(models: Path, spec: dict, adapter_dir: Path):
    return PeftModel.from_pretrained(load_model(models / spec["base"]), adapter_dir).eval()


def check_loaded(model, adapter_dir: Path) -> dict:
    """The loaded PeftModel holds exactly the file's tensors (widened to fp32 where PEFT autocasts)."""
    loaded = peft.get_peft_model_state_dict(model)
    tensors = {}
    with safe_open(adapter_dir / "adapter_model.safetensors", "pt") as f:
        assert set(f.keys()) == set(loaded), set(f.keys()) ^ set(loaded)
        for k in f.keys():
            t = f.get_tensor(k)
            assert torch.equal(t.to(loaded[k].dtype), loaded[k]), k
            tensors[k] = t
    dtypes = sorted({dtype_name(t.dtype) for k, t in tensors.items() if ".lora_" in k})
    extra = {k: list(t.shape) for k, t in tensors.items() if ".lora_A." not in k and ".lora_B." not in k}
    return {"lora_tensor_dtypes": dtypes, "loaded_lora_dtype": dtype_name(next(
        v.dtype for k, v in loaded.items() if ".lora_A." in k)), "num_tensors": len(tensors),
        "non_lora_AB_tensors": extra}


def module_table(model) -> list[dict]:
    rows = []
    for path, layer in lora_layers(model):
        base = layer.get_base_layer()
        rows.append({"module": path, "r": layer.r["default"], "alpha": layer.lora_alpha["default"],
                     "scaling": layer.scaling["default"], "in": layer.in_features, "out": layer.out_features,
                     "dora": "default" in layer.lora_variant, "base_bias": base.bias is not None})
    return rows


class BaseGoldens:
    """Base-model (no adapter) logits and greedy ids per (checkpoint, case). The logits file is the committed golden;
    where there is none (tiny-bf16-untied with the image) only the summary (top-1 per position, greedy ids) is kept:
    it is only there to show that the adapter changes the answer."""

    def __init__(self, fixtures: Path):
        self.fixtures = fixtures
        self.cache: dict[tuple[str, str], tuple[dict, torch.Tensor]] = {}

    def get(self, ckpt: str, case: dict, inputs: Inputs) -> tuple[dict, torch.Tensor]:
        key = (ckpt, case["name"])
        if key not in self.cache:
            model = load_model(self.fixtures / "models" / ckpt)
            logits = prefill(model, inputs, case).float()
            g = greedy(model, inputs, case)
            entry = {"greedy_output_ids": g["output_ids"]}
            if case["existing_greedy"] is not None:
                assert g["output_ids"] == case["existing_greedy"], (key, "greedy differs from the committed golden")
            existing = case["existing_logits"]
            entry["logits"] = None
            if existing is not None:
                # the committed goldens may come from another CPU (AVX-512 vs AVX2 sum orders): near, not equal
                committed = read_bin(self.fixtures / existing, list(logits.shape))
                diff = float((committed - logits).abs().max())
                assert torch.equal(committed.argmax(-1), logits.argmax(-1)) and diff < 1e-3, (key, diff)
                entry["logits"] = {"file": existing, "shape": list(logits.shape), "max_abs_diff_vs_this_run": diff}
            entry.update(logits_summary(logits))
            self.cache[key] = (entry, logits)
        return self.cache[key]


def run_case(model, spec_name: str, ckpt: str, case: dict, inputs: Inputs, bases: BaseGoldens, goldens: Path,
             rel_goldens: str, tag: str = "") -> dict:
    logits = prefill(model, inputs, case).float()
    fn = f"{spec_name}.{case['name']}{tag}.logits.bin"
    base_entry, base_logits = bases.get(ckpt, case, inputs)
    out = {k: v for k, v in case.items() if not k.startswith("existing_")}
    out["logits"] = {"file": f"{rel_goldens}/{fn}", "shape": write_bin(goldens / fn, logits)}
    out.update(logits_summary(logits))
    out["greedy"] = greedy(model, inputs, case)
    out["base"] = base_entry
    out["max_abs_diff_vs_base"] = float((logits - base_logits).abs().max())
    out["positions_top1_differs_from_base"] = [i for i, (a, b) in enumerate(zip(out["top1"], base_entry["top1"]))
                                               if a != b]
    assert out["max_abs_logit"] < 50, (spec_name, case["name"], "logits not O(1)")
    assert out["greedy"]["output_ids"] != base_entry["greedy_output_ids"], (spec_name, case["name"],
                                                                            "adapter does not change greedy ids")
    if model.dtype == torch.bfloat16:  # an exact bf16 tie makes top-1 a coin flip: pick another seed
        assert out["min_top1_top2_gap"] > 0 and out["greedy"]["step_min_top1_top2_gap"] > 0, (spec_name, case["name"])
    return out


@torch.no_grad()
def merge_goldens(spec: dict, models: Path, adapter_dir: Path, inputs: Inputs, text_case: dict,
                  unmerged_logits: torch.Tensor, goldens: Path, rel: str, rel_dir: str) -> dict:
    """merge_and_unload(): every tensor that differs from the base, by HF name. A tensor that is bit-identical to
    one in the adapter file (the modules_to_save lm_head copy) is not stored twice: its entry names that key."""
    base_sd = load_model(models / spec["base"]).state_dict()
    merged = load_adapter_model(models, spec, adapter_dir).merge_and_unload()
    sd = merged.state_dict()
    assert set(sd) == set(base_sd), set(sd) ^ set(base_sd)
    changed = {k: v.contiguous() for k, v in sorted(sd.items()) if not torch.equal(v, base_sd[k])}
    assert changed and all(v.dtype == base_sd[k].dtype for k, v in changed.items())
    merged_file = f"{rel_dir}/merged_changed.safetensors"
    tensors, to_write = {}, {}
    with safe_open(adapter_dir / "adapter_model.safetensors", "pt") as f:
        for k, v in changed.items():
            key = PREFIX + k
            if key in f.keys() and f.get_tensor(key).dtype == v.dtype and torch.equal(f.get_tensor(key), v):
                tensors[k] = {"shape": list(v.shape), "file": f"{rel_dir}/adapter_model.safetensors", "key": key}
            else:
                tensors[k] = {"shape": list(v.shape), "file": merged_file}
                to_write[k] = v
    save_file(to_write, str(adapter_dir / "merged_changed.safetensors"), metadata={"format": "pt"})
    logits = prefill(merged, inputs, text_case).float()
    fn = f"{spec['name']}.text.merged.logits.bin"
    return {"dtype": dtype_name(next(iter(changed.values())).dtype),
            "changed_tensors": tensors,
            "unchanged": "every other tensor of the base checkpoint, bit for bit",
            "text_logits": {"file": f"{rel}/{fn}", "shape": write_bin(goldens / fn, logits)},
            "text_logits_max_abs_diff_vs_unmerged": float((logits - unmerged_logits).abs().max()),
            "text_top1": torch.argmax(logits, dim=-1).tolist()}


def adapter_goldens(spec: dict, fixtures: Path, out: Path, inputs: Inputs, bases: BaseGoldens) -> dict:
    models, goldens = fixtures / "models", out / "goldens"
    rel_root = out.name  # paths in index.json are relative to the fixtures root: "lora/..."
    rel_goldens, rel_dir = f"{rel_root}/goldens", f"{rel_root}/{spec['name']}"
    adapter_dir = out / spec["name"]
    model = load_adapter_model(models, spec, adapter_dir)
    entry = {"name": spec["name"], "base": spec["base"], "base_dtype": dtype_name(model.base_model.model.dtype),
             "dir": rel_dir}
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    entry["peft_config"] = {k: cfg[k] for k in CONFIG_KEYS}
    entry["files"] = check_loaded(model, adapter_dir)
    entry["modules"] = module_table(model)
    assert entry["modules"], spec["name"]
    cases = [inputs.text(spec["base"])]
    if spec.get("image"):
        cases.append(inputs.image(spec["base"], model))
    entry["cases"] = [run_case(model, spec["name"], spec["base"], c, inputs, bases, goldens, rel_goldens)
                      for c in cases]
    if spec.get("merge"):
        unmerged = read_bin(out.parent / entry["cases"][0]["logits"]["file"], entry["cases"][0]["logits"]["shape"])
        entry["merge"] = merge_goldens(spec, models, adapter_dir, inputs, cases[0], unmerged, goldens, rel_goldens,
                                       rel_dir)
    else:
        entry["merge"] = None
    return entry


@torch.no_grad()
def combination_goldens(name: str, parts: list[tuple[str, float]], fixtures: Path, out: Path, inputs: Inputs,
                        bases: BaseGoldens) -> dict:
    """Several adapters active at once: LoraModel.set_adapter([...]) (each LoraLayer adds its active adapters one
    after another, in list order), with LoraLayer.set_scale(adapter, w) => scaling = w * alpha / r."""
    specs = {s["name"]: s for s in ADAPTERS}
    ckpt = specs[parts[0][0]]["base"]
    assert all(specs[a]["base"] == ckpt for a, _ in parts)
    model = PeftModel.from_pretrained(load_model(fixtures / "models" / ckpt), out / parts[0][0],
                                      adapter_name=parts[0][0])
    for adapter, _ in parts[1:]:
        model.load_adapter(out / adapter, adapter_name=adapter)
    model.base_model.set_adapter([a for a, _ in parts], inference_mode=True)
    for _, layer in lora_layers(model):
        for adapter, w in parts:
            layer.set_scale(adapter, w)
    model.eval()
    case = inputs.text(ckpt)
    entry = {"name": name, "base": ckpt, "adapters": [{"name": a, "scale": w} for a, w in parts],
             "api": "PeftModel.from_pretrained(base, dir_0, adapter_name=name_0); load_adapter(dir_i, "
                    "adapter_name=name_i); base_model.set_adapter([names]); LoraLayer.set_scale(name, scale) on "
                    "every LoRA layer (scaling = scale * lora_alpha / r)"}
    entry["case"] = run_case(model, "combo." + name, ckpt, case, inputs, bases, out / "goldens", f"{out.name}/goldens")
    # The same sum through PEFT's weighted combination: add_weighted_adapter(combination_type="cat") builds one
    # adapter with A = cat(w_i * s_i * A_i), B = cat(B_i), alpha = r = sum r_i (scaling 1); with one adapter PEFT
    # switches to "linear": A = sqrt(w s) A, B = sqrt(w s) B. It reads the layers' current scaling, so the
    # set_scale factors are undone first.
    logits = read_bin(out.parent / entry["case"]["logits"]["file"], entry["case"]["logits"]["shape"])
    for _, layer in lora_layers(model):
        for adapter, _ in parts:
            layer.set_scale(adapter, 1.0)
    model.base_model.add_weighted_adapter([a for a, _ in parts], [w for _, w in parts], "weighted",
                                          combination_type="cat")
    model.base_model.set_adapter("weighted", inference_mode=True)
    weighted = prefill(model, inputs, case).float()
    entry["add_weighted_adapter_cat_max_abs_diff"] = float((weighted - logits).abs().max())
    assert entry["add_weighted_adapter_cat_max_abs_diff"] < 1e-4, entry["add_weighted_adapter_cat_max_abs_diff"]
    return entry


def print_summary(entry: dict) -> None:
    for c in entry.get("cases", [entry.get("case")]):
        print(f"[{entry['name']}] {c['name']}: max|logit| {c['max_abs_logit']:.3f}, vs base "
              f"{c['max_abs_diff_vs_base']:.3f}, top-1 changed at {len(c['positions_top1_differs_from_base'])} "
              f"positions; greedy {c['greedy']['output_ids'][:6]}... (base {c['base']['greedy_output_ids'][:6]}...), "
              f"min step gap {c['greedy']['step_min_top1_top2_gap']:.4g}")
    if entry.get("merge"):
        print(f"[{entry['name']}] merge: {len(entry['merge']['changed_tensors'])} tensors changed, logits vs unmerged "
              f"{entry['merge']['text_logits_max_abs_diff_vs_unmerged']:.3g}")
    if "add_weighted_adapter_cat_max_abs_diff" in entry:
        print(f"[{entry['name']}] add_weighted_adapter vs set_adapter: "
              f"{entry['add_weighted_adapter_cat_max_abs_diff']:.3g}")


def build_index(adapters: list[dict], combos: list[dict]) -> dict:
    return {
        "bin_format": "raw little-endian float32, C order; bf16 logits widened exactly",
        "paths": "relative to tests/fixtures",
        "reference": {"peft": peft.__version__, "transformers": transformers.__version__,
                      "torch": torch.__version__.split("+")[0], "device": "cpu", "attn_implementation": "eager",
                      "threads": 1, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "load": "PeftModel.from_pretrained(base, dir), autocast_adapter_dtype=True, eval; logits from "
                              "forward(use_cache=False), position_ids None"},
        "greedy": f"generate(do_sample=False, max_new_tokens={MAX_NEW_TOKENS}) with the checkpoint's "
                  "generation_config: eos honoured (stopped_on_eos says whether it stopped)",
        "numerics": "see the docstring of scripts/reference/make_lora_goldens.py",
        "adapters": adapters,
        "combinations": combos,
        "skipped": SKIPPED,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", type=Path, default=FIXTURES, help="tests/fixtures (models/, goldens/, multimodal/)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default FIXTURES/lora)")
    args = ap.parse_args()
    out = (args.out or args.fixtures / "lora").resolve()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if out.exists():
        shutil.rmtree(out)
    (out / "goldens").mkdir(parents=True)
    inputs = Inputs(args.fixtures)
    bases = BaseGoldens(args.fixtures)
    for spec in ADAPTERS:
        make_adapter(spec, args.fixtures / "models", out / spec["name"])
    adapters = [adapter_goldens(spec, args.fixtures, out, inputs, bases) for spec in ADAPTERS]
    combos = [combination_goldens(n, p, args.fixtures, out, inputs, bases) for n, p in COMBINATIONS]
    for entry in adapters + combos:
        print_summary(entry)
    (out / "index.json").write_text(to_json(build_index(adapters, combos)) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
