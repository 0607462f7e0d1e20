#include "api_error.h"

#include <nlohmann/json.hpp>

namespace qwen3vl {
namespace server {

std::string ApiError::default_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429:
    case 503: return "overloaded_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

void bad_request(const std::string& param, const std::string& message, const std::string& code) {
  throw ApiError(400, param.empty() ? message : param + ": " + message, param, code);
}

std::string error_body(int status, const std::string& message, const std::string& param, const std::string& code,
                       const std::string& type) {
  nlohmann::ordered_json error;
  error["message"] = message;
  error["type"] = type.empty() ? ApiError::default_type(status) : type;
  error["param"] = param.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(param);
  error["code"] = code.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(code);
  nlohmann::ordered_json body;
  body["error"] = std::move(error);
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string error_body(const ApiError& error) {
  return error_body(error.status(), error.what(), error.param(), error.code(), error.type());
}

}  // namespace server
}  // namespace qwen3vl
