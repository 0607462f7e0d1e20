#include "tokenize_command.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>

#include "core/error.h"
#include "engine/loaded_model.h"
#include "engine/tokenize.h"
#include "server/api_error.h"
#include "server/chat_service.h"

namespace qwen3vl {
namespace cli {

CLI::App* add_tokenize_command(CLI::App& app, TokenizeCommandOptions& o) {
  CLI::App* command = app.add_subcommand(
      "tokenize", "Print the token ids of a text (as llama-tokenize) or of a chat's prompt (--messages)");
  command->add_option("-m,--model", o.model_dir, "Checkpoint directory (Hugging Face layout)")->required();
  CLI::Option* text = command->add_option("text", o.text, "The text to tokenize; '-' reads it from stdin");
  CLI::Option* file = command->add_option("-f,--file", o.file, "Read the text from this file");
  CLI::Option* messages = command->add_option(
      "--messages", o.messages_file,
      "Tokenize the prompt the server's chat endpoint builds for this JSON file: OpenAI messages (an array, or a "
      "chat request object with \"messages\"); images and videos as data: URLs, absolute paths or file:// URLs");
  text->excludes(file)->excludes(messages);
  file->excludes(messages);
  command->add_flag("--ids-only", o.ids_only, "Print only the ids, as one list \"[ID, ...]\"");
  command->add_flag("--no-parse-special", o.no_parse_special,
                    "Tokenize special-token text such as <|im_start|> as plain text (not for --messages)");
  command->add_flag("--add-special", o.add_special,
                    "Add the tokenizer's BOS/EOS (accepted for llama-tokenize users; Qwen tokenizers add none)");
  return command;
}

namespace {

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(path, ": cannot read");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string input_text(const TokenizeCommandOptions& o) {
  if (!o.file.empty()) return read_file_bytes(o.file);
  if (o.text == "-") return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  return o.text;
}

// llama-tokenize's output: "[ID, ...]", or one "ID -> 'PIECE'" line per token. A piece that is not valid UTF-8 on
// its own (part of a character) is shown as its bytes in hex, "<e4 bd>", as llama-tokenize does on a console.
void print_tokens(const LoadedModel& model, const std::vector<int32_t>& ids, bool ids_only) {
  if (ids_only) {
    std::printf("[");
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? ", %d" : "%d", ids[i]);
    std::printf("]\n");
    return;
  }
  for (const TokenPiece& piece : token_pieces(model, std::vector<int64_t>(ids.begin(), ids.end()))) {
    std::printf("%6d -> '", piece.id);
    if (piece.utf8) {
      std::fwrite(piece.bytes.data(), 1, piece.bytes.size(), stdout);
    } else {
      for (size_t i = 0; i < piece.bytes.size(); ++i)
        std::printf(i ? " %02x" : "<%02x", static_cast<unsigned char>(piece.bytes[i]));
      std::printf(">");
    }
    std::printf("'\n");
  }
}

// The chat endpoint's own path (server::ChatService::tokenize), with this user's local files allowed and the
// checkpoint's whole context as the budget, so the ids are the ones a served chat completion would get.
ChatTokens tokenize_messages(const LoadedModel& model, const std::string& path) {
  std::string body = read_file_bytes(path);
  const size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && body[first] == '[') body = "{\"messages\": " + body + "}";
  server::ServerOptions options;
  options.model_dir = model.dir;
  options.ctx_size = model.config.text_config.max_position_embeddings;
  options.max_visual_tokens = options.ctx_size;
  options.allowed_media_dir = "/";
  options.image_cache_bytes = 0;
  server::ImageCache cache(0);
  server::LoraRegistry adapters(model, server::served_model_id(options), {}, "");
  const server::ChatService service(model, options, cache, adapters);
  try {
    server::ChatRequest request = server::parse_chat_request(body);
    request.model.clear();  // whatever model the request names, this checkpoint tokenizes it
    return service.tokenize(request);
  } catch (const server::ApiError& error) {
    throw_error(path, ": ", error.what());
  }
}

}  // namespace

int tokenize_command(const TokenizeCommandOptions& o) {
  if (o.text.empty() && o.file.empty() && o.messages_file.empty())
    throw_error("tokenize: give a TEXT, --file FILE, '-' (stdin) or --messages FILE.json");
  if (!o.messages_file.empty() && o.no_parse_special)
    throw_error("tokenize: --no-parse-special applies to a text; a chat prompt's special tokens are always parsed");
  LoadOptions load_options;
  load_options.threads = 1;  // nothing runs on the model's thread pool here
  const auto model = load_model(o.model_dir, load_options);
  if (!o.messages_file.empty()) {
    const ChatTokens tokens = tokenize_messages(*model, o.messages_file);
    print_tokens(*model, tokens.ids, o.ids_only);
    std::fflush(stdout);  // the count comes after the tokens also when both streams go to one pipe
    std::fprintf(stderr, "tokens: %zu, visual tokens: %lld (%lld image, %lld video)\n", tokens.ids.size(),
                 static_cast<long long>(tokens.visual_tokens()), static_cast<long long>(tokens.image_tokens),
                 static_cast<long long>(tokens.video_tokens));
    return 0;
  }
  TokenizeOptions options;
  options.parse_special = !o.no_parse_special;
  const std::vector<int32_t> ids = tokenize(*model, input_text(o), options);
  print_tokens(*model, ids, o.ids_only);
  std::fflush(stdout);
  std::fprintf(stderr, "tokens: %zu\n", ids.size());
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
