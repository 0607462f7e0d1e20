// Chat-template interpreter: Filters and tests, against jinja2's
// output for the same templates (tests/fixtures/jinja/cases.json, groups "filters" and "tests").
#include "unit/jinja_cases.h"

namespace qwen3vl::testing {
namespace {

TEST(JinjaFilters, MatchesJinja2) { run_jinja_cases("filters"); }
TEST(JinjaTests, MatchesJinja2) { run_jinja_cases("tests"); }

}  // namespace
}  // namespace qwen3vl::testing
