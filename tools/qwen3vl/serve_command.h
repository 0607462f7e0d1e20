// `qwen3vl serve`: the OpenAI-compatible HTTP server and web page (tools/qwen3vl/server/).
#pragma once

#include <CLI/CLI.hpp>

#include "server/server_options.h"

namespace qwen3vl {
namespace cli {

CLI::App* add_serve_command(CLI::App& app, server::ServerOptions& options);
int serve_command(const server::ServerOptions& options);

}  // namespace cli
}  // namespace qwen3vl
