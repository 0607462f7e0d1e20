#include "test_util.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include <jpeglib.h>  // after <cstdio>: it needs size_t and FILE

namespace qwen3vl {
namespace testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "qwen3vl-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void copy_dir(const std::string& from, const std::string& to) {
  fs::create_directories(to);
  for (const auto& entry : fs::directory_iterator(from)) {
    const fs::path target = fs::path(to) / entry.path().filename();
    if (entry.is_symlink())
      fs::create_symlink(fs::canonical(entry.path()), target);  // absolute, so it stays valid from the new place
    else if (entry.is_regular_file())
      fs::copy_file(entry.path(), target);
  }
}

std::string safetensors_bytes(const std::string& header_json, const std::string& data) {
  std::string header = header_json;
  header.append((8 - header.size() % 8) % 8, ' ');  // data 8-byte aligned, as safetensors writers pad it
  std::string out(8, '\0');
  uint64_t size = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((size >> (8 * i)) & 0xff);
  return out + header + data;
}

std::vector<float> read_f32(const std::string& path) {
  const std::string bytes = read_file(path);
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

CommandResult run_cli(const std::string& arguments, bool with_stderr) {
  return run_command(cli_path() + " " + arguments + (with_stderr ? " 2>&1" : " 2>/dev/null"));
}

std::string cli_path() { return QWEN3VL_CLI_PATH; }

std::string scientific(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3e", value);
  return text;
}

CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed");
  char buffer[4096];
  size_t got;
  while ((got = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, got);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string bmp_bytes(int width, int height) {
  const int row = (width * 3 + 3) / 4 * 4;
  const uint32_t data_size = static_cast<uint32_t>(row * height), file_size = 54 + data_size;
  std::string out(file_size, '\x80');
  auto put32 = [&](size_t at, uint32_t v) { std::memcpy(&out[at], &v, 4); };
  auto put16 = [&](size_t at, uint16_t v) { std::memcpy(&out[at], &v, 2); };
  out[0] = 'B';
  out[1] = 'M';
  put32(2, file_size);
  put32(6, 0);
  put32(10, 54);
  put32(14, 40);
  put32(18, static_cast<uint32_t>(width));
  put32(22, static_cast<uint32_t>(height));
  put16(26, 1);
  put16(28, 24);
  put32(30, 0);
  put32(34, data_size);
  for (size_t at : {38u, 42u, 46u, 50u}) put32(at, 0);
  return out;
}

std::string jpeg_bytes(int width, int height, int components, int quality, bool progressive,
                       const std::function<void(int y, uint8_t* row)>& fill_row) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr errors;
  cinfo.err = jpeg_std_error(&errors);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = components;
  cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  if (progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<uint8_t> row(static_cast<size_t>(width) * components);
  while (cinfo.next_scanline < cinfo.image_height) {
    fill_row(static_cast<int>(cinfo.next_scanline), row.data());
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::string bytes(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);
  return bytes;
}

std::string fixtures_dir() { return QWEN3VL_FIXTURES_DIR; }
std::string model_fixture(const std::string& name) { return fixtures_dir() + "/models/" + name; }

std::string reference_template(const std::string& file) {
  return read_file(fixtures_dir() + "/../../scripts/reference/templates/" + file);
}

std::string checkpoint_with_chat_template(const TempDir& dir, const std::string& name,
                                          const std::string& chat_template) {
  const std::string copy = dir.file(name);
  fs::create_directories(copy);
  for (const auto& entry : fs::directory_iterator(model_fixture("tiny-realtok-bf16")))
    if (entry.path().filename() != "chat_template.json")
      fs::create_symlink(fs::canonical(entry.path()), fs::path(copy) / entry.path().filename());
  write_file(copy + "/chat_template.json", nlohmann::json{{"chat_template", chat_template}}.dump(2));
  return copy;
}

}  // namespace testing
}  // namespace qwen3vl
