// Star Attention engine invariants across MPI ranks (run by ctest with 1-4 ranks):
//   star on H ranks == star on 1 rank (same B, A, every anchor mode);
//   star with B >= N == dense; ring == dense for uneven lengths;
//   phase 2 merge == one attention over the union of the ranks' KV (ranks with no keys too);
//   every query row sees every rank's last context key; only rank 0 stores query KV.
// Each rank computes the single-process reference itself with a local Comm.
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "backend/cpu/cpu_backend.h"
#include "dist/comm.h"
#include "engine/block_attention.h"
#include "engine/engine.h"
#include "engine/phase2.h"
#include "model/loader.h"
#include "starattn/error.h"

using namespace starattn;

namespace {

int passed = 0, failed = 0;

void check(Comm& comm, bool ok, const std::string& what) {
  // Every rank must agree on the verdict, so one rank's failure fails the test everywhere.
  float bad = ok ? 0.0f : 1.0f;
  comm.allreduce_max(&bad, 1);
  if (bad == 0.0f) {
    ++passed;
  } else {
    ++failed;
    if (!ok)
      std::fprintf(stderr, "FAIL (rank %d of %d): %s\n", comm.rank(), comm.size(), what.c_str());
  }
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) return INFINITY;
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

RunConfig make(AttnMode m, int64_t b = -1, int64_t a = -1, AnchorMode am = AnchorMode::Shared,
               int chunk = 512) {
  RunConfig rc;
  rc.attn = m;
  rc.block_size = b;
  rc.anchor_size = a;
  rc.anchor = am;
  rc.chunk = chunk;
  return rc;
}

// Query logits (every query row, [n_q, vocab]) on rank 0, broadcast so every rank can compare.
std::vector<float> run(Backend& fwd, Comm& comm, const RunConfig& rc, const std::vector<int>& ids,
                       int n_ctx, int64_t* query_kv_rows = nullptr) {
  const std::vector<int> ctx(ids.begin(), ids.begin() + n_ctx);
  const std::vector<int> q(ids.begin() + n_ctx, ids.end());
  Engine e(fwd, comm, rc.resolved(n_ctx, comm.size()), n_ctx, static_cast<int64_t>(q.size()));
  e.encode_context(ctx);
  std::vector<float> logits = e.run_all_logits(q);
  if (query_kv_rows) *query_kv_rows = e.query_kv() ? e.query_kv()->size() : -1;
  broadcast_vector(comm, logits, 0);
  return logits;
}

void engine_invariants(Comm& comm, const std::string& model_dir) {
  const Model m = load_model(model_dir);
  CpuBackend fwd(m.config, m.weights);
  auto local = make_local_comm();
  std::vector<int> ids;
  for (int i = 0; i < 29; ++i) ids.push_back((i * 37 + 11) % m.config.vocab_size);
  const std::string tag = model_dir.substr(model_dir.find_last_of('/') + 1) + " np" +
                          std::to_string(comm.size()) + ": ";

  for (int n_ctx : {3, 7, 20, 24}) {
    const std::vector<float> dense = run(fwd, *local, make(AttnMode::Dense), ids, n_ctx);
    const std::string at = tag + "context " + std::to_string(n_ctx) + ": ";
    check(comm, rel_l2(run(fwd, comm, make(AttnMode::Dense), ids, n_ctx), dense) < 1e-5,
          at + "dense on H ranks == dense on 1");
    check(comm, rel_l2(run(fwd, comm, make(AttnMode::Ring), ids, n_ctx), dense) < 1e-4,
          at + "ring == dense");
    check(comm, rel_l2(run(fwd, comm, make(AttnMode::Star, n_ctx, -1), ids, n_ctx), dense) < 1e-5,
          at + "star with B >= N == dense");
    for (int64_t b : {2, 5, 9}) {
      for (int64_t a : {int64_t{0}, b / 2, b}) {
        const std::string cfg = at + "B " + std::to_string(b) + " A " + std::to_string(a) + ": ";
        const std::vector<float> one =
            run(fwd, *local, make(AttnMode::Star, b, a, AnchorMode::Recompute), ids, n_ctx);
        for (AnchorMode am : {AnchorMode::Recompute, AnchorMode::Shared, AnchorMode::Broadcast}) {
          int64_t qrows = 0;
          const std::vector<float> many =
              run(fwd, comm, make(AttnMode::Star, b, a, am, 3), ids, n_ctx, &qrows);
          check(comm, rel_l2(many, one) < 1e-5,
                cfg + "star on H ranks == star on 1 rank, anchor " + anchor_mode_name(am));
          const int64_t want = comm.rank() == 0 ? static_cast<int64_t>(ids.size()) - n_ctx : -1;
          check(comm, qrows == want, cfg + "only rank 0 stores query KV");
        }
      }
    }
  }
}

// Phase 2 at the hook level: rank r holds a context of its own (empty on rank 1 when there are 3+
// ranks); its last key is the one every query matches best. The merged output must equal one
// attention over the union of all ranks' context plus the causal query KV.
void phase2_union(Comm& comm) {
  Model m;  // attention only: the hook never runs the model's weights
  ModelConfig& c = m.config;
  c.n_layers = 1;
  c.d_model = 16;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  const int H = comm.size(), n_q = 6, kvd = c.kv_dim(), qd = c.q_dim();
  auto ctx_len = [&](int r) { return (H >= 3 && r == 1) ? 0 : 5 + 3 * r; };
  auto value = [](int r, int j, int e) { return std::sin(0.7f * r + 0.3f * j + 0.11f * e); };
  auto key = [&](int r, int j, int e) {
    return j == ctx_len(r) - 1 ? 6.0f : std::cos(1.3f * r + 0.5f * j + 0.17f * e);
  };
  std::vector<float> q(n_q * qd), qk(n_q * kvd), qv(n_q * kvd);
  for (size_t i = 0; i < q.size(); ++i) q[i] = 0.5f + 0.01f * (i % 7);
  for (size_t i = 0; i < qk.size(); ++i) qk[i] = std::sin(0.9f * i), qv[i] = std::cos(0.4f * i);

  CpuBackend backend(m.config, m.weights);
  KvCache mine(backend, 1, kvd, ctx_len(comm.rank())), query(backend, 1, kvd, n_q);
  {
    const int n = ctx_len(comm.rank());
    std::vector<float> k(n * kvd), v(n * kvd);
    for (int j = 0; j < n; ++j)
      for (int e = 0; e < kvd; ++e)
        k[j * kvd + e] = key(comm.rank(), j, e), v[j * kvd + e] = value(comm.rank(), j, e);
    mine.write(0, 0, n, k.data(), v.data());
    mine.commit(n);
  }
  Phase2Attention hook(backend, comm, mine, comm.rank() == 0 ? &query : nullptr);
  std::vector<float> out(n_q * qd, std::numeric_limits<float>::quiet_NaN());
  hook.attend(0, n_q, q.data(), qk.data(), qv.data(), out.data());

  // Reference: causal attention over [all ranks' context rows, query rows] with the queries at
  // the end, which is exactly "context unmasked, query causal".
  int total_ctx = 0;
  for (int r = 0; r < H; ++r) total_ctx += ctx_len(r);
  std::vector<float> k, v;
  for (int r = 0; r < H; ++r)
    for (int j = 0; j < ctx_len(r); ++j)
      for (int e = 0; e < kvd; ++e) k.push_back(key(r, j, e)), v.push_back(value(r, j, e));
  k.insert(k.end(), qk.begin(), qk.end());
  v.insert(v.end(), qv.begin(), qv.end());
  std::vector<float> ref(n_q * qd);
  AttnParams p =
      kv_attn_params(c, q.data(), k.data(), v.data(), ref.data(), nullptr, n_q, total_ctx + n_q);
  p.causal = true;
  p.causal_offset = total_ctx;
  attention_cpu(p);
  check(comm, rel_l2(out, ref) < 1e-5,
        "phase-2 merge over " + std::to_string(H) + " ranks == union");
  // The bug check: with a bottom-right mask, row 0 would miss up to n_q - 1 last keys per rank.
  std::vector<float> buggy(n_q * qd);
  p.causal_offset = total_ctx - (n_q - 1);
  attention_cpu(p);
  check(comm, rel_l2(out, buggy) > 1e-3, "phase-2 result differs from the bottom-right-mask bug");
}

}  // namespace

int main() {
  std::unique_ptr<Comm> comm = make_mpi_comm();
  try {
    const std::string dir = std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/tiny/";
    phase2_union(*comm);
    engine_invariants(*comm, dir + "llama_gqa");
    engine_invariants(*comm, dir + "qwen2_bias");
  } catch (const Error& e) {
    comm->abort_all(e.what(), 1);
  }
  if (comm->rank() == 0) std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
