#include "model/vision_weights.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/weight_convert.h"

namespace qwen3vl {
namespace {

class Binder {
 public:
  Binder(const TensorStore& store, const ModelConfig& config, std::string prefix)
      : store_(store), config_(config), prefix_(std::move(prefix)) {}

  const TensorView& expect(const std::string& name, std::vector<int64_t> shape) const {
    const TensorView& view = store_.get(prefix_ + name);
    if (view.shape != shape) {
      TensorView wanted;
      wanted.shape = shape;
      throw_error(view.file, ": tensor ", prefix_, name, " has shape ", view.shape_string(), " but ", config_.path,
                  " implies ", wanted.shape_string());
    }
    return view;
  }
  WeightMatrix matrix(const std::string& name, int64_t rows, int64_t cols) const {
    return bind_weight_matrix(expect(name, {rows, cols}), rows, cols);
  }
  WeightMatrix table(const std::string& name, int64_t rows, int64_t cols) const {
    return bind_embedding_table(expect(name, {rows, cols}), rows, cols);
  }
  WeightVector vector(const std::string& name, int64_t size) const {
    return bind_weight_vector(expect(name, {size}), size);
  }
  VisionLinear linear(const std::string& name, int64_t out, int64_t in) const {
    return VisionLinear{matrix(name + ".weight", out, in), vector(name + ".bias", out)};
  }
  VisionLayerNorm layer_norm(const std::string& name, int64_t dim) const {
    return VisionLayerNorm{vector(name + ".weight", dim), vector(name + ".bias", dim)};
  }

 private:
  const TensorStore& store_;
  const ModelConfig& config_;
  std::string prefix_;
};

// Released Qwen3-VL files use model.visual.*; Qwen2/2.5-VL-era files (and llama.cpp's converter) use visual.*.
std::string find_prefix(const TensorStore& store) {
  for (const char* prefix : {"model.visual.", "visual."})
    if (store.contains(std::string(prefix) + "patch_embed.proj.weight")) return prefix;
  throw_error(store.description(), ": missing tensor model.visual.patch_embed.proj.weight");
}

// What the encoder needs of vision_config beyond positive sizes (load_model_config checks those).
void check_vision_config(const ModelConfig& config) {
  const VisionConfig& c = config.vision_config;
  const std::string where = config.path + ": vision_config ";
  if (c.hidden_size % c.num_heads != 0)
    throw_error(where, "hidden_size ", c.hidden_size, " is not a multiple of num_heads ", c.num_heads);
  // The 2D rotary splits head_dim into four equal parts (row / col angles, each twice): HF's
  // Qwen3VLVisionRotaryEmbedding only fills head_dim exactly when it is a multiple of 4.
  if ((c.hidden_size / c.num_heads) % 4 != 0)
    throw_error(where, "head dim ", c.hidden_size / c.num_heads, " (hidden_size / num_heads) is not a multiple of 4");
  const auto side = static_cast<int64_t>(std::sqrt(static_cast<double>(c.num_position_embeddings)));
  if (side * side != c.num_position_embeddings || side < 2)
    throw_error(where, "num_position_embeddings ", c.num_position_embeddings, " is not a square of at least 2x2");
  if (c.spatial_merge_size < 1 || c.patch_size < 1 || c.temporal_patch_size < 1 || c.in_channels < 1)
    throw_error(where, "patch_size, temporal_patch_size, spatial_merge_size and in_channels must be positive");
  std::vector<int64_t> seen;
  for (int64_t index : c.deepstack_visual_indexes) {
    if (index < 0 || index >= c.depth)
      throw_error(where, "deepstack_visual_indexes entry ", index, " is outside the ", c.depth, " blocks");
    if (std::find(seen.begin(), seen.end(), index) != seen.end())
      throw_error(where, "deepstack_visual_indexes lists block ", index, " twice");
    seen.push_back(index);
  }
  if (c.hidden_act != "gelu_pytorch_tanh" && c.hidden_act != "gelu")
    throw_error(where, "hidden_act \"", c.hidden_act,
                "\" is not supported (expected \"gelu_pytorch_tanh\" or \"gelu\")");
}

VisionMergerWeights bind_merger(const Binder& bind, const std::string& name, const VisionConfig& c,
                                bool use_postshuffle_norm) {
  const int64_t merged = c.hidden_size * c.spatial_merge_size * c.spatial_merge_size;
  VisionMergerWeights w;
  w.use_postshuffle_norm = use_postshuffle_norm;
  w.norm = bind.layer_norm(name + ".norm", use_postshuffle_norm ? merged : c.hidden_size);
  w.linear_fc1 = bind.linear(name + ".linear_fc1", merged, merged);
  w.linear_fc2 = bind.linear(name + ".linear_fc2", c.out_hidden_size, merged);
  return w;
}

}  // namespace

VisionWeights bind_vision_weights(const TensorStore& store, const ModelConfig& config) {
  check_vision_config(config);
  const VisionConfig& c = config.vision_config;
  VisionWeights w;
  w.prefix = find_prefix(store);
  const Binder bind(store, config, w.prefix);
  const int64_t d = c.hidden_size;

  // Conv3d kernel [D, C, T, P, P]; with kernel == stride it is a Linear over the flattened (c, t, y, x) patch.
  const TensorView& proj =
      bind.expect("patch_embed.proj.weight", {d, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size});
  w.patch_embed.weight = bind_weight_matrix(proj, d, proj.numel() / d);
  w.patch_embed.bias = bind.vector("patch_embed.proj.bias", d);
  w.dtype = proj.dtype;
  w.pos_embed = bind.table("pos_embed.weight", c.num_position_embeddings, d);

  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    VisionBlockWeights block;
    block.norm1 = bind.layer_norm(p + "norm1", d);
    block.qkv = bind.linear(p + "attn.qkv", 3 * d, d);
    block.proj = bind.linear(p + "attn.proj", d, d);
    block.norm2 = bind.layer_norm(p + "norm2", d);
    block.linear_fc1 = bind.linear(p + "mlp.linear_fc1", c.intermediate_size, d);
    block.linear_fc2 = bind.linear(p + "mlp.linear_fc2", d, c.intermediate_size);
    w.blocks.push_back(block);
  }
  w.merger = bind_merger(bind, "merger", c, false);
  for (size_t k = 0; k < c.deepstack_visual_indexes.size(); ++k)
    w.deepstack_merger_list.push_back(bind_merger(bind, "deepstack_merger_list." + std::to_string(k), c, true));
  return w;
}

}  // namespace qwen3vl
