#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "io/text_file.h"
#include "starattn/error.h"

namespace starattn {
namespace {

using nlohmann::json;

// Bytes per element of every dtype the format defines, so that a file holding tensors we do not
// read (an int buffer, fp8 scales) still gets its offsets checked. 0: not a safetensors dtype.
size_t dtype_bytes(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "BOOL" || d == "U8" || d == "I8" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

float f16_to_f32(uint16_t h) {
  const float sign = (h & 0x8000u) ? -1.0f : 1.0f;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -24);  // zero / subnormal
  if (exp == 31)
    return mant ? std::numeric_limits<float>::quiet_NaN()
                : sign * std::numeric_limits<float>::infinity();
  // Normal: rebias the exponent (15 -> 127) and widen the mantissa (10 -> 23 bits).
  return std::bit_cast<float>(((h & 0x8000u) << 16) | ((exp + 112) << 23) | (mant << 13));
}

// A non-negative integer from a JSON header field, or an error naming the tensor.
uint64_t header_uint(const json& v, const std::string& path, const std::string& name,
                     const char* field) {
  SA_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), "'", path,
           "': tensor '", name, "' has a ", field, " entry that is not a non-negative integer");
  return v.get<uint64_t>();
}

SafetensorsTensor parse_entry(const std::string& path, const std::string& name, const json& e,
                              uint64_t data_size) {
  SA_CHECK(e.is_object(), "'", path, "': header entry '", name, "' is not an object");
  SafetensorsTensor t;
  t.name = name;
  SA_CHECK(e.contains("dtype") && e["dtype"].is_string(), "'", path, "': tensor '", name,
           "' has no dtype");
  t.dtype = e["dtype"].get<std::string>();
  const size_t elem = dtype_bytes(t.dtype);
  SA_CHECK(elem != 0, "'", path, "': tensor '", name, "' has unknown dtype '", t.dtype, "'");
  SA_CHECK(e.contains("shape") && e["shape"].is_array(), "'", path, "': tensor '", name,
           "' has no shape");
  // Overflow is checked before each multiply so that a lying shape cannot wrap around and then
  // pass the size check below.
  uint64_t n = 1;
  for (const json& d : e["shape"]) {
    const uint64_t dim = header_uint(d, path, name, "shape");
    SA_CHECK(dim == 0 || n <= (uint64_t{1} << 59) / dim, "'", path, "': tensor '", name,
             "' has too many elements");
    t.shape.push_back(static_cast<int64_t>(dim));
    n *= dim;
  }
  const json& off = e.contains("data_offsets") ? e["data_offsets"] : json();
  SA_CHECK(off.is_array() && off.size() == 2, "'", path, "': tensor '", name,
           "' needs data_offsets [begin, end]");
  t.begin = header_uint(off[0], path, name, "data_offsets");
  t.end = header_uint(off[1], path, name, "data_offsets");
  SA_CHECK(t.begin <= t.end && t.end <= data_size, "'", path, "': tensor '", name,
           "' has data_offsets [", t.begin, ", ", t.end, "] outside the data section of ",
           data_size, " bytes (truncated file?)");
  const uint64_t want = n * elem;
  SA_CHECK(t.end - t.begin == want, "'", path, "': tensor '", name, "' (", t.dtype, " ",
           shape_str(t.shape), ") needs ", want, " bytes but its data_offsets span ",
           t.end - t.begin);
  return t;
}

}  // namespace

int64_t SafetensorsTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  SA_CHECK(fd >= 0, "cannot open safetensors file '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("'", path, "' is not a regular file");
  }
  map_size_ = static_cast<size_t>(st.st_size);
  if (map_size_ < 8) {
    ::close(fd);
    fail("'", path, "' is too short to be a safetensors file (", map_size_, " bytes)");
  }
  void* m = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  SA_CHECK(m != MAP_FAILED, "cannot map '", path, "': ", std::strerror(errno));
  map_ = static_cast<const uint8_t*>(m);

  try {
    // The length is little-endian; every host we build for is too.
    uint64_t header_len = 0;
    std::memcpy(&header_len, map_, 8);
    SA_CHECK(header_len <= map_size_ - 8, "'", path, "': header length ", header_len,
             " exceeds the file size of ", map_size_, " bytes (truncated or not safetensors)");
    // Parsed JSON takes ten times its text or more; real headers are well under a megabyte.
    constexpr uint64_t kMaxHeaderBytes = uint64_t{32} << 20;
    SA_CHECK(header_len <= kMaxHeaderBytes, "'", path, "': header length ", header_len,
             " is more than the limit of ", kMaxHeaderBytes, " bytes");
    data_offset_ = 8 + static_cast<size_t>(header_len);
    const char* h = reinterpret_cast<const char*>(map_ + 8);
    json header = json::parse(h, h + header_len, nullptr, /*allow_exceptions=*/false);
    SA_CHECK(header.is_object(), "'", path, "': header is not a JSON object");
    const uint64_t data_size = map_size_ - data_offset_;
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") continue;  // free-form strings; nothing we need
      tensors_.emplace(name, parse_entry(path, name, entry, data_size));
    }
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(map_), map_size_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<float> SafetensorsFile::read_f32(const SafetensorsTensor& t) const {
  const int64_t n = t.n_elements();
  std::vector<float> out(static_cast<size_t>(n));
  const uint8_t* src = map_ + data_offset_ + t.begin;
  // Data offsets need not be aligned, hence memcpy rather than casting the pointer.
  if (t.dtype == "F32") {
    // A zero-element tensor leaves out.data() null, and memcpy to null is undefined even for 0.
    if (n > 0) std::memcpy(out.data(), src, static_cast<size_t>(n) * 4);
  } else if (t.dtype == "F16" || t.dtype == "BF16") {
    const bool bf16 = t.dtype == "BF16";
    for (int64_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, src + 2 * i, 2);
      out[i] = bf16 ? std::bit_cast<float>(static_cast<uint32_t>(v) << 16) : f16_to_f32(v);
    }
  } else {
    fail("'", path_, "': tensor '", t.name, "' has dtype ", t.dtype,
         ", which cannot be read as weights (supported: F32, F16, BF16)");
  }
  return out;
}

SafetensorsFolder::SafetensorsFolder(const std::string& dir) : dir_(dir) {
  namespace fs = std::filesystem;
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single_path = fs::path(dir) / "model.safetensors";
  auto add_file = [&](const fs::path& p) {
    files_.push_back(std::make_unique<SafetensorsFile>(p.string()));
    const SafetensorsFile* f = files_.back().get();
    for (const auto& [name, t] : f->tensors()) {
      auto [it, fresh] = where_.emplace(name, f);
      SA_CHECK(fresh, "tensor '", name, "' appears in both '", it->second->path(), "' and '",
               f->path(), "'");
    }
  };
  // Non-throwing: a folder that cannot be searched is our Error, not a filesystem_error.
  auto present = [](const fs::path& p) {
    std::error_code ec;
    const bool yes = fs::exists(p, ec);
    SA_CHECK(!ec || ec == std::errc::no_such_file_or_directory, "cannot access '", p.string(),
             "': ", ec.message());
    return yes;
  };
  if (present(index_path)) {
    json index = json::parse(
        read_regular_file(index_path.string(), "safetensors index", kMaxJsonFileBytes), nullptr,
        /*allow_exceptions=*/false);
    SA_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
             "'", index_path.string(), "' is not valid JSON with a weight_map object");
    std::map<std::string, std::string> shards;  // shard file -> one tensor it should hold
    for (const auto& [name, shard] : index["weight_map"].items()) {
      SA_CHECK(shard.is_string(), "'", index_path.string(), "': weight_map entry '", name,
               "' is not a file name");
      const std::string s = shard.get<std::string>();
      // A shard is a file beside the index; a path could read outside the model folder.
      SA_CHECK(!s.empty() && s.find('/') == std::string::npos && s != "." && s != "..", "'",
               index_path.string(), "': shard name '", s, "' is not a plain file name");
      shards.emplace(s, name);
    }
    for (const auto& [shard, name] : shards) add_file(fs::path(dir) / shard);
    for (const auto& [name, shard] : index["weight_map"].items()) {
      auto it = where_.find(name);
      SA_CHECK(
          it != where_.end() && fs::path(it->second->path()).filename() == shard.get<std::string>(),
          "'", index_path.string(), "' places tensor '", name, "' in '", shard.get<std::string>(),
          "', but that shard does not hold it");
    }
  } else if (present(single_path)) {
    add_file(single_path);
  } else {
    fail("no model.safetensors or model.safetensors.index.json in '", dir, "'");
  }
}

const SafetensorsTensor* SafetensorsFolder::find(const std::string& name,
                                                 const SafetensorsFile** file) const {
  auto it = where_.find(name);
  if (it == where_.end()) return nullptr;
  if (file) *file = it->second;
  return it->second->find(name);
}

std::vector<float> SafetensorsFolder::read_f32(const std::string& name,
                                               const std::vector<int64_t>& shape) const {
  const SafetensorsFile* f = nullptr;
  const SafetensorsTensor* t = find(name, &f);
  SA_CHECK(t, "tensor '", name, "' is missing from the safetensors files in '", dir_, "'");
  SA_CHECK(t->shape == shape, "tensor '", name, "' in '", f->path(), "' has shape ",
           shape_str(t->shape), " but the config implies ", shape_str(shape));
  return f->read_f32(*t);
}

}  // namespace starattn
