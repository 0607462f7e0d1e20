// PyTorch / PEFT training goldens (scripts/reference/dump_train_goldens.py, dump_train_trajectory.py) read back:
// the packed batch of tests/fixtures/train/grads/batch, one gradient case (tests/fixtures/train/grads/CKPT/CASE)
// and one trajectory (tests/fixtures/train/trajectory/CASE). Every loader throws Error naming the file and field.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "model/model_trainer.h"
#include "model/mrope.h"
#include "vision/grid_thw.h"

namespace qwen3vl {
namespace testing {

struct GoldenTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;

  int64_t numel() const;
};

// Tensors of a float32 safetensors file by name (gradients, adapter tensors, weights after a step).
std::map<std::string, GoldenTensor> read_golden_tensors(const std::string& safetensors_path);

// The samples concatenated into one row, as qwen-vl-finetune's flattened collator packs them.
struct TrainGoldenSample {
  std::string kind;  // "text", "two_images", "video"
  int64_t start = 0;
  int64_t length = 0;
  int64_t supervised_labels = 0;
};

struct TrainGoldenBatch {
  std::string dir;
  nlohmann::json index;
  std::vector<int32_t> input_ids;           // [S]
  std::vector<int32_t> labels;              // [S] unshifted, -100 = ignored
  MropePositions positions;                 // T, H, W of each sample's get_rope_index, restarting at 0
  std::vector<int64_t> text_cu_seqlens;     // sample boundaries [0, ..., S]
  std::vector<float> pixel_values;          // [sum of image t*h*w, patch_dim]
  std::vector<GridTHW> image_grids;
  std::vector<float> pixel_values_videos;   // [sum of video t*h*w, patch_dim]
  std::vector<GridTHW> video_grids;
  std::vector<TrainGoldenSample> samples;

  int64_t size() const { return static_cast<int64_t>(input_ids.size()); }
  int64_t supervised_rows() const;  // rows t with labels[t + 1] != -100 (the N of the mean loss)
};

TrainGoldenBatch load_train_golden_batch();  // tests/fixtures/train/grads/batch

// The whole batch as the model trains on it (one row, the samples as segments).
TrainInputs packed_inputs(const TrainGoldenBatch& batch);
// Each sample alone, with its own images and videos (they follow the samples in order).
std::vector<TrainInputs> sample_inputs(const TrainGoldenBatch& batch, const ModelConfig& config);

// One gradient case: the loss of the batch and d loss / d tensor for every trainable tensor.
struct TrainGoldenCase {
  std::string dir;
  std::string checkpoint;
  std::string name;  // "full", "lora", "rslora", "dora"
  nlohmann::json index;
  double loss = 0.0;
  std::vector<double> token_losses;    // per supervised row, in loss_rows order
  std::vector<int64_t> loss_rows;      // row t of the batch, whose target is labels[t + 1]
  GoldenTensor logits;                 // [loss_rows, vocab]; empty where not dumped (adapter cases)
  std::map<std::string, GoldenTensor> grads;  // HF parameter names (full) or PEFT adapter keys (LoRA)

  bool has_adapter() const;  // the folder holds the PEFT adapter the step starts from
};

std::string train_grads_dir();  // tests/fixtures/train/grads
// tests/fixtures/train/grads/CHECKPOINT/CASE
TrainGoldenCase load_train_golden_case(const std::string& checkpoint, const std::string& case_name);
// The case folders of a checkpoint, sorted.
std::vector<std::string> train_golden_case_names(const std::string& checkpoint);

// 20 optimizer steps of the HF Trainer reproduced by hand.
struct TrajectoryGroup {
  std::string name;
  double lr = 0.0;  // the base lr of the group (before the schedule)
  double weight_decay = 0.0;
  std::vector<std::string> params;  // names as in the weight snapshots
};

struct TrajectoryStep {
  std::vector<double> micro_batch_losses;  // before the division by the accumulation steps
  std::vector<int64_t> micro_batch_samples;  // index into the batch's samples
  double grad_norm_before_clip = 0.0;
  std::vector<double> lr;                  // per group, the lr this step used
  std::vector<double> param_l2;            // per tensor (TrajectoryGolden::tensors order) after the step
};

struct TrajectoryGolden {
  std::string dir;
  nlohmann::json index;
  std::vector<TrajectoryGroup> groups;
  std::vector<std::string> tensors;
  std::vector<TrajectoryStep> steps;
  std::map<int, std::string> snapshot_files;  // step -> safetensors path of the trainable tensors after it

  std::map<std::string, GoldenTensor> weights_after(int step) const;
};

TrajectoryGolden load_trajectory_golden(const std::string& case_name);  // tests/fixtures/train/trajectory/CASE

}  // namespace testing
}  // namespace qwen3vl
