// Safetensors reader: dtype conversion, sharded folders, and hostile files. Every broken file must
// throw starattn::Error naming the file and what is wrong, never crash.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "model/safetensors.h"
#include "model_files.h"

namespace starattn {
namespace {

using namespace testfiles;

std::string u16_bytes(const std::vector<uint16_t>& v) {
  std::string s(v.size() * 2, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

TEST(Safetensors, ConvertsF32F16Bf16) {
  TempDir dir;
  StTensors ts;
  ts["a.f32"] = st_f32({2, 3}, {1, -2, 3.5f, 0, 1e-30f, -7});
  // F16: 1, -2.5, 65504 (largest), 2^-24 (smallest subnormal), -0, inf, 2^-14 (smallest normal).
  ts["b.f16"] = {"F16", {7}, u16_bytes({0x3c00, 0xc100, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x0400})};
  // BF16: the top halves of 1, -2.5 and 3.0e38.
  const uint16_t big = static_cast<uint16_t>(std::bit_cast<uint32_t>(3.0e38f) >> 16);
  ts["c.bf16"] = {"BF16", {3}, u16_bytes({0x3f80, 0xc020, big})};
  ts["d.empty"] = st_f32({0, 4}, {});
  st_write(dir / "x.safetensors", ts);

  const SafetensorsFile f(dir / "x.safetensors");
  EXPECT_EQ(f.tensors().size(), 4u);  // __metadata__ is not a tensor
  const SafetensorsTensor* a = f.find("a.f32");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.read_f32(*a), (std::vector<float>{1, -2, 3.5f, 0, 1e-30f, -7}));
  const std::vector<float> h = f.read_f32(*f.find("b.f16"));
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.5f);
  EXPECT_EQ(h[2], 65504.0f);
  EXPECT_EQ(h[3], std::ldexp(1.0f, -24));
  EXPECT_TRUE(h[4] == 0.0f && std::signbit(h[4]));
  EXPECT_EQ(h[5], std::numeric_limits<float>::infinity());
  EXPECT_EQ(h[6], std::ldexp(1.0f, -14));
  const std::vector<float> b = f.read_f32(*f.find("c.bf16"));
  EXPECT_EQ(b[0], 1.0f);
  EXPECT_EQ(b[1], -2.5f);
  EXPECT_NEAR(b[2], 3.0e38f, 3.0e38f / 128);
  EXPECT_TRUE(f.read_f32(*f.find("d.empty")).empty());
  EXPECT_EQ(f.find("missing"), nullptr);
}

// Zero-element tensors of each dtype, alone in a file whose data section is empty: nothing is
// copied, and nothing may be copied to or from a null pointer (UBSan checks this).
TEST(Safetensors, ZeroElementTensors) {
  TempDir dir;
  StTensors ts;
  ts["a"] = st_f32({0}, {});
  ts["b"] = {"F16", {3, 0}, ""};
  ts["c"] = {"BF16", {0, 2}, ""};
  st_write(dir / "empty.safetensors", ts);
  const SafetensorsFile f(dir / "empty.safetensors");
  for (const char* name : {"a", "b", "c"}) EXPECT_TRUE(f.read_f32(*f.find(name)).empty()) << name;
  EXPECT_TRUE(st_read_all(dir / "empty.safetensors")["a"].bytes.empty());
}

TEST(Safetensors, ShardedFolderFindsEveryTensor) {
  // The llama_gqa fixture is split in two shards by transformers.
  const SafetensorsFolder st(tiny_fixture("llama_gqa"));
  const SafetensorsFile* f0 = nullptr;
  const SafetensorsFile* f1 = nullptr;
  ASSERT_NE(st.find("model.embed_tokens.weight", &f0), nullptr);
  ASSERT_NE(st.find("model.layers.1.mlp.down_proj.weight", &f1), nullptr);
  EXPECT_NE(f0, f1);  // really two shards
  EXPECT_EQ(st.read_f32("model.norm.weight", {72}).size(), 72u);
  EXPECT_NE(error_of([&] { st.read_f32("model.norm.weight", {73}); }).find("[72]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { st.read_f32("nope", {1}); }).find("'nope' is missing"),
            std::string::npos);
}

// Each broken file: the message must contain `want`.
void expect_bad_file(const std::string& path, const std::string& want) {
  const std::string msg = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(msg.find(want), std::string::npos) << "message: " << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << "message should name the file: " << msg;
}

TEST(Safetensors, RejectsBrokenFiles) {
  TempDir dir;
  StTensors ts;
  ts["w"] = st_f32({4, 5}, std::vector<float>(20, 1.0f));
  const std::string good = dir / "good.safetensors";
  st_write(good, ts);
  const std::string bytes = read_bytes(good);

  const std::string p = dir / "bad.safetensors";
  write_bytes(p, bytes.substr(0, bytes.size() - 4));  // truncated: last tensor runs off the end
  expect_bad_file(p, "outside the data section");

  write_bytes(p, bytes.substr(0, 5));
  expect_bad_file(p, "too short");

  std::string lying = bytes;
  const uint64_t huge = uint64_t{1} << 40;
  std::memcpy(lying.data(), &huge, 8);
  write_bytes(p, lying);
  expect_bad_file(p, "header length 1099511627776 exceeds the file size");

  // A header length the (sparse) file holds, but far more JSON than any real header.
  const uint64_t big = (uint64_t{32} << 20) + 1;
  std::memcpy(lying.data(), &big, 8);
  write_bytes(p, lying);
  fs::resize_file(p, big + 8);
  expect_bad_file(p, "header length 33554433 is more than the limit");

  st_write(p, ts, [](nlohmann::json& h) { h["w"]["data_offsets"] = {0, 4000}; });
  expect_bad_file(p, "data_offsets [0, 4000] outside the data section of 80 bytes");

  st_write(p, ts, [](nlohmann::json& h) { h["w"]["data_offsets"] = {8, 4}; });
  expect_bad_file(p, "outside the data section");

  st_write(p, ts, [](nlohmann::json& h) { h["w"]["shape"] = {4, 4}; });
  expect_bad_file(p, "needs 64 bytes but its data_offsets span 80");

  st_write(p, ts, [](nlohmann::json& h) {
    h["w"]["shape"] = {uint64_t{1} << 39, uint64_t{1} << 39};
  });
  expect_bad_file(p, "too many elements");

  st_write(p, ts, [](nlohmann::json& h) { h["w"]["shape"] = {-4, 5}; });
  expect_bad_file(p, "not a non-negative integer");

  st_write(p, ts, [](nlohmann::json& h) { h["w"]["dtype"] = "F7"; });
  expect_bad_file(p, "tensor 'w' has unknown dtype 'F7'");

  st_write(p, ts, [](nlohmann::json& h) { h["w"].erase("data_offsets"); });
  expect_bad_file(p, "needs data_offsets");

  st_write(p, ts, [](nlohmann::json& h) { h = nlohmann::json::array(); });
  expect_bad_file(p, "not a JSON object");

  std::string garbage = bytes;
  garbage[8] = '#';  // the header is no longer JSON
  write_bytes(p, garbage);
  expect_bad_file(p, "not a JSON object");

  expect_bad_file(dir / "absent.safetensors", "cannot open");
}

TEST(Safetensors, KnownDtypeWeCannotReadIsNamedOnRead) {
  TempDir dir;
  StTensors ts;
  ts["ids"] = {"I64", {2}, std::string(16, '\0')};
  st_write(dir / "x.safetensors", ts);
  const SafetensorsFile f(dir / "x.safetensors");  // offsets are still checked and fine
  const std::string msg = error_of([&] { f.read_f32(*f.find("ids")); });
  EXPECT_NE(msg.find("tensor 'ids' has dtype I64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("supported: F32, F16, BF16"), std::string::npos) << msg;
}

TEST(Safetensors, RejectsBrokenIndex) {
  TempDir dir;
  StTensors ts;
  ts["a"] = st_f32({1}, {1.0f});
  st_write(dir / "s1.safetensors", ts);
  auto index = [&](const nlohmann::json& map) {
    write_bytes(dir / "model.safetensors.index.json",
                nlohmann::json{{"metadata", nlohmann::json::object()}, {"weight_map", map}}.dump());
  };
  index({{"a", "s1.safetensors"}});
  EXPECT_NO_THROW(SafetensorsFolder{dir.path()});

  index({{"a", "s1.safetensors"}, {"b", "s2.safetensors"}});
  EXPECT_NE(error_of([&] { SafetensorsFolder{dir.path()}; }).find("cannot open"),
            std::string::npos);

  st_write(dir / "s2.safetensors", ts);  // holds 'a' again, not 'b'
  EXPECT_NE(error_of([&] { SafetensorsFolder{dir.path()}; }).find("appears in both"),
            std::string::npos);

  index({{"a", "../s1.safetensors"}});
  EXPECT_NE(error_of([&] { SafetensorsFolder{dir.path()}; }).find("not a plain file name"),
            std::string::npos);

  write_bytes(dir / "model.safetensors.index.json", "{\"weight_map\": 3}");
  EXPECT_NE(error_of([&] { SafetensorsFolder{dir.path()}; }).find("weight_map"), std::string::npos);

  TempDir empty;
  EXPECT_NE(error_of([&] { SafetensorsFolder{empty.path()}; }).find("no model.safetensors"),
            std::string::npos);
}

}  // namespace
}  // namespace starattn
