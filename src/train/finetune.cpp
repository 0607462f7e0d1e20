#include "train/finetune.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "core/timer.h"
#include "engine/loaded_model.h"
#include "train/checkpoint_writer.h"
#include "train/communicator.h"
#include "train/packing.h"

namespace qwen3vl {
namespace {

namespace fs = std::filesystem;

// Every sample of the run and how they group into micro-batches.
struct Dataset {
  std::vector<TrainSample> samples;
  std::vector<std::vector<size_t>> units;  // sample indices of each micro-batch, in dataset order
  int64_t skipped = 0;
};

// Builds every sample of `records`; a packed record stays together. Returns the sample groups per record.
std::vector<std::vector<size_t>> build_records(const SftDataset& data, const SampleBuilder& builder,
                                               const FinetuneOptions& o, Dataset& out,
                                               const std::function<void(const std::string&)>& progress) {
  std::vector<std::vector<size_t>> groups;
  for (const SftRecord& record : data.records) {
    std::vector<TrainSample> built;
    try {
      for (const SftItem& item : record.items) built.push_back(builder.build(item));
    } catch (const Error& error) {
      if (o.bad_samples == BadSamplePolicy::Stop) throw;
      ++out.skipped;
      progress(std::string("skipped ") + error.what());
      continue;
    }
    std::vector<size_t> group;
    for (TrainSample& sample : built) {
      group.push_back(out.samples.size());
      out.samples.push_back(std::move(sample));
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

// Per-device batches of batch_size records, or first-fit packs of records up to pack_length tokens.
std::vector<std::vector<size_t>> group_units(const std::vector<std::vector<size_t>>& records,
                                             const std::vector<TrainSample>& samples, const FinetuneOptions& o) {
  std::vector<std::vector<size_t>> plan;
  if (o.pack_length > 0) {
    std::vector<int64_t> lengths;
    for (const auto& record : records) {
      int64_t length = 0;
      for (size_t s : record) length += samples[s].size();
      lengths.push_back(length);
    }
    plan = plan_packs(lengths, o.pack_length, static_cast<size_t>(std::max<int64_t>(0, o.pack_window)));
  } else {
    for (size_t r = 0; r < records.size(); r += static_cast<size_t>(o.batch_size)) {
      std::vector<size_t> unit;
      for (size_t k = r; k < std::min(records.size(), r + static_cast<size_t>(o.batch_size)); ++k) unit.push_back(k);
      plan.push_back(std::move(unit));
    }
  }
  std::vector<std::vector<size_t>> units;
  for (const auto& members : plan) {
    std::vector<size_t> unit;
    for (size_t r : members) unit.insert(unit.end(), records[r].begin(), records[r].end());
    units.push_back(std::move(unit));
  }
  return units;
}

Dataset load_dataset(const LoadedModel& model, const FinetuneOptions& o,
                     const std::function<void(const std::string&)>& progress) {
  const SampleBuilder builder = SampleBuilder::for_model(model, o.samples);
  Dataset out;
  std::vector<std::vector<size_t>> records;
  for (const std::string& path : o.datasets) {
    const SftDataset data = read_sft_dataset(path, o.read, o.bad_samples);
    for (const std::string& line : data.skipped) progress("skipped " + line);
    out.skipped += static_cast<int64_t>(data.skipped.size());
    auto built = build_records(data, builder, o, out, progress);
    records.insert(records.end(), built.begin(), built.end());
    progress(path + ": " + std::to_string(data.records.size()) + " records");
  }
  if (records.empty()) throw_error("the datasets hold no usable sample");
  out.units = group_units(records, out.samples, o);
  return out;
}

// The concatenated row of a unit's samples (copied: the samples serve every epoch).
TrainInputs unit_inputs(const Dataset& data, const std::vector<size_t>& unit) {
  std::vector<TrainSample> copies;
  for (size_t s : unit) copies.push_back(data.samples[s]);
  TrainBatch batch = make_batch(std::move(copies));
  TrainInputs in;
  in.input_ids = std::move(batch.input_ids);
  in.labels = std::move(batch.labels);
  in.positions = std::move(batch.positions);
  in.cu_seqlens = std::move(batch.cu_seqlens);
  for (const ProcessedImage& image : batch.images) {
    in.image_grids.push_back(image.grid);
    in.pixel_values.insert(in.pixel_values.end(), image.pixel_values.begin(), image.pixel_values.end());
  }
  for (const ProcessedVideo& video : batch.videos) {
    in.video_grids.push_back(video.grid);
    in.pixel_values_videos.insert(in.pixel_values_videos.end(), video.pixel_values.begin(),
                                  video.pixel_values.end());
  }
  return in;
}

// Which unit stream entry g is: epoch g / units, shuffled per epoch by a generator seeded with seed + epoch (an
// explicit Fisher-Yates over mt19937_64, the same on every platform and rank).
class UnitStream {
 public:
  UnitStream(size_t units, uint64_t seed, bool shuffle) : units_(units), seed_(seed), shuffle_(shuffle) {}

  size_t unit_at(int64_t g) {
    const int64_t epoch = g / static_cast<int64_t>(units_);
    if (epoch != epoch_) {
      order_.resize(units_);
      for (size_t i = 0; i < units_; ++i) order_[i] = i;
      if (shuffle_) {
        std::mt19937_64 rng(seed_ + static_cast<uint64_t>(epoch));
        for (size_t i = units_ - 1; i > 0; --i) std::swap(order_[i], order_[rng() % (i + 1)]);
      }
      epoch_ = epoch;
    }
    return order_[static_cast<size_t>(g % static_cast<int64_t>(units_))];
  }

 private:
  size_t units_;
  uint64_t seed_;
  bool shuffle_;
  int64_t epoch_ = -1;
  std::vector<size_t> order_;
};

std::string duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char text[32];
  if (s >= 3600) std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(s / 3600),
                               static_cast<long long>(s / 60 % 60));
  else std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return text;
}

// What a checkpoint must agree on with the run resuming it.
nlohmann::json run_fingerprint(const FinetuneOptions& o, const Dataset& data, int world, int64_t total_steps) {
  return {{"units", data.units.size()},        {"samples", data.samples.size()},
          {"seed", o.seed},                     {"shuffle", o.shuffle},
          {"world_size", world},                {"gradient_accumulation_steps", o.trainer.gradient_accumulation_steps},
          {"total_steps", total_steps}};
}

void write_text(const std::string& path, const std::string& text) {
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw_error(partial, ": cannot write");
  }
  fs::rename(partial, path);
}

// The adapter (LoRA) or the Hugging Face checkpoint (full / mixed) of the current masters.
void write_outputs(const std::string& dir, const LoadedModel& model, const ParameterSet& params,
                   const FinetuneOptions& o) {
  fs::create_directories(dir);
  if (o.lora.enabled()) write_peft_adapter(dir, params, model.config, fs::absolute(o.model_dir).string());
  else write_hf_checkpoint(dir, model, params);
}

std::string latest_checkpoint(const std::string& output_dir) {
  std::string best;
  int64_t best_step = -1;
  if (fs::is_directory(output_dir))
    for (const auto& entry : fs::directory_iterator(output_dir)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("checkpoint-", 0) != 0 || !fs::exists(entry.path() / "run.json")) continue;
      const int64_t step = std::atoll(name.c_str() + 11);
      if (step > best_step) best_step = step, best = entry.path().string();
    }
  if (best.empty()) throw_error(output_dir, ": --resume latest found no checkpoint-<step> folder");
  return best;
}

}  // namespace

void check_resumable(const std::string& dir, const nlohmann::json& fingerprint) {
  std::ifstream in(dir + "/run.json");
  const nlohmann::json saved = nlohmann::json::parse(in, nullptr, false);
  if (saved.is_discarded()) throw_error(dir, "/run.json: missing or not JSON");
  // value() below throws nlohmann's type_error on anything but an object.
  if (!saved.is_object()) throw_error(dir, "/run.json: expected a JSON object");
  for (const auto& [key, value] : fingerprint.items())
    if (!saved.contains(key) || saved[key] != value)
      throw_error(dir, "/run.json: ", key, " was ", saved.value(key, nlohmann::json()).dump(), ", this run has ",
                  value.dump(), " (resume with the same data, seed, ranks and accumulation)");
}

void finetune(const FinetuneOptions& o, const std::function<void(const std::string&)>& report) {
  std::unique_ptr<Communicator> comm = make_communicator();
  const int rank = comm->rank(), world = comm->size();
  const auto progress = [&](const std::string& line) {
    if (rank == 0) report(line);
  };
  if (o.datasets.empty()) throw_error("no dataset given");
  if (o.output_dir.empty()) throw_error("no output folder given");
  if (o.batch_size < 1) throw_error("--batch-size must be at least 1, not ", o.batch_size);
  if (o.lora.dropout != 0.0) throw_error("--lora-dropout: only 0 is supported (dropout would need its own RNG stream)");

  LoadOptions load;
  load.threads = o.threads;
  load.weight_format = o.weight_format;
  load.chat_template_file = o.chat_template_file;
  progress("loading " + o.model_dir);
  const auto model = load_model(o.model_dir, load);
  Stopwatch clock;
  const Dataset data = load_dataset(*model, o, progress);
  const int64_t per_step = o.trainer.gradient_accumulation_steps * world;
  const int64_t units = static_cast<int64_t>(data.units.size());
  const int64_t total_steps =
      o.max_steps > 0 ? o.max_steps : static_cast<int64_t>(std::ceil(o.epochs * static_cast<double>(units) / per_step));
  if (total_steps < 1) throw_error("nothing to do: ", units, " micro-batches and ", o.epochs, " epochs");
  progress(std::to_string(data.samples.size()) + " samples (" + std::to_string(data.skipped) + " skipped) in " +
           std::to_string(units) + " micro-batches, built in " + duration(clock.seconds()) + "; " +
           std::to_string(total_steps) + " steps of " + std::to_string(per_step) + " micro-batches on " +
           std::to_string(world) + " rank(s)");

  TrainerOptions options = o.trainer;
  options.schedule.kind = o.lr_scheduler;
  options.schedule.total_steps = total_steps;
  options.schedule.warmup_steps = warmup_steps_for(o.warmup, total_steps);
  LoraInit init;
  init.seed = o.seed;
  ParameterSet params(*model, select_modules(model->config, model->text_weights, model->vision_weights, o.tune, o.lora),
                      init);
  if (o.lora.enabled())
    for (const Parameter& p : params.parameters())
      if (p.name.find(".mlp.experts.") != std::string::npos)
        throw_error("--tune-mm-llm with LoRA on an MoE checkpoint: fully trained fused experts (", p.name,
                    ") cannot be saved in a PEFT adapter that `run --lora` reads; train the experts without LoRA");
  Trainer trainer(model->config, params, ops::Context{model->pool.get(), nullptr}, options, *comm);
  progress(std::to_string(params.numel()) + " trainable values in " + std::to_string(params.parameters().size()) +
           " tensors");

  const nlohmann::json fingerprint = run_fingerprint(o, data, world, total_steps);
  if (!o.resume.empty()) {
    const std::string dir = o.resume == "latest" ? latest_checkpoint(o.output_dir) : o.resume;
    check_resumable(dir, fingerprint);
    trainer.load_state(dir);
    progress("resumed from " + dir + " at step " + std::to_string(trainer.global_step()));
  }
  if (rank == 0) fs::create_directories(o.output_dir);
  std::ofstream log;
  // A resumed run continues its log; a new one starts it afresh.
  if (rank == 0)
    log.open(o.output_dir + "/train_log.jsonl", o.resume.empty() ? std::ios::trunc : std::ios::app);

  UnitStream stream(data.units.size(), o.seed, o.shuffle);
  Stopwatch run_clock;
  int64_t run_tokens = 0;
  const int64_t first_step = trainer.global_step();
  while (trainer.global_step() < total_steps) {
    std::vector<TrainInputs> micro;
    for (int64_t a = 0; a < o.trainer.gradient_accumulation_steps; ++a) {
      const int64_t g = trainer.global_step() * per_step + rank * o.trainer.gradient_accumulation_steps + a;
      micro.push_back(unit_inputs(data, data.units[stream.unit_at(g)]));
    }
    std::vector<const TrainInputs*> pointers;
    for (const TrainInputs& m : micro) pointers.push_back(&m);
    const StepResult r = trainer.step(pointers);
    run_tokens += r.tokens;
    const double elapsed = run_clock.seconds();
    const double tokens_per_s = run_tokens / std::max(elapsed, 1e-9);
    const double eta = elapsed / static_cast<double>(r.step - first_step) * static_cast<double>(total_steps - r.step);
    char line[256];
    std::snprintf(line, sizeof line, "step %lld/%lld  loss %.4f  grad_norm %.4f  lr %.3e  %.0f tok/s  eta %s",
                  static_cast<long long>(r.step), static_cast<long long>(total_steps), r.loss,
                  static_cast<double>(r.grad_norm), r.lrs.empty() ? 0.0 : r.lrs[0], tokens_per_s,
                  duration(eta).c_str());
    progress(line);
    if (rank == 0) {
      log << nlohmann::json{{"step", r.step}, {"loss", r.loss}, {"grad_norm", r.grad_norm},
                            {"learning_rate", r.lrs.empty() ? 0.0 : r.lrs[0]}, {"lrs", r.lrs},
                            {"tokens", r.tokens}, {"supervised_tokens", r.supervised},
                            {"tokens_per_second", tokens_per_s}, {"elapsed_s", elapsed},
                            {"epoch", static_cast<double>(r.step * per_step) / static_cast<double>(units)}}
                 .dump()
          << "\n" << std::flush;
    }
    const bool last = r.step == total_steps;
    if (rank == 0 && o.save_steps > 0 && (r.step % o.save_steps == 0 || last)) {
      const std::string dir = o.output_dir + "/checkpoint-" + std::to_string(r.step);
      write_outputs(dir, *model, params, o);
      trainer.save_state(dir);
      write_text(dir + "/run.json", fingerprint.dump(1) + "\n");
      progress("saved " + dir);
    }
  }
  if (rank == 0) {
    write_outputs(o.output_dir, *model, params, o);
    progress("wrote " + o.output_dir + " after " + std::to_string(trainer.global_step()) + " steps in " +
             duration(run_clock.seconds()));
  }
  comm->barrier();
}

}  // namespace qwen3vl
