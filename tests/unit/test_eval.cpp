// Eval scoring: item parsing, the MC prompt, MMMU-style letter extraction, exact match, ANLS, box IoU, the tally.
#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/eval.h"

namespace qwen3vl {
namespace {

const std::vector<std::string> kChoices = {"red", "blue", "green", "yellow"};

TEST(EvalParse, FullItemAndDefaults) {
  const EvalItem a = parse_eval_item(
      R"({"id": 7, "image": "a.png", "question": "Q?", "choices": ["x", "y"], "answer": "B", "category": "c"})", 3,
      "/data");
  EXPECT_EQ(a.id, "7");
  EXPECT_EQ(a.line, 3);
  ASSERT_EQ(a.images.size(), 1u);
  EXPECT_EQ(a.images[0], "/data/a.png");
  EXPECT_EQ(a.metric, "choice");
  EXPECT_EQ(a.category, "c");
  const EvalItem b = parse_eval_item(R"({"images": ["/abs/x.png", "y.png"], "question": "Q", "answer": ["a", "b"]})",
                                     9, "d");
  EXPECT_EQ(b.id, "line9");
  EXPECT_EQ(b.images[0], "/abs/x.png");
  EXPECT_EQ(b.images[1], "d/y.png");
  EXPECT_EQ(b.answers.size(), 2u);
  EXPECT_EQ(b.metric, "exact");
  const EvalItem v = parse_eval_item(R"({"video": "v.mp4", "question": "Q", "answer": 3})", 1, "");
  EXPECT_EQ(v.videos[0], "v.mp4");
  EXPECT_EQ(v.answers[0], "3");
  EXPECT_FALSE(v.video_fps.has_value());
  const EvalItem f = parse_eval_item(R"({"video": "v.mp4", "fps": 4, "question": "Q", "answer": "1"})", 1, "");
  EXPECT_EQ(*f.video_fps, 4.0);
  const EvalItem n = parse_eval_item(R"({"video": "v.mp4", "num_frames": 6, "question": "Q", "answer": "1"})", 1, "");
  EXPECT_EQ(*n.video_num_frames, 6);
}

TEST(EvalParse, VideoSamplingFieldsAreChecked) {
  auto reason = [](const std::string& line) {
    try {
      parse_eval_item(line, 1, "");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(reason(R"({"video": "v.mp4", "fps": 0, "question": "Q", "answer": "1"})"),
            "\"fps\" must be a positive number");
  EXPECT_EQ(reason(R"({"video": "v.mp4", "num_frames": 2.5, "question": "Q", "answer": "1"})"),
            "\"num_frames\" must be a positive integer");
  EXPECT_EQ(reason(R"({"video": "v.mp4", "fps": 2, "num_frames": 4, "question": "Q", "answer": "1"})"),
            "\"fps\" and \"num_frames\" exclude each other");
  EXPECT_EQ(reason(R"({"image": "a.png", "fps": 2, "question": "Q", "answer": "1"})"),
            "\"fps\" / \"num_frames\" without a \"video\"");
}

TEST(EvalParse, BadLinesSayWhy) {
  auto reason = [](const std::string& line) {
    try {
      parse_eval_item(line, 1, "");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(reason("{oops"), "not valid JSON");
  EXPECT_EQ(reason("[1]"), "not a JSON object");
  EXPECT_NE(reason(R"({"answer": "a"})").find("\"question\""), std::string::npos);
  EXPECT_NE(reason(R"({"question": "q"})").find("\"answer\""), std::string::npos);
  EXPECT_NE(reason(R"({"question": "q", "answer": "a", "metric": "bleu"})").find("unknown metric"), std::string::npos);
  EXPECT_NE(reason(R"({"question": "q", "answer": "a", "metric": "choice"})").find("needs"), std::string::npos);
  EXPECT_NE(reason(R"({"question": "q", "answer": "a", "image": 5})").find("\"image\""), std::string::npos);
}

TEST(EvalPrompt, MultipleChoiceLayout) {
  EvalItem item = parse_eval_item(R"({"question": "Colour?", "choices": ["red", "blue"], "answer": "A"})", 1, "");
  EXPECT_EQ(eval_prompt(item),
            "Colour?\nA. red\nB. blue\nAnswer with the option's letter from the given choices directly.");
  item.choices.clear();
  EXPECT_EQ(eval_prompt(item), "Colour?");
}

TEST(EvalLetters, MmmuStyleExtraction) {
  EXPECT_EQ(extract_choice_letter("B", kChoices), "B");
  EXPECT_EQ(extract_choice_letter("B.", kChoices), "B");
  EXPECT_EQ(extract_choice_letter("(C)", kChoices), "C");
  EXPECT_EQ(extract_choice_letter("The answer is (D) yellow", kChoices), "D");
  EXPECT_EQ(extract_choice_letter("The answer is C", kChoices), "C");
  EXPECT_EQ(extract_choice_letter("A or maybe B", kChoices), "B");          // the last one wins
  EXPECT_EQ(extract_choice_letter("(A) is wrong, B is right", kChoices), "A");  // brackets first, as MMMU
  EXPECT_EQ(extract_choice_letter("B. blue", kChoices), "B");
  EXPECT_EQ(extract_choice_letter("E", kChoices), "");                      // not an option
  EXPECT_EQ(extract_choice_letter("blue", kChoices), "");                   // short reply: no text match
  EXPECT_EQ(extract_choice_letter("I think the colour is clearly blue here", kChoices), "B");
  EXPECT_EQ(extract_choice_letter("", kChoices), "");
  EXPECT_EQ(extract_choice_letter("Apple", kChoices), "");                  // a word starting with A is no letter
}

TEST(EvalScore, ExactAnlsIou) {
  EXPECT_EQ(normalize_answer("  Blue.  "), "blue");
  EXPECT_EQ(normalize_answer("a   b\tc"), "a b c");
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3);
  EXPECT_DOUBLE_EQ(anls("Blue", {"blue"}), 1.0);
  EXPECT_NEAR(anls("blu", {"blue"}), 0.75, 1e-12);
  EXPECT_DOUBLE_EQ(anls("red", {"blue"}), 0.0);               // NL 0.75 >= 0.5
  EXPECT_NEAR(anls("blu", {"red", "blue"}), 0.75, 1e-12);     // best accepted answer
  const std::string box = R"([{"bbox_2d": [0, 0, 100, 100], "label": "x"}])";
  EXPECT_DOUBLE_EQ(bbox_iou(box, box), 1.0);
  EXPECT_NEAR(bbox_iou(R"({"bbox_2d": [50, 0, 150, 100]})", box), 50.0 * 100 / (2 * 10000 - 5000), 1e-12);
  EXPECT_DOUBLE_EQ(bbox_iou("no box here", box), 0.0);

  EvalItem mc = parse_eval_item(R"({"question": "q", "choices": ["red", "blue"], "answer": "B"})", 1, "");
  EXPECT_EQ(score_reply(mc, "B").score, 1.0);
  EXPECT_EQ(score_reply(mc, "B").extracted, "B");
  EXPECT_EQ(score_reply(mc, "A").score, 0.0);
  EvalItem mc_text = parse_eval_item(R"({"question": "q", "choices": ["red", "blue"], "answer": "blue"})", 1, "");
  EXPECT_EQ(score_reply(mc_text, "(B)").score, 1.0);  // the answer names the choice's text
  EvalItem ex = parse_eval_item(R"({"question": "q", "answer": "Triangle"})", 1, "");
  EXPECT_EQ(score_reply(ex, "triangle.").score, 1.0);
  EXPECT_EQ(score_reply(ex, "a triangle").score, 0.0);
  EvalItem iou = parse_eval_item(
      R"({"question": "q", "answer": "[{\"bbox_2d\": [0, 0, 100, 100]}]", "metric": "iou"})", 1, "");
  EXPECT_EQ(score_reply(iou, R"([{"bbox_2d": [10, 10, 100, 100]}])").score, 1.0);  // IoU 0.81
  EXPECT_EQ(score_reply(iou, R"([{"bbox_2d": [60, 60, 160, 160]}])").score, 0.0);
}

TEST(EvalTally, PerCategoryAndOverall) {
  EvalTally t;
  t.add("a", 1.0);
  t.add("a", 0.0);
  t.add("b", 1.0);
  t.failed = 2;
  EXPECT_DOUBLE_EQ(t.categories["a"].accuracy(), 0.5);
  EXPECT_DOUBLE_EQ(t.overall.accuracy(), 2.0 / 3.0);
  const std::string table = t.table();
  EXPECT_NE(table.find("\na              2    50.00%\n"), std::string::npos) << table;
  EXPECT_NE(table.find("\nb              1   100.00%\n"), std::string::npos) << table;
  EXPECT_NE(table.find("\noverall        3    66.67%\n"), std::string::npos) << table;
  EXPECT_NE(table.find("2 item(s) could not be run"), std::string::npos) << table;
}

}  // namespace
}  // namespace qwen3vl
