// Shared-context attention (attention.h (e)): many query rows over the same unmasked keys, as a
// served step's sequences on one context attend to it. Keys are split over the chip as in
// split-KV decode, and each block reads its slice of one kv head's K/V ONCE for up to kBM packed
// rows of the GQA group (n_q * group rows per kv head; row r is token r / group, query head
// kvh * group + r % group), so the bytes stay one read of K + V while the FLOPs grow with n_q.
//
// Why these tiles (Llama-3.1-8B shape, 32 q / 8 kv heads, d = 128, 128K keys): K + V are
// 537 MB whatever S is, FLOPs are 4 * S * 32 * 128 * 131072 = 2.15e9 * S, so S rows of queries
// do 4 * S FLOPs a byte. An H200 (4.3 TB/s, ~600 TFLOP/s of mma.sync at best) turns from
// bandwidth- to compute-bound near S = 35: S = 1, 8 are bandwidth (125 us), S = 32 is at the
// ridge, S = 64 is compute (229 us at 600 TFLOP/s). Every packed row a block holds divides the
// bytes per FLOP; with mma.sync the limit is shared memory: every warp ldmatrix-reads the whole
// K/V tile, so a warp should hold as many rows as its registers allow. Here a warp holds MT
// 16-row MMA tiles (O in registers, Q re-read from shared memory per tile), 4 warps a block:
//   MT = 1: 64 rows a block, for n_q * group <= 64 (S = 8 with group 4 or 8: one block per slice);
//   MT = 2: 128 rows a block (40 KB of ldmatrix per 1 MFLOP per warp and tile, against 32 KB per
//           0.5 MFLOP with one 16-row tile), for more rows. More rows than a block holds take
//           sibling blocks over the same slice, adjacent in launch order, so the slice comes from
//           HBM once and from L2 for the siblings (at S = 64, group 4: 2 row blocks, 1x HBM).
// Warps whose rows are all padding skip the math. The grid is one wave of resident blocks; each
// block writes a partial (out fp32, lse) per slice to the split-KV workspace and merge_splits
// (attention_decode.cu) combines them; with one slice the block writes out and lse itself.
#include <algorithm>

#include "backend/cuda/attention_common.cuh"

namespace starattn::cuda {
namespace attn {
namespace {

constexpr int kBN = 64;  // keys per tile
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;

template <int MT>
constexpr int shared_rows() {
  return kWarps * 16 * MT;
}
// Three stages where the Q tile is small (more bytes in flight for the bandwidth-bound shapes),
// two where it is large, so that two blocks fit an SM in both (d = 128: 112 KB and 96 KB).
template <int MT>
constexpr int shared_stages() {
  return MT == 1 ? 3 : 2;
}
template <int D, int MT>
constexpr int shared_smem_bytes() {
  return (shared_rows<MT>() * D + shared_stages<MT>() * 2 * kBN * D) *
         static_cast<int>(sizeof(bf16));
}

// Grid: (row blocks, slices, kv heads). ws_o / ws_lse: merge_splits' layout; unused when
// sp.n_splits == 1 (out and lse are written directly).
template <int D, int MT>
__global__ void __launch_bounds__(kThreads, 2)
    shared_kernel(const AttnParams p, const Split sp, float scale_log2, float* ws_o,
                  float* ws_lse) {
  constexpr int kBM = shared_rows<MT>();
  constexpr int kStages = shared_stages<MT>();
  constexpr int kChunks = D / 8;
  constexpr int kNT = kBN / 8;  // score n-tiles of 8 keys
  constexpr int kDT = D / 8;    // output n-tiles of 8 columns
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* s_q = reinterpret_cast<bf16*>(smem_raw);  // [kBM][D]
  bf16* s_kv = s_q + kBM * D;                     // [kStages][K, V][kBN][D]

  const int row0 = blockIdx.x * kBM;
  const int split = blockIdx.y;
  const int kvh = blockIdx.z;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int warp_row0 = warp * 16 * MT;                 // in the block
  const bool warp_active = row0 + warp_row0 < sp.rows;  // warp-uniform
  const bf16* k = p.k + static_cast<int64_t>(kvh) * D;
  const bf16* v = p.v + static_cast<int64_t>(kvh) * D;

  // A key count read at run time (a replayed graph) spreads its keys over the grid's slices.
  int64_t n_kv = p.n_kv;
  int tiles_per_split = sp.tiles_per_split;
  if (p.n_kv_at != nullptr) {
    n_kv = clamp64(*p.n_kv_at, 0, p.n_kv);
    tiles_per_split = static_cast<int>(((n_kv + kBN - 1) / kBN + sp.n_splits - 1) / sp.n_splits);
  }
  const int64_t key0 = static_cast<int64_t>(split) * tiles_per_split * kBN;
  const int64_t key_end = clamp64(key0 + static_cast<int64_t>(tiles_per_split) * kBN, 0, n_kv);
  const int n_tiles = key_end > key0 ? static_cast<int>((key_end - key0 + kBN - 1) / kBN) : 0;

  // Q tile: packed rows; rows past sp.rows become zeros (their scores are 0, never NaN).
  for (int i = tid; i < kBM * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks, row = row0 + r;
    const bool valid = row < sp.rows;
    const bf16* g = p.q;
    if (valid)
      g += static_cast<int64_t>(row / sp.group) * p.q_stride +
           static_cast<int64_t>(kvh * sp.group + row % sp.group) * D + c * 8;
    cp_async16(s_q + swz<D>(r, c), g, valid);
  }
  auto load_kv = [&](int t) {
    bf16* dst = s_kv + (t % kStages) * 2 * kBN * D;
    load_tile<kBN, D, kThreads>(dst, k, key0 + t * kBN, key_end, p.kv_stride, tid);
    load_tile<kBN, D, kThreads>(dst + kBN * D, v, key0 + t * kBN, key_end, p.kv_stride, tid);
  };
  // Always commit kStages-1 groups so the wait counts below hold for any n_tiles; the first
  // group holds Q as well.
#pragma unroll
  for (int t = 0; t < kStages - 1; ++t) {
    if (t < n_tiles) load_kv(t);
    cp_async_commit();
  }

  float o[MT][kDT][4];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int j = 0; j < kDT; ++j) o[m][j][0] = o[m][j][1] = o[m][j][2] = o[m][j][3] = 0.0f;
  RowState st[MT];

  for (int t = 0; t < n_tiles; ++t) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // tile t (and Q) have landed; everyone is done with the stage reloaded next
    if (t + kStages - 1 < n_tiles) load_kv(t + kStages - 1);
    cp_async_commit();
    if (!warp_active) continue;

    const bf16* kt = s_kv + (t % kStages) * 2 * kBN * D;
    const bf16* vt = kt + kBN * D;
    // S = Q K^T: each K fragment serves the warp's MT row tiles.
    float s[MT][kNT][4];
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
      for (int j = 0; j < kNT; ++j) s[m][j][0] = s[m][j][1] = s[m][j][2] = s[m][j][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      uint32_t qf[MT][4];
#pragma unroll
      for (int m = 0; m < MT; ++m)
        ldmatrix_x4(qf[m], s_q + swz<D>(warp_row0 + m * 16 + (lane & 7) + ((lane >> 3) & 1) * 8,
                                        ks * 2 + (lane >> 4)));
#pragma unroll
      for (int nc = 0; nc < kBN / 16; ++nc) {
        uint32_t kf[4];
        ldmatrix_x4(
            kf, kt + swz<D>(nc * 16 + (lane & 7) + (lane >> 4) * 8, ks * 2 + ((lane >> 3) & 1)));
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          mma_bf16(s[m][2 * nc], qf[m], kf[0], kf[1]);
          mma_bf16(s[m][2 * nc + 1], qf[m], kf[2], kf[3]);
        }
      }
    }
    // Keys past the slice's end (the zero rows of a last, partial tile) must not count.
    const int64_t n0 = key0 + static_cast<int64_t>(t) * kBN;
    if (n0 + kBN > key_end) {
      const int valid = static_cast<int>(key_end - n0);
#pragma unroll
      for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int j = 0; j < kNT; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if (j * 8 + 2 * (lane & 3) + (e & 1) >= valid) s[m][j][e] = -INFINITY;
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      online_softmax<kNT, kDT>(s[m], o[m], st[m], scale_log2);
    }
    // O += P V: each V fragment serves the warp's MT row tiles.
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      uint32_t pa[MT][4];
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        pa[m][0] = pack_bf16(s[m][2 * kk][0], s[m][2 * kk][1]);
        pa[m][1] = pack_bf16(s[m][2 * kk][2], s[m][2 * kk][3]);
        pa[m][2] = pack_bf16(s[m][2 * kk + 1][0], s[m][2 * kk + 1][1]);
        pa[m][3] = pack_bf16(s[m][2 * kk + 1][2], s[m][2 * kk + 1][3]);
      }
      const int r = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t vf[4];
        ldmatrix_x4_trans(vf, vt + swz<D>(r, dp * 2 + (lane >> 4)));
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          mma_bf16(o[m][2 * dp], pa[m], vf[0], vf[1]);
          mma_bf16(o[m][2 * dp + 1], pa[m], vf[2], vf[3]);
        }
      }
    }
  }
  cp_async_wait<0>();  // nothing may still be landing in shared memory when the block exits
  if (!warp_active) return;

  // Epilogue: finish each row's sum across its quad; write the normalised partial and its lse.
  const bool direct = sp.n_splits == 1;
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float l = st[m].l[r];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int row = row0 + warp_row0 + m * 16 + (lane >> 2) + 8 * r;
      if (row >= sp.rows) continue;
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      const float lse = l > 0.0f ? (st[m].m[r] * scale_log2 + __log2f(l)) * kLn2 : -INFINITY;
      const int col = 2 * (lane & 3);
      if (direct) {
        const int tok = row / sp.group, head = kvh * sp.group + row % sp.group;
        bf16* out = p.out + tok * p.out_stride + static_cast<int64_t>(head) * D + col;
#pragma unroll
        for (int j = 0; j < kDT; ++j)
          *reinterpret_cast<__nv_bfloat162*>(out + j * 8) =
              __floats2bfloat162_rn(o[m][j][2 * r] * inv, o[m][j][2 * r + 1] * inv);
        if (p.lse != nullptr && (lane & 3) == 0)
          p.lse[static_cast<int64_t>(tok) * p.n_heads + head] = lse;
      } else {
        const int64_t idx = (static_cast<int64_t>(kvh) * sp.rows + row) * sp.n_splits + split;
        float* dst = ws_o + idx * D + col;
#pragma unroll
        for (int j = 0; j < kDT; ++j)
          *reinterpret_cast<float2*>(dst + j * 8) =
              make_float2(o[m][j][2 * r] * inv, o[m][j][2 * r + 1] * inv);
        if ((lane & 3) == 0) ws_lse[idx] = lse;
      }
    }
}

template <int D, int MT>
void launch_shared(const AttnParams& p, cudaStream_t stream) {
  constexpr int kBM = shared_rows<MT>();
  constexpr int smem = shared_smem_bytes<D, MT>();
  SA_CUDA(cudaFuncSetAttribute(shared_kernel<D, MT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               smem));
  static const int blocks_per_sm = [] {
    int n = 0;
    SA_CUDA(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, shared_kernel<D, MT>, kThreads, smem));
    return n > 0 ? n : 1;
  }();

  Split sp{};
  sp.group = p.n_heads / p.n_kv_heads;
  const int64_t rows = static_cast<int64_t>(p.n_q) * sp.group;
  SA_CHECK(rows <= (int64_t{1} << 30), "attention_shared: ", rows, " query rows is too many");
  sp.rows = static_cast<int>(rows);
  const int row_blocks = (sp.rows + kBM - 1) / kBM;
  // One full wave of resident blocks, every block streaming an equal slice (as decode does).
  // With one slice (many rows: the row blocks alone fill the chip) there is nothing to merge.
  const int tiles = (p.n_kv + kBN - 1) / kBN;
  const int64_t slots = static_cast<int64_t>(sm_count()) * blocks_per_sm;
  const int64_t want =
      std::max<int64_t>(1, slots / (static_cast<int64_t>(p.n_kv_heads) * row_blocks));
  sp.tiles_per_split = static_cast<int>(std::max<int64_t>(1, (tiles + want - 1) / want));
  sp.n_splits = std::max(1, (tiles + sp.tiles_per_split - 1) / sp.tiles_per_split);

  float* ws_o = nullptr;
  float* ws_lse = nullptr;
  if (sp.n_splits > 1) {
    // n_splits <= slots / (kv heads * row blocks), so this is at most slots * kBM * (D + 1)
    // floats (~17 MB on an H200 at d = 128) whatever the call.
    const size_t n_part = static_cast<size_t>(p.n_kv_heads) * sp.rows * sp.n_splits;
    ws_o = static_cast<float*>(workspace(n_part * (D + 1) * sizeof(float), stream));
    ws_lse = ws_o + n_part * D;
  }
  const dim3 grid(row_blocks, sp.n_splits, p.n_kv_heads);
  shared_kernel<D, MT><<<grid, kThreads, smem, stream>>>(p, sp, p.scale * kLog2e, ws_o, ws_lse);
  SA_LAUNCHED("shared_kernel");
  if (sp.n_splits > 1) merge_splits(p, sp, ws_o, ws_lse, stream);
}

}  // namespace
}  // namespace attn

void attention_shared(const AttnParams& p, cudaStream_t stream) {
  attn::check_params(p, "attention_shared");
  attn::require_bf16_kv(p, "attention_shared");
  SA_CHECK(!p.causal, "attention_shared: takes no mask (causal calls go to decode or prefill)");
  if (p.n_q == 0) return;
  const int64_t rows = static_cast<int64_t>(p.n_q) * (p.n_heads / p.n_kv_heads);
  attn::dispatch_head_dim(p.head_dim, "attention_shared", [&](auto d) {
    constexpr int D = decltype(d)::value;
    if (rows <= attn::shared_rows<1>())
      attn::launch_shared<D, 1>(p, stream);
    else
      attn::launch_shared<D, 2>(p, stream);
  });
}

}  // namespace starattn::cuda
