// Fine-tuning datasets (train/sft_data.h), the files `qwen3vl finetune --data` reads, through to training batches.
// Input: [options byte][pack length byte][the dataset file's text]. Options bit 0: the text is data.json (one JSON
// list), else data.jsonl; bit 1: the AfterImStart label rule; bit 2: a 96-token length limit; bits 4..7: the packing
// window. The file sits beside three tiny media files (a.png, b.jpg and the 5-frame v.gif) and is read under both
// bad-sample policies; every item that parses is built into a sample with tiny-realtok-bf16's tokenizer, template
// and processors (one-merged-token image budgets, 2-frame videos), and the samples are batched and packed.
#include <map>
#include <optional>
#include <string>

#include "core/error.h"
#include "engine/chat_template_files.h"
#include "engine/loaded_model.h"
#include "fuzz_common.h"
#include "train/packing.h"
#include "train/sample_builder.h"

namespace {

using namespace qwen3vl;
using fuzz::check;

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// The checkpoint's tokenizer and configs (no weights: a sample needs none), loaded once.
struct Checkpoint {
  std::string dir = QWEN3VL_FIXTURES_DIR "/models/tiny-realtok-bf16";
  Tokenizer tokenizer = Tokenizer::from_file(dir + "/tokenizer.json");
  ModelConfig config = load_model_config(dir + "/config.json");
  ChatTemplateRenderer chat_template = load_chat_template(dir);
  ImageProcessorConfig image = load_image_processor_config(dir + "/preprocessor_config.json");
  VideoProcessorConfig video = load_video_processor_config(dir);
};

// The media files every input's folder holds, by the name a dataset uses.
const std::map<std::string, std::string>& media_files() {
  static const std::map<std::string, std::string> files = {
      {"a.png", fuzz::read_file(QWEN3VL_FIXTURES_DIR "/images/orient1_5x3.png")},
      {"b.jpg", fuzz::read_file(QWEN3VL_FIXTURES_DIR "/images/gray_64x48.jpg")},
      {"v.gif", fuzz::read_file(QWEN3VL_FIXTURES_DIR "/videos/odd5_2.5s.gif")},
  };
  return files;
}

SampleOptions sample_options(uint8_t flags) {
  SampleOptions options;
  options.budget.min_pixels = 32 * 32;  // one merged token per image
  options.budget.max_pixels = 2 * 32 * 32;
  options.budget.video_min_pixels = 2 * 32 * 32;
  options.budget.video_max_pixels = 2 * 32 * 32;
  options.budget.video_fps = 1.0;
  options.budget.video_min_frames = 2;
  options.budget.video_max_frames = 2;
  options.span_rule = flags & 2 ? AssistantSpanRule::AfterImStart : AssistantSpanRule::AnyAssistantToken;
  options.max_length = flags & 4 ? 96 : 0;
  return options;
}

// Reads the file under both policies: Stop fails on the first bad record exactly where Skip skips its first.
// Returns the Skip reading, or nothing when the whole file is unusable.
std::optional<SftDataset> read_both_ways(const std::string& path) {
  std::optional<SftDataset> stopped;
  std::string stop_error;
  try {
    stopped = read_sft_dataset(path, {}, BadSamplePolicy::Stop);
  } catch (const Error& error) {
    stop_error = error.what();
    check(starts_with(stop_error, path + ":"), "a dataset error starts with the file's path");
  }
  SftDataset skipping;
  try {
    skipping = read_sft_dataset(path, {}, BadSamplePolicy::Skip);
  } catch (const Error& error) {
    check(!stopped && stop_error == error.what(), "an error about the whole file is the same under both policies");
    return std::nullopt;
  }
  for (const std::string& skipped : skipping.skipped)
    check(starts_with(skipped, path + ":"), "a skipped record's error starts with the file's path");
  if (stopped) {
    check(skipping.skipped.empty() && skipping.records.size() == stopped->records.size(),
          "a file Stop reads whole loses nothing under Skip");
  } else {
    check(!skipping.skipped.empty() && skipping.skipped.front() == stop_error,
          "Skip skips first the record Stop failed on");
  }
  return skipping;
}

void check_sample(const TrainSample& sample, const SftItem& item, const SampleOptions& options) {
  check(sample.where == item.where(), "the sample names its item");
  check(sample.size() > 0 && sample.labels.size() == sample.input_ids.size(), "one label per input id");
  check(sample.positions.size() == sample.size(), "one position per input id");
  for (size_t i = 0; i < sample.labels.size(); ++i)
    check(sample.labels[i] == kIgnoreLabel || sample.labels[i] == sample.input_ids[i], "a label is -100 or its id");
  check(sample.supervised_tokens() > 0, "a built sample supervises a token");
  check(options.max_length == 0 || sample.size() <= options.max_length, "a sample within the length limit");
  check(sample.images.size() == item.images.size() && sample.videos.size() == item.videos.size(),
        "every media file of the item is in its sample");
}

// make_batch's row: the samples back to back, segment starts ignored, positions restarting.
void check_batch(const TrainBatch& batch, const std::vector<TrainSample>& samples) {
  check(batch.segments() == static_cast<int64_t>(samples.size()), "one segment per sample");
  check(batch.cu_seqlens.size() == samples.size() + 1 && batch.cu_seqlens.front() == 0 &&
            batch.cu_seqlens.back() == batch.size(),
        "cu_seqlens spans the row");
  check(batch.labels.size() == batch.input_ids.size() && batch.positions.size() == batch.size(),
        "one label and one position per input id");
  size_t images = 0, videos = 0;
  for (size_t s = 0; s < samples.size(); ++s) {
    const TrainSample& sample = samples[s];
    const int64_t begin = batch.cu_seqlens[s], end = batch.cu_seqlens[s + 1];
    check(end - begin == sample.size(), "a segment is its sample's length");
    check(batch.sources[s] == sample.where, "a segment names its sample");
    check(batch.labels[static_cast<size_t>(begin)] == kIgnoreLabel, "a segment's first label is ignored");
    for (int64_t i = begin; i < end; ++i) {
      const size_t row = static_cast<size_t>(i), own = static_cast<size_t>(i - begin);
      check(batch.input_ids[row] == sample.input_ids[own], "a segment holds its sample's ids");
      check(i == begin || batch.labels[row] == sample.labels[own], "a segment holds its sample's labels");
      check(batch.positions.t[row] == sample.positions.t[own] && batch.positions.h[row] == sample.positions.h[own] &&
                batch.positions.w[row] == sample.positions.w[own],
            "a segment keeps its sample's positions");
    }
    images += sample.images.size();
    videos += sample.videos.size();
  }
  check(batch.images.size() == images && batch.videos.size() == videos, "the batch holds every sample's media");
}

void check_packs(const std::vector<TrainBatch>& packs, const std::vector<TrainSample>& samples, int64_t pack_length) {
  std::map<std::string, int> seen;
  for (const TrainBatch& pack : packs) {
    check(pack.segments() == 1 || pack.size() <= pack_length, "a pack of several samples fits the pack length");
    for (const std::string& source : pack.sources) ++seen[source];
  }
  std::map<std::string, int> expected;
  for (const TrainSample& sample : samples) ++expected[sample.where];
  check(seen == expected, "every sample is in exactly one pack");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Checkpoint checkpoint;
  fuzz::InputReader input(data, size);
  const uint8_t flags = input.byte();
  const int64_t pack_length = 1 + 4 * static_cast<int64_t>(input.byte());
  const size_t window = flags >> 4;
  const std::string text = input.rest();

  fuzz::TempDir dir;
  for (const auto& [name, bytes] : media_files()) dir.write(name, bytes);
  const std::string path = dir.write(flags & 1 ? "data.json" : "data.jsonl", text);
  const std::optional<SftDataset> dataset = read_both_ways(path);
  if (!dataset) return 0;

  const SampleOptions options = sample_options(flags);
  const SampleBuilder builder(checkpoint.tokenizer, checkpoint.config, checkpoint.chat_template, checkpoint.image,
                              checkpoint.video, options);
  std::vector<TrainSample> samples;
  for (const SftRecord& record : dataset->records)
    for (const SftItem& item : record.items) {
      check(starts_with(item.where(), path + ":"), "an item's location starts with the file's path");
      for (const std::vector<std::string>* files : {&item.images, &item.videos})
        for (const std::string& file : *files)
          check(starts_with(file, dir.path() + "/") && file.find('\0') == std::string::npos,
                "a media path resolves inside the media root");
      try {
        samples.push_back(builder.build(item));
        check_sample(samples.back(), item, options);
      } catch (const Error& error) {
        check(starts_with(error.what(), item.where() + ": "), "a sample's error starts with its item's location");
      }
    }
  if (samples.empty()) return 0;
  check_batch(make_batch(samples), samples);
  check_packs(pack_samples(samples, pack_length, window), samples, pack_length);
  return 0;
}
