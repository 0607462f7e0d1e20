#include "tokenize_request.h"

#include <limits>

#include "api_error.h"

namespace qwen3vl {
namespace server {

namespace {

using json = nlohmann::json;

json parse_object(const std::string& body) {
  json root = parse_json_body(body);
  if (!root.is_object()) bad_request("", std::string("the body must be a JSON object, got ") + type_name(root));
  return root;
}

}  // namespace

TokenizeRequest parse_tokenize_request(const std::string& body) {
  json root = parse_object(body);
  TokenizeRequest request;
  get_bool(root, "add_special", "add_special");  // type-checked only (see TokenizeRequest)
  request.with_pieces = get_bool(root, "with_pieces", "with_pieces").value_or(false);
  const std::optional<bool> parse_special = get_bool(root, "parse_special", "parse_special");
  const json* content = member(root, "content");
  if (member(root, "messages")) {
    if (content) bad_request("content", "give either content (a text) or messages (a chat), not both");
    if (parse_special && !*parse_special)
      bad_request("parse_special", "applies to content only: a chat prompt's special tokens are always parsed");
    request.chat = chat_request_from_json(root);
    return request;
  }
  if (!content) bad_request("content", "missing (the text to tokenize; or messages, for a chat)");
  if (!content->is_string()) bad_request("content", std::string("expected a string, got ") + type_name(*content));
  request.content = content->get<std::string>();
  request.parse_special = parse_special.value_or(true);
  return request;
}

std::vector<int64_t> parse_detokenize_request(const std::string& body) {
  const json root = parse_object(body);
  const json* tokens = member(root, "tokens");
  if (!tokens) bad_request("tokens", "missing (the token ids to turn into text)");
  if (!tokens->is_array()) bad_request("tokens", std::string("expected an array of ids, got ") + type_name(*tokens));
  std::vector<int64_t> ids;
  ids.reserve(tokens->size());
  for (size_t i = 0; i < tokens->size(); ++i) {
    const json& id = (*tokens)[i];
    const std::string param = "tokens[" + std::to_string(i) + "]";
    if (!id.is_number_integer()) bad_request(param, std::string("expected an integer id, got ") + type_name(id));
    if (id.is_number_unsigned() && id.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      bad_request(param, id.dump() + " is not a token id");
    ids.push_back(id.get<int64_t>());
  }
  return ids;
}

}  // namespace server
}  // namespace qwen3vl
