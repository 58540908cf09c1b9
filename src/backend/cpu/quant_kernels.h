// Kernels of the CPU backend for weights kept in their GGUF blocks (and bf16), one set per
// storage type, in several builds: a scalar one (quant_scalar.cpp, any x86-64 or other CPU) and
// x86 ones from one source (quant_x86.h): AVX2/FMA/F16C, and the same with VNNI's 8-bit dot
// product (AVX-VNNI, or AVX512-VNNI on 256-bit vectors). The fastest the CPU runs is chosen at run
// time (kernels()).
//
// Matrix-vector products (decode) quantise the fp32 activation to 8 bits once, in blocks of 32
// (ActBlock), and take integer dot products with the weights' blocks, as llama.cpp does: on this
// project's CPUs that ran 1.3-1.6x faster than unpacking the weights to fp32 and using FMAs
// (bench/cpu_quant/NOTES.md). The error this adds is bounded per element by half an activation
// step, d/2 with d = max|x| / 127 over the element's block of 32; quant_test.cpp checks the
// kernels against dequantise-then-fp32 within that bound.
//
// Layouts are ggml's (ggml_types.cpp states each block); rows are whole blocks (weights.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/ggml_types.h"

namespace starattn::cpu::quant {

// 32 activations as x[i] ~= d * q[i]; sum of q over each half (the weights' offsets need them).
struct ActBlock {
  float d = 0;          // max|x| / 127 over the block (0 for an all-zero block)
  float dsum = 0;       // d * (sum[0] + sum[1])
  int16_t sum[2] = {};  // sum of q[0..15], of q[16..31]
  int8_t q[32] = {};    // round-to-nearest-even of x / d, in [-127, 127]
};
inline constexpr int kActBlock = 32;
// A block whose max|x| is below this is quantised as zeros (and a block holding a NaN or an Inf
// as d = NaN, so that it reaches the output).
inline constexpr float kTinyAct = 1e-30f;

// One storage type's kernels. w points at rows of row_bytes bytes, each `cols` elements.
struct TypeKernels {
  // y[r] = dot(row r, x) for r in [0, rows), x given as cols / 32 ActBlocks. (nullptr for types
  // that take fp32 activations: bf16.)
  void (*gemv_q8)(const uint8_t* w, size_t row_bytes, const ActBlock* x, int64_t cols, float* y,
                  int64_t rows) = nullptr;
  // y[r] = dot(row r, x) with fp32 x [cols]; for types whose products need no quantised x.
  void (*gemv_f32)(const uint8_t* w, size_t row_bytes, const float* x, int64_t cols, float* y,
                   int64_t rows) = nullptr;
  // out[rows, cols] = the rows as fp32.
  void (*dequantize)(const uint8_t* w, size_t row_bytes, int64_t cols, float* out,
                     int64_t rows) = nullptr;
};

struct KernelSet {
  const char* name;  // "scalar", "avx2", "avx-vnni" or "avx512-vnni"
  // x[cols] (cols % 32 == 0) -> cols / 32 blocks.
  void (*quantize_act)(const float* x, int64_t cols, ActBlock* out);
  TypeKernels q8_0, q4_0, q4_1, q4_k, q5_k, q6_k, bf16;
  const TypeKernels* of(GgmlType t) const;  // nullptr for a type without kernels
};

const KernelSet& scalar_kernels();
// The x86 sets without the CPU check (quant_avx2.cpp, quant_avxvnni.cpp, quant_avx512vnni.cpp);
// nullptr where this build has none.
const KernelSet* avx2_kernels_unchecked();
const KernelSet* avxvnni_kernels_unchecked();
const KernelSet* avx512vnni_kernels_unchecked();
// Every set this build has and this CPU runs: the scalar one first, the fastest last. The AVX2
// set needs AVX2, FMA and F16C; the AVX-VNNI set those and AVX-VNNI; the AVX512-VNNI set those
// and AVX-512 F, VL and VNNI.
const std::vector<const KernelSet*>& runnable_kernel_sets();
// The fastest runnable set. STARATTN_CPU_KERNELS=NAME (scalar, avx2, ...) forces a runnable set
// of that name instead (for comparisons); an unknown or unrunnable name is ignored.
const KernelSet& kernels();

}  // namespace starattn::cpu::quant
