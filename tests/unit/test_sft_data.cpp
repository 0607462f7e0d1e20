// Fine-tuning datasets (train/sft_data.h, train/sample_builder.h): both item formats read into the messages the
// template renders, media resolved inside the media root, and every bad record reported as one line
// "FILE:LINE: what" that stops the read or is skipped and listed, as the caller chooses.
#include <gtest/gtest.h>

#include "core/error.h"
#include "unit/sft_fixtures.h"

namespace qwen3vl {
namespace {

using testing::TempDir;

// A dataset file in a temp folder whose media root is tests/fixtures.
struct DataFile {
  TempDir dir;
  std::string path;
  DataFile(const std::string& name, const std::string& text) : path(dir.file(name)) { testing::write_file(path, text); }
};

std::string read_error(const std::string& path, const SftReadOptions& options = testing::sft_read_options()) {
  try {
    read_sft_dataset(path, options);
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

std::string image_item(const std::string& image, const std::string& human) {
  return R"({"image": ")" + image + R"(", "conversations": [{"from": "human", "value": ")" + human +
         R"("}, {"from": "gpt", "value": "ok"}]})";
}

TEST(SftData, ReadsTheFixtureInBothFormats) {
  const SftDataset dataset = read_sft_dataset(testing::sft_dataset_path(), testing::sft_read_options());
  ASSERT_EQ(dataset.records.size(), 9u);
  for (size_t r = 0; r < dataset.records.size(); ++r) {
    EXPECT_EQ(dataset.records[r].source.line, static_cast<int64_t>(r + 1));
    EXPECT_EQ(dataset.records[r].source.record, static_cast<int64_t>(r));
  }
  // Line 4: tags replaced in order, the text around them strip()ped of Unicode whitespace (U+3000, U+00A0, U+2003).
  const SftItem& mixed = dataset.records[3].items.at(0);
  ASSERT_EQ(mixed.messages.size(), 4u);
  const std::vector<ContentPart>& user = mixed.messages[0].content;
  ASSERT_EQ(user.size(), 5u);
  EXPECT_EQ(user[0].text, "Watch:");
  EXPECT_EQ(user[1].type, ContentPart::Type::Video);
  EXPECT_EQ(user[2].text, "then look at");
  EXPECT_EQ(user[3].type, ContentPart::Type::Image);
  EXPECT_EQ(user[4].text, "Same scene?");
  EXPECT_EQ(mixed.messages[2].content.at(0).text, "Why not?");
  EXPECT_EQ(mixed.messages[3].content.at(0).text, "  The second is a still image.\n");  // answers are kept as given
  EXPECT_EQ(mixed.images, std::vector<std::string>{testing::fixtures_dir() + "/multimodal/images/shapes_240x60.png"});
  EXPECT_EQ(mixed.videos, std::vector<std::string>{testing::fixtures_dir() + "/videos/cfr24_3s.mp4"});
  // Line 6: a "from" other than "human" is the assistant, as in the official code.
  EXPECT_EQ(dataset.records[5].items.at(0).messages.at(0).role, "assistant");
  // Line 8: messages format, image_url then video, in order.
  const SftItem& openai = dataset.records[7].items.at(0);
  EXPECT_EQ(openai.images, std::vector<std::string>{testing::fixtures_dir() + "/multimodal/images/shapes_70x50.png"});
  EXPECT_EQ(openai.videos.size(), 1u);
  // Line 9: a packed record of two items.
  const SftRecord& packed = dataset.records[8];
  EXPECT_TRUE(packed.packed);
  ASSERT_EQ(packed.items.size(), 2u);
  EXPECT_EQ(packed.items[1].where(), testing::sft_dataset_path() + ":9: packed[1]");
}

TEST(SftData, MalformedJsonLineStopsOrIsSkipped) {
  const DataFile file("bad.jsonl", image_item("images/small_80x48.png", "<image>hi") + "\n\n{\"conversations\": [\n" +
                                       image_item("images/small_80x48.png", "<image>again") + "\n");
  EXPECT_TRUE(starts_with(read_error(file.path), file.path + ":3: not valid JSON: ")) << read_error(file.path);
  const SftDataset skipped = read_sft_dataset(file.path, testing::sft_read_options(), BadSamplePolicy::Skip);
  ASSERT_EQ(skipped.records.size(), 2u);
  EXPECT_EQ(skipped.records[1].source.line, 4);
  ASSERT_EQ(skipped.skipped.size(), 1u);
  EXPECT_TRUE(starts_with(skipped.skipped[0], file.path + ":3: not valid JSON: "));
  EXPECT_EQ(skipped.skipped[0].find('\n'), std::string::npos);
}

TEST(SftData, MissingMediaNamesFileAndLine) {
  const DataFile file("missing.jsonl", "\n" + image_item("images/no_such.png", "<image>hi") + "\n");
  EXPECT_TRUE(starts_with(read_error(file.path), file.path + ":2: image 'images/no_such.png' not found"))
      << read_error(file.path);
}

TEST(SftData, TagAndFileCountsMustMatch) {
  const DataFile more_tags("tags.jsonl", image_item("images/small_80x48.png", "<image> and <image>") + "\n");
  EXPECT_EQ(read_error(more_tags.path),
            more_tags.path + ":1: conversations[0]: more <image> tags than the 1 image(s) the item lists");
  const DataFile unused("unused.jsonl", image_item("images/small_80x48.png", "no tag") + "\n");
  EXPECT_EQ(read_error(unused.path), unused.path + ":1: 1 image(s) listed but only 0 <image> tag(s) in the human turns");
  const DataFile video("video.jsonl", R"({"conversations": [{"from": "human", "value": "<video>"}]})" "\n");
  EXPECT_EQ(read_error(video.path), video.path + ":1: conversations[0]: more <video> tags than the 0 video(s) the item lists");
}

TEST(SftData, EmptyOrShapelessItemsAreErrors) {
  const DataFile empty("empty.jsonl", "{\"conversations\": []}\n");
  EXPECT_EQ(read_error(empty.path), empty.path + ":1: \"conversations\" is empty");
  const DataFile neither("neither.jsonl", "{\"text\": \"hi\"}\n");
  EXPECT_TRUE(starts_with(read_error(neither.path), neither.path + ":1: the item has neither"));
  const DataFile turn("turn.jsonl", R"({"conversations": [{"from": "human"}]})" "\n");
  EXPECT_EQ(read_error(turn.path), turn.path + ":1: conversations[0].value: missing");
  const DataFile role("role.jsonl", R"({"messages": [{"role": "human", "content": "hi"}]})" "\n");
  EXPECT_EQ(read_error(role.path), role.path + ":1: messages[0].role: \"human\" is not system, user, assistant or tool");
  const DataFile packed("packed.jsonl", "[" + image_item("images/small_80x48.png", "<image>") + ", {\"messages\": 3}]\n");
  EXPECT_EQ(read_error(packed.path), packed.path + ":1: packed[1]: \"messages\": expected a list of messages, got a number");
}

TEST(SftData, MediaStaysInsideTheRootUnlessAllowed) {
  const std::string absolute = testing::fixtures_dir() + "/images/small_80x48.png";
  const DataFile outside("outside.jsonl", image_item("../images/small_80x48.png", "<image>") + "\n" +
                                              image_item(absolute, "<image>") + "\n");
  SftReadOptions options = testing::sft_read_options();
  options.media_root = testing::fixtures_dir() + "/train";
  const SftDataset skipped = read_sft_dataset(outside.path, options, BadSamplePolicy::Skip);
  ASSERT_EQ(skipped.skipped.size(), 2u);
  EXPECT_NE(skipped.skipped[0].find(":1: image '../images/small_80x48.png' is outside the media root"),
            std::string::npos) << skipped.skipped[0];
  EXPECT_NE(skipped.skipped[1].find(":2: image '" + absolute + "' is an absolute path"), std::string::npos);
  options.allow_paths_outside_root = true;
  const SftDataset allowed = read_sft_dataset(outside.path, options);
  ASSERT_EQ(allowed.records.size(), 2u);
  EXPECT_EQ(allowed.records[0].items[0].images, std::vector<std::string>{absolute});

  const DataFile url("url.jsonl", image_item("https://example.com/a.png", "<image>") + "\n");
  EXPECT_EQ(read_error(url.path),
            url.path + ":1: image 'https://example.com/a.png': only local files can be trained on (no URLs)");
}

TEST(SftData, JsonListGivesTheLineWhereEachItemStarts) {
  const DataFile file("list.json", "[\n  " + image_item("images/small_80x48.png", "<image>[not a tag]") +
                                       ",\n\n  {\"conversations\":\n   [{\"from\": \"human\", \"value\": \"\\\"]}\"}],\n"
                                       "   \"image\": \"images/missing.png\"}\n]\n");
  EXPECT_TRUE(starts_with(read_error(file.path), file.path + ":4: image 'images/missing.png' not found"));
  const SftDataset dataset = read_sft_dataset(file.path, testing::sft_read_options(), BadSamplePolicy::Skip);
  ASSERT_EQ(dataset.records.size(), 1u);
  EXPECT_EQ(dataset.records[0].source.line, 2);
  const DataFile object("object.json", "{\"conversations\": []}");
  EXPECT_TRUE(starts_with(read_error(object.path), object.path + ": expected a JSON list of items, got an object"));
  const DataFile broken("broken.json", "[\n{}\n,,\n]");
  EXPECT_TRUE(starts_with(read_error(broken.path), broken.path + ":3: not valid JSON: ")) << read_error(broken.path);
}

TEST(SftData, TopLevelElementOffsetsSkipStringsAndNesting) {
  const std::string text = R"( [ {"a": "]\"[,"}, [1, [2]] , "x,y" ,3 ] )";
  const std::vector<size_t> offsets = top_level_element_offsets(text);
  ASSERT_EQ(offsets.size(), 4u);
  EXPECT_EQ(text[offsets[0]], '{');
  EXPECT_EQ(text.substr(offsets[1], 3), "[1,");
  EXPECT_EQ(text.substr(offsets[2], 5), "\"x,y\"");
  EXPECT_EQ(text[offsets[3]], '3');
  EXPECT_TRUE(top_level_element_offsets("[]").empty());
}

TEST(SftData, PythonStripUsesPythonsWhitespace) {
  EXPECT_EQ(python_strip(" \t\n\r\x0b\x0c" "a b" "\x1c\x1f "), "a b");
  EXPECT_EQ(python_strip("\u3000\u00a0\u2003x\u2028\xc2\x85\u202f"), "x");  // ... U+0085 (NEL)
  EXPECT_EQ(python_strip("\u200bx\u200b"), "\u200bx\u200b");  // zero-width space is not whitespace in Python
  EXPECT_EQ(python_strip("\u3000 \n"), "");
  EXPECT_EQ(python_strip(""), "");
}

TEST(SftSamples, NoSupervisedTokenIsAnError) {
  const DataFile file("questions.jsonl",
                      "\n\n" R"({"conversations": [{"from": "human", "value": "a question, no answer"}]})" "\n");
  const SftDataset dataset = read_sft_dataset(file.path, testing::sft_read_options());
  ASSERT_EQ(dataset.records.size(), 1u);
  const SampleBuilder builder = testing::realtok_sample_builder();
  try {
    builder.build(dataset.records[0].items[0]);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()),
              file.path + ":3: no supervised token: the sample has no assistant answer closed by <|im_end|>");
  }
}

TEST(SftSamples, LongerThanMaxLengthIsAnErrorNotATruncation) {
  const SftDataset dataset = read_sft_dataset(testing::sft_dataset_path(), testing::sft_read_options());
  SampleOptions options;
  options.max_length = 41;
  const SampleBuilder builder = testing::realtok_sample_builder(options);
  try {
    builder.build(dataset.records[0].items[0]);  // 42 tokens
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), testing::sft_dataset_path() +
                                             ":1: 42 tokens, more than the maximum length 41 (--model-max-length); "
                                             "the sample is not truncated");
  }
  options.max_length = 42;
  EXPECT_EQ(testing::realtok_sample_builder(options).build(dataset.records[0].items[0]).size(), 42);
}

TEST(SftSamples, UndecodableMediaNamesTheSample) {
  TempDir media;
  testing::write_file(media.file("broken.png"), "not a png");
  const DataFile file("broken.jsonl", image_item("broken.png", "<image>what?") + "\n");
  SftReadOptions options;
  options.media_root = media.path();
  const SftDataset dataset = read_sft_dataset(file.path, options);
  try {
    testing::realtok_sample_builder().build(dataset.records[0].items[0]);
    FAIL() << "no error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_TRUE(starts_with(message, file.path + ":1: ")) << message;
    EXPECT_NE(message.find("broken.png"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace qwen3vl
