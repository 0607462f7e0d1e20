// qwen3vl: the command-line frontend. Each subcommand lives in its own file and talks to the engine API only.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "bench_command.h"
#include "core/error.h"
#include "eval_command.h"
#include "finetune_command.h"
#include "info_command.h"
#include "kld_command.h"
#include "merge_lora_command.h"
#include "quantize_command.h"
#include "run_command.h"
#include "serve_command.h"
#include "tokenize_command.h"

int main(int argc, char** argv) {
  CLI::App app{"qwen3vl: run and fine-tune Qwen3-VL checkpoints (Hugging Face layout) on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qwen3vl 0.1.0");
  qwen3vl::cli::RunOptions run_options;
  CLI::App* run = qwen3vl::cli::add_run_command(app, run_options);
  qwen3vl::cli::InfoOptions info_options;
  CLI::App* info = qwen3vl::cli::add_info_command(app, info_options);
  qwen3vl::cli::EvalOptions eval_options;
  CLI::App* eval = qwen3vl::cli::add_eval_command(app, eval_options);
  qwen3vl::server::ServerOptions serve_options;
  CLI::App* serve = qwen3vl::cli::add_serve_command(app, serve_options);
  qwen3vl::cli::BenchOptions bench_options;
  CLI::App* bench = qwen3vl::cli::add_bench_command(app, bench_options);
  qwen3vl::cli::QuantizeCommandOptions quantize_options;
  CLI::App* quantize = qwen3vl::cli::add_quantize_command(app, quantize_options);
  qwen3vl::cli::KldOptions kld_options;
  CLI::App* kld = qwen3vl::cli::add_kld_command(app, kld_options);
  qwen3vl::cli::MergeLoraCommandOptions merge_lora_options;
  CLI::App* merge_lora = qwen3vl::cli::add_merge_lora_command(app, merge_lora_options);
  qwen3vl::cli::FinetuneCommandOptions finetune_options;
  CLI::App* finetune = qwen3vl::cli::add_finetune_command(app, finetune_options);
  qwen3vl::cli::TokenizeCommandOptions tokenize_options;
  CLI::App* tokenize = qwen3vl::cli::add_tokenize_command(app, tokenize_options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  try {
    if (run->parsed()) return qwen3vl::cli::run_command(run_options);
    if (info->parsed()) return qwen3vl::cli::info_command(info_options);
    if (eval->parsed()) return qwen3vl::cli::eval_command(eval_options);
    if (serve->parsed()) return qwen3vl::cli::serve_command(serve_options);
    if (bench->parsed()) return qwen3vl::cli::bench_command(bench_options);
    if (quantize->parsed()) return qwen3vl::cli::quantize_command(quantize_options);
    if (kld->parsed()) return qwen3vl::cli::kld_command(kld_options);
    if (merge_lora->parsed()) return qwen3vl::cli::merge_lora_command(merge_lora_options);
    if (finetune->parsed()) return qwen3vl::cli::finetune_command(finetune_options);
    if (tokenize->parsed()) return qwen3vl::cli::tokenize_command(tokenize_options);
  } catch (const qwen3vl::Error& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: internal: %s\n", error.what());
    return 2;
  }
  return 0;
}
