// The whole model on one GPU: the random-weight Llama-3.1-8B shape (model/config.h), dense prefill
// of N tokens and decode steps over an N-token context, through the Engine as `starattn` runs them.
//   prefill FLOPs = 2 * 6.98e9 * N + 262144 * N^2  (layer GEMMs + causal attention)
//   decode bytes  = weights (16.06 GB) + KV (2 * 32 * N * 1024 * 2) per token
// Ceilings measured in the same process: a cuBLAS bf16 8192^3 GEMM and a 2 GiB device copy.
// CUDA events on the backend's stream, warm-up first, median of repeats.
// Usage: model_bench [--tokens N] [--steps S] [--weights bf16|q8_0|q4_k] [--out file]
//                    [--gemv-chain]
// `file` gets "name|ms|rate|unit" lines for hf_baseline.py's side-by-side table. --weights q8_0 /
// q4_k makes the random matrices GGUF blocks of that type (the decode bytes are then the blocks').
// --gemv-chain measures the copy ceiling and a decode step's bf16 GEMVs alone (gemv_chain).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/quant_gemv.h"
#include "backend/cuda/random_fill.h"
#include "backend/cuda/rmsnorm.h"
#include "backend/cuda/rope.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "model/config.h"
#include "starattn/error.h"

namespace starattn {
namespace {

struct Row {
  std::string name;
  double ms, rate;
  std::string unit;
};

class Timer {
 public:
  explicit Timer(cudaStream_t s) : s_(s) {
    SA_CUDA(cudaEventCreate(&a_));
    SA_CUDA(cudaEventCreate(&b_));
  }
  ~Timer() {
    (void)cudaEventDestroy(a_);
    (void)cudaEventDestroy(b_);
  }
  // Milliseconds of `fn` on the stream: median of `reps` after `warm` untimed runs. `setup` runs
  // before each, untimed.
  double median_ms(const std::function<void()>& fn, int warm, int reps,
                   const std::function<void()>& setup = nullptr) {
    std::vector<float> t;
    for (int i = 0; i < warm + reps; ++i) {
      if (setup) setup();
      SA_CUDA(cudaStreamSynchronize(s_));
      SA_CUDA(cudaEventRecord(a_, s_));
      fn();
      SA_CUDA(cudaEventRecord(b_, s_));
      SA_CUDA(cudaEventSynchronize(b_));
      float ms = 0;
      SA_CUDA(cudaEventElapsedTime(&ms, a_, b_));
      if (i >= warm) t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }

 private:
  cudaStream_t s_;
  cudaEvent_t a_, b_;
};

class NoAttention : public AttentionHook {
 public:
  void attend(int, int, const void*, const void*, const void*, void*) override {}
};

__nv_bfloat16* random_bf16(size_t count, uint64_t seed, cudaStream_t s) {
  __nv_bfloat16* p = nullptr;
  SA_CUDA(cudaMalloc(&p, count * 2));
  cuda::RandomFillParams f;
  f.x_bf16 = p;
  f.count = static_cast<int64_t>(count);
  f.seed = seed;
  f.half_width = 0.05f;
  cuda::random_fill(f, s);
  return p;
}

// Each piece of one layer alone, at the prefill shapes (n tokens; the FFN in kFfnRows chunks) and
// at the decode shapes (1 row, ours vs cuBLAS), with the whole forward's share of each.
void breakdown(int n, Timer& t, cudaStream_t s, double copy_tbs, GgmlType weights) {
  const ModelConfig c = llama31_8b_config();
  const int d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), f = c.d_ffn, L = c.n_layers;
  const int nf = cuda::kFfnRows, chunks = (n + nf - 1) / nf;
  // x: every GEMM input and the q|k|v output; y: the qkv GEMM output and the swiglu input.
  __nv_bfloat16* x = random_bf16(size_t{1} * n * (q + 2 * kv), 1, s);
  __nv_bfloat16* w = random_bf16(size_t{1} * c.vocab_size * d, 2, s);
  __nv_bfloat16* y = random_bf16(size_t{1} * n * (q + 2 * kv), 3, s);
  float* acc = nullptr;
  SA_CUDA(cudaMalloc(&acc, size_t{4} * n * d));
  SA_CUDA(cudaMemsetAsync(acc, 0, size_t{4} * n * d, s));
  cuda::Gemm gemm(s);
  std::printf("\n%-44s %9s %9s %-8s %10s\n", "one layer's pieces", "ms", "rate", "", "x forward");
  const auto gemm_row = [&](const char* name, int rows, int in, int out, bool fp32, int times) {
    cuda::LinearParams p;
    p.x = x;
    p.x_stride = in;
    p.w = w;
    p.n = rows;
    p.in = in;
    p.out = out;
    p.y_stride = out;
    if (fp32) {
      p.y_f32 = acc;
      p.accumulate = true;
    } else {
      p.y_bf16 = y;
    }
    if (rows > cuda::kGemvMaxRows) {
      const double ms = t.median_ms([&] { gemm.linear(p); }, 2, 5);
      std::printf("%-44s %9.3f %9.1f %-8s %8.1f ms\n", name, ms,
                  2.0 * rows * in * double(out) / (ms * 1e-3) / 1e12, "TFLOP/s", ms * times);
      return;
    }
    const double bytes = 2.0 * in * out;
    const double ours = t.median_ms([&] { gemm.linear(p); }, 5, 20);
    const double cublas = t.median_ms([&] { gemm.linear_cublas(p); }, 5, 20);
    std::printf("%-44s %9.3f %9.2f %-8s %8.2f ms  (cuBLAS %.3f ms, %.2f TB/s; copy %.2f)\n", name,
                ours, bytes / (ours * 1e-3) / 1e12, "TB/s", ours * times, cublas,
                bytes / (cublas * 1e-3) / 1e12, copy_tbs);
  };
  gemm_row("prefill qkv GEMM (bf16 out)", n, d, q + 2 * kv, false, L);
  gemm_row("prefill o GEMM (+= fp32)", n, q, d, true, L);
  gemm_row("prefill gate|up GEMM per chunk (bf16 out)", std::min(n, nf), d, 2 * f, false,
           L * chunks);
  gemm_row("prefill down GEMM per chunk (+= fp32)", std::min(n, nf), f, d, true, L * chunks);
  {
    float* wn = nullptr;
    SA_CUDA(cudaMalloc(&wn, size_t{4} * d));
    SA_CUDA(cudaMemsetAsync(wn, 0, size_t{4} * d, s));
    cuda::RmsNormParams p;
    p.x = acc;
    p.w = wn;
    p.y_bf16 = y;
    p.n = n;
    p.d = d;
    const double ms = t.median_ms([&] { cuda::rmsnorm(p, s); }, 2, 5);
    std::printf("%-44s %9.3f %9.2f %-8s %8.1f ms\n", "prefill rmsnorm", ms,
                6.0 * n * d / (ms * 1e-3) / 1e12, "TB/s", ms * 2 * L);
    SA_CUDA(cudaFree(wn));
  }
  {
    int* pos = nullptr;
    float *inv = nullptr, *cs = nullptr, *sn = nullptr;
    SA_CUDA(cudaMalloc(&pos, size_t{4} * n));
    SA_CUDA(cudaMemsetAsync(pos, 0, size_t{4} * n, s));
    SA_CUDA(cudaMalloc(&inv, 4 * 64));
    SA_CUDA(cudaMemsetAsync(inv, 0, 4 * 64, s));
    SA_CUDA(cudaMalloc(&cs, size_t{4} * n * 64));
    SA_CUDA(cudaMalloc(&sn, size_t{4} * n * 64));
    cuda::rope_table({pos, inv, cs, sn, n, 64}, s);
    cuda::QkvRopeParams p;
    p.qkv = y;
    p.qkv_stride = q + 2 * kv;
    p.cos = cs;
    p.sin = sn;
    p.q = x;
    p.k = x + size_t{1} * n * q;
    p.v = p.k + size_t{1} * n * kv;
    p.n = n;
    p.n_heads = c.n_heads;
    p.n_kv_heads = c.n_kv_heads;
    p.head_dim = c.head_dim;
    const double ms = t.median_ms([&] { cuda::qkv_rope(p, s); }, 2, 5);
    std::printf("%-44s %9.3f %9.2f %-8s %8.1f ms\n", "prefill qkv bias+rope+split", ms,
                4.0 * n * (q + 2 * kv) / (ms * 1e-3) / 1e12, "TB/s", ms * L);
    for (void* ptr : {(void*)pos, (void*)inv, (void*)cs, (void*)sn}) SA_CUDA(cudaFree(ptr));
  }
  {
    const int m = std::min(n, nf);
    const double ms = t.median_ms([&] { cuda::swiglu({y, 2 * f, x, m, f}, s); }, 2, 5);
    std::printf("%-44s %9.3f %9.2f %-8s %8.1f ms\n", "prefill swiglu per chunk", ms,
                6.0 * m * f / (ms * 1e-3) / 1e12, "TB/s", ms * L * chunks);
  }
  gemm_row("decode qkv GEMV", 1, d, q + 2 * kv, false, L);
  gemm_row("decode o GEMV (+= fp32)", 1, q, d, true, L);
  gemm_row("decode gate|up GEMV", 1, d, 2 * f, false, L);
  gemm_row("decode down GEMV (+= fp32)", 1, f, d, true, L);
  gemm_row("decode lm_head GEMV (fp32 out)", 1, d, c.vocab_size, true, 1);
  if (weights != GgmlType::BF16) {  // the same decode shapes with the matrices in GGUF blocks
    const size_t blocks = size_t{1} * c.vocab_size * d / ggml_block_elems(weights);
    uint8_t* wq = nullptr;
    SA_CUDA(cudaMalloc(&wq, blocks * ggml_block_bytes(weights)));
    cuda::random_blocks(weights, wq, static_cast<int64_t>(blocks), 7, s);
    const auto quant_row = [&](const char* name, int in, int out, bool fp32, int times) {
      cuda::LinearParams p;
      p.x = x;
      p.x_stride = in;
      p.wq = wq;
      p.wq_type = weights;
      p.wq_row_bytes = static_cast<int64_t>(ggml_row_bytes(weights, in));
      p.n = 1;
      p.in = in;
      p.out = out;
      p.y_stride = out;
      if (fp32) {
        p.y_f32 = acc;
        p.accumulate = true;
      } else {
        p.y_bf16 = y;
      }
      const double bytes = double(p.wq_row_bytes) * out;
      const double ms = t.median_ms([&] { gemm.linear(p); }, 5, 20);
      std::printf("%-44s %9.3f %9.2f %-8s %8.2f ms  (%s blocks; copy %.2f)\n", name, ms,
                  bytes / (ms * 1e-3) / 1e12, "TB/s", ms * times, ggml_type_name(weights),
                  copy_tbs);
    };
    quant_row("decode qkv GEMV, blocks", d, q + 2 * kv, false, L);
    quant_row("decode o GEMV (+= fp32), blocks", q, d, true, L);
    quant_row("decode gate|up GEMV, blocks", d, 2 * f, false, L);
    quant_row("decode down GEMV (+= fp32), blocks", f, d, true, L);
    quant_row("decode lm_head GEMV (fp32 out), blocks", d, c.vocab_size, true, 1);
    SA_CUDA(cudaFree(wq));
  }
  for (void* ptr : {(void*)x, (void*)w, (void*)y, (void*)acc}) SA_CUDA(cudaFree(ptr));
}

// The decode GEMVs of a whole step as they run in one: every layer's q|k|v, o (+= fp32),
// gate|up with SwiGLU and down (+= fp32) over its own bf16 weights (15 GB, so nothing stays in
// L2), then lm_head, recorded as one CUDA graph and replayed (the kernels chain by programmatic
// dependent launch, as in a decode step). Each kind alone over its 32 layers too. The rate is
// weight bytes over time, against the copy ceiling.
void gemv_chain(Timer& t, cudaStream_t s, double copy_tbs) {
  const ModelConfig c = llama31_8b_config();
  const int d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), f = c.d_ffn, L = c.n_layers;
  struct Kind {
    const char* name;
    int in, out, layers;
    bool fp32, swiglu;
    __nv_bfloat16* w;
  };
  Kind kinds[] = {{"q|k|v", d, q + 2 * kv, L, false, false, nullptr},
                  {"o (+= fp32)", q, d, L, true, false, nullptr},
                  {"gate|up + SwiGLU", d, 2 * f, L, false, true, nullptr},
                  {"down (+= fp32)", f, d, L, true, false, nullptr},
                  {"lm_head (fp32)", d, c.vocab_size, 1, false, false, nullptr}};
  kinds[4].fp32 = true;
  for (Kind& k : kinds) k.w = random_bf16(size_t{1} * k.layers * k.in * k.out, 11, s);
  __nv_bfloat16* x = random_bf16(size_t{1} * f, 12, s);
  __nv_bfloat16* y = random_bf16(size_t{1} * 2 * f, 13, s);
  float* acc = nullptr;
  SA_CUDA(cudaMalloc(&acc, size_t{4} * c.vocab_size));
  SA_CUDA(cudaMemsetAsync(acc, 0, size_t{4} * c.vocab_size, s));
  const auto launch = [&](const Kind& k, int layer) {
    cuda::LinearParams p;
    p.x = x;
    p.x_stride = k.in;
    p.w = k.w + size_t{1} * layer * k.in * k.out;
    p.n = 1;
    p.in = k.in;
    p.out = k.out;
    p.y_stride = k.swiglu ? k.out / 2 : k.out;
    if (k.fp32) {
      p.y_f32 = acc;
      p.accumulate = k.layers > 1;
    } else {
      p.y_bf16 = y;
    }
    k.swiglu ? cuda::gemv_swiglu(p, s) : cuda::gemv(p, s);
  };
  const auto replayed_ms = [&](const std::function<void()>& record) {
    cudaGraph_t g = nullptr;
    cudaGraphExec_t ge = nullptr;
    SA_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    record();
    SA_CUDA(cudaStreamEndCapture(s, &g));
    SA_CUDA(cudaGraphInstantiate(&ge, g, 0));
    const double ms = t.median_ms([&] { SA_CUDA(cudaGraphLaunch(ge, s)); }, 3, 15);
    SA_CUDA(cudaGraphExecDestroy(ge));
    SA_CUDA(cudaGraphDestroy(g));
    return ms;
  };
  std::printf("\n%-44s %9s %9s %-8s %8s\n", "decode GEMVs, graph-replayed", "ms", "rate", "",
              "of copy");
  double all_bytes = 0;
  for (const Kind& k : kinds) {
    const double bytes = 2.0 * k.in * k.out * k.layers;
    all_bytes += bytes;
    const double ms = replayed_ms([&] {
      for (int l = 0; l < k.layers; ++l) launch(k, l);
    });
    std::printf("%-30s x%-2d %-10s %9.3f %9.2f %-8s %7.1f%%  (%.1f us a call)\n", k.name, k.layers,
                "", ms, bytes / (ms * 1e-3) / 1e12, "TB/s",
                100 * bytes / (ms * 1e-3) / 1e12 / copy_tbs, 1e3 * ms / k.layers);
  }
  const double ms = replayed_ms([&] {
    for (int l = 0; l < L; ++l)
      for (int i = 0; i < 4; ++i) launch(kinds[i], l);
    launch(kinds[4], 0);
  });
  std::printf("%-44s %9.3f %9.2f %-8s %7.1f%%\n", "a step's GEMVs in order", ms,
              all_bytes / (ms * 1e-3) / 1e12, "TB/s",
              100 * all_bytes / (ms * 1e-3) / 1e12 / copy_tbs);
  for (Kind& k : kinds) SA_CUDA(cudaFree(k.w));
  for (void* ptr : {(void*)x, (void*)y, (void*)acc}) SA_CUDA(cudaFree(ptr));
}

int run(int n, int steps, const char* out_path, GgmlType weights, bool chain_only) {
  cudaDeviceProp prop{};
  SA_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, %.1f GiB\n", prop.name, prop.multiProcessorCount,
              prop.totalGlobalMem / double(1u << 30));
  std::vector<Row> rows;
  cudaStream_t s = nullptr;
  SA_CUDA(cudaSetDevice(0));
  SA_CUDA(cudaStreamCreate(&s));
  Timer ts(s);

  {  // Ceilings: bytes (copy, read + write) and bf16 GEMM rate.
    const size_t bytes = size_t{2} << 30;
    void *a = nullptr, *b = nullptr;
    SA_CUDA(cudaMalloc(&a, bytes));
    SA_CUDA(cudaMalloc(&b, bytes));
    SA_CUDA(cudaMemsetAsync(a, 1, bytes, s));
    const double ms = ts.median_ms(
        [&] { SA_CUDA(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s)); }, 3, 10);
    rows.push_back({"d2d copy 2 GiB (ceiling)", ms, 2.0 * bytes / (ms * 1e-3) / 1e12, "TB/s"});
    SA_CUDA(cudaFree(a));
    SA_CUDA(cudaFree(b));

    const int m = 8192;
    __nv_bfloat16 *x = nullptr, *w = nullptr, *y = nullptr;
    for (auto** p : {&x, &w, &y}) SA_CUDA(cudaMalloc(p, size_t{2} * m * m));
    for (auto* p : {x, w}) {
      cuda::RandomFillParams f;
      f.x_bf16 = p;
      f.count = int64_t{m} * m;
      f.seed = reinterpret_cast<uintptr_t>(p);
      cuda::random_fill(f, s);
    }
    cuda::Gemm gemm(s);
    cuda::LinearParams lp;
    lp.x = x;
    lp.x_stride = m;
    lp.w = w;
    lp.y_bf16 = y;
    lp.y_stride = m;
    lp.n = lp.in = lp.out = m;
    const double gms = ts.median_ms([&] { gemm.linear(lp); }, 3, 10);
    rows.push_back({"cuBLAS bf16 GEMM 8192^3 (ceiling)", gms,
                    2.0 * m * m * double(m) / (gms * 1e-3) / 1e12, "TFLOP/s"});
    for (auto* p : {x, w, y}) SA_CUDA(cudaFree(p));
  }
  const double copy_tbs = rows[0].rate, gemm_tflops = rows[1].rate;
  if (chain_only) {
    std::printf("d2d copy: %.2f TB/s\n", copy_tbs);
    gemv_chain(ts, s, copy_tbs);
    SA_CUDA(cudaStreamDestroy(s));
    return 0;
  }
  breakdown(n, ts, s, copy_tbs, weights);
  gemv_chain(ts, s, copy_tbs);

  CudaBackend b(llama31_8b_config(), 0, 1234, weights);
  std::printf("backend: %s, weights %.2f GB\n", b.name().c_str(), b.weight_bytes() / 1e9);
  const ModelConfig& c = b.config();
  const double embedding_bytes = double(c.vocab_size) * double(ggml_row_bytes(weights, c.d_model));
  Timer tb(b.stream());  // the model's work runs on the backend's stream
  auto comm = make_local_comm();
  std::vector<int> ctx(n);
  for (int i = 0; i < n; ++i) ctx[i] = static_cast<int>((i * 2654435761u) % c.vocab_size);
  const double flops = 2 * 6.98e9 * n + 262144.0 * n * double(n);
  const std::string tag = std::to_string(n / 1024) + "K";

  // Prefill: one Engine per repeat (its KV cache is allocated outside the timed region).
  for (int chunk : {n, 4096}) {
    RunConfig rc;
    rc.attn = AttnMode::Dense;
    rc.chunk = chunk;
    std::unique_ptr<Engine> e;
    const double ms =
        tb.median_ms([&] { e->encode_context(ctx); }, 1, chunk == n ? 3 : 1,
                     [&] {
                       e.reset();
                       e = std::make_unique<Engine>(b, *comm, rc.resolved(n, 1), n, 1);
                     });
    rows.push_back({"prefill dense " + tag + " chunk " + std::to_string(chunk), ms,
                    flops / (ms * 1e-3) / 1e12, "TFLOP/s"});
  }
  {  // The same forward with attention left out: what the GEMMs and small ops cost alone.
    std::vector<int> pos(n);
    for (int i = 0; i < n; ++i) pos[i] = i;
    NoAttention none;
    b.plan_memory(0, n, KvType::Act, 0);  // NoAttention holds no scratch
    const double ms =
        tb.median_ms([&] { b.forward(ctx.data(), pos.data(), n, none, 0, nullptr); }, 1, 2);
    rows.push_back({"prefill " + tag + " without attention", ms,
                    2 * 6.98e9 * n / (ms * 1e-3) / 1e12, "TFLOP/s"});
  }

  // Decode: one token at a time over the n-token context (phase 2, as `generate` runs it), op by
  // op and as a replayed CUDA graph (the default).
  // The third row is `generate`'s greedy path: logits and argmax inside the graph, only the id
  // comes back (the first two copy the logits to the host and pick there, outside the timing).
  for (const int mode : {0, 1, 2}) {
    const bool replay = mode > 0, greedy = mode == 2;
    RunConfig rc;
    rc.attn = AttnMode::Dense;
    rc.chunk = n;
    rc.replay_steps = replay;
    const int warm = 3;
    Engine e(b, *comm, rc.resolved(n, 1), n, warm + steps + 1);
    e.encode_context(ctx);
    std::vector<float> logits;
    int tok = 1;
    // The host picks the next token between steps, outside the timed region.
    const double ms = tb.median_ms(
        [&] {
          if (greedy) {
            tok = e.run_greedy({tok});
          } else {
            logits = e.run({tok});
          }
        },
        warm, steps,
        [&] {
          if (!logits.empty())
            tok = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        });
    // Bytes a step must read: every weight but the embedding table (one row of it), and the KV.
    const double bytes =
        double(b.weight_bytes()) - embedding_bytes + 2.0 * c.n_layers * n * c.kv_dim() * 2;
    const char* how[] = {" (op by op)", " (graph)", " (graph, greedy)"};
    rows.push_back({"decode 1 token @ " + tag + how[mode], ms, bytes / (ms * 1e-3) / 1e12, "TB/s"});
  }

  {  // The same step with attention left out: the GEMVs, small ops and logits alone.
    NoAttention none;
    int tok = 1, pos = n;
    std::vector<float> hidden(c.d_model), logits(c.vocab_size);
    const double ms = tb.median_ms(
        [&] {
          b.forward(&tok, &pos, 1, none, 1, hidden.data());
          b.logits(hidden.data(), 1, logits.data());
        },
        3, steps);
    const double bytes = double(b.weight_bytes()) - embedding_bytes;
    rows.push_back({"decode 1 token without attention", ms, bytes / (ms * 1e-3) / 1e12, "TB/s"});
  }

  std::printf("\n%-40s %10s %10s %-8s %8s\n", "ours", "ms", "rate", "", "roofline");
  for (const Row& r : rows) {
    const double ceiling = r.unit == "TB/s" ? copy_tbs : gemm_tflops;
    std::printf("%-40s %10.3f %10.1f %-8s %7.1f%%\n", r.name.c_str(), r.ms, r.rate, r.unit.c_str(),
                100 * r.rate / ceiling);
  }
  if (out_path) {
    FILE* f = std::fopen(out_path, "w");
    SA_CHECK(f != nullptr, "cannot write ", out_path);
    for (const Row& r : rows)
      std::fprintf(f, "%s|%.6f|%.4f|%s\n", r.name.c_str(), r.ms, r.rate, r.unit.c_str());
    std::fclose(f);
  }
  SA_CUDA(cudaStreamDestroy(s));
  return 0;
}

}  // namespace
}  // namespace starattn

int main(int argc, char** argv) {
  int n = 32768, steps = 32;
  const char* out = nullptr;
  starattn::GgmlType weights = starattn::GgmlType::BF16;
  bool chain_only = false;
  bool ok = true;
  for (int i = 1; i < argc && ok; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (!std::strcmp(a, "--gemv-chain")) {
      chain_only = true;
      continue;
    }
    ok = v != nullptr;
    if (!ok) break;
    ++i;
    if (!std::strcmp(a, "--tokens"))
      n = std::atoi(v);
    else if (!std::strcmp(a, "--steps"))
      steps = std::atoi(v);
    else if (!std::strcmp(a, "--out"))
      out = v;
    else if (!std::strcmp(a, "--weights") && !std::strcmp(v, "q8_0"))
      weights = starattn::GgmlType::Q8_0;
    else if (!std::strcmp(a, "--weights") && !std::strcmp(v, "q4_k"))
      weights = starattn::GgmlType::Q4_K;
    else if (!std::strcmp(a, "--weights") && !std::strcmp(v, "bf16"))
      weights = starattn::GgmlType::BF16;
    else
      ok = false;
  }
  if (!ok) {
    std::fprintf(stderr,
                 "usage: model_bench [--tokens N] [--steps S] [--weights bf16|q8_0|q4_k] "
                 "[--out file] [--gemv-chain]\n");
    return 2;
  }
  try {
    return starattn::run(n, steps, out, weights, chain_only);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "model_bench: %s\n", e.what());
    return 1;
  }
}
