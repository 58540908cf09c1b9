// The CUDA backend's copy of a model's weights, in one device arena laid out by weight_layout
// (memory_plan.h): which storage each matrix gets, and the arena filled from host weights or with
// random values made on the device. Plain C++ (the CUDA runtime only).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/memory_plan.h"
#include "model/config.h"
#include "model/ggml_types.h"
#include "model/weights.h"

namespace starattn::cuda {

// The storage of host weights on the device: a fused matrix (q|k|v, gate|up) keeps its parts'
// common type when the GPU has kernels for it (quant_supported; the blocks are uploaded as they
// are), else bf16.
WeightTypes device_types(const ModelConfig& c, const Weights& w);
// Random weights of type t (BF16 or a quant_supported type), as a quantiser would store them: a
// matrix whose rows are not a whole number of t's blocks (K-quants take 256 values) falls back to
// Q8_0, or bf16 when not even that divides them, as llama.cpp's quantiser does.
WeightTypes random_types(const ModelConfig& c, GgmlType t);

// Copies w into `arena` (device, wl.total bytes laid out as wl for c): matrices in wl.types
// (blocks as they are, or converted to bf16 a slice of rows at a time, so no fp32 copy of a whole
// matrix is made; q|k|v and gate|up fused), norms and biases fp32. Checks every shape and type
// against c and wl.types first. Runs on `stream` and returns when the copies are done.
void upload_weights(const ModelConfig& c, const Weights& w, const WeightLayout& wl, void* arena,
                    cudaStream_t stream);
// Fills `arena` (laid out as wl for c) with random weights made on the device: matrices uniform
// with std 0.02 (or random blocks of their type), norms 1 +- 0.05 std, biases std 0.02. Same seed,
// same weights. Runs on `stream` and returns when done.
void random_weights(const ModelConfig& c, const WeightLayout& wl, void* arena, uint64_t seed,
                    cudaStream_t stream);

}  // namespace starattn::cuda
