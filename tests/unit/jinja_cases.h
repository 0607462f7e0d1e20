// The feature cases of the chat-template interpreter: tests/fixtures/jinja/cases.json, rendered by jinja2 itself
// with transformers' settings (scripts/reference/make_jinja_goldens.py). Each test_jinja_<group>.cpp runs its group:
// the text must be byte-identical, and where jinja2 raised, the interpreter must fail too, at the same line, with
// the template's own message for raise_exception.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "core/error.h"
#include "tokenizer/jinja_template.h"

namespace qwen3vl::testing {

inline const nlohmann::ordered_json& jinja_cases() {
  static const nlohmann::ordered_json cases = [] {
    std::ifstream in(std::string(QWEN3VL_FIXTURES_DIR) + "/jinja/cases.json", std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return nlohmann::ordered_json::parse(text.str());
  }();
  return cases;
}

// "...: chat template line N: message" -> N, or -1.
inline int error_line(const std::string& what) {
  const std::string marker = "chat template line ";
  const size_t at = what.find(marker);
  return at == std::string::npos ? -1 : std::atoi(what.c_str() + at + marker.size());
}

// Runs every case of `group`; `skip_line_check` names error cases whose jinja2 line is not a template line
// (Python's own compile errors of the generated code).
inline void run_jinja_cases(const std::string& group, const std::set<std::string>& skip_line_check = {}) {
  const auto& fixture = jinja_cases();
  int ran = 0;
  for (const auto& c : fixture["cases"]) {
    if (c["group"] != group) continue;
    ++ran;
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const auto& variables = c.contains("variables") ? c["variables"] : fixture["default_variables"];
    if (c.contains("text")) {
      try {
        EXPECT_EQ(JinjaTemplate::parse(c["template"], name).render(variables), c["text"].get<std::string>());
      } catch (const Error& e) {
        ADD_FAILURE() << e.what();
      }
      continue;
    }
    const auto& error = c["error"];
    try {
      const std::string text = JinjaTemplate::parse(c["template"], name).render(variables);
      ADD_FAILURE() << "expected " << error["type"] << " (" << error["message"] << "), rendered " << text;
    } catch (const ChatTemplateRaised& e) {
      EXPECT_EQ(error["type"], "TemplateError");
      EXPECT_EQ(e.template_message(), error["message"].get<std::string>());
      EXPECT_EQ(error_line(e.what()), error["line"].get<int>()) << e.what();
    } catch (const Error& e) {
      EXPECT_NE(error["type"], "TemplateError") << e.what();
      EXPECT_EQ(std::string(e.what()).rfind(name + ": chat template line ", 0), 0u) << e.what();
      if (!skip_line_check.count(name)) {
        EXPECT_EQ(error_line(e.what()), error["line"].get<int>()) << e.what();
      }
    }
  }
  EXPECT_GT(ran, 0) << "no cases in group " << group;
}

}  // namespace qwen3vl::testing
