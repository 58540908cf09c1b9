// Pieces shared by the two halves of the model loader (loader.cpp: HF folders and the entry point;
// loader_gguf.cpp: GGUF files). Not part of the library's interface.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/loader.h"

namespace starattn::loader_detail {

// One weight to read: its name (for messages), where it goes and how to read it: an fp32 vector
// (dst, read) or a matrix (matrix, read_matrix).
struct LoadJob {
  std::string name;
  std::vector<float>* dst = nullptr;
  std::function<std::vector<float>()> read;
  WeightMatrix* matrix = nullptr;
  std::function<WeightMatrix()> read_matrix;
};

// Bounds on the model sizes a file may claim: far above any real model's, so that a count from
// a hostile file is refused before it sizes anything (ModelConfig::validate checks products).
constexpr int64_t kMaxCount = int64_t{1} << 16;      // layers, heads, head size
constexpr int64_t kMaxWidth = int64_t{1} << 24;      // hidden and FFN sizes
constexpr int64_t kMaxInt = (int64_t{1} << 31) - 1;  // context length, vocabulary

// A matrix [rows, cols] from its fp32 values, stored as `type` asks (Native keeps fp32).
WeightMatrix matrix_from_f32(std::vector<float> values, int64_t rows, int64_t cols,
                             WeightsType type);

// Runs the jobs in parallel; rethrows the first failure in job order.
void run_load_jobs(std::vector<LoadJob>& jobs);

// "[a, b, c]" for error messages.
std::string shape_string(const std::vector<int64_t>& shape);

Model load_gguf(const std::string& path, WeightsType weights);

}  // namespace starattn::loader_detail
