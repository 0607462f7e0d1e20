#include "lora_registry.h"

#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>

#include "api_error.h"
#include "core/error.h"

namespace qwen3vl {
namespace server {

namespace {

// Distinct adapter sets whose bindings are kept for the next request that asks for one; past that, the least
// recently used is bound again when asked for (a DoRA set costs a pass over its weights).
constexpr size_t kMaxBindings = 16;
constexpr size_t kMaxNameBytes = 128;

bool is_directory(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

std::string real_path(const std::string& path) {
  char buffer[PATH_MAX];
  return realpath(path.c_str(), buffer) ? std::string(buffer) : std::string();
}

// "%.17g": a scale prints as the double it is, so two keys are equal only for equal sets.
std::string set_key(const std::vector<std::pair<int64_t, ActiveAdapter>>& set) {
  std::string key;
  for (const auto& [id, active] : set) {
    char scale[32];
    std::snprintf(scale, sizeof scale, "%.17g", active.scale);
    key += (key.empty() ? "" : ",") + std::to_string(id) + ":" + scale;
  }
  return key;
}

}  // namespace

std::string folder_name(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t slash = dir.rfind('/');
  return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

LoraRegistry::LoraRegistry(const LoadedModel& model, std::string base_id, const std::vector<std::string>& specs,
                           const std::string& allowed_dir)
    : model_(model), base_id_(std::move(base_id)) {
  if (!allowed_dir.empty()) {
    allowed_dir_ = real_path(allowed_dir);
    if (allowed_dir_.empty() || !is_directory(allowed_dir_))
      throw_error("--allowed-lora-dir: ", allowed_dir, ": no such folder");
    if (allowed_dir_.back() != '/') allowed_dir_ += '/';  // "/" stays "/": every absolute path is inside it
  }
  for (const std::string& spec : specs) {
    // "NAME=DIR" when the text before the first '=' holds no '/'; a folder path may hold '=' itself.
    const size_t equals = spec.find('=');
    const bool named = equals != std::string::npos && spec.find('/') > equals;
    const std::string dir = named ? spec.substr(equals + 1) : spec;
    const std::string name = named ? spec.substr(0, equals) : folder_name(spec);
    if (dir.empty()) throw_error("--lora ", spec, ": no adapter folder");
    const std::string problem = name_problem_locked(name);  // no other thread yet
    if (!problem.empty()) throw_error("--lora ", spec, ": ", problem);
    adapters_.push_back({next_id_++, name, load_adapter(model_, dir), 0.0});
  }
}

std::vector<LoraRegistry::Listed> LoraRegistry::list() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Listed> listed;
  for (const Adapter& a : adapters_) listed.push_back({a.id, a.name, a.adapter->dir(), a.scale});
  return listed;
}

const LoraRegistry::Adapter* LoraRegistry::find_locked(int64_t id) const {
  for (const Adapter& a : adapters_)
    if (a.id == id) return &a;
  return nullptr;
}

const LoraRegistry::Adapter* LoraRegistry::find_locked(const std::string& name) const {
  for (const Adapter& a : adapters_)
    if (a.name == name) return &a;
  return nullptr;
}

std::string LoraRegistry::name_problem_locked(const std::string& name) const {
  if (name.empty()) return "the adapter name is empty";
  if (name.size() > kMaxNameBytes) return "the adapter name is longer than " + std::to_string(kMaxNameBytes) + " bytes";
  for (const char c : name)
    if (c <= ' ' || c > '~') return "the adapter name \"" + name + "\" holds a space, a control or a non-ASCII byte";
  if (name == base_id_) return "the adapter name \"" + name + "\" is the served model's id";
  if (find_locked(name)) return "an adapter named \"" + name + "\" is already loaded";
  return "";
}

void LoraRegistry::check_model(const std::string& requested) const {
  std::lock_guard<std::mutex> lock(mutex_);
  check_model_locked(requested);
}

void LoraRegistry::check_model_locked(const std::string& requested) const {
  if (requested.empty() || requested == base_id_ || find_locked(requested)) return;
  throw ApiError(404,
                 "The model `" + requested + "` does not exist; this server serves `" + base_id_ + "`" +
                     (adapters_.empty() ? "" : " and the LoRA adapters GET /v1/models lists"),
                 "model", "model_not_found");
}

LoraRegistry::Selection LoraRegistry::select(const std::string& model,
                                             const std::optional<std::vector<LoraChoice>>& lora) {
  std::vector<std::pair<int64_t, ActiveAdapter>> set;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    check_model_locked(model);
    if (lora) {
      for (size_t i = 0; i < lora->size(); ++i) {
        const Adapter* a = find_locked((*lora)[i].id);
        if (!a)
          bad_request("lora[" + std::to_string(i) + "].id",
                      "no adapter has id " + std::to_string((*lora)[i].id) + " (GET /lora-adapters lists them)",
                      "adapter_not_found");
        set.push_back({a->id, {a->adapter, (*lora)[i].scale}});
      }
    } else if (const Adapter* a = find_locked(model)) {
      set.push_back({a->id, {a->adapter, 1.0}});
    } else {
      for (const Adapter& each : adapters_) set.push_back({each.id, {each.adapter, each.scale}});
    }
  }
  set.erase(std::remove_if(set.begin(), set.end(), [](const auto& entry) { return entry.second.scale == 0.0; }),
            set.end());
  if (set.empty()) return {};
  std::sort(set.begin(), set.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<int64_t> ids;
  std::vector<ActiveAdapter> adapters;
  for (const auto& [id, active] : set) {
    ids.push_back(id);
    adapters.push_back(active);
  }
  const std::string key = set_key(set);
  return {bind(key, ids, std::move(adapters)), key};
}

// The first request of a set binds it outside the lock; requests of the same set meanwhile wait for that binding.
std::shared_ptr<const AdaptedWeights> LoraRegistry::bind(const std::string& key, const std::vector<int64_t>& ids,
                                                         std::vector<ActiveAdapter> adapters) {
  std::promise<std::shared_ptr<const AdaptedWeights>> promise;
  std::shared_future<std::shared_ptr<const AdaptedWeights>> weights;
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto found = std::find_if(bindings_.begin(), bindings_.end(), [&](const Binding& b) { return b.key == key; });
    if (found != bindings_.end()) {
      bindings_.splice(bindings_.begin(), bindings_, found);
      weights = found->weights;
    } else {
      weights = promise.get_future().share();
      first = true;
      // A set with an adapter unloaded since it was selected runs once, uncached: its ids never come back.
      if (std::all_of(ids.begin(), ids.end(), [this](int64_t id) { return find_locked(id) != nullptr; })) {
        bindings_.push_front({key, ids, weights});
        if (bindings_.size() > kMaxBindings) bindings_.pop_back();
      }
    }
  }
  if (!first) return weights.get();
  try {
    promise.set_value(bind_adapters(model_, std::move(adapters)));
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      bindings_.remove_if([&](const Binding& b) { return b.key == key; });
    }
    promise.set_exception(std::current_exception());
  }
  return weights.get();
}

// Missing, outside the allowed folder (links followed) or not a folder: one answer for all, so that a client cannot
// learn which paths exist outside it.
std::string LoraRegistry::resolve_runtime_path(const std::string& path) const {
  if (allowed_dir_.empty())
    throw ApiError(403, "loading adapters at run time is off: the server was started without --allowed-lora-dir",
                   "path", "adapter_loading_disabled");
  if (path.empty()) bad_request("path", "is empty");
  const std::string joined = path.front() == '/' ? path : allowed_dir_ + path;
  char buffer[PATH_MAX];
  const bool found = realpath(joined.c_str(), buffer) != nullptr;
  const std::string resolved = found ? buffer : "";
  if (!found || (resolved + "/").compare(0, allowed_dir_.size(), allowed_dir_) != 0 || !is_directory(resolved))
    bad_request("path", path + ": no such folder inside the folder adapters are loaded from (--allowed-lora-dir)",
                "adapter_not_found");
  return resolved;
}

LoraRegistry::Listed LoraRegistry::load(const std::string& requested_name, const std::string& path) {
  const std::string dir = resolve_runtime_path(path);
  const std::string name = requested_name.empty() ? folder_name(path) : requested_name;
  auto check_name = [this, &name] {
    const std::string problem = name_problem_locked(name);
    if (!problem.empty()) bad_request("name", problem, "invalid_adapter_name");
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    check_name();  // before the load, which may take a while
  }
  std::shared_ptr<const LoraAdapter> adapter;
  try {
    adapter = load_adapter(model_, dir);
  } catch (const Error& error) {
    throw ApiError(400, error.what(), "path", "invalid_adapter");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  check_name();  // a load that ran meanwhile may have taken the name
  adapters_.push_back({next_id_++, name, adapter, 0.0});
  return {adapters_.back().id, name, adapter->dir(), 0.0};
}

void LoraRegistry::unload(int64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = std::find_if(adapters_.begin(), adapters_.end(), [id](const Adapter& a) { return a.id == id; });
  if (found == adapters_.end())
    bad_request("id", "no adapter has id " + std::to_string(id) + " (GET /lora-adapters lists them)",
                "adapter_not_found");
  adapters_.erase(found);
  bindings_.remove_if([id](const Binding& b) { return std::find(b.ids.begin(), b.ids.end(), id) != b.ids.end(); });
}

void LoraRegistry::set_default_scales(const std::vector<LoraChoice>& scales) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < scales.size(); ++i)
    if (!find_locked(scales[i].id))
      bad_request("[" + std::to_string(i) + "].id",
                  "no adapter has id " + std::to_string(scales[i].id) + " (GET /lora-adapters lists them)",
                  "adapter_not_found");
  for (Adapter& a : adapters_) {
    a.scale = 0.0;
    for (const LoraChoice& choice : scales)
      if (choice.id == a.id) a.scale = choice.scale;
  }
}

}  // namespace server
}  // namespace qwen3vl
