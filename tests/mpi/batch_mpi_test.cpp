// Batched phase 2 (the server's path) against each sequence run alone (the generate path), across
// MPI ranks (ctest runs it with 1-3 ranks). Rank 0 drives the plans over the real control plane
// (send_plan / run_worker); the other ranks only follow them.
//   S sequences in one batch == each alone: greedy tokens equal, logits within fp32 rounding;
//   S = 1, 3 and 8, different query lengths, sequences joining and leaving mid-batch, two
//   contexts in one batch, star (and dense, ring) contexts;
//   a context with no rows on some rank (fewer blocks than ranks); contexts and sequences with an
//   fp8 KV cache.
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "random_model.h"
#include "serve/plan_runner.h"
#include "starattn/error.h"
#include "test_util.h"

using namespace starattn;
using serve::Plan;

namespace {

int passed = 0, failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++passed;
  } else {
    ++failed;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

struct Seq {
  int context;             // index into the test's contexts
  std::vector<int> query;  // its question
  int start, stop;         // the steps it joins at, and leaves after (-1: runs to the end)
};

constexpr int kNew = 6;  // greedy tokens per sequence

RunConfig star_rc() {
  RunConfig rc;
  rc.attn = AttnMode::Star;
  rc.chunk = 64;
  return rc;
}

// Each sequence alone, on every rank, through Engine: its greedy tokens and the logits that chose
// them (rank 0).
std::vector<int> alone(Backend& b, Comm& comm, TensorComm& t, const RunConfig& rc,
                       const std::vector<int>& ctx, const std::vector<int>& query,
                       std::vector<std::vector<float>>* logits) {
  Engine e(b, comm, rc.resolved(static_cast<int64_t>(ctx.size()), comm.size()),
           static_cast<int64_t>(ctx.size()), static_cast<int64_t>(query.size()) + kNew, &t);
  e.encode_context(ctx);
  std::vector<int> out;
  std::vector<float> l = e.run(query);
  for (int i = 0; i < kNew; ++i) {
    int id = comm.rank() == 0 ? argmax(l.data(), b.config().vocab_size) : 0;
    comm.broadcast(&id, sizeof id, 0);
    out.push_back(id);
    if (comm.rank() == 0) logits->push_back(l);
    l = e.run({id});
  }
  return out;
}

// Rank 0: the batched run, driving every rank with plans. Returns each sequence's greedy tokens
// and the logits that chose them.
std::vector<std::vector<int>> batched(Backend& b, Comm& comm, serve::PlanRunner& runner,
                                      const std::vector<RunConfig>& rcs,
                                      const std::vector<std::vector<int>>& contexts,
                                      const std::vector<Seq>& seqs,
                                      std::vector<std::vector<std::vector<float>>>* logits) {
  const ModelConfig& c = b.config();
  auto send_run = [&](const Plan& p, const std::map<uint64_t, KvCache*>& own,
                      std::vector<float>* hidden) {
    if (comm.size() > 1) serve::send_plan(comm, p);
    runner.run(p, [&](uint64_t s) { return own.at(s); }, hidden);
  };
  // Phase 1 of every context, interleaved as the scheduler does (one call each per plan).
  Plan enc;
  for (size_t i = 0; i < contexts.size(); ++i)
    enc.encode.push_back(
        {100 + i, rcs[i].resolved(static_cast<int64_t>(contexts[i].size()), comm.size()),
         contexts[i]});
  std::vector<uint64_t> left;
  for (size_t i = 0; i < contexts.size(); ++i) left.push_back(100 + i);
  bool first = true;
  while (!left.empty()) {
    Plan p = first ? enc : Plan{};
    first = false;
    p.advance = left;
    send_run(p, {}, nullptr);
    for (uint64_t done : runner.encoded()) std::erase(left, done);
  }
  // Phase 2: steps over whichever sequences are running.
  std::vector<std::unique_ptr<KvCache>> kv(seqs.size());
  std::vector<std::vector<int>> out(seqs.size()), todo(seqs.size());
  logits->assign(seqs.size(), {});
  for (int step = 0;; ++step) {
    Plan p;
    std::map<uint64_t, KvCache*> own;
    std::vector<std::pair<size_t, int>> rows;  // (sequence, its last row)
    int row = 0;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const Seq& s = seqs[i];
      const bool running = step >= s.start && (s.stop < 0 || step <= s.stop) &&
                           static_cast<int>(out[i].size()) < kNew;
      if (!running) continue;
      if (step == s.start) {
        // A sequence's own KV has its context's type, as the server makes it.
        kv[i] = std::make_unique<KvCache>(b, c.n_layers, c.kv_dim(),
                                          static_cast<int64_t>(s.query.size()) + kNew, 0,
                                          rcs[s.context].kv_type);
        todo[i] = s.query;
      }
      serve::StepSeq st;
      st.sequence = i + 1;
      st.context = 100 + s.context;
      st.first_pos = static_cast<int64_t>(contexts[s.context].size()) + kv[i]->size();
      st.tokens = todo[i];
      p.step.push_back(st);
      own[i + 1] = kv[i].get();
      row += static_cast<int>(todo[i].size());
      rows.push_back({i, row - 1});
    }
    if (p.step.empty()) break;
    std::vector<float> hidden;
    send_run(p, own, &hidden);
    for (auto [i, last] : rows) {
      std::vector<float> l(c.vocab_size);
      b.logits(hidden.data() + static_cast<size_t>(last) * c.d_model, 1, l.data());
      const int id = argmax(l.data(), c.vocab_size);
      out[i].push_back(id);
      (*logits)[i].push_back(std::move(l));
      todo[i] = {id};
    }
  }
  if (comm.size() > 1) {
    Plan bye;
    bye.shutdown = true;
    serve::send_plan(comm, bye);
  }
  return out;
}

void scenario(Backend& b, Comm& comm, TensorComm& t, const std::string& name,
              const std::vector<RunConfig>& rcs, const std::vector<std::vector<int>>& contexts,
              const std::vector<Seq>& seqs) {
  // References first: every rank takes part in each Engine.
  std::vector<std::vector<int>> want;
  std::vector<std::vector<std::vector<float>>> want_logits(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i)
    want.push_back(alone(b, comm, t, rcs[seqs[i].context], contexts[seqs[i].context],
                         seqs[i].query, &want_logits[i]));
  serve::PlanRunner runner(b, comm, t);
  if (comm.rank() != 0) {
    serve::run_worker(runner, comm);
    return;
  }
  std::vector<std::vector<std::vector<float>>> got_logits;
  const auto got = batched(b, comm, runner, rcs, contexts, seqs, &got_logits);
  for (size_t i = 0; i < seqs.size(); ++i) {
    const std::string what = name + ", sequence " + std::to_string(i);
    // A sequence that left early has a prefix of the tokens it would have had.
    const size_t n = got[i].size();
    check(n > 0 && n <= want[i].size() &&
              std::equal(got[i].begin(), got[i].end(), want[i].begin()),
          what + ": batched greedy tokens differ from the sequence alone");
    for (size_t k = 0; k < std::min(n, want_logits[i].size()); ++k) {
      const double e = test::rel_l2(got_logits[i][k], want_logits[i][k]);
      check(e < 1e-4, what + " token " + std::to_string(k) + ": logits rel L2 " +
                          std::to_string(e));
    }
  }
}

}  // namespace

int main() {
  auto comm = make_mpi_comm();
  try {
    const Model m = test::random_model(8, 2, 64, /*bias=*/true, /*tied=*/false, 42);
    CpuBackend b(m.config, m.weights);
    auto t = make_host_tensor_comm(*comm, b);
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> tok(0, m.config.vocab_size - 1);
    auto ids = [&](int n) {
      std::vector<int> v(n);
      for (int& x : v) x = tok(rng);
      return v;
    };
    const std::vector<int> ctx_a = ids(203), ctx_b = ids(150), ctx_small = ids(5);
    RunConfig anchored = star_rc();
    anchored.block_size = 40;  // several blocks a rank, an anchor of 40
    RunConfig ring;
    ring.attn = AttnMode::Ring;
    RunConfig dense;
    dense.attn = AttnMode::Dense;
    scenario(b, *comm, *t, "S=1", {star_rc()}, {ctx_a}, {{0, ids(9), 0, -1}});
    scenario(b, *comm, *t, "S=3, two contexts, joining and leaving", {anchored, star_rc()},
             {ctx_a, ctx_b},
             {{0, ids(7), 0, -1}, {1, ids(1), 0, 3}, {0, ids(13), 2, -1}});
    RunConfig anchored8 = anchored, star8 = star_rc();
    anchored8.kv_type = star8.kv_type = KvType::Fp8;
    scenario(b, *comm, *t, "S=3, fp8 KV", {anchored8, star8}, {ctx_a, ctx_b},
             {{0, ids(7), 0, -1}, {1, ids(1), 0, 3}, {0, ids(13), 2, -1}});
    std::vector<Seq> eight;
    for (int i = 0; i < 8; ++i) eight.push_back({i % 2, ids(1 + 3 * i), i / 3, -1});
    scenario(b, *comm, *t, "S=8, dense and ring contexts", {dense, ring}, {ctx_a, ctx_b}, eight);
    // One block of 5 tokens: ranks past the first hold no row of it.
    scenario(b, *comm, *t, "a context on rank 0 only", {star_rc()}, {ctx_small},
             {{0, ids(4), 0, -1}, {0, ids(2), 1, -1}});
  } catch (const Error& e) {
    comm->abort_all(e.what(), 1);
  }
  int bad = failed;
  std::vector<int> all(comm->size());
  comm->allgather(&bad, all.data(), sizeof bad);
  int total = 0;
  for (int x : all) total += x;
  if (comm->rank() == 0)
    std::printf("batch_mpi_test on %d rank(s): %d passed, %d failed\n", comm->size(), passed,
                total);
  return total == 0 ? 0 : 1;
}
