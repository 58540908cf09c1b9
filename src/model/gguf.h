// GGUF v2/v3 reader: memory-maps the file, parses the metadata key/values and the tensor table, and
// hands out pointers to tensor data. Every malformed input throws starattn::Error naming the file.
// Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "model/ggml_types.h"

namespace starattn {

// One metadata value. Arrays hold values of a single element type; nested arrays are allowed.
struct GgufValue {
  enum class Type : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
  };
  Type type = Type::U8;
  // Scalars: integers (and bool) as int64/uint64, floats as double, strings as std::string.
  std::variant<int64_t, uint64_t, double, std::string, std::vector<GgufValue>> value;
  Type array_type = Type::U8;  // element type when type == ARRAY

  bool is_integer() const;  // any integer type or bool
  int64_t as_int() const;   // throws Error if not an integer
  double as_float() const;  // integers and floats
  const std::string& as_string() const;
  const std::vector<GgufValue>& as_array() const;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the fastest-varying (row length)
  uint64_t offset = 0;        // from the start of the data section
  uint64_t n_bytes = 0;
  int64_t n_elements() const;
};

class GgufFile {
 public:
  // Maps and parses the file; throws Error on a missing, truncated or malformed file.
  explicit GgufFile(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }

  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;  // nullptr when absent
  // Typed getters: throw Error naming the key when it is absent or of the wrong type.
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  std::vector<double> get_float_array(const std::string& key) const;
  // An integer in [lo, hi]: throws Error naming the key and the range when it is outside (a
  // count or an id from a file must be checked before it is used, or cast to a narrower type).
  int64_t get_int_in(const std::string& key, int64_t lo, int64_t hi) const;
  // Getters with a default for optional keys (still throw on a wrong type or range).
  int64_t get_int_or(const std::string& key, int64_t def) const;
  int64_t get_int_in_or(const std::string& key, int64_t lo, int64_t hi, int64_t def) const;
  double get_float_or(const std::string& key, double def) const;
  std::string get_string_or(const std::string& key, const std::string& def) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;  // nullptr when absent
  const uint8_t* tensor_data(const GgufTensorInfo& t) const;
  // Dequantises a whole tensor to fp32, in ggml element order.
  std::vector<float> read_f32(const GgufTensorInfo& t) const;

 private:
  void parse();  // reads the header, metadata and tensor table of the mapped file

  std::string path_;
  uint32_t version_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  size_t data_offset_ = 0;  // start of the tensor data section within the file
};

}  // namespace starattn
