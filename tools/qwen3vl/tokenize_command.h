// `qwen3vl tokenize -m DIR [--ids-only] [--no-parse-special] TEXT`: the checkpoint tokenizer's ids for a text, as
// llama.cpp's llama-tokenize prints them (one "ID -> 'PIECE'" line per token, or "[ID, ...]"), the count on stderr.
// With --messages FILE.json, the prompt the server's chat endpoint builds for that conversation (template, images
// and videos from their URLs) and its visual-token count.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace qwen3vl {
namespace cli {

struct TokenizeCommandOptions {
  std::string model_dir;
  std::string text;           // "-": read stdin
  std::string file;           // the text from this file instead
  std::string messages_file;  // OpenAI messages (an array, or a chat request object with "messages")
  bool ids_only = false;
  bool no_parse_special = false;
  bool add_special = false;  // llama-tokenize's flag; Qwen tokenizers add no BOS/EOS, so the ids are the same
};

CLI::App* add_tokenize_command(CLI::App& app, TokenizeCommandOptions& options);
int tokenize_command(const TokenizeCommandOptions& options);

}  // namespace cli
}  // namespace qwen3vl
