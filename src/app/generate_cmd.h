// `starattn generate`: one prompt (or a context file plus a query), streamed answer, timing line.
#pragma once

#include <CLI/CLI.hpp>

namespace starattn::app {

// Adds the subcommand and its flags to the app; the returned callback runs it (exit code).
std::function<int()> add_generate_command(CLI::App& app);

}  // namespace starattn::app
