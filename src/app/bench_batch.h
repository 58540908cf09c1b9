// `starattn bench --sequences S`: S concurrent questions over one encoded context, as the server
// runs them: the context is encoded once, the S questions are prefilled in one step, then every
// step decodes one token of each sequence. Reports the time to the first tokens, ms per step and
// the aggregate tokens/s, with and without the shared-context attention call.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "backend/backend.h"
#include "comm/comm.h"
#include "comm/tensor_comm.h"
#include "engine/run_config.h"

namespace starattn::app {

struct BatchBenchArgs {
  int context = 0;  // context tokens
  int query = 64;   // tokens of each question
  int decode = 32;  // steps timed after the questions
  std::vector<int> sequences;
  RunConfig run;
  bool json = false;
};

// Runs on every rank; rank 0 prints a table (or fills `out`).
void bench_sequences(Backend& backend, Comm& comm, TensorComm& tensors, const BatchBenchArgs& a,
                     nlohmann::json& out);

}  // namespace starattn::app
