// `starattn bench`: prefill and decode speed of a model on the CPU, next to the machine's sgemm
// rate.
#pragma once

#include <CLI/CLI.hpp>

namespace starattn::app {

std::function<int()> add_bench_command(CLI::App& app);

}  // namespace starattn::app
