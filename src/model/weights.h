// Weights of a Llama-family model, as the backends compute with them.
// Every matrix is row-major [out_features, in_features], the Hugging Face (PyTorch Linear) layout.
// Q and K rows are in Hugging Face order: RoPE rotates pairs (i, i + head_dim/2) ("neox" style).
// The GGUF reader un-permutes llama-arch Q/K rows to reach this order, so one RoPE serves all.
//
// A matrix holds fp32 values, bf16 values, or a GGUF file's quantised blocks as they are in the
// file (WeightMatrix). Quantised blocks run along a row (a row of `cols` elements is cols / 32 or
// cols / 256 whole blocks), so a row is a contiguous run of bytes in every storage type and rows
// can be moved, sliced and fused without touching their contents. Norm weights and biases are
// small and always fp32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/ggml_types.h"
#include "util/enum_names.h"

namespace starattn {

// How the loader stores weight matrices (the CLI's --weights-type):
// - F32: every matrix expanded to fp32 at load: the reference path, and the oracle of the others.
// - BF16: every matrix rounded to bf16 (half of fp32's memory).
// - Native: the file's quantised blocks kept as they are (see kept_native); fp32 tensors of a
//   GGUF are used in place too; every other type is expanded to fp32 as with F32.
enum class WeightsType { F32, BF16, Native };
inline constexpr EnumName<WeightsType> kWeightsTypeNames[] = {
    {WeightsType::F32, "f32"}, {WeightsType::BF16, "bf16"}, {WeightsType::Native, "native"}};
const char* weights_type_name(WeightsType t);
// Throws Error naming the accepted values for a name not in kWeightsTypeNames.
WeightsType parse_weights_type(const std::string& s);
// The ggml types that Native keeps in their blocks (the CPU and CUDA backends have kernels for
// them): Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K, and F32.
bool kept_native(GgmlType t);

class WeightMatrix {
 public:
  WeightMatrix() = default;
  // fp32 values [rows, cols], owned.
  static WeightMatrix f32(std::vector<float> values, int64_t rows, int64_t cols);
  // bf16 values [rows, cols], owned, rounded to nearest even from fp32.
  static WeightMatrix bf16_from(const std::vector<float>& values, int64_t rows, int64_t cols);
  // Data of any ggml type, owned: rows * ggml_row_bytes(type, cols) bytes.
  static WeightMatrix owned(GgmlType type, int64_t rows, int64_t cols, std::vector<uint8_t> bytes);
  // Data of any ggml type that lives elsewhere (a mapped file) and stays valid while `keep` does.
  static WeightMatrix borrowed(GgmlType type, int64_t rows, int64_t cols, const uint8_t* data,
                               std::shared_ptr<const void> keep);

  GgmlType type() const { return type_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t size() const { return rows_ * cols_; }  // elements
  bool empty() const { return size() == 0; }
  bool quantised() const { return type_ != GgmlType::F32 && type_ != GgmlType::BF16; }
  // True when the data is not a copy (it is read from the mapped file in place).
  bool mapped() const { return mapped_; }

  const uint8_t* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  size_t row_bytes() const { return row_bytes_; }
  const uint8_t* row(int64_t r) const { return data_ + static_cast<size_t>(r) * row_bytes_; }
  // The fp32 values; only for type() == F32.
  const float* f32() const;

  // out[n, cols] = rows r0..r0+n-1 as fp32.
  void dequantize_rows(int64_t r0, int64_t n, float* out) const;
  std::vector<float> to_f32() const;

  // Same type, shape and bytes.
  bool operator==(const WeightMatrix& o) const;

 private:
  GgmlType type_ = GgmlType::F32;
  int64_t rows_ = 0, cols_ = 0;
  size_t row_bytes_ = 0, bytes_ = 0;
  const uint8_t* data_ = nullptr;
  bool mapped_ = false;
  std::shared_ptr<const void> keep_;  // owns or pins the data
};

struct LayerWeights {
  std::vector<float> attn_norm;  // [d_model]
  WeightMatrix wq;               // [q_dim, d_model]
  WeightMatrix wk;               // [kv_dim, d_model]
  WeightMatrix wv;               // [kv_dim, d_model]
  std::vector<float> bq;         // [q_dim] or empty
  std::vector<float> bk;         // [kv_dim] or empty
  std::vector<float> bv;         // [kv_dim] or empty
  WeightMatrix wo;               // [d_model, q_dim]
  std::vector<float> ffn_norm;   // [d_model]
  WeightMatrix w_gate;           // [d_ffn, d_model]
  WeightMatrix w_up;             // [d_ffn, d_model]
  WeightMatrix w_down;           // [d_model, d_ffn]
};

struct Weights {
  WeightMatrix tok_embd;           // [vocab, d_model]
  std::vector<float> output_norm;  // [d_model]
  WeightMatrix output;             // [vocab, d_model]; empty when tied to tok_embd
  std::vector<LayerWeights> layers;

  const WeightMatrix& lm_head() const { return output.empty() ? tok_embd : output; }

  // Bytes the weights occupy (a tied lm_head counted once); of those, the bytes read in place
  // from a mapped file rather than copied.
  size_t bytes() const;
  size_t mapped_bytes() const;
  // "Q4_1 x210, Q8_0 x1; 93.8 MiB read in place from the file": the matrices' storage, for
  // messages.
  std::string storage_summary() const;
};

}  // namespace starattn
