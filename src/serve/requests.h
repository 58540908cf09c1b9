// From a parsed request to a job the scheduler can run: which context it is about (named,
// inline, found again inside the prompt, or new), its query tokens, its limits. Runs on the HTTP
// threads; every problem the client can fix is an HttpError here, before anything is queued.
#pragma once

#include <memory>
#include <string>

#include "engine/run_config.h"
#include "serve/context_registry.h"
#include "serve/job.h"
#include "serve/openai_api.h"
#include "serve/prompt_split.h"
#include "tokenizer/tokenizer.h"

namespace starattn::serve {

struct ServedModel {
  std::string id;            // the name clients use in "model"
  const Tokenizer* tok = nullptr;
  RenderChat render;         // null when the model has no chat template
  int max_positions = 0;     // the model's context, in tokens
  RunConfig rc;              // the server's run config (B, A resolved per context)
  int ranks = 1;
};

// A registry entry for a document (not yet acquired).
std::shared_ptr<ContextEntry> make_context_entry(const ServedModel& m, const std::string& document,
                                                 bool chat, const std::string& system);

// The job for a chat or completion request, with its context acquired in the registry (the
// scheduler releases it when the job ends). Throws HttpError.
std::shared_ptr<Job> make_generate_job(const ServedModel& m, ContextRegistry& registry,
                                       const CompletionRequest& r);

}  // namespace starattn::serve
