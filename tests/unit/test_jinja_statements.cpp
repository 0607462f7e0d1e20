// Chat-template interpreter: Statements: if / for (else, filters, loop.*, unpacking, break / continue), set and its scoping, namespace, macros, with, filter and generation blocks, against jinja2's
// output for the same templates (tests/fixtures/jinja/cases.json, group "statements").
#include "unit/jinja_cases.h"

namespace qwen3vl::testing {
namespace {

TEST(JinjaStatements, MatchesJinja2) { run_jinja_cases("statements"); }

}  // namespace
}  // namespace qwen3vl::testing
