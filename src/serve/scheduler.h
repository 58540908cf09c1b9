// Rank 0's scheduler: it owns the queue of client jobs, decides each iteration what every rank
// runs (a Plan), runs its own part of it, and turns rank 0's logits into tokens and text.
//
// Policy, as the README documents it:
//   - Fair queue. Jobs start in the order they came. A job waits while its context is encoded;
//     jobs behind it whose contexts are ready may start meanwhile, but no job overtakes another
//     for memory. A full queue refuses new jobs (503 with Retry-After).
//   - One context is encoded at a time. Each iteration runs ONE phase-1 call of it (one chunk of
//     each rank's share), then one phase-2 step of the running sequences, so a running
//     generation waits at most one chunk of phase 1 between two tokens.
//   - A step carries every running sequence: one token of each decoding one, and as many query
//     tokens of the newly started ones as the step's row budget leaves (a long question is
//     spread over several steps).
//   - Memory. Each rank has a KV budget. A context is encoded only when every rank's share fits;
//     unused contexts are evicted, least recently used first, to make room. A sequence's own KV
//     starts at its query plus a few hundred rows and doubles as it generates; a sequence that
//     cannot grow ends with finish_reason "length".
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/backend.h"
#include "comm/comm.h"
#include "serve/context_registry.h"
#include "serve/job.h"
#include "serve/metrics.h"
#include "serve/plan_runner.h"
#include "tokenizer/tokenizer.h"

namespace starattn::serve {

struct ServeOptions {
  RunConfig rc;             // how contexts are encoded (B and A resolved for each context)
  int parallel = 8;         // the most sequences in one phase-2 step
  int step_tokens = 0;      // the most rows in one step; 0 = the backend's chunk
  int max_queue = 64;       // jobs waiting to start before new ones are refused
  int64_t first_rows = 256;  // a sequence's first KV rows beyond its query
};

class Scheduler {
 public:
  // budget[r]: KV bytes rank r may hold for contexts and (rank 0) sequences.
  Scheduler(Backend& backend, Comm& comm, PlanRunner& runner, const Tokenizer& tok,
            ContextRegistry& registry, Metrics& metrics, const ServeOptions& options,
            std::vector<size_t> budget);
  ~Scheduler();

  // HTTP threads. Queues the job; throws HttpError 503 when the queue is full or the server is
  // stopping, 400 when the job could never fit in memory (with the numbers).
  void submit(std::shared_ptr<Job> job);
  // KV bytes `e` holds on each rank once encoded; while it encodes (with_anchor) also the
  // anchor's. And a sequence of `rows` rows on rank 0.
  std::vector<size_t> context_bytes(const ContextEntry& e, bool with_anchor = false) const;
  size_t sequence_bytes(int64_t rows, KvType type) const;
  const std::vector<size_t>& budget() const { return budget_; }
  const ServeOptions& options() const { return opt_; }
  int ranks() const { return comm_.size(); }

  // Rank 0's main thread: serves until `stop` is set, then finishes the running sequences
  // (new and queued jobs get 503), and shuts every rank down. A second signal (stop >= 2) ends
  // the running sequences at the next step with what they have.
  void run(const std::atomic<int>& stop);

 private:
  struct Sequence;
  void take_intake(bool stopping);
  void plan_phase1(Plan& plan);
  void admit(Plan& plan);
  void plan_step(Plan& plan);
  void after_step(const std::vector<float>& hidden);
  // Answers the sequence's job (unless its client left) and frees its KV; reap() removes it.
  void end_sequence(Sequence& s, const std::string& reason);
  void reap();
  void drop_job(const std::shared_ptr<Job>& job);
  // Whether `need` more bytes per rank fit, after evicting unused contexts (into plan.drop) if
  // must; `keep` is never evicted.
  bool make_room(const std::vector<size_t>& need, Plan& plan, const ContextEntry* keep);
  std::vector<size_t> used_bytes() const;
  void update_gauges();

  Backend& b_;
  Comm& comm_;
  PlanRunner& runner_;
  const Tokenizer& tok_;
  ContextRegistry& registry_;
  Metrics& metrics_;
  ServeOptions opt_;
  std::vector<size_t> budget_;

  std::mutex intake_mu_;
  std::condition_variable intake_cv_;
  std::deque<std::shared_ptr<Job>> intake_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> queued_{0};  // intake + waiting, for the queue bound

  std::deque<std::shared_ptr<Job>> waiting_;  // the scheduler thread's queue
  std::vector<std::unique_ptr<Sequence>> active_;
  std::shared_ptr<ContextEntry> encoding_;
  double encode_started_ = 0;
  uint64_t next_sequence_ = 1;
  // The last step: each sequence stepped, its last row, and how many rows it ran.
  struct Stepped {
    Sequence* seq;
    int last_row;
    int rows;
  };
  std::vector<Stepped> stepped_;
};

}  // namespace starattn::serve
