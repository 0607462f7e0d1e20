// Splitting a Thinking checkpoint's reply into reasoning and answer, whole and streamed.
#include <gtest/gtest.h>

#include <random>

#include "engine/reasoning.h"

namespace qwen3vl {
namespace {

struct Streamed {
  std::string reasoning, answer;
  bool finished = false;
};

Streamed stream(const std::vector<std::string>& chunks) {
  ReasoningStream s;
  Streamed out;
  auto take = [&](const std::vector<ReplyPiece>& pieces) {
    for (const ReplyPiece& piece : pieces) {
      EXPECT_FALSE(piece.text.empty());
      (piece.channel == ReplyChannel::Reasoning ? out.reasoning : out.answer) += piece.text;
      if (piece.channel == ReplyChannel::Reasoning) {
        EXPECT_TRUE(out.answer.empty()) << "reasoning after answer";
      }
    }
  };
  for (const std::string& chunk : chunks) take(s.push(chunk));
  take(s.finish());
  out.finished = s.reasoning_finished();
  return out;
}

// Every way of cutting `reply` into two pieces, character by character, and seeded random cuts must stream to
// exactly split_reasoning's result.
void expect_streams_like_split(const std::string& reply) {
  SCOPED_TRACE("reply: " + reply);
  const ReasoningSplit whole = split_reasoning(reply);
  auto same = [&](const Streamed& s, const std::string& how) {
    EXPECT_EQ(s.reasoning, whole.reasoning) << how;
    EXPECT_EQ(s.answer, whole.answer) << how;
    EXPECT_EQ(s.finished, whole.reasoning_finished) << how;
  };
  same(stream({reply}), "one piece");
  for (size_t cut = 0; cut <= reply.size(); ++cut)
    same(stream({reply.substr(0, cut), reply.substr(cut)}), "cut at " + std::to_string(cut));
  std::vector<std::string> chars;
  for (char ch : reply) chars.emplace_back(1, ch);
  same(stream(chars), "char by char");
  std::mt19937 rng(static_cast<uint32_t>(reply.size()));
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::string> chunks;
    for (size_t at = 0; at < reply.size();) {
      const size_t len = std::uniform_int_distribution<size_t>(0, 5)(rng);
      chunks.push_back(reply.substr(at, len));
      at += len;
    }
    same(stream(chunks), "random chunks " + std::to_string(trial));
  }
}

TEST(Reasoning, SplitsAtTheClosingTag) {
  // The generation prompt ends in "<think>\n": the reply starts inside the think block.
  const auto s = split_reasoning("The user greets me.\nI should greet back.\n</think>\n\nHello! How can I help?");
  EXPECT_EQ(s.reasoning, "The user greets me.\nI should greet back.");
  EXPECT_EQ(s.answer, "Hello! How can I help?");
  EXPECT_TRUE(s.reasoning_finished);
}

TEST(Reasoning, NeverClosedIsAllReasoningAndUnfinished) {
  const auto s = split_reasoning("\nStill thinking about it\n\n");
  EXPECT_EQ(s.reasoning, "Still thinking about it");
  EXPECT_EQ(s.answer, "");
  EXPECT_FALSE(s.reasoning_finished);
  const auto empty = split_reasoning("");
  EXPECT_EQ(empty.reasoning, "");
  EXPECT_FALSE(empty.reasoning_finished);
}

TEST(Reasoning, AnOpeningTagInTheReplyIsDropped) {
  const auto s = split_reasoning("<think>\nplan\n</think>\n\nanswer");
  EXPECT_EQ(s.reasoning, "plan");  // as the template's split('<think>')[-1].lstrip('\n') reads it
  EXPECT_EQ(s.answer, "answer");
  const auto unfinished = split_reasoning("\n<think>\npartial plan");
  EXPECT_EQ(unfinished.reasoning, "partial plan");
  EXPECT_FALSE(unfinished.reasoning_finished);
}

TEST(Reasoning, NewlinesAreStrippedAsTheTemplateDoes) {
  const auto s = split_reasoning("\n\nfirst\n\nsecond\n\n</think>\n\n\nThe answer\n\nhas lines\n");
  EXPECT_EQ(s.reasoning, "first\n\nsecond");     // strip('\n')
  EXPECT_EQ(s.answer, "The answer\n\nhas lines\n");  // lstrip('\n') only
  const auto closed_at_once = split_reasoning("</think>");
  EXPECT_EQ(closed_at_once.reasoning, "");
  EXPECT_EQ(closed_at_once.answer, "");
  EXPECT_TRUE(closed_at_once.reasoning_finished);
}

TEST(Reasoning, OnlyTheFirstClosingTagSplits) {
  const auto s = split_reasoning("a</think>b</think>c");
  EXPECT_EQ(s.reasoning, "a");
  EXPECT_EQ(s.answer, "b</think>c");
}

TEST(Reasoning, StreamingGivesTheSameSplit) {
  for (const char* reply :
       {"The user greets me.\nI should greet back.\n</think>\n\nHello! How can I help?", "\nStill thinking\n\n", "",
        "</think>", "<think>\nplan\n</think>\n\nanswer", "\n\nfirst\n\nsecond\n\n</think>\n\n\nThe answer\n",
        "a</think>b</think>c", "<<think>x</thin</think>y", "ends with </thi", "ends with <thin", "<thi<think>nk>",
        "x\n<think>\ny</think>\n", "a\n\n</think>"})
    expect_streams_like_split(reply);
}

TEST(Reasoning, StreamingFuzzAgainstSplit) {
  const std::vector<std::string> atoms{"<think>", "</think>", "\n", "\n\n", "a", "b c", "<", "/", "think>", "</",
                                       "<th", "é"};
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    std::string reply;
    const int atoms_in_reply = std::uniform_int_distribution<int>(0, 8)(rng);
    for (int i = 0; i < atoms_in_reply; ++i)
      reply += atoms[std::uniform_int_distribution<size_t>(0, atoms.size() - 1)(rng)];
    expect_streams_like_split(reply);
    if (::testing::Test::HasFailure()) break;
  }
}

TEST(Reasoning, StreamRoutesPiecesAsTheyArrive) {
  ReasoningStream s;
  auto first = s.push("Thinking");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].channel, ReplyChannel::Reasoning);
  EXPECT_EQ(first[0].text, "Thinking");
  EXPECT_TRUE(s.push("\n</").empty());  // a newline that may be trailing, and a possible tag: held
  auto closed = s.push("think>\n\nYes");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].channel, ReplyChannel::Answer);
  EXPECT_EQ(closed[0].text, "Yes");
  EXPECT_TRUE(s.reasoning_finished());
  EXPECT_EQ(s.push(" indeed")[0].text, " indeed");
  EXPECT_TRUE(s.finish().empty());
}

}  // namespace
}  // namespace qwen3vl
