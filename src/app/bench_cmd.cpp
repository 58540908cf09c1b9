#include "app/bench_cmd.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "app/bench_batch.h"
#include "app/common.h"
#include "app/kv_report.h"
#include "app/ranks.h"
#include "backend/cpu/blas_core.h"
#include "backend/cpu/quant_kernels.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "starattn/error.h"

namespace starattn::app {
namespace {

struct BenchArgs {
  std::string model;
  std::vector<int> prefill = {512, 2048, 8000};
  int decode = 64;
  int query = 1;
  int repeats = 3;
  int threads = 0;
  std::string device = "cpu";
  bool json = false;
  RunConfig run;
  ContextFlags context_flags;
  std::vector<int> sequences;  // --sequences: concurrent questions over one context
  std::string weights_type = "native";
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The machine's fp32 GEMM ceiling as OpenBLAS reaches it with its own threads on every core:
// median of square sgemms, GFLOP/s. The forward pass itself runs OpenBLAS single-threaded inside
// OpenMP threads (backend/cpu/threads.h), so it is set back afterwards.
double sgemm_gflops(int n, int repeats) {
  openblas_set_num_threads(omp_get_max_threads());
  std::vector<float> a(static_cast<size_t>(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size());
  auto once = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
  };
  once();  // warm-up: thread pool start, page faults
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const double t0 = now_seconds();
    once();
    t.push_back(now_seconds() - t0);
  }
  openblas_set_num_threads(1);
  return 2.0 * n * n * static_cast<double>(n) / median(t) / 1e9;
}

// Model FLOPs of a causal prefill of n tokens (logits of the last token only):
// 2 * matmul params * n for the projections, 2 * n^2 * q_dim per layer for causal attention.
double prefill_flops(const ModelConfig& c, int64_t n) {
  const double per_layer = static_cast<double>(c.d_model) * (2.0 * c.q_dim() + 2.0 * c.kv_dim()) +
                           3.0 * c.d_model * static_cast<double>(c.d_ffn);
  const double lm_head = static_cast<double>(c.d_model) * c.vocab_size;
  return 2.0 * per_layer * c.n_layers * n + 2.0 * lm_head +
         2.0 * static_cast<double>(n) * n * c.q_dim() * c.n_layers;
}

int bench_on_rank(const BenchArgs& a, Comm& comm) {
  const bool root = comm.rank() == 0;
  set_threads(a.threads, comm);
  std::unique_ptr<LoadedModel> lm;
  std::unique_ptr<Backend> backend;
  on_all_ranks(comm, [&] {
    SA_CHECK(a.repeats >= 1, "--repeats must be >= 1");
    SA_CHECK(a.decode >= 0, "--decode must be >= 0");
    SA_CHECK(a.query >= 1, "--query must be >= 1");
    for (int s : a.sequences) SA_CHECK(s >= 1 && s <= 1024, "--sequences must be in [1, 1024]");
    SA_CHECK(!a.prefill.empty(), "--prefill needs at least one length");
    for (int n : a.prefill)
      SA_CHECK(n > a.query, "--prefill size ", n, " must exceed --query (", a.query, ")");
    a.run.check();  // -b/-a/--chunk
    check_device(a.device, a.run.kv_type);
    lm = load_model_and_tokenizer(a.model, "", a.weights_type);
    for (int n : a.prefill)
      SA_CHECK(n + a.decode <= lm->model.config.max_positions, "--prefill size ", n, " must be in ",
               a.query + 1, "..", lm->model.config.max_positions - a.decode);
    for (int n : a.prefill) a.run.resolved(n - a.query, comm.size());
    backend = make_backend(a.device, *lm, comm);
  });
  const ModelConfig& cfg = lm->model.config;

  std::mt19937 rng(7);  // same seed on every rank: the same random tokens everywhere
  std::uniform_int_distribution<int> tok(0, cfg.vocab_size - 1);

  // The CPU's ceiling is OpenBLAS's sgemm, measured here; a GPU's is printed by its own
  // benchmarks (bench/), so on a GPU the last column is the model's TFLOP/s instead.
  const bool on_cpu = backend->act_dtype() == DType::F32;
  const double gemm = on_cpu ? sgemm_gflops(2048, 5) : 0.0;
  nlohmann::json out;
  if (on_cpu) {
    out["sgemm_gflops"] = gemm;
    out["cpu_kernels"] = cpu::quant::kernels().name;  // the quantised-weight kernels' build
  }
  out["blas"] = cpu::blas_description();
  out["backend"] = backend->name();
  out["weights_type"] = lm->weights_type;
  out["weight_bytes"] = backend->weight_bytes();
  out["weight_storage"] = backend->weight_storage();
  out["attn"] = attn_mode_name(a.run.attn);
  out["ranks"] = comm.size();
  {
    const int chunk = a.run.chunk > 0 ? a.run.chunk : backend->preferred_chunk();
    out["kv"] = kv_memory_json(*backend, a.run.kv_type, chunk);
    if (root) {
      const nlohmann::json& kv = out["kv"];
      std::fprintf(stderr,
                   "KV cache %s: %lld bytes/token; longest context that fits on this device "
                   "(rank): bf16 %lld, fp8 %lld tokens\n",
                   kv_type_name(a.run.kv_type), kv["kv_bytes_per_token"].get<long long>(),
                   kv["max_context_tokens"]["bf16"].get<long long>(),
                   kv["max_context_tokens"]["fp8"].get<long long>());
    }
  }
  if (root) {
    if (on_cpu)
      std::fprintf(stderr, "sgemm 2048^3: %.1f GFLOP/s (%d threads; %s); quantised kernels %s\n",
                   gemm, omp_get_max_threads(), cpu::blas_description().c_str(),
                   cpu::quant::kernels().name);
    std::fprintf(stderr, "%s; attn %s, %d rank(s); weights %s\n", backend->name().c_str(),
                 attn_mode_name(a.run.attn), comm.size(), describe_weights(*backend).c_str());
    if (!a.json)
      std::printf("%-10s %8s %12s %12s %10s\n", "phase", "tokens", "time (s)", "tok/s",
                  on_cpu ? "% sgemm" : "TFLOP/s");
  }
  // "Prefill" = phase 1 over n - query context tokens, then the query (phase 2): with one rank,
  // dense and --query 1 this is an ordinary prefill, and its FLOPs are those of a dense causal
  // prefill of n tokens. Phase 1 is timed to its slowest rank; the prefill to the first token.
  const std::unique_ptr<TensorComm> tensors = connect_ranks(comm, *backend);
  std::vector<double> decode_t;
  double decode_comm = 0;
  for (int n : a.prefill) {
    std::vector<int> ids(n);
    for (int& x : ids) x = tok(rng);
    const std::vector<int> ctx(ids.begin(), ids.end() - a.query);
    const std::vector<int> query(ids.end() - a.query, ids.end());
    const RunConfig rc = a.run.resolved(n - a.query, comm.size());
    std::vector<double> t, t1;
    for (int r = 0; r < a.repeats; ++r) {
      Engine e(*backend, comm, rc, n - a.query, a.query + a.decode, tensors.get());
      comm.barrier();
      const double t0 = now_seconds();
      e.encode_context(ctx);
      comm.barrier();
      t1.push_back(now_seconds() - t0);
      e.run(query);
      comm.barrier();
      t.push_back(now_seconds() - t0);
      if (r == 0 && n == a.prefill.back()) {
        const double c0 = e.comm_seconds();
        for (int i = 0; i < a.decode; ++i) {
          const double s0 = now_seconds();
          e.run({tok(rng)});
          decode_t.push_back(now_seconds() - s0);
        }
        decode_comm = a.decode > 0 ? (e.comm_seconds() - c0) / a.decode : 0.0;
      }
    }
    const double sec = median(t), phase1 = median(t1);
    const double gflops = prefill_flops(cfg, n) / sec / 1e9;
    out["prefill"].push_back({{"tokens", n},
                              {"query_tokens", a.query},
                              {"seconds", sec},
                              {"phase1_seconds", phase1},
                              {"tok_s", n / sec},
                              {"dense_gflops", gflops}});
    if (on_cpu) out["prefill"].back()["fraction_of_sgemm"] = gflops / gemm;
    if (root && !a.json) {
      if (on_cpu)
        std::printf("%-10s %8d %12.3f %12.1f %9.0f%%   (phase 1 %.3f s)\n", "prefill", n, sec,
                    n / sec, 100.0 * gflops / gemm, phase1);
      else
        std::printf("%-10s %8d %12.3f %12.1f %10.1f   (phase 1 %.3f s)\n", "prefill", n, sec,
                    n / sec, gflops / 1e3, phase1);
    }
  }
  if (!decode_t.empty()) {
    const double sec = median(decode_t);
    out["decode"] = {{"context", a.prefill.back()},
                     {"tokens", a.decode},
                     {"ms_per_token", sec * 1e3},
                     {"comm_ms_per_token", decode_comm * 1e3},
                     {"tok_s", 1.0 / sec}};
    if (root && !a.json)
      std::printf(
          "%-10s %8d %12.4f %12.1f %10s   (median per token after %d tokens; "
          "%.3f ms/token moving tensors)\n",
          "decode", a.decode, sec, 1.0 / sec, "-", a.prefill.back(), decode_comm * 1e3);
  }
  if (!a.sequences.empty()) {
    BatchBenchArgs ba;
    ba.context = a.prefill.back() - a.query;
    ba.query = a.query;
    ba.decode = a.decode;
    ba.sequences = a.sequences;
    ba.run = a.run;
    ba.json = a.json;
    bench_sequences(*backend, comm, *tensors, ba, out);
  }
  out["tensor_comm"] = tensors->name();
  if (root && a.json) std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

std::function<int()> add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure prefill and decode speed on random tokens, next to the sgemm rate.");
  add_model_option(*cmd, a->model, /*random_ok=*/true);
  cmd->add_option("--prefill", a->prefill, "Prompt lengths to time (tokens)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--decode", a->decode, "Generated tokens to time (0 = skip)")
      ->capture_default_str();
  cmd->add_option("--query", a->query,
                  "Query tokens: the last tokens of each prompt run as phase 2, after phase 1")
      ->capture_default_str();
  cmd->add_option("--sequences", a->sequences,
                  "Also time S concurrent questions (--query tokens each) over one context (the "
                  "last --prefill), decoded together as the server does, for each S listed")
      ->delimiter(',');
  cmd->add_option("--repeats", a->repeats, "Runs per prefill length; the median is reported")
      ->capture_default_str();
  add_threads_and_device_options(*cmd, a->threads, a->device);
  cmd->add_flag("--json", a->json, "Print the results as one JSON object");
  add_weights_type_option(*cmd, a->weights_type);
  add_context_options(*cmd, a->context_flags, &a->run);
  return [a]() {
    a->context_flags.apply(a->run);
    return run_on_default_comm([&](Comm& comm) { return bench_on_rank(*a, comm); });
  };
}

}  // namespace starattn::app
