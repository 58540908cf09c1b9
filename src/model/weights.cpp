#include "model/weights.h"

#include <cstdio>
#include <cstring>
#include <map>

#include "starattn/error.h"

namespace starattn {

const char* weights_type_name(WeightsType t) {
  return enum_name(kWeightsTypeNames, t);
}

WeightsType parse_weights_type(const std::string& s) {
  return parse_enum(kWeightsTypeNames, s, "weights type");
}

bool kept_native(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

WeightMatrix WeightMatrix::f32(std::vector<float> values, int64_t rows, int64_t cols) {
  SA_CHECK(rows >= 0 && cols >= 0 && static_cast<int64_t>(values.size()) == rows * cols,
           "weight matrix [", rows, ", ", cols, "] given ", values.size(), " values");
  auto keep = std::make_shared<const std::vector<float>>(std::move(values));
  WeightMatrix m;
  m.type_ = GgmlType::F32;
  m.rows_ = rows;
  m.cols_ = cols;
  m.row_bytes_ = static_cast<size_t>(cols) * 4;
  m.bytes_ = keep->size() * 4;
  m.data_ = reinterpret_cast<const uint8_t*>(keep->data());
  m.keep_ = std::move(keep);
  return m;
}

WeightMatrix WeightMatrix::bf16_from(const std::vector<float>& values, int64_t rows, int64_t cols) {
  SA_CHECK(rows >= 0 && cols >= 0 && static_cast<int64_t>(values.size()) == rows * cols,
           "weight matrix [", rows, ", ", cols, "] given ", values.size(), " values");
  std::vector<uint8_t> bytes(values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t b = fp32_to_bf16(values[i]);
    std::memcpy(&bytes[2 * i], &b, 2);
  }
  return owned(GgmlType::BF16, rows, cols, std::move(bytes));
}

WeightMatrix WeightMatrix::owned(GgmlType type, int64_t rows, int64_t cols,
                                 std::vector<uint8_t> bytes) {
  auto keep = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  WeightMatrix m = borrowed(type, rows, cols, keep->data(), keep);
  m.mapped_ = false;
  return m;
}

WeightMatrix WeightMatrix::borrowed(GgmlType type, int64_t rows, int64_t cols, const uint8_t* data,
                                    std::shared_ptr<const void> keep) {
  SA_CHECK(rows >= 0 && cols >= 0, "weight matrix [", rows, ", ", cols, "]");
  WeightMatrix m;
  m.type_ = type;
  m.rows_ = rows;
  m.cols_ = cols;
  m.row_bytes_ = ggml_row_bytes(type, cols);  // throws unless rows are whole blocks
  SA_CHECK(!__builtin_mul_overflow(m.row_bytes_, static_cast<size_t>(rows), &m.bytes_),
           "weight matrix [", rows, ", ", cols, "] of ", ggml_type_name(type), " is too large");
  m.data_ = data;
  m.mapped_ = true;
  m.keep_ = std::move(keep);
  return m;
}

const float* WeightMatrix::f32() const {
  SA_CHECK(type_ == GgmlType::F32, "weight matrix holds ", ggml_type_name(type_), ", not F32");
  return reinterpret_cast<const float*>(data_);
}

void WeightMatrix::dequantize_rows(int64_t r0, int64_t n, float* out) const {
  SA_CHECK(r0 >= 0 && n >= 0 && r0 + n <= rows_, "rows ", r0, "..", r0 + n, " of a ", rows_,
           "-row weight matrix");
  dequantize(type_, row(r0), out, n * cols_);
}

std::vector<float> WeightMatrix::to_f32() const {
  std::vector<float> v(static_cast<size_t>(size()));
  dequantize_rows(0, rows_, v.data());
  return v;
}

bool WeightMatrix::operator==(const WeightMatrix& o) const {
  return type_ == o.type_ && rows_ == o.rows_ && cols_ == o.cols_ &&
         (bytes_ == 0 || std::memcmp(data_, o.data_, bytes_) == 0);
}

namespace {

// Calls f on every matrix once (a tied lm_head is tok_embd).
template <typename F>
void for_each_matrix(const Weights& w, F f) {
  f(w.tok_embd);
  if (!w.output.empty()) f(w.output);
  for (const LayerWeights& l : w.layers)
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) f(*m);
}

}  // namespace

size_t Weights::bytes() const {
  size_t b = output_norm.size() * 4;
  for (const LayerWeights& l : layers)
    for (const std::vector<float>* v : {&l.attn_norm, &l.ffn_norm, &l.bq, &l.bk, &l.bv})
      b += v->size() * 4;
  for_each_matrix(*this, [&](const WeightMatrix& m) { b += m.bytes(); });
  return b;
}

size_t Weights::mapped_bytes() const {
  size_t b = 0;
  for_each_matrix(*this, [&](const WeightMatrix& m) { b += m.mapped() ? m.bytes() : 0; });
  return b;
}

std::string Weights::storage_summary() const {
  std::map<std::string, int> count;
  for_each_matrix(*this, [&](const WeightMatrix& m) { ++count[ggml_type_name(m.type())]; });
  std::string s;
  for (const auto& [name, n] : count)
    s += (s.empty() ? "" : ", ") + name + " x" + std::to_string(n);
  if (const size_t mapped = mapped_bytes()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "; %.1f MiB read in place from the file",
                  static_cast<double>(mapped) / (1 << 20));
    s += buf;
  }
  return s;
}

}  // namespace starattn
