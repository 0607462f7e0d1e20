// Errors the server answers with, in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
// Everything a client can get wrong is an ApiError with a 4xx status; the handlers turn any other exception into a
// 500 with the same body shape, and the server keeps serving either way.
#pragma once

#include <stdexcept>
#include <string>

namespace qwen3vl {
namespace server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = "", std::string code = "",
           std::string type = "")
      : std::runtime_error(message), status_(status), param_(std::move(param)), code_(std::move(code)),
        type_(type.empty() ? default_type(status) : std::move(type)) {}

  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }
  const std::string& type() const { return type_; }

  static std::string default_type(int status);

 private:
  int status_;
  std::string param_, code_, type_;
};

// 400 invalid_request_error, naming the request field at fault.
[[noreturn]] void bad_request(const std::string& param, const std::string& message, const std::string& code = "");

// The JSON body for an error (param and code are null when empty).
std::string error_body(int status, const std::string& message, const std::string& param = "",
                       const std::string& code = "", const std::string& type = "");
std::string error_body(const ApiError& error);

}  // namespace server
}  // namespace qwen3vl
