#include "tokenizer_goldens.h"

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace qwen3vl {
namespace testing {
namespace {

const std::string kFixtures = std::string(QWEN3VL_FIXTURES_DIR) + "/tokenizer";

std::string base64_decode(const std::string& in) {
  static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned value = 0;
  int bits = -8;
  for (const char c : in) {
    if (c == '=') break;
    const std::size_t d = chars.find(c);
    if (d == std::string::npos) throw std::runtime_error("bad base64");
    value = (value << 6) | static_cast<unsigned>(d);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((value >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<nlohmann::json> lines;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

}  // namespace

const std::vector<TokenizerGolden>& tokenizer_goldens() {
  static const std::vector<TokenizerGolden> all = [] {
    std::vector<TokenizerGolden> out;
    for (const nlohmann::json& j : read_jsonl(kFixtures + "/goldens.jsonl"))
      out.push_back(TokenizerGolden{j.at("cat").get<std::string>(),
                                    base64_decode(j.at("input_b64").get<std::string>()),
                                    j.at("ids").get<std::vector<int32_t>>(), j.at("decoded").get<std::string>(),
                                    j.at("decoded_skip").get<std::string>()});
    return out;
  }();
  return all;
}

const std::map<size_t, std::vector<int32_t>>& split_special_goldens() {
  static const std::map<size_t, std::vector<int32_t>> all = [] {
    std::map<size_t, std::vector<int32_t>> out;
    for (const nlohmann::json& j : read_jsonl(kFixtures + "/goldens_split_special.jsonl"))
      out[j.at("index").get<size_t>()] = j.at("ids").get<std::vector<int32_t>>();
    return out;
  }();
  return all;
}

}  // namespace testing
}  // namespace qwen3vl
