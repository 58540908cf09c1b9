// `starattn serve`: the OpenAI-compatible HTTP server (src/serve/), on every rank of the job.
#pragma once

#include <CLI/CLI.hpp>

namespace starattn::app {

// Adds the subcommand and its flags to the app; the returned callback runs it (exit code).
std::function<int()> add_serve_command(CLI::App& app);

}  // namespace starattn::app
