// starattn: long-context LLM inference with Star Attention. Subcommands live in their own files;
// this is the one place that turns a library error into a message and an exit code.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>

#include "app/bench_cmd.h"
#include "app/eval_cmd.h"
#include "app/generate_cmd.h"
#include "app/serve_cmd.h"
#include "starattn/error.h"

int main(int argc, char** argv) {
  CLI::App app{
      "starattn: long-context LLM inference with Star Attention (arXiv 2411.17116).\n"
      "Run `starattn SUBCOMMAND --help` for the flags of each subcommand."};
  app.require_subcommand(1);
  std::map<std::string, std::function<int()>> runners;
  runners["generate"] = starattn::app::add_generate_command(app);
  runners["bench"] = starattn::app::add_bench_command(app);
  runners["eval"] = starattn::app::add_eval_command(app);
  runners["serve"] = starattn::app::add_serve_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return runners.at(app.get_subcommands().front()->get_name())();
  } catch (const starattn::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "starattn: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "starattn: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "starattn: error: %s\n", e.what());
    return 1;
  }
}
