// One client request as the scheduler sees it, and the channel back to the HTTP thread that
// waits for it. The HTTP thread fills the request part, submits the job, then waits for news; the
// scheduler (rank 0's main thread) pushes text and ends the job. Either side may give up: the
// HTTP thread cancels when its client has gone, and the scheduler frees the job's sequence at the
// next step boundary.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "serve/context_registry.h"

namespace starattn::serve {

// One generated token's log-probability and the most likely alternatives (when asked for).
struct TokenChoice {
  int id = -1;
  float logprob = 0;
  std::vector<TokenLogprob> top;
};

struct Usage {
  int64_t prompt = 0;      // context + query tokens
  int64_t completion = 0;  // generated tokens
  int64_t cached = 0;      // prompt tokens served from an already encoded context
};

class Job {
 public:
  enum class Kind {
    Generate,  // phase 2 of a question (after phase 1 of its context, if not encoded yet)
    Encode,    // POST /v1/contexts: phase 1 only
  };

  // The request; written before submit(), read-only afterwards.
  Kind kind = Kind::Generate;
  std::shared_ptr<ContextEntry> context;  // holds a user of the registry entry
  std::vector<int> query;                 // phase-2 tokens (Generate)
  int max_tokens = 0;
  SamplerOptions sampler;
  std::vector<std::string> stop;
  int top_logprobs = -1;  // -1 = no logprobs; else the alternatives per token (0..20)
  double submitted = 0;  // steady-clock seconds
  // Set by the scheduler when it takes the job: its context was already encoded (a cache hit).
  bool hit = false;

  // What the HTTP thread gets from wait().
  struct News {
    std::string text;           // answer text since the last wait (complete UTF-8)
    std::vector<TokenChoice> tokens;  // with top_logprobs >= 0: the tokens since the last wait
    bool done = false;
    std::string finish_reason;  // "stop", "length"; set with done
    Usage usage;                // set with done
    int status = 0;             // set with done when the job failed: the HTTP status
    std::string error_type, error;
  };
  // Waits until there is news or `timeout` passes; takes the text pushed so far.
  News wait(std::chrono::milliseconds timeout);

  // Scheduler side.
  void push(const std::string& text);
  void push_token(TokenChoice t);
  void finish(const std::string& reason, const Usage& usage);
  void fail(int status, const std::string& type, const std::string& message);
  bool ended() const;

  // Either side: the client is gone, or the server stops.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  News pending_;
  bool ended_ = false;
  std::atomic<bool> cancelled_{false};
};

}  // namespace starattn::serve
