// Test helpers that write model files: temp folders, safetensors files (optionally with a doctored
// header) and GGUF files (F32 tensors, scalar metadata), including copies of fixtures with a
// change. Used by loader_test.cpp and safetensors_test.cpp.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "error_of.h"
#include "model/gguf.h"
#include "model/safetensors.h"
#include "starattn/error.h"

namespace starattn::testfiles {

namespace fs = std::filesystem;

inline std::string tiny_fixture(const std::string& name) {
  return std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/tiny/" + name;
}

// A fresh folder, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = testing::TempDir() + "/starattn_loader_XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

using test::error_of;

// ---- safetensors ------------------------------------------------------------------------------

struct StTensor {
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  std::string bytes;  // raw little-endian data
};
using StTensors = std::map<std::string, StTensor>;

inline StTensor st_f32(std::vector<int64_t> shape, const std::vector<float>& v) {
  StTensor t{"F32", std::move(shape), std::string(v.size() * 4, '\0')};
  // An empty vector's data() may be null, and memcpy from null is undefined even for 0 bytes.
  if (!v.empty()) std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

// Every tensor of a safetensors file, as F32.
inline StTensors st_read_all(const std::string& path) {
  const SafetensorsFile f(path);
  StTensors out;
  for (const auto& [name, t] : f.tensors()) out[name] = st_f32(t.shape, f.read_f32(t));
  return out;
}

// Writes a safetensors file; `tweak` may doctor the JSON header before it is written.
inline void st_write(const std::string& path, const StTensors& tensors,
                     const std::function<void(nlohmann::json&)>& tweak = {}) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::string data;
  for (const auto& [name, t] : tensors) {
    header[name] = {{"dtype", t.dtype},
                    {"shape", t.shape},
                    {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  if (tweak) tweak(header);
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // the format pads the header to 8 bytes with spaces
  const uint64_t n = h.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  write_bytes(path, out + h + data);
}

// ---- GGUF ---------------------------------------------------------------------------------------

class GgufBuilder {
 public:
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;  // ggml order
    std::vector<float> data;
  };

  // All scalar metadata and every tensor (as F32) of an existing file.
  static GgufBuilder copy_of(const GgufFile& f) {
    GgufBuilder b;
    for (const auto& [key, v] : f.metadata())
      if (v.type != GgufValue::Type::ARRAY) b.kv_[key] = v;
    for (const GgufTensorInfo& t : f.tensors())
      b.tensors_.push_back({t.name, t.dims, f.read_f32(t)});
    return b;
  }

  void set_string(const std::string& key, const std::string& s) {
    kv_[key] = GgufValue{GgufValue::Type::STRING, s, GgufValue::Type::U8};
  }
  void set_u32(const std::string& key, uint32_t v) {
    kv_[key] = GgufValue{GgufValue::Type::U32, int64_t{v}, GgufValue::Type::U8};
  }
  void set_u64(const std::string& key, uint64_t v) {
    kv_[key] = GgufValue{GgufValue::Type::U64, v, GgufValue::Type::U8};
  }
  void set_f32(const std::string& key, float v) {
    kv_[key] = GgufValue{GgufValue::Type::F32, double{v}, GgufValue::Type::U8};
  }
  void erase_key(const std::string& key) { kv_.erase(key); }
  void add_tensor(Tensor t) { tensors_.push_back(std::move(t)); }
  void erase_tensor(const std::string& name) {
    std::erase_if(tensors_, [&](const Tensor& t) { return t.name == name; });
  }
  Tensor& tensor(const std::string& name) {
    for (Tensor& t : tensors_)
      if (t.name == name) return t;
    throw std::runtime_error("no tensor " + name);
  }

  // GGUF v3, default alignment 32, every tensor F32.
  void write(const std::string& path) const {
    std::string o = "GGUF";
    put<uint32_t>(o, 3);
    put<uint64_t>(o, tensors_.size());
    put<uint64_t>(o, kv_.size());
    for (const auto& [key, v] : kv_) {
      put_str(o, key);
      put<uint32_t>(o, static_cast<uint32_t>(v.type));
      using T = GgufValue::Type;
      switch (v.type) {
        case T::U8:
        case T::I8:
        case T::BOOL:
          put<uint8_t>(o, static_cast<uint8_t>(v.as_int()));
          break;
        case T::U16:
        case T::I16:
          put<uint16_t>(o, static_cast<uint16_t>(v.as_int()));
          break;
        case T::U32:
        case T::I32:
          put<uint32_t>(o, static_cast<uint32_t>(v.as_int()));
          break;
        case T::U64:
        case T::I64:
          put<uint64_t>(o, static_cast<uint64_t>(v.as_int()));
          break;
        case T::F32:
          put<float>(o, static_cast<float>(v.as_float()));
          break;
        case T::F64:
          put<double>(o, v.as_float());
          break;
        case T::STRING:
          put_str(o, v.as_string());
          break;
        case T::ARRAY:
          throw std::runtime_error("GgufBuilder writes no arrays");
      }
    }
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
      put_str(o, t.name);
      put<uint32_t>(o, static_cast<uint32_t>(t.dims.size()));
      for (int64_t d : t.dims) put<uint64_t>(o, static_cast<uint64_t>(d));
      put<uint32_t>(o, 0);  // F32
      put<uint64_t>(o, offset);
      offset += (t.data.size() * 4 + 31) / 32 * 32;
    }
    for (const Tensor& t : tensors_) {
      o.append((32 - o.size() % 32) % 32, '\0');
      o.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * 4);
    }
    write_bytes(path, o);
  }

 private:
  template <typename V>
  static void put(std::string& o, V v) {
    o.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  static void put_str(std::string& o, const std::string& s) {
    put<uint64_t>(o, s.size());
    o += s;
  }
  std::map<std::string, GgufValue> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace starattn::testfiles
