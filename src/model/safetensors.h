// Reader of Hugging Face .safetensors files: one memory-mapped file, or a model folder holding
// `model.safetensors` or shards listed in `model.safetensors.index.json`.
// Format: 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {...}}
// then the data section; offsets are relative to its start. F32, F16 and BF16 are read (as fp32);
// any other dtype is named in the error. Every malformed input throws starattn::Error naming the
// file (and the tensor where there is one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace starattn {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // "F32", "F16" or "BF16" (others are rejected at open)
  std::vector<int64_t> shape;  // outermost first, as PyTorch: a Linear weight is [out, in]
  uint64_t begin = 0;          // byte offsets within the data section
  uint64_t end = 0;
  int64_t n_elements() const;
};

class SafetensorsFile {
 public:
  // Maps and parses the file; throws Error on a missing, truncated or malformed file.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(const std::string& name) const;  // nullptr when absent
  // The tensor converted to fp32, in file order ([n_elements]). Safe to call from many threads.
  std::vector<float> read_f32(const SafetensorsTensor& t) const;

 private:
  std::string path_;
  std::map<std::string, SafetensorsTensor> tensors_;
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  size_t data_offset_ = 0;  // 8 + header length
};

// All tensors of a Hugging Face model folder, whichever shard holds them. Each shard is opened
// (mapped) once.
class SafetensorsFolder {
 public:
  // Throws Error when the folder has neither file, the index is malformed or names a missing shard.
  explicit SafetensorsFolder(const std::string& dir);

  const std::string& dir() const { return dir_; }
  // The tensor and the file holding it; nullptr when absent.
  const SafetensorsTensor* find(const std::string& name, const SafetensorsFile** file) const;
  // fp32 copy of a tensor whose shape must equal `shape`; throws Error naming the tensor and the
  // file when it is missing or has another shape.
  std::vector<float> read_f32(const std::string& name, const std::vector<int64_t>& shape) const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;  // tensor name -> file holding it
};

}  // namespace starattn
