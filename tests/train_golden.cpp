#include "train_golden.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace qwen3vl {
namespace testing {
namespace {

nlohmann::json read_index(const std::string& dir) {
  const std::string path = dir + "/index.json";
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw_error(path, ": ", e.what());
  }
}

// A field of an index that must be there.
const nlohmann::json& field(const nlohmann::json& object, const std::string& key, const std::string& where) {
  if (!object.is_object() || !object.contains(key)) throw_error(where, ": no field \"", key, "\"");
  return object.at(key);
}

int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// A raw little-endian file described by {"file", "dtype", "shape"}; its size must match the shape.
template <typename T>
std::vector<T> read_raw(const std::string& dir, const nlohmann::json& entry, const char* dtype,
                        const std::string& where) {
  const std::string path = dir + "/" + field(entry, "file", where).get<std::string>();
  if (field(entry, "dtype", where).get<std::string>() != dtype) throw_error(path, ": dtype is not ", dtype);
  const int64_t count = product(field(entry, "shape", where).get<std::vector<int64_t>>());
  const std::string bytes = read_file(path);
  if (bytes.size() != static_cast<size_t>(count) * sizeof(T)) {
    throw_error(path, ": ", bytes.size(), " bytes, the shape needs ", count * static_cast<int64_t>(sizeof(T)));
  }
  std::vector<T> values(static_cast<size_t>(count));
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

std::vector<GridTHW> grids_of(const std::vector<int32_t>& flat, const std::string& where) {
  if (flat.size() % 3 != 0) throw_error(where, ": a grid list is not [n, 3]");
  std::vector<GridTHW> grids;
  for (size_t i = 0; i < flat.size(); i += 3) grids.push_back(GridTHW{flat[i], flat[i + 1], flat[i + 2]});
  return grids;
}

MropePositions positions_of(const std::vector<int32_t>& flat, size_t n, const std::string& where) {
  if (flat.size() != 3 * n) throw_error(where, ": position_ids is not [3, ", n, "]");
  MropePositions p;
  p.t.assign(flat.begin(), flat.begin() + static_cast<std::ptrdiff_t>(n));
  p.h.assign(flat.begin() + static_cast<std::ptrdiff_t>(n), flat.begin() + static_cast<std::ptrdiff_t>(2 * n));
  p.w.assign(flat.begin() + static_cast<std::ptrdiff_t>(2 * n), flat.end());
  return p;
}

std::string trajectory_dir() { return fixtures_dir() + "/train/trajectory"; }

}  // namespace

int64_t GoldenTensor::numel() const { return product(shape); }

std::map<std::string, GoldenTensor> read_golden_tensors(const std::string& safetensors_path) {
  const SafetensorsFile file(safetensors_path);
  std::map<std::string, GoldenTensor> out;
  for (const auto& [name, view] : file.tensors()) {
    if (view.dtype != DType::F32) throw_error(safetensors_path, ": tensor ", name, " is not float32");
    out[name] = GoldenTensor{view.shape, tensor_floats(view)};
  }
  return out;
}

int64_t TrainGoldenBatch::supervised_rows() const {
  int64_t n = 0;
  for (size_t t = 0; t + 1 < labels.size(); ++t) n += labels[t + 1] != -100;
  return n;
}

TrainGoldenBatch load_train_golden_batch() {
  TrainGoldenBatch b;
  b.dir = train_grads_dir() + "/batch";
  b.index = read_index(b.dir);
  const std::string where = b.dir + "/index.json";
  const nlohmann::json& files = field(b.index, "files", where);
  auto ints = [&](const char* key) { return read_raw<int32_t>(b.dir, field(files, key, where), "int32", where); };
  auto floats = [&](const char* key) { return read_raw<float>(b.dir, field(files, key, where), "float32", where); };
  b.input_ids = ints("input_ids");
  b.labels = ints("labels");
  if (b.labels.size() != b.input_ids.size()) throw_error(where, ": labels and input_ids differ in length");
  b.positions = positions_of(ints("position_ids"), b.input_ids.size(), where);
  for (int32_t v : ints("text_cu_seqlens")) b.text_cu_seqlens.push_back(v);
  b.pixel_values = floats("pixel_values");
  b.image_grids = grids_of(ints("image_grid_thw"), where);
  b.pixel_values_videos = floats("pixel_values_videos");
  b.video_grids = grids_of(ints("video_grid_thw"), where);
  for (const auto& s : field(b.index, "samples", where)) {
    b.samples.push_back(TrainGoldenSample{field(s, "kind", where).get<std::string>(),
                                          field(s, "start", where).get<int64_t>(),
                                          field(s, "length", where).get<int64_t>(),
                                          field(s, "supervised_labels", where).get<int64_t>()});
  }
  return b;
}

TrainInputs packed_inputs(const TrainGoldenBatch& b) {
  TrainInputs in;
  in.input_ids = b.input_ids;
  in.labels = b.labels;
  in.positions = b.positions;
  in.cu_seqlens = b.text_cu_seqlens;
  in.pixel_values = b.pixel_values;
  in.image_grids = b.image_grids;
  in.pixel_values_videos = b.pixel_values_videos;
  in.video_grids = b.video_grids;
  return in;
}

std::vector<TrainInputs> sample_inputs(const TrainGoldenBatch& b, const ModelConfig& config) {
  const int64_t merge = config.vision_config.spatial_merge_size;
  const VisionConfig& v = config.vision_config;
  const int64_t patch_dim = v.in_channels * v.temporal_patch_size * v.patch_size * v.patch_size;
  std::vector<TrainInputs> out;
  size_t next_image = 0, next_video = 0;
  int64_t image_row = 0, video_row = 0;
  for (const TrainGoldenSample& s : b.samples) {
    TrainInputs in;
    const auto from = b.input_ids.begin() + s.start;
    in.input_ids.assign(from, from + s.length);
    in.labels.assign(b.labels.begin() + s.start, b.labels.begin() + s.start + s.length);
    for (int64_t i = s.start; i < s.start + s.length; ++i) {
      in.positions.t.push_back(b.positions.t[static_cast<size_t>(i)]);
      in.positions.h.push_back(b.positions.h[static_cast<size_t>(i)]);
      in.positions.w.push_back(b.positions.w[static_cast<size_t>(i)]);
    }
    in.cu_seqlens = {0, s.length};
    int64_t image_tokens = 0, video_tokens = 0;
    for (int32_t id : in.input_ids) {
      image_tokens += id == config.image_token_id;
      video_tokens += id == config.video_token_id;
    }
    while (image_tokens > 0) {  // take grids in order until their merged tokens cover the sample's pads
      const GridTHW& g = b.image_grids.at(next_image++);
      in.image_grids.push_back(g);
      in.pixel_values.insert(in.pixel_values.end(), b.pixel_values.begin() + image_row * patch_dim,
                             b.pixel_values.begin() + (image_row + g.patches()) * patch_dim);
      image_row += g.patches();
      image_tokens -= g.patches() / (merge * merge);
    }
    while (video_tokens > 0) {
      const GridTHW& g = b.video_grids.at(next_video++);
      in.video_grids.push_back(g);
      in.pixel_values_videos.insert(in.pixel_values_videos.end(),
                                    b.pixel_values_videos.begin() + video_row * patch_dim,
                                    b.pixel_values_videos.begin() + (video_row + g.patches()) * patch_dim);
      video_row += g.patches();
      video_tokens -= g.patches() / (merge * merge);
    }
    if (image_tokens != 0 || video_tokens != 0)
      throw_error(b.dir, ": sample ", s.kind, "'s placeholders do not match the grids");
    out.push_back(std::move(in));
  }
  return out;
}

bool TrainGoldenCase::has_adapter() const {
  return std::filesystem::exists(dir + "/adapter_model.safetensors");
}

std::string train_grads_dir() { return fixtures_dir() + "/train/grads"; }

TrainGoldenCase load_train_golden_case(const std::string& checkpoint, const std::string& case_name) {
  TrainGoldenCase c;
  c.dir = train_grads_dir() + "/" + checkpoint + "/" + case_name;
  c.checkpoint = checkpoint;
  c.name = case_name;
  c.index = read_index(c.dir);
  const std::string where = c.dir + "/index.json";
  c.loss = field(c.index, "loss", where).get<double>();
  c.token_losses = field(c.index, "token_losses", where).get<std::vector<double>>();
  c.loss_rows = field(c.index, "loss_rows", where).get<std::vector<int64_t>>();
  if (c.index.contains("logits")) {
    c.logits.shape = field(c.index["logits"], "shape", where).get<std::vector<int64_t>>();
    c.logits.values = read_raw<float>(c.dir, c.index["logits"], "float32", where);
  }
  const nlohmann::json& tensors = field(c.index, "tensors", where);
  c.grads = read_golden_tensors(c.dir + "/" + field(tensors, "file", where).get<std::string>());
  return c;
}

std::vector<std::string> train_golden_case_names(const std::string& checkpoint) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(train_grads_dir() + "/" + checkpoint)) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::map<std::string, GoldenTensor> TrajectoryGolden::weights_after(int step) const {
  const auto it = snapshot_files.find(step);
  if (it == snapshot_files.end()) throw_error(dir, ": no weights stored after step ", step);
  return read_golden_tensors(it->second);
}

TrajectoryGolden load_trajectory_golden(const std::string& case_name) {
  TrajectoryGolden g;
  g.dir = trajectory_dir() + "/" + case_name;
  g.index = read_index(g.dir);
  const std::string where = g.dir + "/index.json";
  for (const auto& group : field(g.index, "groups", where)) {
    g.groups.push_back(TrajectoryGroup{field(group, "name", where).get<std::string>(),
                                       field(group, "lr", where).get<double>(),
                                       field(group, "weight_decay", where).get<double>(),
                                       field(group, "params", where).get<std::vector<std::string>>()});
  }
  g.tensors = field(g.index, "tensors", where).get<std::vector<std::string>>();
  for (const auto& step : field(g.index, "steps", where)) {
    TrajectoryStep s;
    for (const auto& micro : field(step, "micro_batches", where)) {
      s.micro_batch_losses.push_back(field(micro, "loss", where).get<double>());
      s.micro_batch_samples.push_back(field(micro, "sample_index", where).get<int64_t>());
    }
    s.grad_norm_before_clip = field(step, "grad_norm_before_clip", where).get<double>();
    s.lr = field(step, "lr", where).get<std::vector<double>>();
    s.param_l2 = field(step, "param_l2", where).get<std::vector<double>>();
    g.steps.push_back(std::move(s));
  }
  for (const auto& [step, snapshot] : field(g.index, "snapshots", where).items()) {
    g.snapshot_files[std::stoi(step)] = g.dir + "/" + field(snapshot, "file", where).get<std::string>();
  }
  return g;
}

}  // namespace testing
}  // namespace qwen3vl
