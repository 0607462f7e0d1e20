// Logits files (io/logits_file.h): what is written reads back bit for bit, and every malformed file is refused with
// one line naming it and what is wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

#include "core/error.h"
#include "io/logits_file.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

LogitsFile sample() {
  LogitsFile f;
  f.vocab = 3;
  f.ids = {5, 0, 2};
  f.rows = {0.5f, -1.25f, 3.0f, -INFINITY, 2.0f, 1.0f, 1e-30f, -7.5f, 0.0f};
  return f;
}

std::string bytes_of(const LogitsFile& f) {
  testing::TempDir tmp;
  write_logits_file(tmp.file("x.logits"), f);
  std::ifstream in(tmp.file("x.logits"), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void expect_refused(const std::string& bytes, const std::string& words) {
  try {
    parse_logits_file(bytes, "f.logits");
    FAIL() << "accepted; expected: " << words;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("f.logits: ", 0), 0u) << message;
    EXPECT_NE(message.find(words), std::string::npos) << message;
  }
}

TEST(LogitsFile, RoundTripsBitForBit) {
  const LogitsFile f = sample();
  testing::TempDir tmp;
  const std::string path = tmp.file("a.logits");
  write_logits_file(path, f);
  const LogitsFile back = read_logits_file(path);
  EXPECT_EQ(back.vocab, 3);
  EXPECT_EQ(back.ids, f.ids);
  ASSERT_EQ(back.rows.size(), f.rows.size());
  EXPECT_EQ(std::memcmp(back.rows.data(), f.rows.data(), f.rows.size() * 4), 0);
  EXPECT_EQ(bytes_of(f).size(), 24u + 3 * 4 + 9 * 4);
  EXPECT_EQ(bytes_of(f).substr(0, 8), "Q3VLLGT1");
}

TEST(LogitsFile, MalformedFilesAreRefusedNamingTheProblem) {
  const std::string good = bytes_of(sample());
  expect_refused("", "not a logits file");
  expect_refused("Q3VLLGT2" + good.substr(8), "not a logits file");
  expect_refused(good.substr(0, good.size() - 1), "its header says 3 positions of 3 logits (72 bytes)");
  expect_refused(good + "x", "73 bytes");
  std::string huge = good;
  huge[23] = '\x7f';  // n near 2^63: no file can hold it
  expect_refused(huge, "positions of 3 logits");
  std::string zero_vocab = good;
  std::memset(&zero_vocab[8], 0, 4);
  expect_refused(zero_vocab, "vocab is 0");
  std::string reserved = good;
  reserved[12] = 1;
  expect_refused(reserved, "must be 0");
  std::string negative_id = good;
  std::memset(&negative_id[24 + 4], 0xff, 4);
  expect_refused(negative_id, "token id -1 at position 1");
  LogitsFile nan_row = sample();
  nan_row.rows[4] = NAN;
  expect_refused(bytes_of(nan_row), "row 1 holds NaN at column 1");
  LogitsFile inf_row = sample();
  inf_row.rows[8] = INFINITY;
  expect_refused(bytes_of(inf_row), "row 2 holds +inf");
  LogitsFile masked = sample();
  masked.rows[0] = masked.rows[1] = masked.rows[2] = -INFINITY;
  expect_refused(bytes_of(masked), "row 0 is -inf everywhere");
  EXPECT_THROW(read_logits_file("/no/such/file.logits"), Error);
}

}  // namespace
}  // namespace qwen3vl
