// GGUF reader. The file is hostile until proven otherwise: every length is compared with the bytes
// that remain before anything is allocated or read, every sum and product is overflow-checked, and
// every failure names the file and says what is wrong.
#include "model/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <limits>

#include "starattn/error.h"

namespace starattn {

namespace {

constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr uint64_t kDefaultAlignment = 32;
// Caps that keep a small hostile file from costing gigabytes of GgufValue (about 50 bytes each):
// real vocabularies are a few hundred thousand entries, and real arrays nest once at most.
constexpr uint64_t kMaxArrayElems = uint64_t{1} << 22;
constexpr uint64_t kMaxTotalValues = uint64_t{1} << 23;  // at most ~0.4 GB of GgufValue
// Real models have a few hundred to a few thousand tensors; each costs about 200 bytes of table
// and index, so a file of nothing but tensor records must not become gigabytes either.
constexpr uint64_t kMaxTensors = uint64_t{1} << 20;
constexpr int kMaxNesting = 8;

using VT = GgufValue::Type;

const char* value_type_name(VT t) {
  static constexpr const char* kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                           "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

// A name from the file, quoted for an error message: hostile names may hold newlines, control
// bytes or megabytes of text, and a message must stay one readable line.
std::string quoted(const std::string& s) {
  constexpr size_t kMaxShown = 80;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out + "'";
}

// Bytes a value of type t takes at the least: used to bound array counts before allocating.
// A string is at least its 8-byte length; an array at least its element type and count.
uint64_t min_value_bytes(VT t) {
  static constexpr uint64_t kMin[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};
  return kMin[static_cast<uint32_t>(t)];  // t has been validated by read_type
}

// Sequential bounds-checked reader over the mapped bytes.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, size_t size)
      : path_(path), data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  // Throws unless n more bytes exist; `what` and `part` say what was being read (two pieces so
  // that the hot path builds no strings).
  void need(uint64_t n, const std::string& what, const char* part) const {
    if (n > remaining())
      fail(path_, ": truncated file: ", what, part, " needs ", n, " bytes at offset ", pos_,
           " but the file is ", size_, " bytes");
  }

  template <typename T>
  T read(const std::string& what, const char* part = "") {
    need(sizeof(T), what, part);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& what) {
    const auto len = read<uint64_t>(what, " (string length)");
    if (len > remaining())
      fail(path_, ": ", what, ": string length ", len, " at offset ", pos_ - 8,
           " runs past the end of the file (", remaining(), " bytes left)");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

 private:
  const std::string& path_;
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

class Parser {
 public:
  Parser(const std::string& path, Cursor& cur) : path_(path), cur_(cur) {}

  VT read_type(const std::string& what) {
    const auto t = cur_.read<uint32_t>(what, " (value type)");
    if (t > static_cast<uint32_t>(VT::F64))
      fail(path_, ": ", what, ": unknown metadata value type ", t, " at offset ", cur_.pos() - 4);
    return static_cast<VT>(t);
  }

  GgufValue read_value(VT type, const std::string& what, int depth) {
    if (++total_values_ > kMaxTotalValues)
      fail(path_, ": more than ", kMaxTotalValues, " metadata values; refusing to load");
    GgufValue v;
    v.type = type;
    switch (type) {
      case VT::U8:
        v.value = uint64_t{cur_.read<uint8_t>(what)};
        break;
      case VT::I8:
        v.value = int64_t{cur_.read<int8_t>(what)};
        break;
      case VT::U16:
        v.value = uint64_t{cur_.read<uint16_t>(what)};
        break;
      case VT::I16:
        v.value = int64_t{cur_.read<int16_t>(what)};
        break;
      case VT::U32:
        v.value = uint64_t{cur_.read<uint32_t>(what)};
        break;
      case VT::I32:
        v.value = int64_t{cur_.read<int32_t>(what)};
        break;
      case VT::U64:
        v.value = cur_.read<uint64_t>(what);
        break;
      case VT::I64:
        v.value = cur_.read<int64_t>(what);
        break;
      case VT::F32:
        v.value = double{cur_.read<float>(what)};
        break;
      case VT::F64:
        v.value = cur_.read<double>(what);
        break;
      case VT::BOOL:
        v.value = int64_t{cur_.read<uint8_t>(what) != 0};
        break;
      case VT::STRING:
        v.value = cur_.read_string(what);
        break;
      case VT::ARRAY: {
        if (depth >= kMaxNesting)
          fail(path_, ": ", what, ": arrays nested too deeply (more than ", kMaxNesting, ")");
        v.array_type = read_type(what);
        const auto n = cur_.read<uint64_t>(what, " (array length)");
        const uint64_t min_bytes = min_value_bytes(v.array_type);
        if (n > cur_.remaining() / min_bytes)
          fail(path_, ": ", what, ": array of ", n, " ", value_type_name(v.array_type),
               " elements at offset ", cur_.pos() - 8, " runs past the end of the file (",
               cur_.remaining(), " bytes left)");
        if (n > kMaxArrayElems)
          fail(path_, ": ", what, ": array of ", n, " elements is larger than the limit of ",
               kMaxArrayElems);
        std::vector<GgufValue> elems;
        elems.reserve(static_cast<size_t>(n));
        for (uint64_t i = 0; i < n; ++i) elems.push_back(read_value(v.array_type, what, depth + 1));
        v.value = std::move(elems);
        break;
      }
    }
    return v;
  }

 private:
  const std::string& path_;
  Cursor& cur_;
  uint64_t total_values_ = 0;
};

bool integer_type(VT t) {
  return t != VT::F32 && t != VT::F64 && t != VT::STRING && t != VT::ARRAY;
}

bool add_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_add_overflow(a, b, out);
}

}  // namespace

bool GgufValue::is_integer() const {
  return integer_type(type);
}

int64_t GgufValue::as_int() const {
  if (!is_integer()) fail("metadata value of type ", value_type_name(type), " is not an integer");
  if (const auto* u = std::get_if<uint64_t>(&value)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("metadata value ", *u, " does not fit in int64");
    return static_cast<int64_t>(*u);
  }
  return std::get<int64_t>(value);
}

double GgufValue::as_float() const {
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&value)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  fail("metadata value of type ", value_type_name(type), " is not a number");
}

const std::string& GgufValue::as_string() const {
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  fail("metadata value of type ", value_type_name(type), " is not a string");
}

const std::vector<GgufValue>& GgufValue::as_array() const {
  if (const auto* a = std::get_if<std::vector<GgufValue>>(&value)) return *a;
  fail("metadata value of type ", value_type_name(type), " is not an array");
}

int64_t GgufTensorInfo::n_elements() const {
  // The reader has checked its tensors; a hand-made info with a bad shape still must not overflow.
  int64_t n = 1;
  for (int64_t d : dims)
    SA_CHECK(d >= 0 && !__builtin_mul_overflow(n, d, &n), "tensor ", quoted(name),
             " has a bad shape");
  return n;
}

GgufFile::GgufFile(const std::string& path) : path_(path) {
  // O_NONBLOCK so that a FIFO cannot hang the open; it has no effect on regular files.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail(path, ": is a directory, not a GGUF file");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": is not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    fail(path, ": empty file, not a GGUF file");
  }
  map_size_ = static_cast<size_t>(st.st_size);
  void* m = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (m == MAP_FAILED)
    fail(path, ": mmap of ", map_size_, " bytes failed: ", std::strerror(map_errno));
  map_ = static_cast<const uint8_t*>(m);
  try {
    parse();
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(map_), map_size_);
    map_ = nullptr;
    throw;
  }
}

GgufFile::~GgufFile() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

void GgufFile::parse() {
  Cursor cur(path_, map_, map_size_);
  Parser parser(path_, cur);

  if (map_size_ < 4 || std::memcmp(map_, "GGUF", 4) != 0)
    fail(path_, ": not a GGUF file (the first 4 bytes are not \"GGUF\")");
  cur.read<uint32_t>("magic");
  version_ = cur.read<uint32_t>("header version");
  if (version_ == 0x02000000u || version_ == 0x03000000u)
    fail(path_, ": big-endian GGUF (version ", version_ >> 24, ") is not supported");
  if (version_ != 2 && version_ != 3)
    fail(path_, ": unsupported GGUF version ", version_, " (only versions 2 and 3 are read)");
  const auto n_tensors = cur.read<uint64_t>("header tensor count");
  const auto n_kv = cur.read<uint64_t>("header metadata count");

  // Each key/value takes at least 13 bytes (key length, value type, one byte of value).
  if (n_kv > cur.remaining() / 13)
    fail(path_, ": header claims ", n_kv, " metadata entries, more than the ", cur.remaining(),
         " remaining bytes can hold");
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = cur.read_string("metadata entry " + std::to_string(i) + " key");
    const std::string what = "metadata " + quoted(key);
    const VT type = parser.read_type(what);
    GgufValue v = parser.read_value(type, what, 0);
    if (kv_.count(key)) fail(path_, ": duplicate metadata key ", quoted(key));
    kv_.emplace(std::move(key), std::move(v));
  }

  uint64_t alignment = kDefaultAlignment;
  if (const GgufValue* a = find("general.alignment")) {
    SA_CHECK(a->is_integer() && a->type != VT::BOOL, path_, ": general.alignment is a ",
             value_type_name(a->type), ", not an integer");
    const int64_t av = a->as_int();
    SA_CHECK(av > 0 && av <= (int64_t{1} << 30) && (av & (av - 1)) == 0, path_,
             ": general.alignment is ", av, ", not a power of two in [1, 2^30]");
    alignment = static_cast<uint64_t>(av);
  }

  // Each tensor record takes at least 24 bytes (name length, n_dims, type, offset).
  if (n_tensors > cur.remaining() / 24)
    fail(path_, ": header claims ", n_tensors, " tensors, more than the ", cur.remaining(),
         " remaining bytes can hold");
  if (n_tensors > kMaxTensors)
    fail(path_, ": header claims ", n_tensors, " tensors, more than the limit of ", kMaxTensors);
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = cur.read_string("tensor " + std::to_string(i) + " name");
    const std::string what = "tensor " + quoted(t.name);
    const auto n_dims = cur.read<uint32_t>(what, " n_dims");
    if (n_dims == 0 || n_dims > kMaxDims)
      fail(path_, ": ", what, " has ", n_dims, " dims (must be 1 to ", kMaxDims, ")");
    int64_t n_elems = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = cur.read<int64_t>(what, " dims");
      if (dim <= 0) fail(path_, ": ", what, " dimension ", d, " is ", dim, " (must be >= 1)");
      if (__builtin_mul_overflow(n_elems, dim, &n_elems))
        fail(path_, ": ", what, " element count overflows int64");
      t.dims.push_back(dim);
    }
    const auto type_id = cur.read<uint32_t>(what, " type");
    if (!ggml_type_known(type_id)) {
      const char* name = ggml_type_id_name(type_id);
      if (name)
        fail(path_, ": ", what, " has ggml type ", name, " (id ", type_id,
             "), which starattn does not read");
      fail(path_, ": ", what, " has unknown ggml type id ", type_id);
    }
    t.type = static_cast<GgmlType>(type_id);
    const int64_t blk = ggml_block_elems(t.type);
    if (t.dims[0] % blk != 0)
      fail(path_, ": ", what, " row length ", t.dims[0], " is not a multiple of the ",
           ggml_type_name(t.type), " block size ", blk);
    // Cannot overflow for the known types (at most 4 bytes per element), but checking is cheaper
    // than the argument.
    const uint64_t n_blocks = static_cast<uint64_t>(n_elems / blk);
    if (__builtin_mul_overflow(n_blocks, uint64_t{ggml_block_bytes(t.type)}, &t.n_bytes))
      fail(path_, ": ", what, " byte size overflows");
    t.offset = cur.read<uint64_t>(what, " offset");
    if (t.offset % alignment != 0)
      fail(path_, ": ", what, " offset ", t.offset, " is not a multiple of the alignment ",
           alignment);
    if (tensor_index_.count(t.name)) fail(path_, ": duplicate tensor name ", quoted(t.name));
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  uint64_t data_start = 0;
  if (add_overflows(cur.pos(), alignment - 1, &data_start))
    fail(path_, ": data section offset overflows");
  data_start -= data_start % alignment;
  if (!tensors_.empty() && data_start > map_size_)
    fail(path_, ": truncated file: the tensor data section would start at offset ", data_start,
         " but the file is ", map_size_, " bytes");
  data_offset_ = static_cast<size_t>(std::min<uint64_t>(data_start, map_size_));
  const uint64_t data_size = map_size_ - data_offset_;
  for (const GgufTensorInfo& t : tensors_) {
    uint64_t end = 0;
    if (add_overflows(t.offset, t.n_bytes, &end) || end > data_size)
      fail(path_, ": tensor ", quoted(t.name), " data [", t.offset, ", +", t.n_bytes,
           ") runs past the end of the data section (", data_size,
           " bytes); the file is truncated or the offset is wrong");
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  const auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

namespace {

const GgufValue& require(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) fail(f.path(), ": metadata key '", key, "' is missing");
  return *v;
}

[[noreturn]] void wrong_type(const GgufFile& f, const std::string& key, const GgufValue& v,
                             const char* wanted) {
  std::string got = value_type_name(v.type);
  if (v.type == VT::ARRAY) got += std::string(" of ") + value_type_name(v.array_type);
  fail(f.path(), ": metadata key '", key, "' is a ", got, ", expected ", wanted);
}

bool is_number(const GgufValue& v) {
  return v.is_integer() || v.type == VT::F32 || v.type == VT::F64;
}

int64_t int_of(const GgufFile& f, const std::string& key, const GgufValue& v) {
  if (!v.is_integer()) wrong_type(f, key, v, "an integer");
  if (const auto* u = std::get_if<uint64_t>(&v.value);
      u && *u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    fail(f.path(), ": metadata key '", key, "' value ", *u, " does not fit in int64");
  return v.as_int();
}

}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = require(*this, key);
  if (v.type != VT::STRING) wrong_type(*this, key, v, "a string");
  return v.as_string();
}

int64_t GgufFile::get_int(const std::string& key) const {
  return int_of(*this, key, require(*this, key));
}

int64_t GgufFile::get_int_in(const std::string& key, int64_t lo, int64_t hi) const {
  const GgufValue& v = require(*this, key);
  if (!v.is_integer()) wrong_type(*this, key, v, "an integer");
  // Unsigned values are compared as unsigned: one above int64's range is above any hi, and gets
  // the same message rather than wrapping to a negative number.
  const auto* u = std::get_if<uint64_t>(&v.value);
  bool in_range = false;
  if (u) {
    in_range =
        hi >= 0 && *u <= static_cast<uint64_t>(hi) && (lo <= 0 || *u >= static_cast<uint64_t>(lo));
  } else {
    const int64_t x = std::get<int64_t>(v.value);
    in_range = x >= lo && x <= hi;
  }
  if (!in_range) {
    const std::string shown = u ? std::to_string(*u) : std::to_string(std::get<int64_t>(v.value));
    fail(path_, ": metadata key '", key, "' = ", shown, " is outside [", lo, ", ", hi, "]");
  }
  return u ? static_cast<int64_t>(*u) : std::get<int64_t>(v.value);
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue& v = require(*this, key);
  if (!is_number(v)) wrong_type(*this, key, v, "a number");
  return v.as_float();
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& v = require(*this, key);
  if (v.type != VT::ARRAY || v.array_type != VT::STRING)
    wrong_type(*this, key, v, "a string array");
  std::vector<std::string> out;
  out.reserve(v.as_array().size());
  for (const GgufValue& e : v.as_array()) out.push_back(e.as_string());
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue& v = require(*this, key);
  if (v.type != VT::ARRAY || !integer_type(v.array_type))
    wrong_type(*this, key, v, "an integer array");
  std::vector<int64_t> out;
  out.reserve(v.as_array().size());
  for (const GgufValue& e : v.as_array()) out.push_back(int_of(*this, key, e));
  return out;
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue& v = require(*this, key);
  if (v.type != VT::ARRAY || v.array_type == VT::ARRAY || v.array_type == VT::STRING)
    wrong_type(*this, key, v, "a number array");
  std::vector<double> out;
  out.reserve(v.as_array().size());
  for (const GgufValue& e : v.as_array()) out.push_back(e.as_float());
  return out;
}

int64_t GgufFile::get_int_or(const std::string& key, int64_t def) const {
  return find(key) ? get_int(key) : def;
}

int64_t GgufFile::get_int_in_or(const std::string& key, int64_t lo, int64_t hi, int64_t def) const {
  return find(key) ? get_int_in(key, lo, hi) : def;
}

double GgufFile::get_float_or(const std::string& key, double def) const {
  return find(key) ? get_float(key) : def;
}

std::string GgufFile::get_string_or(const std::string& key, const std::string& def) const {
  return find(key) ? get_string(key) : def;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& t) const {
  // Re-check: t may be a caller's copy rather than one of ours.
  uint64_t end = 0;
  SA_CHECK(!add_overflows(t.offset, t.n_bytes, &end) && end <= map_size_ - data_offset_, path_,
           ": tensor ", quoted(t.name), " lies outside the data section");
  return map_ + data_offset_ + t.offset;
}

std::vector<float> GgufFile::read_f32(const GgufTensorInfo& t) const {
  SA_CHECK(ggml_type_supported(t.type), path_, ": tensor ", quoted(t.name), " has ggml type ",
           ggml_type_name(t.type), ", which starattn cannot dequantise");
  const int64_t n = t.n_elements();
  SA_CHECK(ggml_row_bytes(t.type, n) == t.n_bytes, path_, ": tensor ", quoted(t.name),
           " byte size does not match its shape");
  const uint8_t* src = tensor_data(t);
  std::vector<float> out(static_cast<size_t>(n));
  dequantize(t.type, src, out.data(), n);
  return out;
}

}  // namespace starattn
