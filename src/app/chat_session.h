// `starattn generate --interactive`: a multi-turn chat on one KV cache. The context document (if
// any) is encoded once in phase 1, spread over the ranks; each user message is rendered with the
// chat template as a new turn (Conversation) and runs in phase 2 after the turns before it, so a
// turn costs only its own tokens. Rank 0 reads the messages from stdin, one per line, and sends
// every rank the tokens to run; a blank line is skipped, end of input or "/exit" ends the chat.
#pragma once

#include <string>
#include <vector>

#include "app/common.h"
#include "backend/backend.h"
#include "comm/comm.h"
#include "engine/run_config.h"
#include "engine/sampler.h"
#include "tokenizer/conversation.h"

namespace starattn::app {

struct ChatSettings {
  std::string first_message;  // --query: the first user message; "" = read it from stdin too
  int n_predict = 128;        // most tokens per answer
  SamplerOptions sampler;     // one sampler for the whole chat: its penalty spans the turns
  int logprobs = 0;
  std::vector<std::string> stops;
  bool json = false;  // one JSON object per turn (the fields of `generate --json`, + turn)
  ProgressStyle progress = ProgressStyle::Off;  // phase-1 progress on rank 0's stderr
  double load_s = 0;                            // reported with the first turn
  int64_t ctx_size = 0;  // positions the whole chat may use, context included; 0 = the model's
};

// Every rank calls it with the same arguments; conv has been made from the same inputs on every
// rank (only rank 0's is extended). rc is resolved for conv.context_ids(). The engine's KV cache
// is sized for ctx_size positions. Returns the exit code.
int run_chat(Comm& comm, const LoadedModel& lm, Backend& backend, const RunConfig& rc,
             Conversation& conv, const ChatSettings& s);

}  // namespace starattn::app
