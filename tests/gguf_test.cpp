// GGUF reader and ggml dequantisation tests:
//  - dequantisation against gguf-py's (fixtures from tools/make_quant_fixtures.py), bit for bit;
//  - small GGUF files written here, valid and hostile: each hostile one must throw starattn::Error
//    naming the file and the problem, never crash;
//  - the real SmolLM2 model, when present.
#include <gtest/gtest.h>

#include <unistd.h>
#include <limits>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "error_of.h"
#include "model/ggml_types.h"
#include "model/gguf.h"
#include "starattn/error.h"

namespace starattn {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// ---------------------------------------------------------------------------------------------
// Dequantisation against gguf-py.

struct FixtureRecord {
  uint32_t type = 0, kind = 0, n = 0;
  Bytes raw;
  std::vector<float> expected;
};

// Reads tests/fixtures/quant/<name>.bin; the format is documented in tools/make_quant_fixtures.py.
std::vector<FixtureRecord> read_fixture(const std::string& name) {
  const std::string path =
      std::string(STARATTN_SOURCE_DIR) + "/tests/fixtures/quant/" + name + ".bin";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + path);
  const Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<FixtureRecord> out;
  size_t pos = 0;
  auto u32 = [&] {
    if (pos + 4 > b.size()) throw std::runtime_error("truncated fixture " + path);
    uint32_t v;
    std::memcpy(&v, b.data() + pos, 4);
    pos += 4;
    return v;
  };
  while (pos < b.size()) {
    if (u32() != 0x46514153u) throw std::runtime_error("bad fixture magic in " + path);  // "SAQF"
    FixtureRecord r;
    r.type = u32();
    r.kind = u32();
    r.n = u32();
    const uint32_t n_bytes = u32();
    if (pos + n_bytes + 4ull * r.n > b.size()) throw std::runtime_error("truncated " + path);
    r.raw.assign(b.begin() + pos, b.begin() + pos + n_bytes);
    pos += n_bytes;
    r.expected.resize(r.n);
    std::memcpy(r.expected.data(), b.data() + pos, 4ull * r.n);
    pos += 4ull * r.n;
    out.push_back(std::move(r));
  }
  return out;
}

// Bitwise comparison: ggml's dequantisers are exact fp32 expressions, and ours evaluate the same
// expressions in the same order, so anything but identical bits (NaN payloads included) is a bug.
void expect_bitwise_equal(const std::vector<float>& got, const std::vector<float>& want,
                          const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < got.size() && reported < 5; ++i) {
    if (std::bit_cast<uint32_t>(got[i]) != std::bit_cast<uint32_t>(want[i])) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", gguf-py says "
                    << want[i];
      ++reported;
    }
  }
}

constexpr GgmlType kAllTypes[] = {
    GgmlType::F32,  GgmlType::F16,  GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
    GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q2_K, GgmlType::Q3_K,
    GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K, GgmlType::BF16,
};

TEST(GgmlDequant, MatchesGgufPyForEverySupportedType) {
  int n_supported = 0;
  for (GgmlType t : kAllTypes) {
    if (!ggml_type_supported(t)) continue;
    ++n_supported;
    const std::string name = ggml_type_name(t);
    const auto records = read_fixture(name);
    ASSERT_FALSE(records.empty()) << name;
    for (size_t r = 0; r < records.size(); ++r) {
      const FixtureRecord& rec = records[r];
      const std::string what =
          name + " record " + std::to_string(r) + " (kind " + std::to_string(rec.kind) + ")";
      ASSERT_EQ(rec.type, static_cast<uint32_t>(t)) << what;
      ASSERT_EQ(ggml_row_bytes(t, rec.n), rec.raw.size()) << what;
      std::vector<float> got(rec.n, std::nanf(""));  // poisoned: an unwritten element fails
      dequantize(t, rec.raw.data(), got.data(), rec.n);
      expect_bitwise_equal(got, rec.expected, what);
    }
  }
  EXPECT_EQ(n_supported, 13);  // F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K..Q6_K
}

// The fixtures are below the size where dequantize() goes parallel; tile one to cross it.
TEST(GgmlDequant, ParallelPathMatchesGgufPy) {
  for (const char* name : {"Q4_K", "Q4_1", "F16"}) {
    const FixtureRecord rec = read_fixture(name).front();
    const int copies = 300;
    Bytes raw;
    std::vector<float> want;
    for (int c = 0; c < copies; ++c) {
      raw.insert(raw.end(), rec.raw.begin(), rec.raw.end());
      want.insert(want.end(), rec.expected.begin(), rec.expected.end());
    }
    std::vector<float> got(want.size(), std::nanf(""));
    dequantize(static_cast<GgmlType>(rec.type), raw.data(), got.data(),
               static_cast<int64_t>(want.size()));
    expect_bitwise_equal(got, want, std::string(name) + " tiled");
  }
}

TEST(GgmlDequant, RejectsUnsupportedAndPartialBlocks) {
  float out[256];
  const Bytes zeros(512, 0);
  for (GgmlType t : {GgmlType::Q8_1, GgmlType::Q8_K}) {
    EXPECT_FALSE(ggml_type_supported(t));
    try {
      dequantize(t, zeros.data(), out, 256);
      ADD_FAILURE() << "no error for " << ggml_type_name(t);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(ggml_type_name(t)), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(dequantize(GgmlType::Q4_0, zeros.data(), out, 31), Error);
  EXPECT_THROW(ggml_row_bytes(GgmlType::Q6_K, 255), Error);
  EXPECT_THROW(ggml_block_bytes(static_cast<GgmlType>(99)), Error);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q6_K, 512), 420u);
  EXPECT_STREQ(ggml_type_id_name(20), "IQ4_NL");
  EXPECT_EQ(ggml_type_id_name(4), nullptr);
}

TEST(GgmlDequant, HalfConversionEdgeCases) {
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_TRUE(std::isinf(fp16_to_fp32(0xFC00)) && fp16_to_fp32(0xFC00) < 0);
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7C01)));  // signalling half NaN stays NaN
  EXPECT_TRUE(std::signbit(fp16_to_fp32(0x8000)));
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
}

// ---------------------------------------------------------------------------------------------
// A tiny GGUF writer.

struct Writer {
  Bytes b;
  template <typename T>
  Writer& put(T v) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
    return *this;
  }
  Writer& str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Writer& raw(const Bytes& r) {
    b.insert(b.end(), r.begin(), r.end());
    return *this;
  }
};

enum VType : uint32_t {
  kU8,
  kI8,
  kU16,
  kI16,
  kU32,
  kI32,
  kF32,
  kBool,
  kStr,
  kArr,
  kU64,
  kI64,
  kF64
};

// One encoded key/value: key string, value type, value bytes.
template <typename T>
Bytes kv(const std::string& key, uint32_t type, T v) {
  return Writer().str(key).put<uint32_t>(type).put<T>(v).b;
}
Bytes kv_str(const std::string& key, const std::string& v) {
  return Writer().str(key).put<uint32_t>(kStr).str(v).b;
}
Bytes kv_str_array(const std::string& key, const std::vector<std::string>& v) {
  Writer w;
  w.str(key).put<uint32_t>(kArr).put<uint32_t>(kStr).put<uint64_t>(v.size());
  for (const auto& s : v) w.str(s);
  return w.b;
}
Bytes kv_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  Writer w;
  w.str(key).put<uint32_t>(kArr).put<uint32_t>(kI32).put<uint64_t>(v.size());
  for (int32_t x : v) w.put(x);
  return w.b;
}

struct TensorSpec {
  std::string name;
  std::vector<int64_t> dims;
  uint32_t type;
  uint64_t offset;
  std::optional<uint32_t> n_dims;  // overrides dims.size() in the file
};

struct Spec {
  uint32_t version = 3;
  std::vector<Bytes> kvs;
  std::vector<TensorSpec> tensors;
  uint64_t alignment = 32;  // padding before the data section
  Bytes data;
  std::optional<uint64_t> n_kv, n_tensors;  // override the header counts
};

Bytes build(const Spec& s) {
  Writer w;
  w.raw({'G', 'G', 'U', 'F'}).put(s.version);
  w.put<uint64_t>(s.n_tensors.value_or(s.tensors.size()));
  w.put<uint64_t>(s.n_kv.value_or(s.kvs.size()));
  for (const Bytes& k : s.kvs) w.raw(k);
  for (const TensorSpec& t : s.tensors) {
    w.str(t.name).put<uint32_t>(t.n_dims.value_or(static_cast<uint32_t>(t.dims.size())));
    for (int64_t d : t.dims) w.put(d);
    w.put(t.type).put(t.offset);
  }
  while (w.b.size() % s.alignment) w.put<uint8_t>(0);
  return w.raw(s.data).b;
}

uint16_t h16(float x) {  // exact halves only: the test values below are small dyadic numbers
  if (x == 0) return 0;
  const uint32_t f = std::bit_cast<uint32_t>(x);
  return static_cast<uint16_t>(((f >> 16) & 0x8000) | ((((f >> 23) & 0xFF) - 112) << 10) |
                               ((f >> 13) & 0x3FF));
}

// A valid file: metadata of every value type (nested array included) and three tensors, the last
// ending exactly at the end of the file, so that cutting any byte off makes it invalid.
Spec valid_spec() {
  Spec s;
  s.kvs = {kv_str("general.architecture", "llama"),
           kv<uint8_t>("t.u8", kU8, 200),
           kv<int8_t>("t.i8", kI8, -100),
           kv<uint16_t>("t.u16", kU16, 60000),
           kv<int16_t>("t.i16", kI16, -30000),
           kv<uint32_t>("t.u32", kU32, 4000000000u),
           kv<int32_t>("t.i32", kI32, -2000000000),
           kv<float>("t.f32", kF32, 0.25f),
           kv<uint8_t>("t.bool", kBool, 1),
           kv<uint64_t>("t.u64", kU64, ~uint64_t{0}),
           kv<int64_t>("t.i64", kI64, -(int64_t{1} << 40)),
           kv<double>("t.f64", kF64, 1e-300),
           kv_str_array("t.strs", {"a", "", "ccc"}),
           kv_i32_array("t.ints", {1, -2, 3})};
  // Nested: an array of two arrays of u8, {{1, 2}, {3}}.
  s.kvs.push_back(Writer()
                      .str("t.nested")
                      .put<uint32_t>(kArr)
                      .put<uint32_t>(kArr)
                      .put<uint64_t>(2)
                      .put<uint32_t>(kU8)
                      .put<uint64_t>(2)
                      .put<uint8_t>(1)
                      .put<uint8_t>(2)
                      .put<uint32_t>(kU8)
                      .put<uint64_t>(1)
                      .put<uint8_t>(3)
                      .b);
  s.tensors = {{"a", {4, 2}, 0, 0, {}}, {"b", {32}, 8, 32, {}}, {"c", {3}, 1, 96, {}}};
  Writer d;
  for (int i = 0; i < 8; ++i) d.put<float>(0.5f * static_cast<float>(i));   // a: 32 bytes
  d.put<uint16_t>(h16(0.5f));                                               // b: Q8_0 d
  for (int i = 0; i < 32; ++i) d.put<int8_t>(static_cast<int8_t>(i - 16));  //    qs
  while (d.b.size() < 96) d.put<uint8_t>(0);
  d.put<uint16_t>(h16(1.0f)).put<uint16_t>(h16(-2.0f)).put<uint16_t>(0x0001);  // c
  s.data = d.b;
  return s;
}

// Writes bytes to a fresh file under the test temp dir and removes it afterwards.
class TempFile {
 public:
  explicit TempFile(const Bytes& bytes) {
    static int counter = 0;
    path_ = testing::TempDir() + "/gguf_test_" + std::to_string(::getpid()) + "_" +
            std::to_string(counter++) + ".gguf";
    std::ofstream(path_, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Loading `path` must throw Error whose message names the file and contains `want`.
void expect_load_error(const std::string& path, const std::string& want) {
  try {
    GgufFile f(path);
    ADD_FAILURE() << "loaded without error; wanted an error containing \"" << want << "\"";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(want), std::string::npos) << "message: " << msg << "\nwanted: " << want;
    EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
  }
}

void expect_load_error(const Bytes& bytes, const std::string& want) {
  TempFile f(bytes);
  expect_load_error(f.path(), want);
}

void expect_load_error(const Spec& s, const std::string& want) {
  expect_load_error(build(s), want);
}

// ---------------------------------------------------------------------------------------------
// Valid files.

TEST(GgufReader, ReadsEveryValueTypeAndTensor) {
  for (uint32_t version : {2u, 3u}) {
    Spec s = valid_spec();
    s.version = version;
    TempFile tf(build(s));
    GgufFile f(tf.path());
    EXPECT_EQ(f.version(), version);
    EXPECT_EQ(f.get_string("general.architecture"), "llama");
    EXPECT_EQ(f.get_int("t.u8"), 200);
    EXPECT_EQ(f.get_int("t.i8"), -100);
    EXPECT_EQ(f.get_int("t.u16"), 60000);
    EXPECT_EQ(f.get_int("t.i16"), -30000);
    EXPECT_EQ(f.get_int("t.u32"), 4000000000);
    EXPECT_EQ(f.get_int("t.i32"), -2000000000);
    EXPECT_EQ(f.get_float("t.f32"), 0.25);
    EXPECT_EQ(f.get_int("t.bool"), 1);
    EXPECT_EQ(std::get<uint64_t>(f.find("t.u64")->value), ~uint64_t{0});
    EXPECT_EQ(f.get_int("t.i64"), -(int64_t{1} << 40));
    EXPECT_EQ(f.get_float("t.f64"), 1e-300);
    EXPECT_EQ(f.get_float("t.i32"), -2e9);  // integers read as floats too
    EXPECT_EQ(f.get_string_array("t.strs"), (std::vector<std::string>{"a", "", "ccc"}));
    EXPECT_EQ(f.get_int_array("t.ints"), (std::vector<int64_t>{1, -2, 3}));
    EXPECT_EQ(f.get_float_array("t.ints"), (std::vector<double>{1, -2, 3}));
    const auto& nested = f.find("t.nested")->as_array();
    ASSERT_EQ(nested.size(), 2u);
    EXPECT_EQ(f.find("t.nested")->array_type, GgufValue::Type::ARRAY);
    EXPECT_EQ(nested[0].as_array()[1].as_int(), 2);
    EXPECT_EQ(nested[1].as_array()[0].as_int(), 3);
    EXPECT_EQ(f.get_int_or("absent", 7), 7);
    EXPECT_EQ(f.get_string_or("absent", "x"), "x");
    EXPECT_EQ(f.get_float_or("t.f32", 9.0), 0.25);
    EXPECT_EQ(f.find("absent"), nullptr);

    ASSERT_EQ(f.tensors().size(), 3u);
    EXPECT_EQ(f.find_tensor("zzz"), nullptr);
    const GgufTensorInfo* a = f.find_tensor("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->dims, (std::vector<int64_t>{4, 2}));
    EXPECT_EQ(a->n_elements(), 8);
    EXPECT_EQ(a->n_bytes, 32u);
    EXPECT_EQ(f.read_f32(*a), (std::vector<float>{0, 0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f}));
    const GgufTensorInfo* b = f.find_tensor("b");
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->type, GgmlType::Q8_0);
    EXPECT_EQ(b->n_bytes, 34u);
    const std::vector<float> bv = f.read_f32(*b);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(bv[i], 0.5f * static_cast<float>(i - 16));
    EXPECT_EQ(f.read_f32(*f.find_tensor("c")),
              (std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24)}));
  }
}

TEST(GgufReader, GetterErrorsNameTheKey) {
  TempFile tf(build(valid_spec()));
  GgufFile f(tf.path());
  auto expect_msg = [&](auto fn, const std::string& want) {
    try {
      fn();
      ADD_FAILURE() << "no error; wanted " << want;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(want), std::string::npos) << msg;
      EXPECT_NE(msg.find(tf.path()), std::string::npos) << msg;
    }
  };
  expect_msg([&] { f.get_string("nope"); }, "'nope' is missing");
  expect_msg([&] { f.get_int("general.architecture"); }, "'general.architecture' is a string");
  expect_msg([&] { f.get_int("t.u64"); }, "does not fit in int64");
  expect_msg([&] { f.get_string("t.u8"); }, "'t.u8' is a u8, expected a string");
  expect_msg([&] { f.get_int_array("t.strs"); }, "'t.strs' is a array of string");
  expect_msg([&] { f.get_string_array("t.ints"); }, "expected a string array");
  expect_msg([&] { f.get_float("t.strs"); }, "expected a number");
  expect_msg([&] { f.get_int_or("t.f32", 0); }, "'t.f32' is a f32");
}

// Counts and ids from a file go through get_int_in: a value out of range is an error naming the
// key and the range, never a silent wrap to a narrower type (4294967298 as int is 2).
TEST(GgufReader, RangeCheckedIntegers) {
  Spec s = valid_spec();
  s.kvs.push_back(kv<uint64_t>("t.id", kU64, (uint64_t{1} << 32) + 2));
  TempFile tf(build(s));
  GgufFile f(tf.path());
  const int64_t int_max = std::numeric_limits<int>::max();
  EXPECT_EQ(f.get_int_in("t.u8", 0, 255), 200);
  EXPECT_EQ(f.get_int_in("t.i8", -100, -100), -100);
  EXPECT_EQ(f.get_int_in("t.u32", 1, 4000000000), 4000000000);
  EXPECT_EQ(f.get_int_in_or("absent", 0, 10, 7), 7);
  EXPECT_EQ(f.get_int_in_or("t.u16", 0, 60000, 7), 60000);
  const auto msg = [](auto fn) { return test::error_of(fn); };
  EXPECT_NE(msg([&] {
              f.get_int_in("t.id", -1, int_max);
            }).find("'t.id' = 4294967298 is outside [-1, 2147483647]"),
            std::string::npos);
  EXPECT_NE(
      msg([&] { f.get_int_in("t.u64", 0, int_max); }).find("= 18446744073709551615 is outside"),
      std::string::npos);
  EXPECT_NE(msg([&] { f.get_int_in("t.u8", 0, 199); }).find("'t.u8' = 200 is outside [0, 199]"),
            std::string::npos);
  EXPECT_NE(msg([&] { f.get_int_in("t.i32", 0, int_max); }).find("= -2000000000 is outside"),
            std::string::npos);
  EXPECT_NE(msg([&] { f.get_int_in("t.u32", 5, -1); }).find("is outside [5, -1]"),
            std::string::npos);  // an empty range holds nothing
  EXPECT_NE(msg([&] { f.get_int_in("t.f32", 0, 1); }).find("'t.f32' is a f32"), std::string::npos);
  EXPECT_NE(msg([&] { f.get_int_in_or("t.id", 0, 10, 7); }).find("outside [0, 10]"),
            std::string::npos);
  EXPECT_NE(msg([&] { f.get_int_in("nope", 0, 1); }).find("'nope' is missing"), std::string::npos);
}

TEST(GgufReader, HonoursGeneralAlignment) {
  Spec s = valid_spec();
  s.kvs.push_back(kv<uint32_t>("general.alignment", kU32, 64));
  s.alignment = 64;
  s.tensors[1].offset = 64;
  s.tensors[2].offset = 128;
  Bytes data(134, 0);
  std::memcpy(data.data(), s.data.data(), 32);
  std::memcpy(data.data() + 64, s.data.data() + 32, 34);
  std::memcpy(data.data() + 128, s.data.data() + 96, 6);
  s.data = data;
  TempFile tf(build(s));
  GgufFile f(tf.path());
  EXPECT_EQ(f.read_f32(*f.find_tensor("c"))[1], -2.0f);
  EXPECT_EQ(f.read_f32(*f.find_tensor("b"))[0], -8.0f);
  EXPECT_EQ(f.tensor_data(*f.find_tensor("b")) - f.tensor_data(*f.find_tensor("a")), 64);
}

TEST(GgufReader, NoTensorsAndNoDataSectionIsFine) {
  Spec s;
  s.kvs = {kv_str("general.architecture", "llama")};
  TempFile tf(build(s));
  GgufFile f(tf.path());
  EXPECT_TRUE(f.tensors().empty());
}

TEST(GgufReader, UnsupportedTypeLoadsButDoesNotDequantise) {
  Spec s;
  s.tensors = {{"k", {256}, static_cast<uint32_t>(GgmlType::Q8_K), 0, {}}};
  s.data = Bytes(292, 0);
  TempFile tf(build(s));
  GgufFile f(tf.path());
  try {
    f.read_f32(f.tensors()[0]);
    ADD_FAILURE() << "read_f32 of Q8_K did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q8_K"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Hostile files.

TEST(GgufHostile, PathsThatAreNotFiles) {
  expect_load_error(testing::TempDir() + "/definitely_missing.gguf", "cannot open");
  const std::string dir = testing::TempDir() + "/gguf_test_dir_" + std::to_string(::getpid());
  fs::create_directories(dir);
  expect_load_error(dir, "is a directory");
  fs::remove(dir);
  expect_load_error(Bytes{}, "empty file");
}

TEST(GgufHostile, BadMagicAndVersion) {
  Bytes b = build(valid_spec());
  b[3] = 'X';
  expect_load_error(b, "not a GGUF file");
  expect_load_error(Bytes{'G', 'G'}, "not a GGUF file");
  for (uint32_t v : {0u, 1u, 4u, 0xFFFFFFFFu}) {
    Spec s = valid_spec();
    s.version = v;
    expect_load_error(s, "unsupported GGUF version " + std::to_string(v));
  }
  Spec s = valid_spec();
  s.version = 0x03000000u;
  expect_load_error(s, "big-endian GGUF (version 3)");
}

TEST(GgufHostile, EveryTruncationIsAnError) {
  const Bytes full = build(valid_spec());
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE("truncated to " + std::to_string(n) + " of " + std::to_string(full.size()));
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    TempFile tf(cut);
    try {
      GgufFile f(tf.path());
      ADD_FAILURE() << "loaded a truncated file";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(tf.path()), std::string::npos) << msg;
      EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                  msg.find("past the end") != std::string::npos ||
                  msg.find("not a GGUF file") != std::string::npos ||
                  msg.find("more than the") != std::string::npos)
          << msg;
    }
  }
}

TEST(GgufHostile, LengthsLargerThanTheFile) {
  Spec s = valid_spec();
  s.kvs.insert(s.kvs.begin(), Writer().put<uint64_t>(~uint64_t{0} - 3).b);  // key length
  expect_load_error(s, "string length 18446744073709551612");

  s = valid_spec();
  s.kvs.push_back(Writer().str("k").put<uint32_t>(kStr).put<uint64_t>(uint64_t{1} << 62).b);
  expect_load_error(s, "metadata 'k': string length 4611686018427387904");

  for (uint32_t elem : {kU8, kU64, kStr, kArr}) {
    s = valid_spec();
    s.kvs.push_back(Writer().str("arr").put<uint32_t>(kArr).put(elem).put<uint64_t>(1000000).b);
    expect_load_error(s, "array of 1000000");
  }

  s = valid_spec();
  s.n_kv = uint64_t{1} << 60;
  expect_load_error(s, "metadata entries");
  s = valid_spec();
  s.n_tensors = uint64_t{1} << 60;
  expect_load_error(s, "tensors, more than");
}

// Counts that the file's bytes could hold are still capped where each one costs far more memory
// than its bytes: 25 MB of zeros claiming 2^20 + 1 tensors (a sparse file, no disk used).
TEST(GgufHostile, MoreTensorsThanAnyModel) {
  Spec s = valid_spec();
  s.tensors.clear();
  s.data.clear();
  s.n_tensors = (uint64_t{1} << 20) + 1;
  const Bytes head = build(s);
  TempFile tf(head);
  fs::resize_file(tf.path(), head.size() + *s.n_tensors * 24);
  expect_load_error(tf.path(), "1048577 tensors, more than the limit of 1048576");
}

TEST(GgufHostile, BadMetadata) {
  Spec s = valid_spec();
  s.kvs.push_back(Writer().str("k").put<uint32_t>(13).put<uint32_t>(0).b);
  expect_load_error(s, "unknown metadata value type 13");

  s = valid_spec();
  s.kvs.push_back(Writer().str("k").put<uint32_t>(kArr).put<uint32_t>(99).put<uint64_t>(0).b);
  expect_load_error(s, "unknown metadata value type 99");

  // Arrays of arrays of ... : each level one element; must stop well before the stack does.
  Writer deep;
  deep.str("deep");
  deep.put<uint32_t>(kArr);
  for (int i = 0; i < 10000; ++i) deep.put<uint32_t>(kArr).put<uint64_t>(1);
  s = valid_spec();
  s.kvs.push_back(deep.b);
  expect_load_error(s, "nested too deeply");

  s = valid_spec();
  s.kvs.push_back(kv_str("general.architecture", "gpt2"));
  expect_load_error(s, "duplicate metadata key 'general.architecture'");

  for (uint32_t a : {0u, 3u, 48u}) {
    s = valid_spec();
    s.kvs.push_back(kv<uint32_t>("general.alignment", kU32, a));
    expect_load_error(s, "general.alignment is " + std::to_string(a));
  }
  s = valid_spec();
  s.kvs.push_back(kv_str("general.alignment", "32"));
  expect_load_error(s, "general.alignment is a string");
}

TEST(GgufHostile, BadTensorTable) {
  struct Case {
    TensorSpec t;
    std::string want;
  };
  const int64_t big = int64_t{1} << 32;
  const std::vector<Case> cases = {
      {{"x", {4, 1, 1, 1, 1}, 0, 0, {}}, "'x' has 5 dims (must be 1 to 4)"},
      {{"x", {}, 0, 0, {}}, "'x' has 0 dims"},
      {{"x", {4}, 0, 0, 0xFFFFFFFFu}, "has 4294967295 dims"},
      {{"x", {4, -3}, 0, 0, {}}, "'x' dimension 1 is -3"},
      {{"x", {0}, 0, 0, {}}, "'x' dimension 0 is 0"},
      {{"x", {big, big}, 0, 0, {}}, "element count overflows"},
      {{"x", {4}, 99, 0, {}}, "unknown ggml type id 99"},
      {{"x", {32}, 20, 0, {}}, "ggml type IQ4_NL (id 20)"},
      {{"x", {31}, 8, 0, {}}, "row length 31 is not a multiple of the Q8_0 block size 32"},
      {{"x", {4}, 0, 4, {}}, "offset 4 is not a multiple of the alignment 32"},
      {{"x", {4}, 0, 128, {}}, "'x' data [128, +16) runs past the end"},
      {{"x", {4}, 0, ~uint64_t{0} - 31, {}}, "runs past the end"},
      {{"x", {big, 4}, 0, 0, {}}, "runs past the end"},
      {{"a", {4}, 0, 0, {}}, "duplicate tensor name 'a'"},
      {{"bad\nname", {4, 1, 1, 1, 1}, 0, 0, {}}, "'bad\\x0aname' has 5 dims"},
      {{std::string(5000, 'n'), {4}, 0, 3, {}}, "'nnnnnnnnnn"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.want);
    Spec s = valid_spec();
    s.tensors.push_back(c.t);
    expect_load_error(s, c.want);
  }
}

TEST(GgufHostile, DataSectionPastTheEnd) {
  Spec s = valid_spec();
  Bytes b = build(s);
  // Drop the data section and the header padding: the table ends mid-alignment.
  const size_t table_end = b.size() - s.data.size() - 1;
  b.resize(table_end);
  expect_load_error(b, "truncated");
}

// Random byte corruption of a valid file: every outcome is a clean load or an Error, and reading
// every tensor of a clean load stays in bounds (run under -fsanitize=address to see that).
TEST(GgufHostile, RandomCorruptionNeverCrashes) {
  const Bytes good = build(valid_spec());
  std::mt19937 rng(12345);
  int loaded = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    Bytes b = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t at = rng() % b.size();
      b[at] = (rng() % 3 == 0) ? static_cast<uint8_t>(0xFF) : static_cast<uint8_t>(rng());
    }
    TempFile tf(b);
    try {
      GgufFile f(tf.path());
      for (const GgufTensorInfo& t : f.tensors())
        if (ggml_type_supported(t.type)) f.read_f32(t);
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(loaded, 0);
  EXPECT_GT(rejected, 0);
}

// ---------------------------------------------------------------------------------------------
// The real model.

TEST(GgufRealModel, SmolLM2Q4_1) {
  const std::string path =
      std::string(STARATTN_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is absent";
  GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 30);
  EXPECT_EQ(f.get_int("llama.embedding_length"), 576);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 49152u);
  EXPECT_EQ(f.tensors().size(), 272u);
  const GgufTensorInfo* q = f.find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, GgmlType::Q4_1);
  EXPECT_EQ(q->dims, (std::vector<int64_t>{576, 576}));
  const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, GgmlType::Q8_0);
  EXPECT_EQ(emb->dims, (std::vector<int64_t>{576, 49152}));
  int64_t total = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    const std::vector<float> v = f.read_f32(t);
    ASSERT_EQ(static_cast<int64_t>(v.size()), t.n_elements()) << t.name;
    size_t bad = 0;
    for (float x : v) bad += !std::isfinite(x);
    EXPECT_EQ(bad, 0u) << t.name << " has non-finite values";
    total += t.n_elements();
  }
  EXPECT_GT(total, 100'000'000);  // ~135M parameters (tied embeddings)
}

}  // namespace
}  // namespace starattn
