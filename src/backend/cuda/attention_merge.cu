// Merge of two partial attention results over disjoint key sets (attention.h (c)), the GPU twin
// of starattn::merge_attention: lse = log(e^a + e^b) with the max subtracted; a side with
// lse = -inf saw no key and contributes nothing, so no row ever becomes NaN.
#include "backend/cuda/attention_common.cuh"

namespace starattn::cuda {
namespace attn {
namespace {

// One warp per (row, head); lanes stride over head_dim (the merge moves bytes, nothing more).
__global__ void __launch_bounds__(128) merge_kernel(bf16* out_a, float* lse_a, const bf16* out_b,
                                                    const float* lse_b, int64_t n, int head_dim) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * 4 + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (r >= n) return;
  const float la = lse_a[r], lb = lse_b[r];
  if (lb == -INFINITY) return;  // b saw no key: a is already the answer (warp-uniform)
  __syncwarp();                 // every lane has read lse_a[r] before lane 0 rewrites it
  bf16* oa = out_a + r * head_dim;
  const bf16* ob = out_b + r * head_dim;
  if (la == -INFINITY) {  // a saw no key: b is the answer (copied, so nothing in a can leak)
    for (int c = lane; c < head_dim; c += 32) oa[c] = ob[c];
    if (lane == 0) lse_a[r] = lb;
    return;
  }
  const float m = fmaxf(la, lb);
  const float ea = __expf(la - m), eb = __expf(lb - m);  // the larger one is exactly 1
  const float wa = ea / (ea + eb), wb = eb / (ea + eb);
  for (int c = lane; c < head_dim; c += 32)
    oa[c] = __float2bfloat16_rn(wa * __bfloat162float(oa[c]) + wb * __bfloat162float(ob[c]));
  if (lane == 0) lse_a[r] = m + logf(ea + eb);
}

}  // namespace
}  // namespace attn

void merge_attention(__nv_bfloat16* out_a, float* lse_a, const __nv_bfloat16* out_b,
                     const float* lse_b, int rows, int heads, int head_dim, cudaStream_t stream) {
  SA_CHECK(rows >= 0 && heads >= 0 && head_dim > 0, "merge_attention: bad sizes (rows ", rows,
           ", heads ", heads, ", head_dim ", head_dim, ")");
  const int64_t n = static_cast<int64_t>(rows) * heads;
  if (n == 0) return;
  SA_CHECK(out_a && lse_a && out_b && lse_b, "merge_attention: null tensor");
  attn::merge_kernel<<<static_cast<unsigned>((n + 3) / 4), 128, 0, stream>>>(out_a, lse_a, out_b,
                                                                             lse_b, n, head_dim);
  SA_LAUNCHED("merge_kernel");
}

}  // namespace starattn::cuda
