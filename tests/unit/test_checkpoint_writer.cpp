// Checkpoint writers (train/checkpoint_writer.h): a PEFT adapter we write loads back through the engine's adapter
// loader with every tensor bit-identical to the masters and gives the trainer's logits; a full checkpoint we write
// loads with load_model and gives the trainer's logits; ties, shards, dtypes and refusals.
//
// With QWEN3VL_TRAINED_OUTPUT_DIR set, each round trip also leaves CASE/{adapter,model}, CASE/input_ids.bin (int32
// [n]) and CASE/logits.bin (float32 [n, vocab], the trainer's) there for scripts/reference/check_trained_outputs.py,
// which loads them in PEFT / transformers and compares the logits.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/adapters.h"
#include "engine/loaded_model.h"
#include "engine/quantize.h"
#include "io/adapter_config.h"
#include "model/model_trainer.h"
#include "test_util.h"
#include "train/checkpoint_writer.h"
#include "train/parameters.h"

namespace qwen3vl {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<LoadedModel> load(const std::string& dir) {
  LoadOptions options;
  options.require_tokenizer = false;
  options.threads = 1;
  return load_model(dir, options);
}

ModuleSelection select(const LoadedModel& model, const TuneFlags& tune, const LoraSpec& lora) {
  return select_modules(model.config, model.text_weights, model.vision_weights, tune, lora);
}

LoraSpec all_linear(bool dora = false) {
  LoraSpec lora;
  lora.target_modules = {"all-linear"};
  lora.r = 4;
  lora.alpha = 8.0;
  lora.use_dora = dora;
  return lora;
}

TuneFlags tune_all() {
  TuneFlags tune;
  tune.tune_mm_llm = tune.tune_mm_mlp = tune.tune_mm_vision = true;
  return tune;
}

// A deterministic step away from the initial masters (LoRA B starts at zero, where an adapter changes nothing).
void perturb(ParameterSet& params, float amplitude) {
  uint64_t state = 0x9e3779b97f4a7c15ull;
  float* values = params.values();
  for (int64_t i = 0; i < params.numel(); ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const float u = static_cast<float>(state >> 40) * 0x1.0p-24f;  // [0, 1)
    values[i] += amplitude * (2.f * u - 1.f);
  }
  params.refresh();
}

// A text-only sample of n tokens below the vision special ids.
TrainInputs text_sample(const ModelConfig& config, int64_t n) {
  TrainInputs in;
  const int64_t vocab = std::min<int64_t>(config.vision_start_token_id, config.text_config.vocab_size);
  for (int64_t i = 0; i < n; ++i) in.input_ids.push_back(static_cast<int32_t>((i * 7919 + 13) % vocab));
  in.labels = in.input_ids;
  in.positions = text_positions(0, n);
  in.cu_seqlens = {0, n};
  return in;
}

std::vector<float> logits_of(const ModelConfig& config, const TextWeights& text, const VisionWeights* vision,
                             const TrainInputs& inputs) {
  std::vector<float> logits;
  ModelTrainer(config, text, vision, ops::Context{}).forward(inputs, &logits);
  return logits;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0.f;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

// Where a case writes its outputs: QWEN3VL_TRAINED_OUTPUT_DIR/CASE (kept), else a temporary folder.
class CaseDir {
 public:
  explicit CaseDir(const std::string& name) {
    const char* root = std::getenv("QWEN3VL_TRAINED_OUTPUT_DIR");
    path_ = root && *root ? std::string(root) + "/" + name : temp_.path() + "/" + name;
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  const std::string& path() const { return path_; }

  // The trainer's logits and the ids they are for, for check_trained_outputs.py.
  void save_logits(const TrainInputs& inputs, const std::vector<float>& logits) const {
    std::ofstream(path_ + "/input_ids.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(inputs.input_ids.data()),
               static_cast<std::streamsize>(inputs.input_ids.size() * sizeof(int32_t)));
    std::ofstream(path_ + "/logits.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * 4));
  }

 private:
  testing::TempDir temp_;
  std::string path_;
};

// Every LoRA master against the factors the engine's loader read back, bit for bit; modules_to_save likewise.
void expect_adapter_holds_masters(const LoraAdapter& adapter, const ParameterSet& params) {
  const std::string prefix = "base_model.model.";
  size_t checked = 0;
  for (const LoraModule& m : adapter.modules()) {
    for (const auto& [suffix, values] : {std::make_pair(".lora_A.weight", &m.lora_A),
                                         std::make_pair(".lora_B.weight", &m.lora_B),
                                         std::make_pair(".lora_magnitude_vector", &m.magnitude)}) {
      const Parameter* p = params.find(prefix + m.path + suffix);
      if (values->empty() && !p) continue;  // no DoRA
      ASSERT_NE(p, nullptr) << m.path << suffix;
      ASSERT_EQ(values->size(), static_cast<size_t>(p->numel)) << p->name;
      EXPECT_EQ(std::memcmp(values->data(), p->value, values->size() * 4), 0) << p->name;
      ++checked;
    }
  }
  for (const auto& [name, view] : adapter.saved_tensors()) {
    // A tied lm_head is saved as a copy of the embeddings (ensure_weight_tying).
    const bool tied_head = name == "lm_head.weight" && !params.find(name);
    const Parameter* p = params.find(tied_head ? "model.language_model.embed_tokens.weight" : name);
    ASSERT_NE(p, nullptr) << name;
    const std::vector<float> values = tensor_floats(view);
    ASSERT_EQ(values.size(), static_cast<size_t>(p->numel)) << name;
    EXPECT_EQ(std::memcmp(values.data(), p->value, values.size() * 4), 0) << name;
    checked += tied_head ? 0 : 1;
  }
  EXPECT_EQ(checked, params.parameters().size());
}

// Writes the adapter of `params`, loads it with the engine and compares tensors and logits.
void adapter_round_trip(const LoadedModel& model, ParameterSet& params, const std::string& case_name) {
  perturb(params, 0.05f);
  const CaseDir out(case_name);
  const std::string dir = out.path() + "/adapter";
  write_peft_adapter(dir, params, model.config, fs::path(model.dir).filename().string());
  EXPECT_FALSE(fs::exists(dir + "/.adapter_model.safetensors.tmp-" + std::to_string(::getpid())));

  const auto adapter = load_adapter(model, dir);
  EXPECT_EQ(adapter->modules().size(), params.selection().lora_targets.size());
  expect_adapter_holds_masters(*adapter, params);
  const AdapterConfig config = read_adapter_config(dir);
  EXPECT_EQ(config.r, 4);
  EXPECT_EQ(config.lora_alpha, 8.0);
  EXPECT_EQ(config.use_dora, params.selection().lora.use_dora);
  EXPECT_EQ(config.modules_to_save, params.selection().modules_to_save);  // sorted = model order here

  const TrainInputs inputs = text_sample(model.config, 24);
  const std::vector<float> trained = logits_of(model.config, params.text_weights(), &params.vision_weights(), inputs);
  const auto bound = bind_adapters(model, {{adapter, 1.0}});
  const std::vector<float> loaded = logits_of(model.config, bound->text(), bound->vision(), inputs);
  const std::vector<float> base = logits_of(model.config, model.text_weights, &model.vision_weights, inputs);
  EXPECT_GT(max_abs_diff(trained, base), 1e-3f) << "the perturbed adapter must change the logits";
  EXPECT_LE(max_abs_diff(trained, loaded), 1e-5f);
  std::printf("[ %s ] adapter logits: max |trained - loaded| = %.3g\n", case_name.c_str(),
              max_abs_diff(trained, loaded));
  out.save_logits(inputs, trained);
}

TEST(CheckpointWriter, LoraAdapterRoundTripUntied) {
  const auto model = load(testing::model_fixture("tiny-fp32-untied-sharded"));
  ParameterSet params(*model, select(*model, {}, all_linear()), LoraInit{7, ""});
  adapter_round_trip(*model, params, "lora-untied");
}

TEST(CheckpointWriter, LoraAdapterRoundTripTied) {
  const auto model = load(testing::model_fixture("tiny-fp32-tied"));
  ParameterSet params(*model, select(*model, {}, all_linear()), LoraInit{7, ""});
  adapter_round_trip(*model, params, "lora-tied");
}

TEST(CheckpointWriter, DoraAdapterRoundTrip) {
  const auto model = load(testing::model_fixture("tiny-fp32-untied-sharded"));
  ParameterSet params(*model, select(*model, {}, all_linear(/*dora=*/true)), LoraInit{7, ""});
  adapter_round_trip(*model, params, "dora-untied");
}

// LoRA on the language model with the merger and lm_head trained fully: PEFT's modules_to_save tensors.
TEST(CheckpointWriter, MixedAdapterSavesFullModules) {
  const auto model = load(testing::model_fixture("tiny-fp32-untied-sharded"));
  TuneFlags tune;
  tune.tune_mm_mlp = true;
  ParameterSet params(*model, select(*model, tune, all_linear()), LoraInit{7, ""});
  ASSERT_EQ(params.selection().modules_to_save, std::vector<std::string>{"model.visual.merger"});
  adapter_round_trip(*model, params, "mixed-merger-untied");
}

// The language model trained fully on a tied checkpoint, LoRA on the vision tower: embed_tokens (and with it the
// tied lm_head) saved whole, ensure_weight_tying set so that PEFT ties lm_head's copy to it.
TEST(CheckpointWriter, MixedAdapterTiedEmbeddings) {
  const auto model = load(testing::model_fixture("tiny-fp32-tied"));
  TuneFlags tune;
  tune.tune_mm_llm = true;
  ParameterSet params(*model, select(*model, tune, all_linear()), LoraInit{7, ""});
  ASSERT_EQ(params.selection().modules_to_save.front(), "model.language_model.embed_tokens");
  EXPECT_TRUE(nlohmann::json::parse(peft_adapter_config_json(params.selection(), model->config, ""))
                  ["ensure_weight_tying"].get<bool>());
  adapter_round_trip(*model, params, "mixed-llm-tied");
}

TEST(CheckpointWriter, AdapterConfigHasPeftFields) {
  const auto model = load(testing::model_fixture("tiny-fp32-untied-sharded"));
  LoraSpec lora = all_linear();
  lora.alpha = 16.0;
  lora.dropout = 0.05;
  lora.rank_pattern = {{"q_proj", 8}};
  lora.alpha_pattern = {{"v_proj", 2.5}};
  const ModuleSelection selection = select(*model, {}, lora);
  const nlohmann::json config = nlohmann::json::parse(peft_adapter_config_json(selection, model->config, "base"));
  EXPECT_EQ(config.size(), 41u);  // LoraConfig 0.21.2's fields
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["task_type"], "CAUSAL_LM");
  EXPECT_EQ(config["peft_version"], "0.21.2");
  EXPECT_TRUE(config["lora_alpha"].is_number_integer());  // json.dumps writes the int 16 as "16"
  EXPECT_EQ(config["lora_alpha"], 16);
  EXPECT_DOUBLE_EQ(config["lora_dropout"].get<double>(), 0.05);
  EXPECT_EQ(config["rank_pattern"], nlohmann::json({{"q_proj", 8}}));
  EXPECT_EQ(config["alpha_pattern"], nlohmann::json({{"v_proj", 2.5}}));
  EXPECT_EQ(config["base_model_name_or_path"], "base");
  EXPECT_TRUE(config["modules_to_save"].is_null());
  std::vector<std::string> targets = selection.saved_target_modules;
  std::sort(targets.begin(), targets.end());
  EXPECT_EQ(config["target_modules"].get<std::vector<std::string>>(), targets);
  EXPECT_EQ(config["ensure_weight_tying"], false);
}

// A full run: the written checkpoint loads and gives the trainer's logits; shards as asked, stale ones removed.
TEST(CheckpointWriter, FullCheckpointRoundTripSharded) {
  const auto model = load(testing::model_fixture("tiny-fp32-untied-sharded"));
  ParameterSet params(*model, select(*model, tune_all(), {}));
  perturb(params, 0.01f);
  const CaseDir out("full-untied");
  const std::string dir = out.path() + "/model";
  write_hf_checkpoint(dir, *model, params);  // the default limit: one file
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(dir + "/config.json"));
  EXPECT_TRUE(fs::exists(dir + "/generation_config.json"));
  // Saved again into the same folder in shards: the single file of the first save goes.
  HfCheckpointOptions small;
  small.max_shard_bytes = 600'000;  // the model has 2.2 MB of float32
  write_hf_checkpoint(dir, *model, params, small);
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  ASSERT_TRUE(fs::exists(dir + "/model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(dir + "/model-00004-of-00004.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/model-00005-of-00005.safetensors"));

  const TrainInputs inputs = text_sample(model->config, 24);
  const std::vector<float> trained = logits_of(model->config, params.text_weights(), &params.vision_weights(), inputs);
  const auto written = load(dir);
  EXPECT_EQ(written->tensors.names(), model->tensors.names());
  const std::vector<float> loaded = logits_of(written->config, written->text_weights, &written->vision_weights, inputs);
  EXPECT_EQ(max_abs_diff(trained, loaded), 0.f);  // fp32 masters written as fp32: the same weights
  // Fewer, larger shards: the four of the last save go.
  small.max_shard_bytes = 1'200'000;
  write_hf_checkpoint(dir, *model, params, small);
  EXPECT_FALSE(fs::exists(dir + "/model-00001-of-00004.safetensors"));
  EXPECT_EQ(load(dir)->tensors.names(), model->tensors.names());
  out.save_logits(inputs, trained);
}

TEST(CheckpointWriter, FullCheckpointKeepsTiedHead) {
  const auto model = load(testing::model_fixture("tiny-fp32-tied"));
  ASSERT_TRUE(model->config.tie_word_embeddings);
  ParameterSet params(*model, select(*model, tune_all(), {}));
  perturb(params, 0.01f);
  const CaseDir out("full-tied");
  const std::string dir = out.path() + "/model";
  write_hf_checkpoint(dir, *model, params);
  const SafetensorsFile file(dir + "/model.safetensors");
  EXPECT_EQ(file.tensors().count("lm_head.weight"), 0u);
  EXPECT_EQ(file.tensors().size(), model->tensors.names().size());
  const auto written = load(dir);
  EXPECT_TRUE(written->text_weights.lm_head_tied);
  const TrainInputs inputs = text_sample(model->config, 24);
  const std::vector<float> trained = logits_of(model->config, params.text_weights(), &params.vision_weights(), inputs);
  EXPECT_EQ(max_abs_diff(trained, logits_of(written->config, written->text_weights, &written->vision_weights, inputs)),
            0.f);
  out.save_logits(inputs, trained);
}

// MoE: the router and the fused experts written back in the file's layout ([E, in, out]), not transformers' own.
TEST(CheckpointWriter, FullCheckpointMoe) {
  const auto model = load(testing::model_fixture("tiny-moe-fp32"));
  ParameterSet params(*model, select(*model, tune_all(), {}));
  perturb(params, 0.01f);
  const CaseDir out("full-moe");
  const std::string dir = out.path() + "/model";
  write_hf_checkpoint(dir, *model, params);
  const auto written = load(dir);
  const TrainInputs inputs = text_sample(model->config, 24);
  const std::vector<float> trained = logits_of(model->config, params.text_weights(), &params.vision_weights(), inputs);
  EXPECT_EQ(max_abs_diff(trained, logits_of(written->config, written->text_weights, &written->vision_weights, inputs)),
            0.f);
  out.save_logits(inputs, trained);
}

// A bf16 checkpoint with only the merger trained: masters rounded to nearest even, frozen tensors byte for byte.
TEST(CheckpointWriter, Bf16CheckpointRoundsMastersAndKeepsFrozenBytes) {
  const auto model = load(testing::model_fixture("tiny-bf16-untied"));
  TuneFlags tune;
  tune.tune_mm_mlp = true;
  ParameterSet params(*model, select(*model, tune, {}));
  perturb(params, 0.01f);
  testing::TempDir out;
  write_hf_checkpoint(out.path(), *model, params);
  const TensorStore written = TensorStore::open_dir(out.path());
  size_t trained = 0;
  for (const std::string& name : model->tensors.names()) {
    const TensorView& before = model->tensors.get(name);
    const TensorView& after = written.get(name);
    ASSERT_EQ(after.dtype, before.dtype) << name;
    ASSERT_EQ(after.bytes, before.bytes) << name;
    const Parameter* p = params.find(name);
    if (!p) {
      EXPECT_EQ(std::memcmp(after.data, before.data, before.bytes), 0) << name;
      continue;
    }
    ++trained;
    ASSERT_EQ(before.dtype, DType::BF16) << name;
    for (int64_t i = 0; i < p->numel; ++i) {
      uint16_t bits;
      std::memcpy(&bits, after.data + 2 * i, 2);
      ASSERT_EQ(bits, f32_to_bf16(p->value[i])) << name << "[" << i << "]";
    }
  }
  EXPECT_EQ(trained, params.parameters().size());
}

TEST(CheckpointWriter, RefusesWhatItCannotWrite) {
  const auto model = load(testing::model_fixture("tiny-fp32-untied-sharded"));
  testing::TempDir out;
  ParameterSet lora(*model, select(*model, {}, all_linear()), LoraInit{7, ""});
  EXPECT_THROW(write_hf_checkpoint(out.file("model"), *model, lora), Error);
  ParameterSet full(*model, select(*model, tune_all(), {}));
  EXPECT_THROW(write_peft_adapter(out.file("adapter"), full, model->config, ""), Error);
  EXPECT_FALSE(fs::exists(out.file("adapter")));
  try {
    write_hf_checkpoint(model->dir, *model, full);
    ADD_FAILURE() << "wrote over the base checkpoint";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("base checkpoint"), std::string::npos) << e.what();
  }
}

TEST(CheckpointWriter, RefusesQuantizedCheckpoint) {
  testing::TempDir tmp;
  QuantizeOptions options;
  options.threads = 1;
  quantize_checkpoint(testing::model_fixture("tiny-fp32-untied-sharded"), tmp.file("q8"), options);
  const auto model = load(tmp.file("q8"));
  TuneFlags tune;
  tune.tune_mm_mlp = true;  // the tower stays float32: the merger can train
  ParameterSet params(*model, select(*model, tune, {}));
  try {
    write_hf_checkpoint(tmp.file("out"), *model, params);
    ADD_FAILURE() << "wrote a quantized checkpoint";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("quantized"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qwen3vl
