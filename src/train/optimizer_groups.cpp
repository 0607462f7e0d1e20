#include "train/optimizer_groups.h"

namespace qwen3vl {
namespace {

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

}  // namespace

std::vector<OptimizerGroup> optimizer_groups(const ParameterSet& params, const OptimizerSettings& settings) {
  const bool split_projector = settings.mm_projector_lr.has_value() && *settings.mm_projector_lr != 0.0;
  const bool split_vision = split_projector && settings.vision_tower_lr.has_value();
  enum Part { kRest, kVision, kProjector };
  // Index of each (part, decay) pair in create_optimizer's order.
  std::vector<OptimizerGroup> groups;
  int index[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  auto add = [&](Part part, bool decay, const char* name, double lr) {
    index[part][decay ? 1 : 0] = static_cast<int>(groups.size());
    groups.push_back(OptimizerGroup{name, lr, {}});
  };
  add(kRest, true, "decay", settings.learning_rate);
  if (split_vision) add(kVision, true, "decay_vision", *settings.vision_tower_lr);
  add(kRest, false, "no_decay", settings.learning_rate);
  if (split_vision) add(kVision, false, "no_decay_vision", *settings.vision_tower_lr);
  if (split_projector) {
    add(kProjector, true, "decay_projector", *settings.mm_projector_lr);
    add(kProjector, false, "no_decay_projector", *settings.mm_projector_lr);
  }
  const std::vector<Parameter>& list = params.parameters();
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string& name = list[i].name;
    const bool decay = list[i].weight_decay && !contains(name, "bias");
    Part part = kRest;
    if (split_projector && contains(name, "merger")) part = kProjector;
    else if (split_vision && contains(name, "visual")) part = kVision;
    groups[static_cast<size_t>(index[part][decay ? 1 : 0])].parameters.push_back(i);
  }
  return groups;
}

AdamW make_adamw(ParameterSet& params, const std::vector<OptimizerGroup>& groups, const OptimizerSettings& settings) {
  AdamW adamw;
  const std::vector<Parameter>& list = params.parameters();
  for (const OptimizerGroup& g : groups) {
    AdamWGroup hyper;
    hyper.lr = g.base_lr;
    hyper.weight_decay = g.name.rfind("decay", 0) == 0 ? settings.weight_decay : 0.0;
    hyper.beta1 = settings.beta1;
    hyper.beta2 = settings.beta2;
    hyper.eps = settings.eps;
    const int group = adamw.add_group(hyper);
    for (size_t i : g.parameters)
      adamw.add_param(group, list[i].name, list[i].value, list[i].grad, static_cast<size_t>(list[i].numel));
  }
  return adamw;
}

}  // namespace qwen3vl
