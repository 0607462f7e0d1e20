// Chat-template interpreter: Expressions: literals, Python printing, arithmetic, precedence, comparisons, in, and/or, ternaries, attribute / item / slice access, calls and tests with arguments, against jinja2's
// output for the same templates (tests/fixtures/jinja/cases.json, group "expressions").
#include "unit/jinja_cases.h"

namespace qwen3vl::testing {
namespace {

TEST(JinjaExpressions, MatchesJinja2) { run_jinja_cases("expressions"); }

}  // namespace
}  // namespace qwen3vl::testing
