// What a fine-tuning run hands back: a PEFT adapter folder (LoRA, rsLoRA, DoRA runs, mixed runs with their fully
// trained parts as modules_to_save) that PEFT's PeftModel.from_pretrained and `qwen3vl run --lora` load, or a Hugging
// Face checkpoint folder (full and tune_mm_* runs) that transformers' from_pretrained loads.
//
// Both write into a directory that may exist already (the trainer's output folder, a checkpoint-N folder), each file
// through a temporary sibling renamed over its name, so a crash leaves every file old or new, never half written.
#pragma once

#include <cstdint>
#include <string>

#include "engine/loaded_model.h"
#include "io/model_config.h"
#include "train/parameters.h"

namespace qwen3vl {

// DIR/adapter_model.safetensors and DIR/adapter_config.json as PEFT 0.21.2's save_pretrained writes them
// (peft/utils/save_and_load.py get_peft_model_state_dict, peft/config.py save_pretrained):
//   "base_model.model.<module>.lora_A.weight" / ".lora_B.weight" (float32), DoRA ".lora_magnitude_vector" (no
//   ".weight": PEFT strips it on save), and every tensor of a modules_to_save module as "base_model.model.<HF name>"
//   in the checkpoint's dtype (ModulesToSaveWrapper keeps a copy of the module as loaded; masters are rounded to it);
//   metadata {"format": "pt"}. The tensors go first and the config last, so a folder with a config holds its
//   tensors. `config` says whether lm_head is tied to embed_tokens: when the embeddings train, PEFT's
//   ensure_weight_tying is set and lm_head.weight saved beside them as the same values, as PEFT saves its tied copy.
// Throws Error for a run without LoRA (a full checkpoint is write_hf_checkpoint's), for fully trained fused MoE
// experts (PEFT saves them in transformers' transposed in-memory layout, which `run --lora` does not read), and
// naming the file when it cannot be written.
void write_peft_adapter(const std::string& dir, const ParameterSet& params, const ModelConfig& config,
                        const std::string& base_model_name_or_path);

// adapter_config.json's text as PEFT's LoraConfig.save_pretrained writes it: every field of LoraConfig 0.21.2,
// json.dumps(indent=2, sort_keys=True) with no final newline; target_modules and modules_to_save sorted (PEFT writes
// its sets in hash order).
std::string peft_adapter_config_json(const ModuleSelection& selection, const ModelConfig& config,
                                     const std::string& base_model_name_or_path);

struct HfCheckpointOptions {
  // transformers 5.23 save_pretrained's default max_shard_size "50GB" (huggingface_hub parse_size_to_int: 10^9).
  uint64_t max_shard_bytes = 50'000'000'000ull;
};

// OUT_DIR as transformers' save_pretrained lays out a checkpoint: every tensor of `base`'s files under its checkpoint
// name and dtype (trained ones from the masters, rounded to nearest even for bf16 as torch's .to(torch.bfloat16);
// frozen ones byte for byte), in named_parameters() order, split into shards of at most max_shard_bytes
// (huggingface_hub split_state_dict_into_shards_factory: one file model.safetensors, or model-0000i-of-0000n with
// model.safetensors.index.json); a tied lm_head stays tied (not written). Every other file of base.dir (config.json,
// generation_config.json, tokenizer and processor files, the chat template) is copied; weight files of an earlier
// save that this one does not replace are removed, as save_pretrained does.
// Throws Error for a run with LoRA adapters (write_peft_adapter, then `qwen3vl merge-lora`), a checkpoint stored
// quantized (`qwen3vl quantize` output), OUT_DIR being base.dir, or a file that cannot be written.
void write_hf_checkpoint(const std::string& out_dir, const LoadedModel& base, const ParameterSet& params,
                         const HfCheckpointOptions& options = {});

}  // namespace qwen3vl
