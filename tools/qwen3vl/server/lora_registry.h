// The LoRA adapters of `qwen3vl serve`, loaded at start (--lora) or at run time (POST /lora-adapters), and the
// adapter set each request runs with.
//
// Each adapter has an id (llama-server's: 0, 1, ... in the order loaded; never reused after an unload, so an id in a
// client's request or in an image-cache key always means one adapter), a name (its model id in /v1/models, vLLM's
// convention) and a default scale (llama-server's global scale, 0 at load). A request picks its adapters by
//   - "lora": [{"id", "scale"}]: exactly these, unlisted ones off (llama-server); it wins over `model`;
//   - "model": an adapter's name: that adapter at scale 1 (vLLM);
//   - neither (the base's id or no model): every adapter whose default scale is not 0.
// Scale-0 entries are dropped, so a set whose scales are all 0 is the checkpoint alone, bit for bit.
//
// A set becomes an AdaptedWeights (model/lora_adapter.h), bound once per distinct (ids, scales) and shared by the
// requests that run it; a request holds its binding to its end, so unloading or rescaling an adapter changes only
// the requests that start afterwards. Thread-safe.
#pragma once

#include <cstdint>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "chat_request.h"
#include "engine/adapters.h"

namespace qwen3vl {
namespace server {

// The last component of a folder path ("a/b/" -> "b").
std::string folder_name(std::string dir);

class LoraRegistry {
 public:
  struct Listed {
    int64_t id = 0;
    std::string name, path;
    double scale = 0.0;  // the default scale
  };
  // What a request runs with: null weights for the checkpoint alone, and the key naming the set ("id:scale,...").
  struct Selection {
    std::shared_ptr<const AdaptedWeights> weights;
    std::string key;
  };

  // Loads `specs` ("NAME=DIR" or "DIR") in order; throws Error naming the spec or the adapter file at fault.
  // `allowed_dir`: where POST /lora-adapters may load from (empty: nowhere).
  LoraRegistry(const LoadedModel& model, std::string base_id, const std::vector<std::string>& specs,
               const std::string& allowed_dir);

  const std::string& base_id() const { return base_id_; }
  std::vector<Listed> list() const;

  // 404 unless `requested` is empty, the base's id or an adapter's name.
  void check_model(const std::string& requested) const;
  // Throws ApiError (4xx) for unknown models or ids.
  Selection select(const std::string& model, const std::optional<std::vector<LoraChoice>>& lora);

  // POST /lora-adapters. Each throws ApiError (4xx) naming the body field at fault and changes nothing then.
  // load: `path` is absolute or relative to the allowed folder, and must resolve (links followed) inside it.
  Listed load(const std::string& name, const std::string& path);
  void unload(int64_t id);
  // llama-server's global scales: the listed adapters get these, every other one 0.
  void set_default_scales(const std::vector<LoraChoice>& scales);

 private:
  struct Adapter {
    int64_t id = 0;
    std::string name;
    std::shared_ptr<const LoraAdapter> adapter;
    double scale = 0.0;
  };
  struct Binding {
    std::string key;
    std::vector<int64_t> ids;
    std::shared_future<std::shared_ptr<const AdaptedWeights>> weights;
  };

  const Adapter* find_locked(int64_t id) const;
  const Adapter* find_locked(const std::string& name) const;
  void check_model_locked(const std::string& requested) const;
  std::string name_problem_locked(const std::string& name) const;  // empty when `name` may be added
  std::string resolve_runtime_path(const std::string& path) const;
  std::shared_ptr<const AdaptedWeights> bind(const std::string& key, const std::vector<int64_t>& ids,
                                             std::vector<ActiveAdapter> adapters);

  const LoadedModel& model_;
  const std::string base_id_;
  std::string allowed_dir_;  // resolved; empty: no loading at run time
  mutable std::mutex mutex_;
  std::vector<Adapter> adapters_;  // ascending ids
  int64_t next_id_ = 0;
  std::list<Binding> bindings_;  // most recently used first
};

}  // namespace server
}  // namespace qwen3vl
