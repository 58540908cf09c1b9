// `starattn eval`: RULER-style accuracy (needles, variable tracking, common and frequent words) and
// BABILong-style qa1-qa3 at a target length, with dense, star or ring attention; JSONL results and
// summary tables.
#pragma once

#include <CLI/CLI.hpp>

namespace starattn::app {

// Adds the subcommand and its flags to the app; the returned callback runs it (exit code).
std::function<int()> add_eval_command(CLI::App& app);

}  // namespace starattn::app
