#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "engine/grounding.h"

namespace qwen3vl {
namespace {

using Kind = GroundingItem::Kind;
using V = std::vector<double>;

TEST(Grounding, FencedListWithBoxAndPoint) {
  const std::string reply =
      "```json\n"
      "[{\"bbox_2d\": [12, 40, 388, 720], \"label\": \"cat\"}, {\"point_2d\": [500, 250], \"label\": \"nose\"}]\n"
      "```";
  const GroundingResult r = parse_grounding(reply, 1000, 500);
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.items[0].kind, Kind::Box);
  EXPECT_EQ(r.items[0].label, "cat");
  EXPECT_EQ(r.items[0].relative, (V{12, 40, 388, 720}));
  EXPECT_EQ(r.items[0].pixels, (V{12, 20, 388, 360}));  // x on width 1000, y on height 500
  EXPECT_EQ(r.items[0].extra_json, "{}");
  EXPECT_EQ(r.items[0].image_index, 0);
  EXPECT_EQ(r.items[1].kind, Kind::Point);
  EXPECT_EQ(r.items[1].label, "nose");
  EXPECT_EQ(r.items[1].relative, (V{500, 250}));
  EXPECT_EQ(r.items[1].pixels, (V{500, 125}));
}

TEST(Grounding, FullGridMapsToWholeNonSquareImage) {
  const GroundingResult r = parse_grounding("[{\"bbox_2d\": [0, 0, 1000, 1000], \"label\": \"all\"}]", 1920, 1080);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].pixels, (V{0, 0, 1920, 1080}));
  // A point on the same image: x scales by the width, y by the height (the non-square bug of llama.cpp #16880).
  const GroundingResult p = parse_grounding("{\"point_2d\": [500, 250]}", 1920, 1080);
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].pixels, (V{960, 270}));
}

TEST(Grounding, NonIntegerPixelsStayDoubles) {
  // Pixels are not rounded: callers round (or floor, as the cookbook's int() does) if they want integers.
  const GroundingResult r = parse_grounding("[{\"bbox_2d\": [333, 1, 388, 999]}]", 640, 1080);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_DOUBLE_EQ(r.items[0].pixels[0], 213.12);  // 333 / 1000 * 640
  EXPECT_DOUBLE_EQ(r.items[0].pixels[1], 1.08);    // 1 / 1000 * 1080
  EXPECT_DOUBLE_EQ(r.items[0].pixels[2], 248.32);  // 388 / 1000 * 640
  EXPECT_DOUBLE_EQ(r.items[0].pixels[3], 1078.92); // 999 / 1000 * 1080
  // x * W / 1000 is exact for integer grids: 388 on 1920 is the double nearest 744.96.
  const GroundingResult w = parse_grounding("[{\"point_2d\": [388, 0]}]", 1920, 1080);
  ASSERT_EQ(w.items.size(), 1u);
  EXPECT_EQ(w.items[0].pixels[0], 744.96);
}

TEST(Grounding, SingleObjectWithoutFence) {
  const GroundingResult r = parse_grounding("{\"bbox_2d\": [100, 200, 300, 400], \"label\": \"dog\"}", 200, 100);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.items[0].label, "dog");
  EXPECT_EQ(r.items[0].pixels, (V{20, 20, 60, 40}));
}

TEST(Grounding, TextAroundAndSeveralFencesKeepReplyOrder) {
  const std::string reply =
      "Sure! Here is the first object {as requested}:\n"
      "```json\n[{\"bbox_2d\": [0, 0, 500, 500], \"label\": \"a\"}]\n```\n"
      "And here the \"second\" one, note the { stray brace:\n"
      "```json\n{\"point_2d\": [100, 900], \"label\": \"b\"}\n```\n"
      "Finally {\"bbox_2d\": [500, 500, 1000, 1000], \"label\": \"c\"} inline. Done.";
  const GroundingResult r = parse_grounding(reply, 100, 100);
  ASSERT_EQ(r.items.size(), 3u);
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.items[0].label, "a");
  EXPECT_EQ(r.items[0].pixels, (V{0, 0, 50, 50}));
  EXPECT_EQ(r.items[1].label, "b");
  EXPECT_EQ(r.items[1].kind, Kind::Point);
  EXPECT_EQ(r.items[1].pixels, (V{10, 90}));
  EXPECT_EQ(r.items[2].label, "c");
  EXPECT_EQ(r.items[2].pixels, (V{50, 50, 100, 100}));
}

TEST(Grounding, TrailingCommasAreTolerated) {
  const std::string reply =
      "```json\n[\n  {\"bbox_2d\": [10, 20, 30, 40,], \"label\": \"x, y\",},\n"
      "  {\"point_2d\": [1, 2], \"label\": \"p\"},\n]\n```";
  const GroundingResult r = parse_grounding(reply, 1000, 1000);
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.items[0].relative, (V{10, 20, 30, 40}));
  EXPECT_EQ(r.items[0].label, "x, y");  // the comma inside the string is kept
  EXPECT_EQ(r.items[1].relative, (V{1, 2}));
}

TEST(Grounding, TruncatedReplyKeepsCompleteObjects) {
  // Generation cut by max tokens in the middle of the third object (and of the fence).
  const std::string reply =
      "```json\n[\n  {\"bbox_2d\": [1, 2, 3, 4], \"label\": \"one\"},\n"
      "  {\"bbox_2d\": [5, 6, 7, 8], \"label\": \"two\"},\n  {\"bbox_2d\": [9, 10, 1";
  const GroundingResult r = parse_grounding(reply, 1000, 1000);
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_EQ(r.items[0].label, "one");
  EXPECT_EQ(r.items[1].label, "two");
  EXPECT_EQ(r.items[1].relative, (V{5, 6, 7, 8}));
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("ends inside"), std::string::npos) << r.warnings[0];
  // Cut inside a label string: same outcome.
  const GroundingResult s = parse_grounding("[{\"point_2d\": [1, 2]}, {\"point_2d\": [3, 4], \"label\": \"ca", 10, 10);
  ASSERT_EQ(s.items.size(), 1u);
  EXPECT_EQ(s.items[0].relative, (V{1, 2}));
  EXPECT_EQ(s.warnings.size(), 1u);
  // Objects nested under a key, cut inside the second one: the first is kept.
  const GroundingResult n =
      parse_grounding("{\"objects\": [{\"point_2d\": [10, 20]}, {\"bbox_2d\": [5, 6, 7", 100, 100);
  ASSERT_EQ(n.items.size(), 1u);
  EXPECT_EQ(n.items[0].pixels, (V{1, 2}));
  EXPECT_EQ(n.warnings.size(), 1u);
  // Cut right after a complete object: nothing lost, nothing to warn about.
  const GroundingResult t = parse_grounding("[{\"point_2d\": [1, 2]}, ", 10, 10);
  ASSERT_EQ(t.items.size(), 1u);
  EXPECT_TRUE(t.warnings.empty());
}

TEST(Grounding, FloatCoordinates) {
  const GroundingResult r = parse_grounding("[{\"bbox_2d\": [12.5, 40.25, 388.0, 720.75]}]", 2000, 400);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].relative, (V{12.5, 40.25, 388.0, 720.75}));
  EXPECT_DOUBLE_EQ(r.items[0].pixels[0], 25.0);
  EXPECT_DOUBLE_EQ(r.items[0].pixels[1], 16.1);
  EXPECT_DOUBLE_EQ(r.items[0].pixels[2], 776.0);
  EXPECT_DOUBLE_EQ(r.items[0].pixels[3], 288.3);
  EXPECT_EQ(r.items[0].label, "");
}

TEST(Grounding, ExtraKeysKeptAsJsonInReplyOrder) {
  const std::string reply =
      "[{\"label\": \"car\", \"bbox_2d\": [1, 2, 3, 4], \"color\": \"red\", \"score\": 0.9, "
      "\"attrs\": {\"doors\": 4}}]";
  const GroundingResult r = parse_grounding(reply, 1000, 1000);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].label, "car");
  EXPECT_EQ(r.items[0].extra_json, "{\"color\":\"red\",\"score\":0.9,\"attrs\":{\"doors\":4}}");
  // A non-string label is not forced into a string: it stays with the extra keys.
  const GroundingResult n = parse_grounding("{\"point_2d\": [1, 2], \"label\": 7}", 1000, 1000);
  ASSERT_EQ(n.items.size(), 1u);
  EXPECT_EQ(n.items[0].label, "");
  EXPECT_EQ(n.items[0].extra_json, "{\"label\":7}");
}

TEST(Grounding, UnicodeAndEscapedLabels) {
  const std::string reply =
      "```json\n[{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"猫 (chat) 🐈\"}, "
      "{\"point_2d\": [5, 6], \"label\": \"caf\\u00e9 \\\"}{\\\" brace\"}]\n```";
  const GroundingResult r = parse_grounding(reply, 1000, 1000);
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.items[0].label, "猫 (chat) 🐈");
  EXPECT_EQ(r.items[1].label, "café \"}{\" brace");
  EXPECT_EQ(r.items[1].relative, (V{5, 6}));
}

TEST(Grounding, WrongElementCountIsSkippedWithWarning) {
  const std::string reply =
      "[{\"bbox_2d\": [1, 2, 3], \"label\": \"short\"}, {\"bbox_2d\": [1, 2, 3, 4, 5], \"label\": \"long\"}, "
      "{\"point_2d\": [1, 2, 3]}, {\"bbox_2d\": [10, 20, 30, 40], \"label\": \"ok\"}, "
      "{\"bbox_2d\": \"10,20,30,40\"}, {\"point_2d\": [\"1\", 2]}, {\"point_2d\": [true, 2]}]";
  const GroundingResult r = parse_grounding(reply, 1000, 1000);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].label, "ok");
  EXPECT_EQ(r.items[0].relative, (V{10, 20, 30, 40}));
  ASSERT_EQ(r.warnings.size(), 6u);
  EXPECT_NE(r.warnings[0].find("bbox_2d has 3 elements, expected 4"), std::string::npos) << r.warnings[0];
  EXPECT_NE(r.warnings[1].find("bbox_2d has 5 elements, expected 4"), std::string::npos) << r.warnings[1];
  EXPECT_NE(r.warnings[2].find("point_2d has 3 elements, expected 2"), std::string::npos) << r.warnings[2];
  EXPECT_NE(r.warnings[3].find("bbox_2d is not a list"), std::string::npos) << r.warnings[3];
  EXPECT_NE(r.warnings[4].find("not a finite number"), std::string::npos) << r.warnings[4];
  EXPECT_NE(r.warnings[5].find("not a finite number"), std::string::npos) << r.warnings[5];
}

TEST(Grounding, NoGroundingGivesEmptyResultWithoutWarnings) {
  for (const std::string& reply :
       {std::string(""), std::string("The image shows a cat sitting on a sofa."),
        std::string("Here is some code: {x: 1} and a set {a, b} and \"quotes\" and [1, 2]"),
        std::string("```json\n{\"caption\": \"a cat\", \"objects\": 3}\n```"),
        std::string("```python\nprint({'a': 1})\n```")}) {
    const GroundingResult r = parse_grounding(reply, 640, 480);
    EXPECT_TRUE(r.items.empty()) << reply;
    EXPECT_TRUE(r.warnings.empty()) << reply;
  }
}

TEST(Grounding, MalformedJsonNeverThrows) {
  const std::vector<std::string> replies = {
      "{\"bbox_2d\": [1, 2, 3, 4] \"label\": \"missing comma\"}",
      "{\"bbox_2d\": [1, 2, 3, 4}",
      "{{{{{{\"bbox_2d\"",
      "}}}]]]{\"point_2d\": ]",
      "```json\n[{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"a\"\n```",
      "{\"bbox_2d\": [1e999, 2, 3, 4]}",
      "{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"\xff\xfe broken utf8\"}",
      "\"\\\"{\\\"}\"{\"point_2d\":[",
  };
  for (const std::string& reply : replies) {
    GroundingResult r;
    EXPECT_NO_THROW(r = parse_grounding(reply, 100, 100)) << reply;
    EXPECT_TRUE(r.items.empty()) << reply;
    EXPECT_EQ(r.warnings.size(), 1u) << reply;
    EXPECT_NO_THROW(grounding_to_json(r));
  }
  // Junk nested 20000 deep around a grounding key: one warning, and linear-ish work (objects deeper than 64
  // are not parsed on their own).
  const std::string deep = std::string(20000, '{') + "\"bbox_2d\" junk" + std::string(20000, '}');
  const GroundingResult d = parse_grounding(deep, 100, 100);
  EXPECT_TRUE(d.items.empty());
  ASSERT_EQ(d.warnings.size(), 1u);
  EXPECT_NE(d.warnings[0].find("byte 64 "), std::string::npos) << d.warnings[0];  // the deepest one tried
  // A malformed object does not hide the good ones next to it.
  const GroundingResult mixed = parse_grounding(
      "[{\"bbox_2d\": [1, 2, 3, 4] \"label\": \"bad\"}, {\"bbox_2d\": [5, 6, 7, 8], \"label\": \"good\"}]", 100, 100);
  ASSERT_EQ(mixed.items.size(), 1u);
  EXPECT_EQ(mixed.items[0].label, "good");
  ASSERT_EQ(mixed.warnings.size(), 1u);
  EXPECT_NE(mixed.warnings[0].find("byte 1 "), std::string::npos) << mixed.warnings[0];
  EXPECT_NE(mixed.warnings[0].find("not valid JSON"), std::string::npos) << mixed.warnings[0];
}

TEST(Grounding, AbsolutePixelValuesAreClampedAndReported) {
  // A Qwen2.5-VL style reply in absolute pixels of the resized image: read as relative, clamped, and reported.
  const GroundingResult r = parse_grounding("[{\"bbox_2d\": [100, -5, 1500, 1200], \"label\": \"big\"}]", 1000, 800);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].relative, (V{100, -5, 1500, 1200}));  // as written
  EXPECT_EQ(r.items[0].pixels, (V{100, 0, 1000, 800}));      // clamped to the image
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("0..1000"), std::string::npos) << r.warnings[0];
  EXPECT_NE(r.warnings[0].find("Qwen2.5-VL"), std::string::npos) << r.warnings[0];
  // 1000 itself (the top of [0, 1000]) and 999 are on the grid: no warning.
  EXPECT_TRUE(parse_grounding("{\"point_2d\": [1000, 999]}", 10, 10).warnings.empty());
}

TEST(Grounding, ReversedCornersAreKeptAndReported) {
  const GroundingResult r = parse_grounding("{\"bbox_2d\": [600, 100, 200, 500]}", 1000, 1000);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].pixels, (V{600, 100, 200, 500}));
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("x1 > x2"), std::string::npos) << r.warnings[0];
}

TEST(Grounding, NestedObjectsAndBothKeys) {
  const std::string reply =
      "{\"objects\": [{\"bbox_2d\": [0, 0, 100, 100], \"label\": \"a\"}], "
      "\"hand\": {\"point_2d\": [10, 20], \"label\": \"b\"}}";
  const GroundingResult r = parse_grounding(reply, 500, 500);
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_EQ(r.items[0].label, "a");
  EXPECT_EQ(r.items[0].pixels, (V{0, 0, 50, 50}));
  EXPECT_EQ(r.items[1].label, "b");
  EXPECT_EQ(r.items[1].pixels, (V{5, 10}));
  // One object with both keys gives a box and a point sharing the label.
  const GroundingResult both = parse_grounding("{\"bbox_2d\": [0, 0, 10, 10], \"point_2d\": [5, 5], \"label\": \"c\"}",
                                               1000, 1000);
  ASSERT_EQ(both.items.size(), 2u);
  EXPECT_EQ(both.items[0].kind, Kind::Box);
  EXPECT_EQ(both.items[1].kind, Kind::Point);
  EXPECT_EQ(both.items[1].label, "c");
}

TEST(Grounding, ThinkingReasoningIsIgnored) {
  const std::string reply =
      "The cat is roughly at {\"bbox_2d\": [0, 0, 10, 10]} maybe... let me refine.\n</think>\n\n"
      "```json\n[{\"bbox_2d\": [100, 100, 200, 200], \"label\": \"cat\"}]\n```";
  const GroundingResult r = parse_grounding(reply, 1000, 1000);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].relative, (V{100, 100, 200, 200}));
}

TEST(Grounding, NonPositiveImageSizeIsACallerError) {
  EXPECT_THROW(parse_grounding("[]", 0, 100), Error);
  EXPECT_THROW(parse_grounding("[]", 100, -1), Error);
}

TEST(Grounding, ToJsonUsesDocumentedShape) {
  GroundingResult r = parse_grounding(
      "[{\"bbox_2d\": [12, 40, 388, 720], \"label\": \"cat\", \"color\": \"grey\"}, "
      "{\"point_2d\": [500, 250.5], \"label\": \"nose\"}]",
      1920, 1080);
  ASSERT_EQ(r.items.size(), 2u);
  r.items[1].image_index = 1;
  EXPECT_EQ(grounding_to_json(r),
            "[{\"type\":\"box\",\"label\":\"cat\",\"bbox_2d\":[12,40,388,720],"
            "\"bbox_pixels\":[23.04,43.2,744.96,777.6],\"image_index\":0,\"extra\":{\"color\":\"grey\"}},"
            "{\"type\":\"point\",\"label\":\"nose\",\"point_2d\":[500,250.5],\"point_pixels\":[960,270.54],"
            "\"image_index\":1,\"extra\":{}}]");
  EXPECT_EQ(grounding_to_json(GroundingResult{}), "[]");
}

}  // namespace
}  // namespace qwen3vl
