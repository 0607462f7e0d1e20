// Resumable checkpoint folders, what `qwen3vl finetune --resume` reads: train_state.json, run.json and
// train_state.safetensors (the input's three parts around its first two 0 bytes; the binary file last, so it keeps
// its zeros). run.json is checked against a fixed run's fingerprint, and the state is loaded into a Trainer over
// LoRA (r 2, q_proj and v_proj) on tests/fixtures/models/tiny-fp32-tied, rebuilt per input since loading overwrites
// the masters. A state that loads saves and loads back to the same masters, and one optimizer step on a short
// text-only batch then gives a finite loss when the loaded masters are finite and moderate.
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "engine/loaded_model.h"
#include "fuzz_common.h"
#include "model/mrope.h"
#include "train/communicator.h"
#include "train/finetune.h"
#include "train/trainer.h"

namespace {

using namespace qwen3vl;
using fuzz::check;

struct Fixture {
  std::unique_ptr<LoadedModel> model = [] {
    LoadOptions options;
    options.require_tokenizer = false;
    options.threads = 1;
    return load_model(QWEN3VL_FIXTURES_DIR "/models/tiny-fp32-tied", options);
  }();
  ModuleSelection selection = [this] {
    LoraSpec lora;
    lora.target_modules = {"q_proj", "v_proj"};
    lora.r = 2;
    lora.alpha = 4.0;
    return select_modules(model->config, model->text_weights, model->vision_weights, TuneFlags{}, lora);
  }();
  std::unique_ptr<Communicator> comm = make_local_communicator();
  TrainInputs batch = [] {
    TrainInputs inputs;
    inputs.input_ids = {5, 17, 300, 42, 9, 1000, 77, 3};
    inputs.labels = inputs.input_ids;
    inputs.labels.front() = -100;
    inputs.positions = text_positions(0, static_cast<int64_t>(inputs.input_ids.size()));
    inputs.cu_seqlens = {0, static_cast<int64_t>(inputs.input_ids.size())};
    return inputs;
  }();
  // What the run resuming the checkpoint would compare run.json with (finetune.cpp's run_fingerprint).
  nlohmann::json fingerprint = {{"units", 3},       {"samples", 3},
                                {"seed", 42},       {"shuffle", true},
                                {"world_size", 1},  {"gradient_accumulation_steps", 1},
                                {"total_steps", 10}};
};

TrainerOptions trainer_options() {
  TrainerOptions options;
  options.schedule.kind = LrScheduleKind::kLinear;
  options.schedule.total_steps = 10;
  return options;
}

// Masters whose forward cannot overflow in float on this model: the loss must then be finite.
bool moderate(const ParameterSet& params) {
  for (int64_t i = 0; i < params.numel(); ++i)
    if (!(std::fabs(params.values()[i]) <= 1.0f)) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fixture fixture;
  const std::vector<std::string> parts =
      fuzz::split_at_zeros(std::string_view(reinterpret_cast<const char*>(data), size), 3);
  fuzz::TempDir dir;
  dir.write("train_state.json", parts[0]);
  if (parts.size() > 1) dir.write("run.json", parts[1]);
  if (parts.size() > 2) dir.write("train_state.safetensors", parts[2]);
  try {
    check_resumable(dir.path(), fixture.fingerprint);
  } catch (const Error& error) {
    check(std::string(error.what()).rfind(dir.path() + "/run.json: ", 0) == 0, "a run.json error names the file");
  }

  ParameterSet params(*fixture.model, fixture.selection);
  Trainer trainer(fixture.model->config, params, ops::Context{}, trainer_options(), *fixture.comm);
  try {
    trainer.load_state(dir.path());
  } catch (const Error& error) {
    check(std::string(error.what()).rfind(dir.path() + "/train_state.", 0) == 0, "a state error names its file");
    return 0;
  }
  const int64_t step = trainer.global_step();
  check(step >= 0, "a loaded global step is not negative");

  // Saved and loaded back: the same masters and step.
  const std::vector<float> loaded(params.values(), params.values() + params.numel());
  fuzz::TempDir resaved;
  trainer.save_state(resaved.path());
  trainer.load_state(resaved.path());
  check(trainer.global_step() == step, "the step survives a save and load");
  check(std::memcmp(loaded.data(), params.values(), loaded.size() * sizeof(float)) == 0,
        "the masters survive a save and load");

  const bool finite_expected = moderate(params);
  const StepResult result = trainer.step({&fixture.batch});
  check(result.step == step + 1, "a step advances the global step by one");
  check(!finite_expected || std::isfinite(result.loss), "moderate masters give a finite loss");
  return 0;
}
