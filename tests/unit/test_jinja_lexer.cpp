// Chat-template interpreter: Whitespace control (trim_blocks, lstrip_blocks, - and +), comments, raw blocks, newlines, literals, against jinja2's
// output for the same templates (tests/fixtures/jinja/cases.json, group "lexer").
#include "unit/jinja_cases.h"

namespace qwen3vl::testing {
namespace {

TEST(JinjaLexer, MatchesJinja2) { run_jinja_cases("lexer"); }

}  // namespace
}  // namespace qwen3vl::testing
