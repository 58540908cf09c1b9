// What the engine asks a backend to plan for (engine/engine_memory.h) covers what it then holds:
// a CPU backend that counts its live memory runs phase 1 and phase 2 of each attention mode.
#include <gtest/gtest.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "engine/engine_memory.h"
#include "model/loader.h"
#include "test_util.h"

namespace starattn {
namespace {

// Counts the bytes live in its memory (and their peak) and keeps the last plan's total: the KV
// rows it was told of, as KvCache lays them out, plus the scratch.
class CountingBackend : public CpuBackend {
 public:
  using CpuBackend::CpuBackend;
  void plan_memory(int64_t kv_rows, int max_tokens, KvType kv_type, size_t scratch_bytes) override {
    (void)max_tokens;
    planned_kv = static_cast<size_t>(kv_rows) * kv_row_format(kv_type).row_bytes() * 2 *
                 static_cast<size_t>(config().n_layers);
    planned_scratch = scratch_bytes;
  }
  void* alloc(size_t bytes) override {
    void* p = CpuBackend::alloc(bytes);
    if (p) {
      sizes_[p] = bytes;
      live += bytes;
      peak = std::max(peak, live);
    }
    return p;
  }
  void release(void* p) noexcept override {
    const auto it = sizes_.find(p);
    if (it != sizes_.end()) {
      live -= it->second;
      sizes_.erase(it);
    }
    CpuBackend::release(p);
  }

  size_t planned_kv = 0, planned_scratch = 0, live = 0, peak = 0;

 private:
  std::unordered_map<void*, size_t> sizes_;
};

RunConfig config(AttnMode m, int64_t block, int64_t anchor, int chunk) {
  RunConfig rc;
  rc.attn = m;
  rc.block_size = block;
  rc.anchor_size = anchor;
  rc.chunk = chunk;
  return rc;
}

TEST(EngineMemory, WhatTheEngineHoldsStaysWithinItsPlan) {
  const std::string dir = test::fixture("tiny/llama_gqa");
  const Model model = load_model(dir);
  const std::vector<int> ids = test::read_json(dir + "/ids.json").get<std::vector<int>>();
  const int n_ctx = 21, steps = 4;
  const std::vector<int> ctx(ids.begin(), ids.begin() + n_ctx);
  const std::vector<int> query(ids.begin() + n_ctx, ids.end());
  auto comm = make_local_comm();
  struct Case {
    const char* name;
    RunConfig rc;
    bool takes_scratch;  // its hooks hold memory besides the KV caches
  };
  const Case cases[] = {
      {"dense, chunks of 5", config(AttnMode::Dense, -1, -1, 5), false},
      {"star, blocks of 8, anchor 4, chunks of 3", config(AttnMode::Star, 8, 4, 3), true},
      {"star, blocks of 6, anchor 6", config(AttnMode::Star, 6, 6, 0), true},
      {"ring", config(AttnMode::Ring, -1, -1, 0), true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    CountingBackend b(model.config, model.weights);
    {
      Engine e(b, *comm, c.rc.resolved(n_ctx, 1), n_ctx,
               static_cast<int64_t>(query.size()) + steps);
      e.encode_context(ctx);
      std::vector<float> logits = e.run(query);
      for (int i = 0; i < steps; ++i) {
        const int id = argmax(logits.data(), model.config.vocab_size);
        logits = e.run({id});
      }
    }
    EXPECT_EQ(b.live, 0u) << "the engine left memory behind";
    EXPECT_LE(b.peak, b.planned_kv + b.planned_scratch)
        << "KV planned " << b.planned_kv << ", scratch planned " << b.planned_scratch;
    if (c.takes_scratch) {
      EXPECT_GT(b.peak, b.planned_kv) << "the case exercises no scratch";
    }
  }
}

}  // namespace
}  // namespace starattn
