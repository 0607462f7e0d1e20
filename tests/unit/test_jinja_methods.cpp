// Chat-template interpreter: Python methods of str, dict and list, against jinja2's
// output for the same templates (tests/fixtures/jinja/cases.json, group "methods").
#include "unit/jinja_cases.h"

namespace qwen3vl::testing {
namespace {

TEST(JinjaMethods, MatchesJinja2) { run_jinja_cases("methods"); }

}  // namespace
}  // namespace qwen3vl::testing
