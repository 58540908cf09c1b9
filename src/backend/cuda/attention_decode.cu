// Split-KV decode (attention.h (b)): a few query rows over a long KV cache is a bandwidth
// problem (bytes = K + V read once), so the grid spreads the keys over the whole chip.
// Block (row group, split, kv head) streams its slice of one kv head's keys through a 3-stage
// cp.async pipeline, once for all the query rows of the GQA group (n_q * group rows, 16 a block:
// one m16 MMA tile), each of its 4 warps taking 16 keys of every 64-key tile. The warps' softmax
// states merge in shared memory into one partial (out fp32, lse) per split in a workspace; a
// second kernel (merge_splits, attention_merge.cu) merges the splits and writes bf16 out and the
// natural-log lse.
//
// FP8 KV (decode_fp8_kernel): the same splits and merge; tiles of E4M3 bytes go from shared
// memory straight into MMA fragments with no 16-bit tile in between. With few query rows per key
// the kernel is bound by its instructions and its memory requests per byte, not the bytes, so
// each step takes the fewest:
// - keys are the MMA's M dimension and 8 query rows its N (S^T = K Q^T, O^T += V^T P^T), so a
//   decode's 4 rows a kv head fill half of each MMA rather than a quarter, and each row's
//   accumulators and softmax steps are held once;
// - a block takes 4 kv heads (2 or 1 where the heads do not come in fours), whose codes lie side
//   by side in a row and whose scales one 16-byte copy brings: one scale request per key and
//   block, where a block per head made one per head, a quarter of the requests L2 served;
// - on Hopper (d = 128, 4 kv heads or more) each warp streams its own 16 keys of every tile with
//   TMA through a ring of its own, so no warp waits for the others at every tile;
// - both products run in f16, as E4M3 converts to f16 exactly in one instruction per pair: Q is
//   converted once and the scores take each key's K scale in fp32; V's codes enter P V as they
//   are and each key's V scale s rides in its probability, P' = exp2(u + log2 s - m) with the
//   running maximum m taken over u + log2 s, so P' <= 1 suits f16 whatever the scales (the row
//   sums take exp2(u - m) apart). Where P V in bf16 needed a dozen integer operations a word to
//   convert V, this needs one instruction a pair.
// The dot product over head_dim may take its terms in any order, so each thread's K fragments come
// from D/4 contiguous bytes of a key (one or two 16-byte loads) and its Q fragments use the same
// order of d; the output columns are permuted likewise and put back in place in the epilogue.
// Q in f16 limits |q| to 65504; a larger component becomes infinite and the row's output NaN,
// never a finite wrong value.
#include <algorithm>

#include "backend/cuda/attention_common.cuh"
#include "backend/cuda/attention_wgmma.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/tensor_map.h"

namespace starattn::cuda {
namespace attn {
namespace {

constexpr int kBN = 64;  // keys per tile, 16 per warp
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kStages = 3;
constexpr int kRows = 16;  // query rows per block

template <int D>
constexpr int decode_smem_bytes() {
  return (kRows * D + kStages * 2 * kBN * D) * static_cast<int>(sizeof(bf16));
}
// The epilogue reuses the pipeline's shared memory for the warps' states.
static_assert(kWarps * kRows * 128 * 4 + 2 * kWarps * kRows * 4 <= decode_smem_bytes<128>());
static_assert(kWarps * kRows * 64 * 4 + 2 * kWarps * kRows * 4 <= decode_smem_bytes<64>());

// One output element of a block's partial from W warps' states in shared memory: row r's
// maximum s_m[w * R + r] and sum s_l[w * R + r], and the element's accumulator o[w * o_stride]
// for each warp w < W. Returns (value, natural-log lse); (0, -inf) for a row that saw no key.
template <int R, int W = kWarps>
__device__ __forceinline__ float2 fold_warps(const float* s_m, const float* s_l, const float* o,
                                             int o_stride, int r, float scale_log2) {
  float m = -INFINITY;
#pragma unroll
  for (int w = 0; w < W; ++w) m = fmaxf(m, s_m[w * R + r]);
  float val = 0.0f, lse = -INFINITY;
  if (m != -INFINITY) {
    float l = 0.0f, acc = 0.0f;
#pragma unroll
    for (int w = 0; w < W; ++w) {
      const float f = ex2((s_m[w * R + r] - m) * scale_log2);
      l += s_l[w * R + r] * f;
      acc += o[w * o_stride] * f;
    }
    val = acc / l;
    lse = (m * scale_log2 + __log2f(l)) * kLn2;
  }
  return make_float2(val, lse);
}

// Merges the four warps' states through shared memory (the pipeline buffers must be free) into
// one partial (out, lse) per row of the block, written to the split's slot of the workspace.
template <int D>
__device__ __forceinline__ void store_split_partial(unsigned char* smem_raw,
                                                    const float (&o)[D / 8][4], const RowState& st,
                                                    const AttnParams& p, const Split& sp, int row0,
                                                    int split, int kvh, float scale_log2,
                                                    float* ws_o, float* ws_lse) {
  constexpr int kDT = D / 8;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  cp_async_wait<0>();
  __syncthreads();
  float* s_o = reinterpret_cast<float*>(smem_raw);  // [kWarps][kRows][D]
  float* s_m = s_o + kWarps * kRows * D;            // [kWarps][kRows]
  float* s_l = s_m + kWarps * kRows;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = st.l[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int wr = warp * kRows + (lane >> 2) + 8 * r;
    if ((lane & 3) == 0) {
      s_m[wr] = st.m[r];
      s_l[wr] = l;
    }
#pragma unroll
    for (int j = 0; j < kDT; ++j)
      *reinterpret_cast<float2*>(s_o + wr * D + j * 8 + 2 * (lane & 3)) =
          make_float2(o[j][2 * r], o[j][2 * r + 1]);
  }
  __syncthreads();
  for (int i = tid; i < kRows * D; i += kThreads) {
    const int r = i / D, c = i % D, row = row0 + r;
    if (row >= sp.rows) break;  // rows are r-major: every later i is past the end too
    const float2 out = fold_warps<kRows>(s_m, s_l, s_o + r * D + c, kRows * D, r, scale_log2);
    const int64_t idx = (static_cast<int64_t>(kvh) * sp.rows + row) * sp.n_splits + split;
    ws_o[idx * D + c] = out.x;
    if (c == 0) ws_lse[idx] = out.y;
  }
}

// Row r of a kv head's group is query token r / group, query head kvh * group + r % group.
// Workspace: ws_o[((kvh * rows + r) * n_splits + split) * D + c], ws_lse[same without D].
template <int D>
__global__ void __launch_bounds__(kThreads)
    decode_kernel(const AttnParams p, const Split sp, float scale_log2, float* ws_o,
                  float* ws_lse) {
  constexpr int kChunks = D / 8;
  constexpr int kDT = D / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* s_q = reinterpret_cast<bf16*>(smem_raw);
  bf16* s_kv = s_q + kRows * D;  // [kStages][K, V][kBN][D]

  const int row0 = blockIdx.x * kRows;
  const int split = blockIdx.y;
  const int kvh = blockIdx.z;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const bf16* k = p.k + static_cast<int64_t>(kvh) * D;
  const bf16* v = p.v + static_cast<int64_t>(kvh) * D;

  // A key count read at run time (a replayed graph) spreads its keys over the grid's splits.
  int64_t n_kv = p.n_kv;
  int tiles_per_split = sp.tiles_per_split;
  if (p.n_kv_at != nullptr) {
    n_kv = clamp64(*p.n_kv_at, 0, p.n_kv);
    tiles_per_split = static_cast<int>(((n_kv + kBN - 1) / kBN + sp.n_splits - 1) / sp.n_splits);
  }
  // Keys of this slice that some row of the block can see: [key0, key_end).
  const int tok_first = row0 / sp.group;
  const int tok_last = (min(row0 + kRows, sp.rows) - 1) / sp.group;
  const int64_t key0 = static_cast<int64_t>(split) * tiles_per_split * kBN;
  const int64_t visible = p.causal ? clamp64(tok_last + p.causal_offset + 1, 0, n_kv) : n_kv;
  const int64_t key_end = clamp64(key0 + static_cast<int64_t>(tiles_per_split) * kBN, 0, visible);
  const int n_tiles = key_end > key0 ? static_cast<int>((key_end - key0 + kBN - 1) / kBN) : 0;

  for (int i = tid; i < kRows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks, row = row0 + r;
    const bool valid = row < sp.rows;
    const bf16* g = p.q;
    if (valid)
      g += (row / sp.group) * p.q_stride +
           static_cast<int64_t>(kvh * sp.group + row % sp.group) * D + c * 8;
    cp_async16(s_q + swz<D>(r, c), g, valid);
  }
  auto load_kv = [&](int t) {
    bf16* dst = s_kv + (t % kStages) * 2 * kBN * D;
    load_tile<kBN, D, kThreads>(dst, k, key0 + t * kBN, key_end, p.kv_stride, tid);
    load_tile<kBN, D, kThreads>(dst + kBN * D, v, key0 + t * kBN, key_end, p.kv_stride, tid);
  };
  // Always commit kStages-1 groups so the wait counts below hold for any n_tiles.
#pragma unroll
  for (int t = 0; t < kStages - 1; ++t) {
    if (t < n_tiles) load_kv(t);
    cp_async_commit();
  }
  cp_async_wait<kStages - 2>();  // group 0: Q and tile 0
  __syncthreads();
  uint32_t qf[D / 16][4];
  load_a_frags<D>(qf, s_q, 0, lane);

  // Last key each of the thread's two rows may see; block_lim: last key all rows see.
  int lim[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int tok = (row0 + (lane >> 2) + 8 * r) / sp.group;
    const int64_t last = p.causal ? tok + p.causal_offset : key_end - 1;
    lim[r] = static_cast<int>(clamp64(last, -1, key_end - 1));
  }
  const int64_t block_lim =
      p.causal ? clamp64(tok_first + p.causal_offset, -1, key_end - 1) : key_end - 1;

  float o[kDT][4];
#pragma unroll
  for (int j = 0; j < kDT; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  RowState st;

  for (int t = 0; t < n_tiles; ++t) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // tile t has landed; everyone is done with the stage reloaded next
    if (t + kStages - 1 < n_tiles) load_kv(t + kStages - 1);
    cp_async_commit();

    const bf16* kt = s_kv + (t % kStages) * 2 * kBN * D;
    float s[2][4] = {};
    qk_16keys<D>(s, qf, kt, warp * 16, lane);
    const int64_t n0 = key0 + static_cast<int64_t>(t) * kBN;
    if (n0 + kBN - 1 > block_lim) {
#pragma unroll
      for (int j = 0; j < 2; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = static_cast<int>(n0) + warp * 16 + j * 8 + 2 * (lane & 3) + (e & 1);
          if (key > lim[e >> 1]) s[j][e] = -INFINITY;
        }
    }
    online_softmax<2, kDT>(s, o, st, scale_log2);
    pv_16keys<D>(o, s, kt + kBN * D, warp * 16, lane);
  }

  store_split_partial<D>(smem_raw, o, st, p, sp, row0, split, kvh, scale_log2, ws_o, ws_lse);
}

// FP8 KV: stage s of the ring holds K bytes [kBN][D], V bytes [kBN][D] (16-byte chunks
// swizzled by swz8), then K scales [keys][heads] and V scales likewise (kBN each): 16.9 KB at
// d = 128. Four stages and 3 blocks an SM took 0.105 ms over 128K keys on an H200, 3 stages and
// 4 blocks 0.111.
// With TMA (kTma) each warp has a ring of its own: per stage its 16 keys' K then V codes
// (2 x 2 KB at d = 128, on 1024-byte boundaries, where the 128-byte swizzle the copies apply is
// swz8's) and an mbarrier. Six stages and 2 blocks an SM (99 KB a block) took 0.088 ms over 128K
// keys on an H200 where 4 stages and 3 blocks took 0.094 and 3 stages and 4 blocks 0.094, in the
// same run: the deeper rings keep more of each warp's keys in flight, and a wave of 2 blocks an
// SM makes fewer, longer splits.
constexpr int kStages8 = 4;
constexpr int kFp8BlocksPerSm = 3;
constexpr int kTmaStages = 6;
constexpr int kTmaBlocksPerSm = 2;
// kTma: each lane loads its scale of a tile this many tiles ahead. Two tiles took 0.085-0.086 ms
// over 128K keys where one took 0.087 (H200, alternating in one run); 4 and 7 query rows did not
// change (0.105, 0.162). On an H100 one, two and three tiles all took 0.115-0.118 ms.
constexpr int kScaleAhead = 2;
constexpr int kRowsFp8 = 8;    // query rows per block: the N of S^T = K Q^T
constexpr int kWarpKeys = 16;  // keys a warp takes of each tile: the M of S^T = K Q^T
template <int D>
constexpr int fp8_stage_bytes() {
  return 2 * kBN * D + 2 * kBN * 4;
}
template <int D>
constexpr int tma_codes_bytes() {  // a warp's stage of K and V codes
  return 2 * kWarpKeys * D;
}
template <int D, bool kTma>
constexpr int decode_fp8_smem_bytes() {
  return kTma ? 1023 + kWarps * kTmaStages * (tma_codes_bytes<D>() + 8)
              : kStages8 * fp8_stage_bytes<D>();
}
static_assert(kWarps * kRowsFp8 * 128 * 4 + 2 * kWarps * kRowsFp8 * 4 <=
              decode_fp8_smem_bytes<128, false>());
static_assert(kWarps * kRowsFp8 * 64 * 4 + 2 * kWarps * kRowsFp8 * 4 <=
              decode_fp8_smem_bytes<64, false>());
static_assert(kWarps * kRowsFp8 * 128 * 4 + 2 * kWarps * kRowsFp8 * 4 <=
              decode_fp8_smem_bytes<128, true>() - 1023);
static_assert(kTmaBlocksPerSm * (decode_fp8_smem_bytes<128, true>() + 1024) <= 228 * 1024,
              "the TMA rings must leave room for kTmaBlocksPerSm blocks an SM");

// kTma: the K and V codes as TMA maps (boxes of one head's D bytes over a warp's 16 keys).
struct KvMaps {
  CUtensorMap k, v;
};
static_assert(2 * kBN <= kThreads, "a thread copies one key's K or V scales a tile");

// Byte offset of 16-byte chunk c of row r in an fp8 [kBN][D] tile, seen as 128-byte lines (one
// row at D = 128, two at 64): a chunk's place in its line is XORed with the line's index, so the
// fragment reads below (8 rows at one chunk, or 4 even rows at two chunks) hit distinct banks.
template <int D>
__device__ __forceinline__ int swz8(int r, int c) {
  const int byte = r * D + c * 16;
  const int line = byte >> 7;
  return (line << 7) | ((((byte >> 4) & 7) ^ (line & 7)) << 4);
}

// Transposes an 8x8 matrix of 16-bit values held as MMA fragments (lane 4 g + c holds row g,
// columns 2c and 2c+1): afterwards it holds row g of the transpose.
__device__ __forceinline__ uint32_t transpose8x8_b16(uint32_t x) {
  uint32_t y;
  asm("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(y) : "r"(x));
  return y;
}

// Folds the partials of the warps that share a kv head (registers in the order below) into one
// per (kv head, row) of the block and writes it to the split's slot of the workspace: the block's
// HB heads are kvh0 + w / (kWarps / HB) for warp w. Lane 4g + c holds in o[mt][e] the row
// 2c + e % 2 and the column g * D/8 + 4 (mt / 2) + 2 (mt % 2) + e / 2; st holds rows 2c and
// 2c + 1, with l summed over the lane's keys only. Shared memory keeps the register order
// ([warp][register] [lane], no bank conflicts); the columns are put in place on the way out.
template <int D, int HB>
__device__ __forceinline__ void store_split_partial_fp8(
    unsigned char* smem_raw, const float (&o)[D / 16][4], const RowState& st, const Split& sp,
    int row0, int split, int kvh0, float scale_log2, float* ws_o, float* ws_lse) {
  constexpr int kRegs = D / 16 * 4;
  constexpr int kWarpsPerHead = kWarps / HB;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  cp_async_wait<0>();
  __syncthreads();
  float* s_o = reinterpret_cast<float*>(smem_raw);  // [kWarps][kRegs][32]
  float* s_m = s_o + kWarps * kRegs * 32;           // [kWarps][kRowsFp8]
  float* s_l = s_m + kWarps * kRowsFp8;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float l = st.l[i];
    l += __shfl_xor_sync(0xffffffffu, l, 4);
    l += __shfl_xor_sync(0xffffffffu, l, 8);
    l += __shfl_xor_sync(0xffffffffu, l, 16);
    if (lane < 4) {
      s_m[warp * kRowsFp8 + 2 * lane + i] = st.m[i];
      s_l[warp * kRowsFp8 + 2 * lane + i] = l;
    }
  }
#pragma unroll
  for (int mt = 0; mt < D / 16; ++mt)
#pragma unroll
    for (int e = 0; e < 4; ++e) s_o[(warp * kRegs + mt * 4 + e) * 32 + lane] = o[mt][e];
  __syncthreads();
  for (int i = tid; i < HB * kRegs * 32; i += kThreads) {
    const int hl = i / (kRegs * 32), reg = i / 32 % kRegs, ln = i % 32, mt = reg / 4, e = reg % 4;
    const int r = 2 * (ln & 3) + (e & 1), row = row0 + r;
    if (row >= sp.rows) continue;
    const int c = (ln >> 2) * (D / 8) + 4 * (mt / 2) + 2 * (mt % 2) + (e >> 1);
    const int w0 = hl * kWarpsPerHead;  // the head's first warp
    const float2 out = fold_warps<kRowsFp8, kWarpsPerHead>(s_m + w0 * kRowsFp8, s_l + w0 * kRowsFp8,
                                                           s_o + (w0 * kRegs + reg) * 32 + ln,
                                                           kRegs * 32, r, scale_log2);
    const int64_t idx = (static_cast<int64_t>(kvh0 + hl) * sp.rows + row) * sp.n_splits + split;
    ws_o[idx * D + c] = out.x;
    if (c == 0) ws_lse[idx] = out.y;
  }
}

// decode_kernel for fp8 KV rows (attention.h): the same keys, masks and partials, for NT tiles
// of 8 query rows a block, with keys as the MMA's M dimension: S^T = K Q^T and O^T += V^T P^T,
// so the rows fill the N dimension of 8 (decode has group = 4 rows a kv head; as M they would
// fill 4 of 16, and every row's accumulators, scores and softmax steps would be paid 4 times
// over). A warp's S^T tile is its 16 keys x 8 rows; lane 4g + c holds keys g and g + 8 of rows
// 2c and 2c + 1. P^T reaches the B fragments of P V through one 8x8 transpose (movmatrix) per 8
// keys. The NT row tiles of a block share each key's conversion: a short query's 9 to 32 rows
// (NT = 2) convert every code half as often as one block per 8 rows would.
//
// kTma (sm_90, d = 128, 4 kv heads or more): each warp streams its own 16 keys of every tile
// (tile rows warp * 16 + 0..15, keys of one head) through its own ring: its lane 0 brings their
// K and V codes with 2 TMA copies onto the stage's mbarrier, and no warp waits for another until
// the epilogue. With the tile's copies shared by the block (cp.async, below), the barrier every
// tile took a fifth of the warps' stall cycles and the copies' addresses and bounds a quarter of
// their instructions. TMA copies whole boxes, so the rows past the slice's last key are whatever
// the cache holds there (a replayed step's stale rows, possibly NaN codes): each warp zeroes the
// V codes of those keys before P V (their scores are masked).
// The scales do not go through TMA: there a box of them was 16 rows of 16 bytes (the scales of
// the 4 heads of a key), which each of the block's 4 warps copied for its one head, and the
// V scales past the slice's end had to be zeroed too. Instead each lane loads one scale a tile,
// kScaleAhead tiles ahead (lanes 0-15 the K scales of the warp's 16 keys, 16-31 the V scales; 0
// past the end), and the MMA lanes take theirs by shuffle: 0.094 ms against 0.097 over 128K keys on
// an H200 in the same run, with 8 KB less shared memory a block.
template <int D, int NT, int HB, bool kTma>
__global__ void __launch_bounds__(kThreads,
                                  NT == 1 ? (kTma ? kTmaBlocksPerSm : kFp8BlocksPerSm) : 2)
    decode_fp8_kernel(const AttnParams p, const Split sp, const __grid_constant__ KvMaps maps,
                      float scale_log2, float* ws_o, float* ws_lse) {
  constexpr int kChunks = D / 16;  // 16-byte chunks of a key's D bytes
  constexpr int kMT = D / 16;      // m-tiles of O^T
  constexpr int kKS = D / 16;      // k-steps of K Q^T; a thread's K word per key and k-step
  constexpr int kStage = fp8_stage_bytes<D>();
  constexpr int KT = kBN / HB;  // keys a tile
  static_assert(!kTma || D == 128, "the TMA copies' 128-byte swizzle is swz8's at d = 128");
  pdl_allow_dependents();  // the merge may launch now; it waits for this grid's partials
  extern __shared__ __align__(16) unsigned char smem_raw[];  // kTma: aligned to 1024 below
  unsigned char* smem = smem_raw;
  if constexpr (kTma) smem += (1024 - (smem_addr(smem_raw) & 1023)) & 1023;

  const int row0 = blockIdx.x * kRowsFp8 * NT;
  const int split = blockIdx.y;
  const int kvh0 = blockIdx.z * HB;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, c = lane & 3;
  const int hw = warp / (kWarps / HB);      // the warp's kv head, kvh0 + hw
  const int w_key = warp * kWarpKeys % KT;  // the warp's first key in a tile
  // kTma: the warp's ring, stage s's codes at w_codes + s * tma_codes_bytes, mbarrier at
  // w_bars + 8 s.
  unsigned char* const w_codes = smem + warp * kTmaStages * tma_codes_bytes<D>();
  const uint32_t w_bars =
      smem_addr(smem + kWarps * kTmaStages * tma_codes_bytes<D>()) + 8 * warp * kTmaStages;
  const uint8_t* k = p.k8 + static_cast<int64_t>(kvh0) * D;
  const uint8_t* v = p.v8 + static_cast<int64_t>(kvh0) * D;
  const uint8_t* k_scale = p.k8 + p.kv_scale_offset + 4 * kvh0;
  const uint8_t* v_scale = p.v8 + p.kv_scale_offset + 4 * kvh0;

  // A key count read at run time (a replayed graph) spreads its keys over the grid's splits.
  int64_t n_kv = p.n_kv;
  int tiles_per_split = sp.tiles_per_split;
  if (p.n_kv_at != nullptr) {
    n_kv = clamp64(*p.n_kv_at, 0, p.n_kv);
    tiles_per_split = static_cast<int>(((n_kv + KT - 1) / KT + sp.n_splits - 1) / sp.n_splits);
  }
  // Keys of this slice that some row of the block can see: [key0, key_end).
  const int tok_first = row0 / sp.group;
  const int tok_last = (min(row0 + kRowsFp8 * NT, sp.rows) - 1) / sp.group;
  const int64_t key0 = static_cast<int64_t>(split) * tiles_per_split * KT;
  const int64_t visible = p.causal ? clamp64(tok_last + p.causal_offset + 1, 0, n_kv) : n_kv;
  const int64_t key_end = clamp64(key0 + static_cast<int64_t>(tiles_per_split) * KT, 0, visible);
  const int n_tiles = key_end > key0 ? static_cast<int>((key_end - key0 + KT - 1) / KT) : 0;

  // Tile row r is key r % KT of head kvh0 + r / KT; consecutive threads take a key's HB heads'
  // D bytes, which lie side by side in its row, and one copy brings the key's HB scales. A
  // thread's keys, heads and chunks are the same in every tile, so their offsets are worked out
  // once: only the tile's first key moves.
  constexpr int kPassKeys = kThreads / (HB * kChunks);  // keys one pass of the block copies
  constexpr int kPasses = KT / kPassKeys;
  static_assert(kThreads % (HB * kChunks) == 0 && KT % kPassKeys == 0);
  const int ld_key = tid / (HB * kChunks), ld_hl = tid / kChunks % HB, ld_ch = tid % kChunks;
  const int64_t ld_off = ld_key * p.kv_stride + ld_hl * D + ld_ch * 16;
  const int64_t pass_stride = kPassKeys * p.kv_stride;
  int ld_smem[kPasses];
#pragma unroll
  for (int j = 0; j < kPasses; ++j)
    ld_smem[j] = swz8<D>(ld_hl * KT + ld_key + j * kPassKeys, ld_ch);
  auto load_kv = [&](int t) {  // the block's tile t, by cp.async
    unsigned char* st = smem + (t % kStages8) * kStage;
    const int64_t base = key0 + static_cast<int64_t>(t) * KT;
    const int64_t base_off = base * p.kv_stride + ld_off;
    const int64_t left = key_end - base - ld_key;  // the thread's keys left in the slice
#pragma unroll
    for (int j = 0; j < kPasses; ++j) {
      const bool valid = j * kPassKeys < left;
      const int64_t off = valid ? base_off + j * pass_stride : 0;
      cp_async16(st + ld_smem[j], k + off, valid);
      cp_async16(st + kBN * D + ld_smem[j], v + off, valid);
    }
    if (tid < 2 * KT) {
      const int key = tid % KT;
      const bool is_v = tid >= KT, valid = base + key < key_end;
      cp_async_bytes<4 * HB>(st + 2 * kBN * D + (is_v ? kBN * 4 : 0) + key * 4 * HB,
                             (is_v ? v_scale : k_scale) + (valid ? (base + key) * p.kv_stride : 0),
                             valid);
    }
  };
  auto load_warp = [&](int t) {  // kTma: the warp's 16 keys of tile t, by TMA (sm_90)
    if (lane == 0) {
      const int s = t % kTmaStages;
      const uint32_t bar = w_bars + 8 * s;
      const uint32_t codes = smem_addr(w_codes + s * tma_codes_bytes<D>());
      const int key = static_cast<int>(key0 + static_cast<int64_t>(t) * KT + w_key);  // < 2^31
      sm90::mbar_expect_tx(bar, tma_codes_bytes<D>());
      sm90::tma_load_3d(codes, &maps.k, 0, kvh0 + hw, key, bar);
      sm90::tma_load_3d(codes + kWarpKeys * D, &maps.v, 0, kvh0 + hw, key, bar);
    }
  };
  // kTma: the lane's scale of tile t, the K (lanes 0-15) or V scale of the warp's key lane % 16;
  // 0 past the slice's end (so for every t >= n_tiles), which makes P' = 0 there.
  const uint8_t* const lane_scales = (lane < 16 ? k_scale : v_scale) + 4 * hw;
  auto load_scale = [&](int t) {
    const int64_t key = key0 + static_cast<int64_t>(t) * KT + w_key + (lane & 15);
    return key < key_end ? __ldg(reinterpret_cast<const float*>(lane_scales + key * p.kv_stride))
                         : 0.0f;
  };
  if constexpr (kTma) {
    if (lane == 0) {
      for (int s = 0; s < kTmaStages; ++s) sm90::mbar_init(w_bars + 8 * s, 1);
      sm90::mbar_init_fence();
    }
    __syncwarp();
    for (int t = 0; t < kTmaStages - 1; ++t)
      if (t < n_tiles) load_warp(t);
  } else {
    // Always commit kStages8-1 groups so the wait counts below hold for any n_tiles.
#pragma unroll
    for (int t = 0; t < kStages8 - 1; ++t) {
      if (t < n_tiles) load_kv(t);
      cp_async_commit();
    }
  }

  // B fragments of Q^T straight from global memory, as f16: row g of tile n, and for k-step ks
  // the d of slots 2c, 2c+1 (word 0) and 2c+8, 2c+9 (word 1) are c * D/4 + 4 ks + {0, 1} and
  // + {2, 3}, the order the K fragments below take d in.
  uint32_t qb[NT][kKS][2];
#pragma unroll
  for (int n = 0; n < NT; ++n) {
    const int row = row0 + kRowsFp8 * n + g;
    const bf16* qrow =
        p.q +
        (row < sp.rows
             ? (row / sp.group) * p.q_stride +
                   static_cast<int64_t>((kvh0 + hw) * sp.group + row % sp.group) * D + c * (D / 4)
             : 0);
#pragma unroll
    for (int ks = 0; ks < kKS; ++ks) {
      const uint2 w = row < sp.rows ? *reinterpret_cast<const uint2*>(qrow + 4 * ks) : uint2{0, 0};
      const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w.x));
      const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w.y));
      qb[n][ks][0] = pack_f16(lo.x, lo.y);
      qb[n][ks][1] = pack_f16(hi.x, hi.y);
    }
  }

  // Last key each of the thread's rows (2c, 2c+1 of each tile) may see; block_lim: last key all
  // rows see.
  int lim[NT][2];
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int tok = (row0 + kRowsFp8 * n + 2 * c + i) / sp.group;
      const int64_t last = p.causal ? tok + p.causal_offset : key_end - 1;
      lim[n][i] = static_cast<int>(clamp64(last, -1, key_end - 1));
    }
  const int64_t block_lim =
      p.causal ? clamp64(tok_first + p.causal_offset, -1, key_end - 1) : key_end - 1;

  // Offsets from the warp's 16 rows of a stage (the same swizzle, as they begin on a line
  // multiple of 8) of the thread's K reads (keys g, g + 8 below; D/64 chunks each) and V reads
  // (keys 2c, 2c+1, 2c+8, 2c+9), the same in every tile. Hidden from the optimizer, which would
  // otherwise redo their swizzle in every tile (70 instructions).
  int k_off[2][kKS / 4], v_off[4];
#pragma unroll
  for (int j = 0; j < 2; ++j)
#pragma unroll
    for (int h = 0; h < kKS / 4; ++h) {
      k_off[j][h] = swz8<D>(g + 8 * j, c * (kKS / 4) + h);
      asm volatile("" : "+r"(k_off[j][h]));
    }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int vr = 2 * c + (i & 1) + 8 * (i >> 1);
    v_off[i] = D == 128 ? swz8<D>(vr, g) : swz8<D>(vr, g >> 1) + (g & 1) * 8;
    asm volatile("" : "+r"(v_off[i]));
  }

  float o[NT][kMT][4];
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) o[n][mt][0] = o[n][mt][1] = o[n][mt][2] = o[n][mt][3] = 0.0f;
  RowState st[NT];           // rows 2c and 2c + 1 of each tile
  float ahead[kScaleAhead];  // kTma: the lane's scales of tiles t .. t + kScaleAhead - 1
#pragma unroll
  for (int i = 0; i < kScaleAhead; ++i) ahead[i] = kTma ? load_scale(i) : 0.0f;

  for (int t = 0; t < n_tiles; ++t) {
    const int64_t n0 = key0 + static_cast<int64_t>(t) * KT;
    const int kk = w_key + g;  // the thread's keys in the tile (S^T rows g, g + 8): kk, kk + 8
    // The warp's 16 rows of K and V codes, and the K and V scales of the thread's keys g, g + 8.
    const unsigned char* kt_w;
    const unsigned char* vt_w;
    float k_lo, k_hi, v_lo, v_hi;
    if constexpr (kTma) {
      const float scale = ahead[0];
#pragma unroll
      for (int i = 0; i + 1 < kScaleAhead; ++i) ahead[i] = ahead[i + 1];
      ahead[kScaleAhead - 1] = load_scale(t + kScaleAhead);
      k_lo = __shfl_sync(0xffffffffu, scale, g), k_hi = __shfl_sync(0xffffffffu, scale, g + 8);
      v_lo = __shfl_sync(0xffffffffu, scale, g + 16);
      v_hi = __shfl_sync(0xffffffffu, scale, g + 24);
      __syncwarp();  // every lane is done with the stage reloaded next (read in tile t - 1)
      if (t + kTmaStages - 1 < n_tiles) load_warp(t + kTmaStages - 1);
      const int s = t % kTmaStages;
      sm90::mbar_wait(w_bars + 8 * s, (t / kTmaStages) & 1);
      unsigned char* const codes = w_codes + s * tma_codes_bytes<D>();
      const int64_t first = key_end - (n0 + w_key);  // the warp's keys from here are past the end
      if (first < kWarpKeys) {
        for (int i = lane; i < kWarpKeys * kChunks; i += 32) {
          const int j = i / kChunks;
          if (j >= first)
            *reinterpret_cast<uint4*>(codes + kWarpKeys * D + swz8<D>(j, i % kChunks)) = uint4{};
        }
        __syncwarp();
      }
      kt_w = codes, vt_w = codes + kWarpKeys * D;
    } else {
      cp_async_wait<kStages8 - 2>();
      __syncthreads();  // tile t has landed; everyone is done with the stage reloaded next
      if (t + kStages8 - 1 < n_tiles) load_kv(t + kStages8 - 1);
      cp_async_commit();
      const unsigned char* kt = smem + (t % kStages8) * kStage;
      kt_w = kt + warp * kWarpKeys * D, vt_w = kt + kBN * D + warp * kWarpKeys * D;
      const float* ks_w = reinterpret_cast<const float*>(kt + 2 * kBN * D) + w_key * HB + hw;
      k_lo = ks_w[g * HB], k_hi = ks_w[(g + 8) * HB];
      v_lo = ks_w[kBN + g * HB], v_hi = ks_w[kBN + (g + 8) * HB];
    }

    // S^T = K Q^T: A fragments are the warp's keys g and g + 8, the thread's D/4 bytes of each,
    // one word per k-step.
    uint32_t w[2][kKS];
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int h = 0; h < kKS / 4; ++h) {
        const uint4 x = *reinterpret_cast<const uint4*>(kt_w + k_off[j][h]);
        w[j][4 * h] = x.x, w[j][4 * h + 1] = x.y, w[j][4 * h + 2] = x.z, w[j][4 * h + 3] = x.w;
      }
    float s[NT][4] = {};
#pragma unroll
    for (int ks = 0; ks < kKS; ++ks) {
      const uint32_t a[4] = {fp8x2_to_f16x2(w[0][ks]), fp8x2_to_f16x2(w[1][ks]),
                             fp8x2_to_f16x2(w[0][ks] >> 16), fp8x2_to_f16x2(w[1][ks] >> 16)};
#pragma unroll
      for (int n = 0; n < NT; ++n) mma_f16(s[n], a, qb[n][ks][0], qb[n][ks][1]);
    }
    // Scores in log2 units, u = q.k * scale * log2(e), each key's K scale folded in; lv: log2 of
    // its V scale (-inf for a zero row), which P' = exp2(u + lv - m) below carries instead of V.
    const float kq_lo = k_lo * scale_log2, kq_hi = k_hi * scale_log2;
    const float lv_lo = __log2f(v_lo), lv_hi = __log2f(v_hi);
    // The running maximum m is of u + lv, so that P' <= 1 in f16; it takes lv no lower than
    // -100, which keeps p = exp2(u - m), the row sums' terms, at most 2^100 (a sum of 2^27 of
    // them stays finite) while P' stays exact. Only keys whose V rows are all under 448 * 2^-100
    // in magnitude see a maximum above 1 and so P' in f16's subnormal range.
    const float lm_lo = fmaxf(lv_lo, -100.0f), lm_hi = fmaxf(lv_hi, -100.0f);
    uint32_t b0[NT], b1[NT];
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      float u[4] = {s[n][0] * kq_lo, s[n][1] * kq_lo, s[n][2] * kq_hi, s[n][3] * kq_hi};
      if (n0 + KT - 1 > block_lim) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = static_cast<int>(n0) + kk + 8 * (e >> 1);
          if (key > lim[n][e & 1]) u[e] = -INFINITY;
        }
      }
      // Online softmax of rows 2c + i over the warp's keys: the lane's two, then across g.
      float pv[4], alpha[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        float mx = fmaxf(st[n].m[i], fmaxf(u[i] + lm_lo, u[2 + i] + lm_hi));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 8));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 16));
        const float m_use = mx == -INFINITY ? 0.0f : mx;
        alpha[i] = ex2(st[n].m[i] - m_use);
        st[n].m[i] = mx;
        pv[i] = ex2(u[i] + lv_lo - m_use);
        pv[2 + i] = ex2(u[2 + i] + lv_hi - m_use);
        st[n].l[i] = st[n].l[i] * alpha[i] + ex2(u[i] - m_use) + ex2(u[2 + i] - m_use);
      }
      // Past the first tiles a row's maximum seldom moves (alpha = 1 exactly): the warp skips
      // the rescale of its accumulators unless some row's did.
      if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
          for (int i = 0; i < 2; ++i) o[n][mt][i] *= alpha[i], o[n][mt][2 + i] *= alpha[i];
      }
      // P'^T as f16 B fragments: the warp's keys g, g + 8 x rows 2c, 2c+1 transposed into row g
      // x keys 2c, 2c+1 (b0) and 2c+8, 2c+9 (b1).
      b0[n] = transpose8x8_b16(pack_f16(pv[0], pv[1]));
      b1[n] = transpose8x8_b16(pack_f16(pv[2], pv[3]));
    }

    // O^T += V^T P'^T over V's codes as f16 (exact: every E4M3 value is an f16 value, one
    // conversion instruction a pair). A fragments of m-tile mt: (column, keys 2c, 2c+1) and
    // (column, keys 2c+8, 2c+9) for columns g * D/8 + 4 (mt / 2) + 2 (mt % 2) + {0 (row g), 1
    // (row g + 8)}: kv[i] holds bytes g * D/8 .. + D/8 of the warp's key 2c + {0, 1, 8, 9}[i].
    constexpr int kWords = D / 32;
    uint32_t kv[4][kWords];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if constexpr (D == 128) {
        const uint4 x = *reinterpret_cast<const uint4*>(vt_w + v_off[i]);
        kv[i][0] = x.x, kv[i][1] = x.y, kv[i][2] = x.z, kv[i][3] = x.w;
      } else {
        const uint2 x = *reinterpret_cast<const uint2*>(vt_w + v_off[i]);
        kv[i][0] = x.x, kv[i][1] = x.y;
      }
    }
#pragma unroll
    for (int m = 0; m < kWords; ++m) {
      // Column 4m + x of keys (2c, 2c+1) in c0[x], of keys (2c+8, 2c+9) in c1[x].
      uint32_t c0[4], c1[4];
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        c0[x] = fp8x2_to_f16x2(__byte_perm(kv[0][m], kv[1][m], x | (4 + x) << 4));
        c1[x] = fp8x2_to_f16x2(__byte_perm(kv[2][m], kv[3][m], x | (4 + x) << 4));
      }
      const uint32_t a_lo[4] = {c0[0], c0[1], c1[0], c1[1]};
      const uint32_t a_hi[4] = {c0[2], c0[3], c1[2], c1[3]};
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        mma_f16(o[n][2 * m], a_lo, b0[n], b1[n]);
        mma_f16(o[n][2 * m + 1], a_hi, b0[n], b1[n]);
      }
    }
  }

#pragma unroll
  for (int n = 0; n < NT; ++n)  // each call begins with a barrier: the last one's reads are done
    store_split_partial_fp8<D, HB>(smem, o[n], st[n], sp, row0 + kRowsFp8 * n, split, kvh0, 1.0f,
                                   ws_o, ws_lse);  // m is in log2 units already
}

// kFp8: 0 for Act rows; 1 or 2 for fp8 rows, the row tiles of 8 a block (decode_fp8_kernel's NT).
template <int D, int kFp8, int HB = 1, bool kTma = false>
void launch_decode(const AttnParams& p, cudaStream_t stream) {
  constexpr int smem = kFp8 ? decode_fp8_smem_bytes<D, kTma>() : decode_smem_bytes<D>();
  constexpr int keys_per_tile = kFp8 ? kBN / HB : kBN;
  auto* kernel = [] {
    if constexpr (kFp8 != 0)
      return decode_fp8_kernel<D, kFp8, HB, kTma>;
    else
      return decode_kernel<D>;
  }();
  SA_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  static const int blocks_per_sm = [kernel] {
    int n = 0;
    SA_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kThreads, smem));
    return n > 0 ? n : 1;
  }();

  Split sp{};
  sp.group = p.n_heads / p.n_kv_heads;
  const int64_t rows = static_cast<int64_t>(p.n_q) * sp.group;
  SA_CHECK(rows <= (int64_t{1} << 30), "attention_decode: ", rows, " query rows is too many");
  sp.rows = static_cast<int>(rows);
  constexpr int rows_per_block = kFp8 ? kRowsFp8 * kFp8 : kRows;
  const int row_groups = (sp.rows + rows_per_block - 1) / rows_per_block;
  // One full wave of resident blocks: every block streams an equal slice, so none waits for a
  // second wave and the pipelines stay full to the end.
  const int tiles = (p.n_kv + keys_per_tile - 1) / keys_per_tile;
  const int64_t slots = static_cast<int64_t>(sm_count()) * blocks_per_sm;
  const int64_t head_groups = p.n_kv_heads / HB;
  const int64_t want = std::max<int64_t>(1, slots / (head_groups * row_groups));
  sp.tiles_per_split = static_cast<int>(std::max<int64_t>(1, (tiles + want - 1) / want));
  sp.n_splits = std::max(1, (tiles + sp.tiles_per_split - 1) / sp.tiles_per_split);

  const size_t n_part = static_cast<size_t>(p.n_kv_heads) * sp.rows * sp.n_splits;
  float* ws_o = static_cast<float*>(workspace(n_part * (D + 1) * sizeof(float), stream));
  float* ws_lse = ws_o + n_part * D;

  const dim3 grid(row_groups, sp.n_splits, static_cast<unsigned>(head_groups));
  if constexpr (kFp8) {
    KvMaps maps{};
    if constexpr (kTma) {
      SA_CHECK(p.n_kv < (int64_t{1} << 31), "attention_decode: ", p.n_kv, " keys is too many");
      maps.k = make_map(p.k8, D, p.n_kv_heads, p.n_kv, p.kv_stride, kWarpKeys, MapTile::kFp8Sw128);
      maps.v = make_map(p.v8, D, p.n_kv_heads, p.n_kv, p.kv_stride, kWarpKeys, MapTile::kFp8Sw128);
    }
    kernel<<<grid, kThreads, smem, stream>>>(p, sp, maps, p.scale * kLog2e, ws_o, ws_lse);
  } else {
    kernel<<<grid, kThreads, smem, stream>>>(p, sp, p.scale * kLog2e, ws_o, ws_lse);
  }
  if constexpr (kFp8) {
    SA_LAUNCHED("decode_fp8_kernel");
  } else {
    SA_LAUNCHED("decode_kernel");
  }
  merge_splits(p, sp, ws_o, ws_lse, stream);
}

// fp8 rows: blocks of 4 kv heads where the heads come in fours (one 16-byte copy then brings a
// key's 4 scales), else of 2 or 1; the codes by TMA on sm_90 at d = 128.
template <int D, int NT, int HB>
void launch_decode_fp8_heads(const AttnParams& p, cudaStream_t stream) {
  if constexpr (D == 128) {
    if (p.n_kv > 0 && p.n_kv_heads >= 4 && device_has_wgmma()) {
      launch_decode<D, NT, HB, true>(p, stream);
      return;
    }
  }
  launch_decode<D, NT, HB>(p, stream);
}
template <int D, int NT>
void launch_decode_fp8(const AttnParams& p, cudaStream_t stream) {
  if (p.n_kv_heads % 4 == 0)
    launch_decode_fp8_heads<D, NT, 4>(p, stream);
  else if (p.n_kv_heads % 2 == 0)
    launch_decode_fp8_heads<D, NT, 2>(p, stream);
  else
    launch_decode_fp8_heads<D, NT, 1>(p, stream);
}

}  // namespace

}  // namespace attn

void attention_decode(const AttnParams& p, cudaStream_t stream) {
  attn::check_params(p, "attention_decode");
  if (p.n_q == 0) return;
  attn::dispatch_head_dim(p.head_dim, "attention_decode", [&](auto d) {
    constexpr int D = decltype(d)::value;
    if (p.kv_type != KvType::Fp8)
      attn::launch_decode<D, 0>(p, stream);
    else if (int64_t{p.n_q} * (p.n_heads / p.n_kv_heads) <= attn::kRowsFp8)
      attn::launch_decode_fp8<D, 1>(p, stream);
    else  // a short query: two row tiles a block share each key's conversion
      attn::launch_decode_fp8<D, 2>(p, stream);
  });
}

}  // namespace starattn::cuda
