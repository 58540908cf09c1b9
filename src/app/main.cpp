// starattn: long-context LLM inference with Star Attention. Subcommands live in their own files;
// this is the one place that turns an error into a message and an exit code.
#include <cblas.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>

#include "app/bench_cmd.h"
#include "app/eval_cmd.h"
#include "app/generate_cmd.h"
#include "app/serve_cmd.h"
#include "backend/cpu/threads.h"
#include "starattn/error.h"

namespace {

// `starattn --version`: what a bug report needs to say which build ran.
std::string version_text() {
  std::string s = "starattn " STARATTN_VERSION " (" STARATTN_BUILD_TYPE " build, CUDA ";
#ifdef STARATTN_HAVE_CUDA
  s += "on";
#else
  s += "off";
#endif
  s += ", OpenBLAS ";
  const char* core = openblas_get_corename();
  s += core ? core : "unknown core";
  return s + ")";
}

// The OpenMP runtime reads OMP_WAIT_POLICY once, as it loads, before main: when several ranks
// share this host and the user has not chosen a policy, this process starts itself again with the
// passive one (cpu::openmp_wait_policy_to_set says why). MPI has not started yet, so the launcher
// sees the same process. If the exec fails, the run goes on with the runtime's default policy.
void restart_with_openmp_wait_policy(char** argv) {
  const char* policy =
      starattn::cpu::openmp_wait_policy_to_set([](const char* name) { return std::getenv(name); });
  if (policy == nullptr || setenv("OMP_WAIT_POLICY", policy, 1) != 0) return;
  execv("/proc/self/exe", argv);
}

int run(int argc, char** argv) {
  CLI::App app{
      "starattn: long-context LLM inference with Star Attention (arXiv 2411.17116).\n"
      "Run `starattn SUBCOMMAND --help` for the flags of each subcommand.",
      "starattn"};
  app.set_version_flag("--version", version_text(),
                       "Print the version and build (type, CUDA, BLAS core), then exit");
  std::map<std::string, std::function<int()>> runners;
  runners["generate"] = starattn::app::add_generate_command(app);
  runners["bench"] = starattn::app::add_bench_command(app);
  runners["eval"] = starattn::app::add_eval_command(app);
  runners["serve"] = starattn::app::add_serve_command(app);
  // A bare `starattn` is someone finding out what it does: the usage, and a non-zero exit
  // because no work was done (as git does), so a script that forgot the subcommand notices.
  if (argc < 2) {
    std::printf("%s", app.help().c_str());
    return 1;
  }
  // CLI11 would answer both of these with "A subcommand is required".
  const std::string first = argv[1];
  if (!first.empty() && first[0] != '-' && runners.count(first) == 0)
    starattn::fail("unknown subcommand '", first,
                   "' (expected generate, bench, eval or serve; see starattn --help)");
  if (first != "-h" && first != "--help" && first != "--version" && runners.count(first) == 0)
    starattn::fail("unknown option '", first, "' before the subcommand (see starattn --help)");
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive as "errors" with exit code 0.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    starattn::fail(
        e.what(), " (see starattn ",
        app.get_subcommands().empty() ? "" : app.get_subcommands().front()->get_name() + " ",
        "--help)");
  }
  return runners.at(app.get_subcommands().front()->get_name())();
}

}  // namespace

int main(int argc, char** argv) {
  restart_with_openmp_wait_policy(argv);
  // Everything, the declaration of the flags included, runs inside this: whatever is thrown
  // (starattn::Error, std::bad_alloc, std::filesystem::filesystem_error, ...) becomes one line.
  try {
    return run(argc, argv);
  } catch (...) {
    const std::string msg = starattn::current_exception_message();
    std::fflush(stdout);
    std::fprintf(stderr, "starattn: error: %s\n", msg.c_str());
    return 1;
  }
}
