// Helpers shared by the tests: scratch directories, files, running the CLI.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace qwen3vl {
namespace testing {

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);
void copy_dir(const std::string& from, const std::string& to);  // shallow copy of regular files and symlinks

// A safetensors file image: 8-byte length, the header text padded with spaces to a multiple of 8, then `data`.
std::string safetensors_bytes(const std::string& header_json, const std::string& data);

// A gray 24-bit BMP of the given size (valid header and data): size checks without a fixture file.
std::string bmp_bytes(int width, int height);

// A width x height JPEG encoded by libjpeg at `quality` (75 is libjpeg's default), with `components` 1 (gray) or 3
// (RGB), baseline or in libjpeg's standard progression. `fill_row(y, row)` writes row y's width x components samples.
std::string jpeg_bytes(int width, int height, int components, int quality, bool progressive,
                       const std::function<void(int y, uint8_t* row)>& fill_row);

// Reads a raw little-endian float32 file.
std::vector<float> read_f32(const std::string& path);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout, and stderr after it unless left out
};
// Runs the qwen3vl CLI with the given arguments (a shell-quoted string).
CommandResult run_cli(const std::string& arguments, bool with_stderr = true);
// Runs a shell command line as given (redirections included) and collects its stdout.
CommandResult run_command(const std::string& command);
std::string cli_path();  // the qwen3vl binary under test
std::string scientific(double value);  // "1.234e-07", for test properties

std::string fixtures_dir();  // tests/fixtures
std::string model_fixture(const std::string& name);  // tests/fixtures/models/NAME

// scripts/reference/templates/FILE: the real chat templates the template goldens use.
std::string reference_template(const std::string& file);
// DIR/NAME: every file of tiny-realtok-bf16 linked, chat_template.json holding `chat_template`.
std::string checkpoint_with_chat_template(const TempDir& dir, const std::string& name,
                                          const std::string& chat_template);

}  // namespace testing
}  // namespace qwen3vl
