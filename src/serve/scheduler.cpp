#include "serve/scheduler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "engine/layout.h"
#include "engine/stop_strings.h"
#include "serve/http_error.h"
#include "starattn/error.h"

namespace starattn::serve {
namespace {

double steady_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint64_t micros(double seconds) {
  return static_cast<uint64_t>(seconds * 1e6);
}

std::string gib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1u << 30));
  return buf;
}

}  // namespace

struct Scheduler::Sequence {
  std::shared_ptr<Job> job;
  uint64_t key = 0;
  std::unique_ptr<KvCache> kv;  // the query's and the generated tokens' KV (rank 0 only)
  std::vector<int> todo;        // tokens still to run: the rest of the query, or the last token
  bool decoding = false;        // the whole query has run
  Sampler sampler;
  StreamDecoder text;
  StopStrings stop;
  int generated = 0;
  bool first_token_seen = false;
  bool ended = false;  // its job is answered; it leaves active_ at the next reap()
  Sequence(std::shared_ptr<Job> j, const Tokenizer& tok)
      : job(std::move(j)), sampler(job->sampler), text(tok), stop(job->stop) {
    // The repetition penalty looks at the prompt too (context and question), as generate's does.
    // (The sampler keeps only its window of them.)
    if (job->sampler.repeat_penalty != 1.0f) {
      for (int id : job->context->tokens) sampler.accept(id);
      for (int id : job->query) sampler.accept(id);
    }
  }
  // Text that is safe to send, after the decoder's and the stop strings' hold-backs.
  std::string final_text() { return stop.push(text.flush()) + stop.flush(); }
};

Scheduler::Scheduler(Backend& backend, Comm& comm, PlanRunner& runner, const Tokenizer& tok,
                     ContextRegistry& registry, Metrics& metrics, const ServeOptions& options,
                     std::vector<size_t> budget)
    : b_(backend),
      comm_(comm),
      runner_(runner),
      tok_(tok),
      registry_(registry),
      metrics_(metrics),
      opt_(options),
      budget_(std::move(budget)) {
  if (opt_.step_tokens <= 0) opt_.step_tokens = b_.preferred_chunk();
  SA_CHECK(static_cast<int>(budget_.size()) == comm_.size(), "scheduler: a budget per rank");
}

Scheduler::~Scheduler() = default;

std::vector<size_t> Scheduler::context_bytes(const ContextEntry& e, bool with_anchor) const {
  std::vector<size_t> need(comm_.size());
  const int64_t n = static_cast<int64_t>(e.tokens.size());
  for (int r = 0; r < comm_.size(); ++r) {
    const int64_t rows = context_rows_of_rank(e.rc, n, comm_.size(), r);
    need[r] = kv_bytes_for_rows(b_, rows, e.rc.kv_type);
    if (with_anchor)
      need[r] += kv_bytes_for_rows(b_, ContextEncoder::anchor_rows(e.rc, n), e.rc.kv_type);
  }
  return need;
}

size_t Scheduler::sequence_bytes(int64_t rows, KvType type) const {
  return kv_bytes_for_rows(b_, rows, type);
}

void Scheduler::submit(std::shared_ptr<Job> job) {
  SA_CHECK(job && job->context, "scheduler: a job without a context");
  const ContextEntry& e = *job->context;
  std::vector<size_t> need = context_bytes(e, /*with_anchor=*/true);
  if (job->kind == Job::Kind::Generate)
    need[0] +=
        sequence_bytes(static_cast<int64_t>(job->query.size()) + opt_.first_rows, e.rc.kv_type);
  for (int r = 0; r < comm_.size(); ++r) {
    if (need[r] > budget_[r])
      throw bad_request("the context (" + std::to_string(e.tokens.size()) + " tokens) needs " +
                        gib(need[r]) + " of KV memory on rank " + std::to_string(r) +
                        " but the budget there is " + gib(budget_[r]) +
                        "; use more ranks, a smaller block size, or a larger --context-memory");
  }
  {
    std::lock_guard<std::mutex> lock(intake_mu_);
    if (stopping_) throw HttpError(503, "server_error", "the server is shutting down");
    if (queued_ >= opt_.max_queue)
      throw HttpError(
          503, "server_error",
          "too many requests are waiting (" + std::to_string(opt_.max_queue) + "); retry shortly");
    ++queued_;
    intake_.push_back(std::move(job));
  }
  intake_cv_.notify_one();
}

void Scheduler::take_intake(bool stopping) {
  std::deque<std::shared_ptr<Job>> in;
  {
    std::lock_guard<std::mutex> lock(intake_mu_);
    in.swap(intake_);
    if (stopping) stopping_ = true;
  }
  for (auto& j : in) {
    const bool ready = [&] {
      std::lock_guard<std::mutex> lock(registry_.mutex());
      return j->context->state == ContextEntry::State::Ready;
    }();
    if (j->kind == Job::Kind::Generate) {
      j->hit = ready;
      (ready ? metrics_.context_hits : metrics_.context_misses)++;
    }
    waiting_.push_back(std::move(j));
  }
  // Jobs whose client left, and (when stopping) every job that has not started.
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if ((*it)->cancelled() || stopping_) {
      if (stopping_ && !(*it)->cancelled())
        (*it)->fail(503, "server_error", "the server is shutting down");
      if ((*it)->cancelled()) metrics_.requests_cancelled++;
      drop_job(*it);
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
}

void Scheduler::drop_job(const std::shared_ptr<Job>& job) {
  registry_.release(job->context);
  --queued_;
}

std::vector<size_t> Scheduler::used_bytes() const {
  std::vector<size_t> used(comm_.size(), 0);
  registry_.with_all([&](const auto& all) {
    for (const auto& [key, e] : all) {
      const bool encoding = e->state == ContextEntry::State::Encoding;
      if (e->state != ContextEntry::State::Ready && !encoding) continue;
      const std::vector<size_t> held = context_bytes(*e, encoding);
      for (int r = 0; r < comm_.size(); ++r) used[r] += held[r];
    }
  });
  for (const auto& s : active_) used[0] += s->kv->bytes();
  return used;
}

bool Scheduler::make_room(const std::vector<size_t>& need, Plan& plan, const ContextEntry* keep) {
  std::vector<size_t> used = used_bytes();
  auto fits = [&] {
    for (int r = 0; r < comm_.size(); ++r)
      if (used[r] + need[r] > budget_[r]) return false;
    return true;
  };
  while (!fits()) {
    // The least recently used ready context that no job holds.
    std::shared_ptr<ContextEntry> victim;
    registry_.with_all([&](const auto& all) {
      for (const auto& [key, e] : all) {
        if (e.get() == keep || e->users > 0 || e->state != ContextEntry::State::Ready) continue;
        if (!victim || e->last_used < victim->last_used) victim = e;
      }
      if (!victim) return;
      const std::vector<size_t> freed = context_bytes(*victim);
      for (int r = 0; r < comm_.size(); ++r) used[r] -= freed[r];
      plan.drop.push_back(victim->key);
      // A named context keeps its id (it is encoded again when asked for); others are forgotten.
      if (victim->named && !victim->deleted) {
        victim->state = ContextEntry::State::Evicted;
      } else {
        registry_.erase_locked(victim->key);
      }
    });
    if (!victim) return false;
    metrics_.contexts_evicted++;
  }
  return true;
}

void Scheduler::plan_phase1(Plan& plan) {
  // Deleted contexts that nobody uses any more leave every rank.
  registry_.with_all([&](const auto& all) {
    std::vector<uint64_t> gone;
    for (const auto& [key, e] : all) {
      if (!e->deleted || e->users > 0) continue;
      if (e->state == ContextEntry::State::Ready || e->state == ContextEntry::State::Encoding)
        plan.drop.push_back(key);
      gone.push_back(key);
    }
    for (uint64_t key : gone) {
      if (encoding_ && encoding_->key == key) encoding_.reset();
      registry_.erase_locked(key);
    }
  });
  if (!encoding_) {
    for (const auto& job : waiting_) {
      std::shared_ptr<ContextEntry> e = job->context;
      const bool needs = [&] {
        std::lock_guard<std::mutex> lock(registry_.mutex());
        return e->state == ContextEntry::State::Pending || e->state == ContextEntry::State::Evicted;
      }();
      if (!needs) continue;
      // First in the queue first; if its context does not fit yet, wait for memory.
      if (!make_room(context_bytes(*e, /*with_anchor=*/true), plan, e.get())) break;
      {
        std::lock_guard<std::mutex> lock(registry_.mutex());
        e->state = ContextEntry::State::Encoding;
      }
      plan.encode.push_back(EncodeOrder{e->key, e->rc, e->tokens});
      encoding_ = e;
      encode_started_ = steady_now();
      std::fprintf(stderr, "serve: encoding %s (%zu tokens)\n", e->id.c_str(), e->tokens.size());
      break;
    }
  }
  if (encoding_) plan.advance.push_back(encoding_->key);
}

void Scheduler::admit(Plan& plan) {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    const std::shared_ptr<Job>& job = *it;
    ContextEntry& e = *job->context;
    ContextEntry::State state;
    bool gone;
    {
      std::lock_guard<std::mutex> lock(registry_.mutex());
      state = e.state;
      gone = e.deleted && state != ContextEntry::State::Ready;
    }
    if (gone) {  // deleted before its phase 1 ran
      job->fail(404, "not_found_error", "context " + e.id + " was deleted");
      drop_job(job);
      it = waiting_.erase(it);
      continue;
    }
    if (state != ContextEntry::State::Ready) {
      ++it;  // waits for its phase 1
      continue;
    }
    if (job->kind == Job::Kind::Encode) {
      Usage u;
      u.prompt = static_cast<int64_t>(e.tokens.size());
      drop_job(job);  // first, so the reply counts no user for it
      job->finish("encoded", u);
      metrics_.requests_ok++;
      it = waiting_.erase(it);
      continue;
    }
    if (static_cast<int>(active_.size()) >= opt_.parallel) break;
    const int64_t rows = static_cast<int64_t>(job->query.size()) +
                         std::min<int64_t>(job->max_tokens, opt_.first_rows);
    std::vector<size_t> need(comm_.size(), 0);
    need[0] = sequence_bytes(rows, e.rc.kv_type);
    if (!make_room(need, plan, &e)) break;  // no overtaking for memory
    auto seq = std::make_unique<Sequence>(job, tok_);
    const ModelConfig& c = b_.config();
    // A sequence's own KV has its context's type, as generate's query KV (the context cache's
    // tail) does.
    seq->kv = std::make_unique<KvCache>(b_, c.n_layers, c.kv_dim(), rows, 0, e.rc.kv_type);
    seq->key = next_sequence_++;
    seq->todo = job->query;
    active_.push_back(std::move(seq));
    --queued_;
    it = waiting_.erase(it);
  }
}

void Scheduler::plan_step(Plan& plan) {
  stepped_.clear();
  // Sequences on the same context next to each other: each run of them shares one attention
  // call over the context's KV.
  std::stable_sort(active_.begin(), active_.end(), [](const auto& a, const auto& b) {
    return a->job->context->key < b->job->context->key;
  });
  int budget = opt_.step_tokens;
  for (const auto& s : active_) budget -= s->decoding ? 1 : 0;
  int row = 0;
  for (const auto& sp : active_) {
    Sequence& s = *sp;
    int n = 1;
    if (!s.decoding) {
      n = static_cast<int>(
          std::min<int64_t>(static_cast<int64_t>(s.todo.size()), std::max(budget, 0)));
      if (n == 0 && row == 0) n = 1;  // always make progress
      if (n == 0) continue;
      budget -= n;
    }
    // Room for these rows in the sequence's own KV: double it when full.
    const int64_t want = s.kv->size() + n;
    if (want > s.kv->capacity()) {
      const int64_t grown = std::max<int64_t>(2 * s.kv->capacity(), want);
      std::vector<size_t> need(comm_.size(), 0);
      need[0] = sequence_bytes(grown, s.kv->type()) - s.kv->bytes();
      if (!make_room(need, plan, s.job->context.get())) {
        s.job->push(s.final_text());
        end_sequence(s, "length");
        continue;
      }
      s.kv->grow(grown);
    }
    StepSeq st;
    st.sequence = s.key;
    st.context = s.job->context->key;
    st.first_pos = static_cast<int64_t>(s.job->context->tokens.size()) + s.kv->size();
    st.tokens.assign(s.todo.begin(), s.todo.begin() + n);
    plan.step.push_back(std::move(st));
    row += n;
    stepped_.push_back({&s, row - 1, n});
  }
  reap();
}

void Scheduler::after_step(const std::vector<float>& hidden) {
  const ModelConfig& c = b_.config();
  std::vector<float> rows;
  std::vector<Sequence*> sampling;
  for (const Stepped& st : stepped_) {
    Sequence& s = *st.seq;
    // Tokens of the query that ran; the rest waits for the next steps. A sequence whose last
    // query token (or last generated token) ran chooses its next token from that row's logits.
    s.todo.erase(s.todo.begin(), s.todo.begin() + st.rows);
    if (!s.todo.empty()) continue;
    const float* h = hidden.data() + static_cast<size_t>(st.last_row) * c.d_model;
    rows.insert(rows.end(), h, h + c.d_model);
    sampling.push_back(&s);
  }
  if (sampling.empty()) return;
  std::vector<float> logits(sampling.size() * static_cast<size_t>(c.vocab_size));
  b_.logits(rows.data(), static_cast<int>(sampling.size()), logits.data());
  const double now = steady_now();
  for (size_t k = 0; k < sampling.size(); ++k) {
    Sequence& s = *sampling[k];
    s.decoding = true;
    const int id = s.sampler.sample(logits.data() + k * c.vocab_size, c.vocab_size);
    if (s.generated == 0 && !s.first_token_seen) {
      s.first_token_seen = true;
      metrics_.ttft_us_sum += micros(now - s.job->submitted);
      metrics_.ttft_count++;
    }
    if (s.job->top_logprobs >= 0) {
      const float* l = logits.data() + k * c.vocab_size;
      s.job->push_token({id, token_logprob(l, c.vocab_size, id),
                         top_logprobs(l, c.vocab_size, s.job->top_logprobs)});
    }
    s.sampler.accept(id);
    if (tok_.is_eog(id)) {  // the end token is not part of the answer
      s.job->push(s.final_text());
      end_sequence(s, "stop");
      continue;
    }
    ++s.generated;
    // A token past the tokenizer's vocab (a model with padded embeddings) has no text.
    s.job->push(s.stop.push(id < tok_.vocab_size() ? s.text.push(id) : std::string()));
    if (s.stop.stopped()) {
      end_sequence(s, "stop");
    } else if (s.generated >= s.job->max_tokens) {
      s.job->push(s.final_text());
      end_sequence(s, "length");
    } else {
      s.todo.push_back(id);
    }
  }
  reap();
}

void Scheduler::end_sequence(Sequence& s, const std::string& reason) {
  if (s.ended) return;
  s.ended = true;
  Usage u;
  u.prompt = static_cast<int64_t>(s.job->context->tokens.size() + s.job->query.size());
  u.completion = s.generated;
  u.cached = s.job->hit ? static_cast<int64_t>(s.job->context->tokens.size()) : 0;
  if (s.job->cancelled()) {
    metrics_.requests_cancelled++;
  } else {
    s.job->finish(reason, u);
    metrics_.requests_ok++;
    metrics_.prompt_tokens += u.prompt;
    metrics_.completion_tokens += u.completion;
    metrics_.cached_tokens += u.cached;
  }
  s.kv.reset();
  registry_.release(s.job->context);
}

void Scheduler::reap() {
  active_.erase(
      std::remove_if(active_.begin(), active_.end(), [](const auto& s) { return s->ended; }),
      active_.end());
}

void Scheduler::update_gauges() {
  metrics_.queue_depth = queued_.load();
  metrics_.active_sequences = static_cast<int64_t>(active_.size());
  int64_t ready = 0;
  registry_.with_all([&](const auto& all) {
    for (const auto& [key, e] : all) ready += e->state == ContextEntry::State::Ready ? 1 : 0;
  });
  metrics_.contexts_ready = ready;
  const std::vector<size_t> used = used_bytes();
  int64_t worst_used = 0, least_free = -1;
  for (int r = 0; r < comm_.size(); ++r) {
    worst_used = std::max<int64_t>(worst_used, static_cast<int64_t>(used[r]));
    const int64_t free = static_cast<int64_t>(budget_[r]) - static_cast<int64_t>(used[r]);
    least_free = least_free < 0 ? free : std::min(least_free, free);
  }
  metrics_.kv_bytes_used = worst_used;
  metrics_.kv_bytes_free = std::max<int64_t>(least_free, 0);
}

void Scheduler::run(const std::atomic<int>& stop) {
  const bool many = comm_.size() > 1;
  std::vector<float> hidden;
  for (;;) {
    const int signals = stop.load();
    take_intake(signals > 0);
    // A running sequence whose client left, or every one on a second signal, ends here.
    for (const auto& s : active_) {
      if (s->job->cancelled() || signals >= 2) {
        s->job->push(s->final_text());
        end_sequence(*s, "length");
      }
    }
    reap();

    Plan p1;
    plan_phase1(p1);
    if (!p1.empty()) {
      if (many) send_plan(comm_, p1);
      const double t0 = steady_now();
      runner_.run(p1, nullptr, nullptr);
      metrics_.phase1_us += micros(steady_now() - t0);
      for (uint64_t key : runner_.encoded()) {
        if (!encoding_ || encoding_->key != key) continue;
        {
          std::lock_guard<std::mutex> lock(registry_.mutex());
          encoding_->state = ContextEntry::State::Ready;
          encoding_->phase1_seconds = steady_now() - encode_started_;
        }
        metrics_.contexts_encoded++;
        metrics_.phase1_tokens += encoding_->tokens.size();
        std::fprintf(stderr, "serve: encoded %s in %.2f s\n", encoding_->id.c_str(),
                     encoding_->phase1_seconds);
        encoding_.reset();
      }
    }

    Plan p2;
    admit(p2);
    plan_step(p2);
    if (!p2.empty()) {
      if (many) send_plan(comm_, p2);
      const double t0 = steady_now();
      runner_.run(
          p2,
          [&](uint64_t key) -> KvCache* {
            for (const auto& s : active_)
              if (s->key == key) return s->kv.get();
            return nullptr;
          },
          &hidden);
      if (!p2.step.empty()) {
        after_step(hidden);
        metrics_.steps++;
        const auto n = static_cast<int64_t>(p2.step.size());
        metrics_.step_sequences += static_cast<uint64_t>(n);
        if (n > metrics_.step_sequences_max) metrics_.step_sequences_max = n;  // one writer
      }
      metrics_.phase2_us += micros(steady_now() - t0);
    }
    update_gauges();

    const bool idle = p1.empty() && p2.empty();
    if (idle && signals > 0 && active_.empty() && !encoding_) break;
    if (idle) {
      std::unique_lock<std::mutex> lock(intake_mu_);
      intake_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return !intake_.empty(); });
    }
  }
  if (many) {
    Plan bye;
    bye.shutdown = true;
    send_plan(comm_, bye);
  }
}

}  // namespace starattn::serve
