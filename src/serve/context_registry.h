// Rank 0's directory of the contexts a server holds (or has held): what each one is (its text,
// tokens and how it was made), where it stands (waiting to be encoded, encoding, ready, evicted)
// and who uses it. The KV itself lives on every rank in PlanRunner; this is the metadata the
// HTTP threads look things up in and the scheduler decides with. All of it behind one mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/run_config.h"
#include "util/enum_names.h"

namespace starattn::serve {

struct ContextEntry {
  enum class State { Pending, Encoding, Ready, Evicted };
  // Fixed when the entry is made.
  uint64_t key = 0;         // its name on the control plane
  std::string id;           // its public name: "ctx-" + 16 hex digits of (run config, tokens)
  std::string document;     // the document as the client gave it
  std::string text;         // the text its tokens encode (a chat's rendered prefix, or plain)
  std::vector<int> tokens;  // the context as phase 1 runs it (BOS included when the model has one)
  bool chat = false;        // made with the chat template (system prompt, user header) or not
  std::string system;       // the system prompt it was made with ("" for the template's default)
  RunConfig rc;             // resolved for tokens.size() and the job's ranks
  bool named = false;       // made by POST /v1/contexts: kept (as Evicted) when its KV is evicted
  double created = 0;       // unix time
  // Guarded by the registry's mutex.
  State state = State::Pending;
  int users = 0;              // requests that hold it (queued or running)
  double last_used = 0;       // steady-clock seconds, for LRU eviction
  double phase1_seconds = 0;  // of its last encoding
  bool deleted = false;       // DELETE'd: gone from lookups, freed once unused
};

// The names the server's /v1/contexts answers print.
inline constexpr EnumName<ContextEntry::State> kContextStateNames[] = {
    {ContextEntry::State::Pending, "pending"},
    {ContextEntry::State::Encoding, "encoding"},
    {ContextEntry::State::Ready, "ready"},
    {ContextEntry::State::Evicted, "evicted"}};
const char* state_name(ContextEntry::State s);

class ContextRegistry {
 public:
  // The entry with these tokens and run config, made Pending if there is none (or if it was
  // deleted). Takes a user: the caller must release() it.
  std::shared_ptr<ContextEntry> acquire(std::shared_ptr<ContextEntry> fresh);
  // The entry named `id` (not deleted), with a user taken; null if unknown.
  std::shared_ptr<ContextEntry> acquire_id(const std::string& id);
  // The longest entry whose text the prompt text starts with (a context a client sent again
  // inside its prompt), with a user taken; null if none.
  std::shared_ptr<ContextEntry> acquire_prefix_of(const std::string& prompt_text);
  void release(const std::shared_ptr<ContextEntry>& e);

  std::shared_ptr<ContextEntry> find(const std::string& id) const;
  std::vector<std::shared_ptr<ContextEntry>> list() const;
  // Marks `id` deleted; false if unknown.
  bool remove(const std::string& id);

  // For the scheduler (its own thread): every entry, deleted ones included, under the lock.
  template <typename Fn>
  void with_all(Fn&& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    fn(all_);
  }
  std::mutex& mutex() { return mu_; }
  // Forgets an entry for good (its KV is gone and no one may find it again).
  void erase_locked(uint64_t key);

 private:
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<ContextEntry>> all_;  // by key
  std::unordered_map<std::string, uint64_t> by_id_;                  // live (not deleted) only
};

// "ctx-" + 16 hex digits: a hash of the run config and the tokens, so the same document asked for
// twice is the same context.
std::string context_id(const RunConfig& rc, const std::vector<int>& tokens);

}  // namespace starattn::serve
