// Chat-template interpreter: errors (jinja2's own, group "errors" of tests/fixtures/jinja/cases.json, failing at
// the same line), the parse-time refusals of unsupported constructs, the limits that bound hostile templates and
// inputs, and the context transformers builds (chat_template_variables).
#include <string>

#include "tokenizer/jinja_render.h"
#include "unit/jinja_cases.h"

namespace qwen3vl::testing {
namespace {

using nlohmann::ordered_json;

// jinja2 reports `break` outside a loop as a Python SyntaxError of its generated code, whose line is not a
// template line; `include` compiles in jinja2 and fails when run (no loader), we refuse it when parsing; and
// jinja2's traceback puts the namespace check of `{% set x.y = ... %}` on the template's first line, where we name
// the line of the `set`.
TEST(JinjaErrors, MatchJinja2) {
  run_jinja_cases("errors", {"syntax_break_outside_loop", "syntax_unknown_tag", "ns_assign_non_namespace"});
}

std::string parse_error(const std::string& text) {
  try {
    JinjaTemplate::parse(text, "tpl.jinja");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string render_error(const std::string& text, const ordered_json& variables = ordered_json::object(),
                         const jinja::RenderOptions& limits = jinja::RenderOptions()) {
  try {
    JinjaTemplate::parse(text, "tpl.jinja").render(variables, limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(JinjaErrors, UnsupportedConstructsFailAtParseNamingSourceAndLine) {
  EXPECT_EQ(parse_error("a\n{% extends 'base.html' %}"),
            "tpl.jinja: chat template line 2: the 'extends' tag is not supported in chat templates");
  EXPECT_EQ(parse_error("{% call m() %}x{% endcall %}"),
            "tpl.jinja: chat template line 1: the 'call' tag is not supported in chat templates");
  EXPECT_EQ(parse_error("\n\n{% for x in y recursive %}{% endfor %}"),
            "tpl.jinja: chat template line 3: recursive loops are not supported in chat templates");
  EXPECT_EQ(parse_error("{{ x|urlize }}"), "tpl.jinja: chat template line 1: No filter named 'urlize'.");
  EXPECT_EQ(parse_error("{{ '\\N{BULLET}' }}"),
            "tpl.jinja: chat template line 1: named unicode escapes (\\N{...}) are not supported");
  EXPECT_EQ(parse_error(std::string("{{ 'a\xff' }}")), "tpl.jinja: chat template is not valid UTF-8");
}

TEST(JinjaErrors, DeepNestingFailsAtParse) {
  const std::string deep = "{{ " + std::string(300, '(') + "1" + std::string(300, ')') + " }}";
  EXPECT_NE(parse_error(deep).find("nested too deeply"), std::string::npos);
  std::string chain = "{{ 1";
  for (int i = 0; i < 5000; ++i) chain += " + 1";
  EXPECT_NE(parse_error(chain + " }}").find("nested too deeply"), std::string::npos);
  std::string filters = "{{ 'x'";
  for (int i = 0; i < 5000; ++i) filters += "|trim";
  EXPECT_NE(parse_error(filters + " }}").find("nested too deeply"), std::string::npos);
  std::string blocks;
  for (int i = 0; i < 1000; ++i) blocks += "{% if true %}";
  EXPECT_NE(parse_error(blocks).find("nested too deeply"), std::string::npos);
  EXPECT_NE(parse_error("{{ " + std::string(5000, '-') + "1 }}").find("nested too deeply"), std::string::npos);
  EXPECT_NE(parse_error("{{ " + std::string(5000, '[') + std::string(5000, ']') + " }}").find("nested too deeply"),
            std::string::npos);
}

TEST(JinjaErrors, RecursionIsBounded) {
  const std::string what = render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\n{{ f(0) }}");
  EXPECT_NE(what.find("the template recurses too deeply"), std::string::npos) << what;
}

TEST(JinjaErrors, OutputAndWorkAreBounded) {
  jinja::RenderOptions limits;
  limits.max_output_bytes = 1 << 16;
  // Doubling a string: each step is cheap, the result is not.
  const std::string doubling =
      "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}";
  EXPECT_NE(render_error(doubling, ordered_json::object(), limits).find("string too long"), std::string::npos);
  EXPECT_NE(render_error("{{ 'ab' * 100000 }}", ordered_json::object(), limits).find("too long"), std::string::npos);
  EXPECT_NE(render_error("{% for i in range(70000) %}{{ i }}{% endfor %}", ordered_json::object(), limits)
                .find("exceeds 65536 bytes"),
            std::string::npos);
  limits = jinja::RenderOptions();
  limits.max_work = 100000;
  const std::string nested_loops = "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}";
  EXPECT_NE(render_error(nested_loops, ordered_json::object(), limits).find("work limit"), std::string::npos);
}

TEST(JinjaErrors, DeepInputIsRefused) {
  ordered_json deep = 1;
  for (int i = 0; i < 2000; ++i) deep = ordered_json::array({deep});
  const std::string what = render_error("{{ x }}", {{"x", deep}});
  EXPECT_NE(what.find("nested too deeply"), std::string::npos) << what;
  // Nesting built by the template itself is bounded the same way.
  const std::string builds =
      "{% set ns = namespace(v=[]) %}{% for i in range(2000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v|length }}";
  EXPECT_NE(render_error(builds).find("nested too deeply"), std::string::npos);
}

TEST(JinjaErrors, SelfReferencingNamespaceDoesNotLeak) {
  // A namespace holding itself, and a macro stored in a namespace of its own scope: both are cycles, released when
  // the render ends (the sanitizer build checks for leaks).
  const auto text = JinjaTemplate::parse(
      "{% set ns = namespace() %}{% set ns.me = ns %}{% macro m() %}{% endmacro %}{% set ns.m = m %}ok", "t");
  EXPECT_EQ(text.render(ordered_json::object()), "ok");
}

TEST(JinjaContext, FollowsTransformersNormalization) {
  auto json = [](const std::string& text) { return chat_json::parse(text, "test"); };
  ChatTemplateInputs inputs;
  inputs.messages = json(R"([{"role": "user", "content": null, "name": "x"},
                              {"role": "assistant", "content": "a", "reasoning": "r", "tool_calls": null}])").items;
  inputs.special_tokens = {{"eos_token", json(R"("<|im_end|>")")}, {"pad_token", json(R"("<|endoftext|>")")}};
  inputs.extra = {{"enable_thinking", json("false")}, {"eos_token", json(R"("override")")}};
  const chat_json::Value variables = chat_template_variables(inputs);
  EXPECT_EQ(chat_json::dumps(variables),
            R"({"eos_token": "override", "pad_token": "<|endoftext|>", "enable_thinking": false, "messages": )"
            R"([{"role": "user", "name": "x"}, {"thinking": "r", "role": "assistant", "content": "a", )"
            R"("reasoning": "r", "reasoning_content": "r"}], "tools": null, "documents": null, )"
            R"("add_generation_prompt": false})");
  // tools=None is defined but none, as transformers passes it.
  EXPECT_EQ(JinjaTemplate::parse("{{ tools is defined }} {{ tools is none }}", "t").render(variables), "True True");
}

TEST(JinjaContext, IntegersBeyond64BitsStayExact) {
  const auto variables = chat_json::parse(R"({"n": 123456789012345678901234567890, "m": -9223372036854775809})", "t");
  const auto tpl = JinjaTemplate::parse("{{ n }} {{ [n, m]|tojson }} {{ n == n }} {{ n > 1 }} {{ {'k': n} }}", "t");
  EXPECT_EQ(tpl.render(variables),
            "123456789012345678901234567890 [123456789012345678901234567890, -9223372036854775809] True True "
            "{'k': 123456789012345678901234567890}");
  EXPECT_NE(render_error("{{ n + 1 }}", {{"n", nlohmann::ordered_json::parse("18446744073709551615")}})
                .find("integer overflow"),
            std::string::npos);
}

}  // namespace
}  // namespace qwen3vl::testing
