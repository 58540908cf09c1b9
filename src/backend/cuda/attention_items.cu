// Batched per-sequence attention merged in place (attention.h (f)): a served step's sequences each
// attend causally to their own KV (question and generated tokens: tens to thousands of keys), and
// the result is folded by log-sum-exp into their rows of the context part's (out, lse). One launch
// does every item: block (row tile, kv head) of the grid finds its item in the descriptor table,
// which travels as a kernel argument (a __grid_constant__ struct), so it needs no upload, is in
// stream order by construction, and a captured graph keeps its own copy of it.
//
// A block is 4 warps of 16 packed rows (row r of an item is its token r / group, query head
// kvh * group + r % group), Q in registers, K/V tiles of 64 keys double-buffered through shared
// memory as in the prefill kernel, fully visible tiles unmasked. Items are small, so there is no
// split over keys: the grid is (sum over items of row tiles, kv heads).
#include <algorithm>
#include <limits>
#include <vector>

#include "backend/cuda/attention_common.cuh"

namespace starattn::cuda {
namespace attn {
namespace {

constexpr int kBM = 64;  // packed rows a block
constexpr int kBN = 64;  // keys a tile
constexpr int kWarps = kBM / 16;
constexpr int kThreads = kWarps * 32;
constexpr int kStages = 2;

// The launch's items; item i owns the blocks [tile_end[i - 1], tile_end[i]) of the grid's x.
struct ItemTable {
  AttnItem items[kItemsPerLaunch];
  int tile_end[kItemsPerLaunch];
  int n_items;
};
// Kernel arguments must stay within 4 KB (every supported toolkit and device).
static_assert(sizeof(ItemTable) + sizeof(AttnParams) + 16 <= 4096);

template <int D>
constexpr int items_smem_bytes() {
  return (kBM * D + kStages * 2 * kBN * D) * static_cast<int>(sizeof(bf16));
}

template <int D>
__global__ void __launch_bounds__(kThreads, 2)
    items_kernel(const AttnParams p, const __grid_constant__ ItemTable tab, int group,
                 float scale_log2) {
  constexpr int kChunks = D / 8;
  constexpr int kNT = kBN / 8;
  constexpr int kDT = D / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* s_q = reinterpret_cast<bf16*>(smem_raw);  // [kBM][D]
  bf16* s_kv = s_q + kBM * D;                     // [kStages][K, V][kBN][D]

  int item = 0;  // at most kItemsPerLaunch steps, the same for every thread
  while (item + 1 < tab.n_items && static_cast<int>(blockIdx.x) >= tab.tile_end[item]) ++item;
  const AttnItem& it = tab.items[item];
  const int tile0 = item == 0 ? 0 : tab.tile_end[item - 1];
  const int rows = it.n_q * group;
  const int row0 = (static_cast<int>(blockIdx.x) - tile0) * kBM;
  const int kvh = blockIdx.y;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const bool warp_active = row0 + warp * 16 < rows;  // warp-uniform
  const bf16* k = it.k + static_cast<int64_t>(kvh) * D;
  const bf16* v = it.v + static_cast<int64_t>(kvh) * D;
  const int64_t off = it.causal_offset;

  // Keys some row of the block sees: [0, visible). Every row sees [0, block_lim].
  const int tok_first = row0 / group;
  const int tok_last = (min(row0 + kBM, rows) - 1) / group;
  const int64_t visible = clamp64(tok_last + off + 1, 0, it.n_kv);
  const int64_t block_lim = clamp64(tok_first + off, -1, visible - 1);
  const int n_tiles = static_cast<int>((visible + kBN - 1) / kBN);

  for (int i = tid; i < kBM * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks, row = row0 + r;
    const bool valid = row < rows;
    const bf16* g = p.q;
    if (valid)
      g += static_cast<int64_t>(it.q_row + row / group) * p.q_stride +
           static_cast<int64_t>(kvh * group + row % group) * D + c * 8;
    cp_async16(s_q + swz<D>(r, c), g, valid);
  }
  auto load_kv = [&](int t) {
    bf16* dst = s_kv + (t % kStages) * 2 * kBN * D;
    load_tile<kBN, D, kThreads>(dst, k, int64_t{t} * kBN, visible, p.kv_stride, tid);
    load_tile<kBN, D, kThreads>(dst + kBN * D, v, int64_t{t} * kBN, visible, p.kv_stride, tid);
  };
#pragma unroll
  for (int t = 0; t < kStages - 1; ++t) {
    if (t < n_tiles) load_kv(t);
    cp_async_commit();
  }
  cp_async_wait<kStages - 2>();  // group 0: Q (and tile 0)
  __syncthreads();
  uint32_t qf[D / 16][4];
  load_a_frags<D>(qf, s_q, warp * 16, lane);

  // Last key each of the thread's two rows may see (-1: none).
  int lim[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int tok = (row0 + warp * 16 + (lane >> 2) + 8 * r) / group;
    lim[r] = static_cast<int>(clamp64(tok + off, -1, visible - 1));
  }

  float o[kDT][4];
#pragma unroll
  for (int j = 0; j < kDT; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  RowState st;

  for (int t = 0; t < n_tiles; ++t) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // tile t has landed; everyone is done with the stage reloaded next
    if (t + kStages - 1 < n_tiles) load_kv(t + kStages - 1);
    cp_async_commit();
    if (!warp_active) continue;

    const bf16* kt = s_kv + (t % kStages) * 2 * kBN * D;
    float s[kNT][4];
#pragma unroll
    for (int j = 0; j < kNT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
    for (int np = 0; np < kNT / 2; ++np)
      qk_16keys<D>(reinterpret_cast<float(&)[2][4]>(s[2 * np]), qf, kt, np * 16, lane);
    const int n0 = t * kBN;
    if (n0 + kBN - 1 > block_lim) {
#pragma unroll
      for (int j = 0; j < kNT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (n0 + j * 8 + 2 * (lane & 3) + (e & 1) > lim[e >> 1]) s[j][e] = -INFINITY;
    }
    online_softmax<kNT, kDT>(s, o, st, scale_log2);
#pragma unroll
    for (int kk = 0; kk < kNT / 2; ++kk)
      pv_16keys<D>(o, reinterpret_cast<const float(&)[2][4]>(s[2 * kk]), kt + kBN * D, kk * 16,
                   lane);
  }
  cp_async_wait<0>();
  if (!warp_active) return;

  // Merge into out/lse exactly as merge_attention: a side with lse -inf contributes nothing. The
  // quad's four lanes read the row's old lse before its first lane overwrites it (__syncwarp).
  const int col = 2 * (lane & 3);
  float lb[2], la[2], inv[2];
  int64_t at[2];  // index of the (row, head) in lse; -1 for a padded row
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = st.l[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = row0 + warp * 16 + (lane >> 2) + 8 * r;
    inv[r] = l > 0.0f ? 1.0f / l : 0.0f;
    lb[r] = l > 0.0f ? (st.m[r] * scale_log2 + __log2f(l)) * kLn2 : -INFINITY;
    at[r] = row < rows ? static_cast<int64_t>(it.q_row + row / group) * p.n_heads + kvh * group +
                             row % group
                       : -1;
    la[r] = at[r] >= 0 ? p.lse[at[r]] : -INFINITY;
  }
  __syncwarp();
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (at[r] < 0 || lb[r] == -INFINITY) continue;  // padding, or no key seen: out stays
    const int64_t tok = at[r] / p.n_heads, head = at[r] % p.n_heads;
    bf16* out = p.out + tok * p.out_stride + head * D + col;
    float new_lse = lb[r];
    if (la[r] == -INFINITY) {  // the old side saw no key: this is the answer, nothing of it leaks
#pragma unroll
      for (int j = 0; j < kDT; ++j)
        *reinterpret_cast<__nv_bfloat162*>(out + j * 8) =
            __floats2bfloat162_rn(o[j][2 * r] * inv[r], o[j][2 * r + 1] * inv[r]);
    } else {
      const float m = fmaxf(la[r], lb[r]);
      const float ea = __expf(la[r] - m), eb = __expf(lb[r] - m);  // the larger one is exactly 1
      const float wa = ea / (ea + eb), wb = eb / (ea + eb) * inv[r];
#pragma unroll
      for (int j = 0; j < kDT; ++j) {
        auto* pair = reinterpret_cast<__nv_bfloat162*>(out + j * 8);
        const float2 old = __bfloat1622float2(*pair);
        *pair =
            __floats2bfloat162_rn(wa * old.x + wb * o[j][2 * r], wa * old.y + wb * o[j][2 * r + 1]);
      }
      new_lse = m + logf(ea + eb);
    }
    if ((lane & 3) == 0) p.lse[at[r]] = new_lse;
  }
}

template <int D>
void launch_items(const AttnParams& p, const ItemTable& tab, int n_blocks, cudaStream_t stream) {
  constexpr int smem = items_smem_bytes<D>();
  SA_CUDA(cudaFuncSetAttribute(items_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const dim3 grid(n_blocks, p.n_kv_heads);
  items_kernel<D>
      <<<grid, kThreads, smem, stream>>>(p, tab, p.n_heads / p.n_kv_heads, p.scale * kLog2e);
  SA_LAUNCHED("items_kernel");
}

}  // namespace
}  // namespace attn

void attention_merge_items(const AttnParams& batch, const AttnItem* items, int n_items,
                           cudaStream_t stream) {
  const char* who = "attention_merge_items";
  SA_CHECK(n_items >= 0 && (n_items == 0 || items), who, ": ", n_items, " items");
  SA_CHECK(batch.lse, who, ": the batch needs an lse to merge into");
  const int group = batch.n_heads / std::max(batch.n_kv_heads, 1);
  // Every item checked as the single attention it stands for; rows must be disjoint, since each
  // (row, head) is read and written by one block.
  std::vector<int> order;
  for (int i = 0; i < n_items; ++i) {
    const AttnItem& it = items[i];
    AttnParams one = batch;
    SA_CHECK(it.q_row >= 0 && it.n_q >= 0, who, ": item ", i, " has rows [", it.q_row, ", ",
             int64_t{it.q_row} + it.n_q, ")");
    one.q = batch.q + static_cast<int64_t>(it.q_row) * batch.q_stride;
    one.out = batch.out + static_cast<int64_t>(it.q_row) * batch.out_stride;
    one.k = it.k, one.v = it.v, one.n_q = it.n_q, one.n_kv = it.n_kv;
    one.causal = true, one.causal_offset = it.causal_offset, one.n_kv_at = nullptr;
    attn::check_params(one, who);
    attn::require_bf16_kv(one, who);
    SA_CHECK(int64_t{it.n_q} * group <= std::numeric_limits<int>::max() / 2, who, ": item ", i,
             " has ", it.n_q, " rows, too many");
    if (it.n_q > 0 && it.n_kv > 0) order.push_back(i);  // the others merge nothing
  }
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return items[a].q_row < items[b].q_row; });
  for (size_t j = 1; j < order.size(); ++j) {
    const AttnItem &a = items[order[j - 1]], &b = items[order[j]];
    SA_CHECK(int64_t{a.q_row} + a.n_q <= b.q_row, who, ": items ", order[j - 1], " and ", order[j],
             " share rows (", a.q_row, "+", a.n_q, " and ", b.q_row, "+", b.n_q, ")");
  }
  for (size_t first = 0; first < order.size(); first += kItemsPerLaunch) {
    attn::ItemTable tab{};
    int64_t blocks = 0;
    tab.n_items = static_cast<int>(std::min<size_t>(kItemsPerLaunch, order.size() - first));
    for (int j = 0; j < tab.n_items; ++j) {
      tab.items[j] = items[order[first + j]];
      blocks += (int64_t{tab.items[j].n_q} * group + attn::kBM - 1) / attn::kBM;
      SA_CHECK(blocks < (int64_t{1} << 31), who, ": too many rows in one launch");
      tab.tile_end[j] = static_cast<int>(blocks);
    }
    attn::dispatch_head_dim(batch.head_dim, who, [&](auto d) {
      attn::launch_items<decltype(d)::value>(batch, tab, static_cast<int>(blocks), stream);
    });
  }
}

}  // namespace starattn::cuda
