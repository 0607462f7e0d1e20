// The chat-template JSON parser on objects with many keys (review C2): it used to scan all earlier members for a
// duplicate of each key, O(n^2) per object. These objects would take hours that way; the test's own timeout is
// the check that parsing is no longer quadratic, and the results check that repeated keys behave as before
// (Python dict: the last value wins, the key keeps its first position).
#include <gtest/gtest.h>

#include <string>

#include "tokenizer/chat_template_json.h"

namespace qwen3vl {
namespace {

std::string key_name(size_t i) { return "k" + std::to_string(i); }

TEST(ChatJsonScale, MillionDistinctKeysParseInOrder) {
  std::string text = "{";
  for (size_t i = 0; i < 1000000; ++i) text += (i ? ",\"" : "\"") + key_name(i) + "\":" + std::to_string(i);
  text += "}";
  const chat_json::Value value = chat_json::parse(text, "test");
  ASSERT_EQ(value.members.size(), 1000000u);
  EXPECT_EQ(value.members.front().first, "k0");
  EXPECT_EQ(value.members[123456].first, "k123456");
  EXPECT_EQ(value.members[123456].second.text, "123456");
  EXPECT_EQ(value.members.back().first, "k999999");
}

TEST(ChatJsonScale, RepeatedKeysKeepTheFirstPlaceAndTheLastValue) {
  // Keys 0..n-1, then the same keys again in reverse with new values, then key 0 once more.
  const size_t n = 200000;
  std::string text = "{";
  for (size_t i = 0; i < n; ++i) text += (i ? ",\"" : "\"") + key_name(i) + "\":" + std::to_string(i);
  for (size_t i = n; i-- > 0;) text += ",\"" + key_name(i) + "\":\"second " + std::to_string(i) + "\"";
  text += ",\"k0\":[true]}";
  const chat_json::Value value = chat_json::parse(text, "test");
  ASSERT_EQ(value.members.size(), n);
  for (size_t i : {size_t{1}, size_t{2}, n / 2, n - 1}) {
    EXPECT_EQ(value.members[i].first, key_name(i));
    EXPECT_EQ(value.members[i].second.text, "second " + std::to_string(i));
  }
  EXPECT_EQ(value.members[0].first, "k0");
  EXPECT_TRUE(value.members[0].second.is_array());
  EXPECT_EQ(chat_json::dumps(chat_json::parse(R"({"a": 1, "b": 2, "a": 3, "c": 4, "b": 5})", "t")),
            R"({"a": 3, "b": 5, "c": 4})");
}

TEST(ChatJsonScale, OneKeyRepeatedAMillionTimes) {
  std::string text = "{";
  for (size_t i = 0; i < 1000000; ++i) text += (i ? ",\"same\":" : "\"same\":") + std::to_string(i);
  text += "}";
  const chat_json::Value value = chat_json::parse(text, "test");
  ASSERT_EQ(value.members.size(), 1u);
  EXPECT_EQ(value.members[0].second.text, "999999");
}

}  // namespace
}  // namespace qwen3vl
