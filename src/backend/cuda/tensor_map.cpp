#include "backend/cuda/tensor_map.h"

#include <cudaTypedefs.h>

#include "backend/cuda/cuda_check.h"
#include "starattn/error.h"

namespace starattn::cuda::attn {

namespace {

PFN_cuTensorMapEncodeTiled_v12000 encoder() {
  static const auto encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    SA_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                             cudaEnableDefault, &found));
    SA_CHECK(found == cudaDriverEntryPointSuccess && fn != nullptr,
             "attention: the driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encode;
}

}  // namespace

CUtensorMap make_map(const void* base, int head_dim, int heads, int64_t rows, int64_t row_stride,
                     int box_rows, MapTile tile) {
  const bool fp8 = tile != MapTile::kBf16Sw128;
  SA_CHECK(tile != MapTile::kFp8Sw128 || head_dim == 128,
           "attention: a swizzled fp8 map needs head_dim 128 (got ", head_dim, ")");
  CUtensorMap map{};
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(head_dim), static_cast<cuuint64_t>(heads),
                              static_cast<cuuint64_t>(rows > 0 ? rows : 1)};
  const cuuint64_t elem = fp8 ? 1 : 2;
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(head_dim) * elem,
                                 static_cast<cuuint64_t>(row_stride) * elem};
  const cuuint32_t box[3] = {fp8 ? static_cast<cuuint32_t>(head_dim) : 64u, 1,
                             static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  const CUresult r = encoder()(
      &map, fp8 ? CU_TENSOR_MAP_DATA_TYPE_UINT8 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3,
      const_cast<void*>(base), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
      tile == MapTile::kFp8Linear ? CU_TENSOR_MAP_SWIZZLE_NONE : CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  SA_CHECK(r == CUDA_SUCCESS, "attention: cuTensorMapEncodeTiled failed (", int(r), ")");
  return map;
}

}  // namespace starattn::cuda::attn
