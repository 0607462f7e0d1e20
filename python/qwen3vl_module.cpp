// The Python binding's native module (`qwen3vl._qwen3vl`): a loaded checkpoint and the chat, tokenizer and eval entry
// points of the engine, with requests and results crossing as JSON text so the binding adds no logic of its own. A
// chat request is the chat endpoint's body and runs through the server library's HTTP-free ChatService, so Python
// gets exactly the server's prompt, media handling, sampling, reasoning split and grounding. The GIL is released
// while the engine computes; a streaming callback takes it back for each piece of text.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/chat_request.h"
#include "server/chat_service.h"
#include "core/error.h"
#include "engine/eval_run.h"
#include "engine/loaded_model.h"
#include "engine/tokenize.h"
#include "server/image_cache.h"
#include "server/lora_registry.h"
#include "server/openai_responses.h"
#include "ops/quant.h"
#include "server/api_error.h"

namespace nb = nanobind;

namespace qwen3vl {
namespace python {

struct ModelSettings {
  std::string path, weight_format, vision_format, chat_template_file;
  int threads = 0;
  int64_t ctx_size = 8192;
  std::vector<std::string> lora_adapters;  // "NAME=DIR" or "DIR", as `serve --lora`
};

server::ServerOptions chat_options(const ModelSettings& settings) {
  server::ServerOptions options;
  options.model_dir = settings.path;
  options.ctx_size = settings.ctx_size;
  options.lora_adapters = settings.lora_adapters;
  options.allowed_media_dir = "/";   // the caller's own process: any local file it names
  options.media_timeout_s = 3600.0;  // no client to protect the process from; a long video may take minutes
  return server::resolved_options(options);
}

LoadOptions load_options(const ModelSettings& settings) {
  LoadOptions options;
  options.threads = settings.threads;
  options.chat_template_file = settings.chat_template_file;
  if (!settings.weight_format.empty())
    options.weight_format = parse_weight_format(settings.weight_format, "weight_format");
  if (!settings.vision_format.empty())
    options.vision_format = parse_weight_format(settings.vision_format, "vision_format");
  return options;
}

class Model {
 public:
  explicit Model(const ModelSettings& settings)
      : options_(chat_options(settings)),
        model_(load_model(settings.path, load_options(settings))),
        cache_(options_.image_cache_bytes),
        adapters_(*model_, server::served_model_id(options_), options_.lora_adapters, ""),
        service_(*model_, options_, cache_, adapters_) {}

  // A chat endpoint body in, {"text", "reasoning", "finish_reason", "usage", "grounding"} out. `on_delta(content,
  // reasoning)` (None: no streaming) sees each piece of text; returning False stops generation.
  std::string chat(const std::string& request_json, nb::object on_delta) {
    server::ChatOutcome outcome;
    server::PreparedChat prepared;
    bool callback_raised = false;
    {
      nb::gil_scoped_release release;
      const server::ChatRequest request = server::parse_chat_request(request_json);
      service_.check_model(request.model);
      prepared = service_.prepare(request);
      outcome = service_.run(prepared, [&](const server::ReplyDelta& delta) {
        if (on_delta.is_none() || delta.empty()) return true;
        nb::gil_scoped_acquire acquire;
        try {
          return nb::cast<bool>(on_delta(delta.content, delta.reasoning));
        } catch (nb::python_error& error) {
          error.restore();  // raised again below, once the engine has stopped
          callback_raised = true;
          return false;
        }
      });
    }
    if (callback_raised) throw nb::python_error();
    nlohmann::ordered_json result;
    result["text"] = outcome.content;
    result["reasoning"] = outcome.reasoning;
    result["finish_reason"] = outcome.finish_reason;
    result["usage"] = server::usage_json(outcome, prepared);
    result["grounding"] = outcome.grounding;
    return server::dump_json(result);
  }

  std::vector<int32_t> tokenize(const std::string& text, bool parse_special) {
    nb::gil_scoped_release release;
    TokenizeOptions options;
    options.parse_special = parse_special;
    return qwen3vl::tokenize(*model_, text, options);
  }

  std::string detokenize(const std::vector<int64_t>& ids, bool skip_special_tokens) {
    nb::gil_scoped_release release;
    return qwen3vl::detokenize(*model_, ids, skip_special_tokens);
  }

  // {"overall": {"count", "accuracy"}, "categories": {NAME: {...}}, "failed", "predictions": [records]}; items
  // that fail carry {"id"?, "line", "error"} among the predictions.
  std::string eval(const std::string& data, int64_t limit, int64_t max_tokens, const std::string& system) {
    nb::gil_scoped_release release;
    EvalRunOptions run_options;
    run_options.system = system;
    run_options.max_new_tokens = max_tokens;
    EvalRunner runner(*model_, run_options);
    const std::vector<EvalEntry> entries = read_eval_entries(data, limit);
    nlohmann::json predictions = nlohmann::json::array();
    EvalTally tally;
    run_eval(runner, entries, tally, [&](const EvalEntry& entry, const EvalPrediction* prediction,
                                         const std::string& error) {
      if (prediction) {
        predictions.push_back(prediction_record(entry.item, *prediction));
        return;
      }
      nlohmann::json failed = {{"line", entry.line}, {"error", error}};
      if (entry.ok) failed["id"] = entry.item.id;
      predictions.push_back(failed);
    });
    const auto bucket = [](const EvalTally::Bucket& b) {
      return nlohmann::json{{"count", b.count}, {"accuracy", b.accuracy()}};
    };
    nlohmann::json result;
    result["overall"] = bucket(tally.overall);
    result["categories"] = nlohmann::json::object();
    for (const auto& [name, b] : tally.categories) result["categories"][name] = bucket(b);
    result["failed"] = tally.failed;
    result["predictions"] = std::move(predictions);
    return result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  std::string model_id() const { return service_.model_id(); }

 private:
  const server::ServerOptions options_;
  const std::unique_ptr<LoadedModel> model_;
  server::ImageCache cache_;
  server::LoraRegistry adapters_;
  server::ChatService service_;
};

}  // namespace python
}  // namespace qwen3vl

NB_MODULE(_qwen3vl, m) {
  using qwen3vl::python::Model;
  using qwen3vl::python::ModelSettings;
  // Engine errors (a file, field or tensor named in one line) and request errors (the request part named).
  static nb::exception<qwen3vl::Error> error(m, "Error", PyExc_RuntimeError);
  static nb::exception<qwen3vl::server::ApiError> request_error(m, "RequestError", error);

  nb::class_<Model>(m, "Model")
      .def("__init__",
           [](Model* self, const std::string& path, const std::string& weight_format, const std::string& vision_format,
              int threads, int64_t ctx_size, const std::string& chat_template_file,
              const std::vector<std::string>& lora_adapters) {
             ModelSettings settings{path, weight_format, vision_format, chat_template_file, threads, ctx_size,
                                    lora_adapters};
             nb::gil_scoped_release release;
             new (self) Model(settings);
           },
           nb::arg("path"), nb::arg("weight_format"), nb::arg("vision_format"), nb::arg("threads"),
           nb::arg("ctx_size"), nb::arg("chat_template_file"), nb::arg("lora_adapters"))
      .def("chat", &Model::chat, nb::arg("request_json"), nb::arg("on_delta").none())
      .def("tokenize", &Model::tokenize, nb::arg("text"), nb::arg("parse_special"))
      .def("detokenize", &Model::detokenize, nb::arg("ids"), nb::arg("skip_special_tokens"))
      .def("eval", &Model::eval, nb::arg("data"), nb::arg("limit"), nb::arg("max_tokens"), nb::arg("system"))
      .def_prop_ro("model_id", &Model::model_id);
}
