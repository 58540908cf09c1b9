// The starattn command line on bad input: each case must end with exit code != 0 and one clear
// "starattn: error:" line (never a crash, a hang, or a silent wrong answer). Cases that need the
// real model are skipped when scripts/setup.sh has not fetched it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "test_util.h"

namespace starattn {
namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

Result run(const std::string& args) {
  // `timeout` turns a hang into a failure instead of a stuck test run.
  const std::string cmd = "timeout 120 " + std::string(STARATTN_BINARY) + " " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
  return n;
}

// One error line naming the problem; exit code 1 (not a signal, not the 124 of a hang).
void expect_error(const Result& r, const std::string& mentions) {
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(count(r.out, "starattn: error:"), 1) << r.out;
  EXPECT_NE(r.out.find(mentions), std::string::npos) << "expected '" << mentions << "' in:\n"
                                                     << r.out;
}

std::string tmp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "starattn_cli_test";
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string write_file(const std::string& name, const std::string& bytes) {
  const std::string path = tmp_path(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(Cli, HelpExplainsEveryFlag) {
  const Result r = run("generate --help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag : {"--model", "--prompt", "--file", "--context-file", "--query",
                           "--n-predict", "--temp", "--top-k", "--top-p", "--seed", "--chat",
                           "--json", "--attn", "--block-size", "--anchor-size", "--anchor-mode"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  EXPECT_EQ(run("bench --help").code, 0);
  EXPECT_NE(run("").code, 0);  // a subcommand is required
}

TEST(Cli, MissingModelFile) {
  expect_error(run("generate -m /nonexistent.gguf -p hi"), "not found");
}

TEST(Cli, NotAGgufFile) {
  const std::string p = write_file("notgguf.gguf", "this is plain text, not a model\n");
  expect_error(run("generate -m " + p + " -p hi"), "GGUF");
}

TEST(Cli, AbsurdFlags) {
  EXPECT_NE(run("generate -p hi --attn flash").code, 0);
  EXPECT_NE(run("generate -p hi --anchor-mode sometimes").code, 0);
  EXPECT_NE(run("generate -p hi -n many").code, 0);
  EXPECT_NE(run("generate -p hi --context-file x").code, 0);  // --context-file needs --query
  expect_error(run("bench --query 0"), "--query must be >= 1");
}

class CliRealModel : public testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(test::real_model_path()))
      GTEST_SKIP() << "no " << test::real_model_path() << " (run scripts/setup.sh)";
    model_ = test::real_model_path();
  }
  // A copy of the real model with `patch` applied to its bytes.
  std::string patched(const std::string& name, const std::function<void(std::string&)>& patch) {
    std::string bytes = read_file(model_);
    patch(bytes);
    return write_file(name, bytes);
  }
  std::string model_;
};

TEST_F(CliRealModel, TruncatedModel) {
  const std::string bytes = read_file(model_);
  const std::string p = write_file("truncated.gguf", bytes.substr(0, bytes.size() / 2));
  expect_error(run("generate -m " + p + " -p hi"), "truncated.gguf");
}

TEST_F(CliRealModel, UnknownArchitecture) {
  const std::string p = patched("arch.gguf", [](std::string& b) {
    const size_t key = b.find("general.architecture");
    const size_t val = b.find("llama", key);
    b.replace(val, 5, "bloom");
  });
  expect_error(run("generate -m " + p + " -p hi"), "bloom");
}

// Locates the type field of the first tensor in the table: name, n_dims (u32), dims (u64 each),
// type (u32), offset (u64).
size_t first_tensor_type_field(const std::string& b) {
  const size_t name = b.find("token_embd.weight");
  uint32_t n_dims;
  std::memcpy(&n_dims, b.data() + name + 17, 4);
  return name + 17 + 4 + 8 * n_dims;
}

TEST_F(CliRealModel, UnknownQuantType) {
  const std::string p = patched("quant.gguf", [](std::string& b) {
    const uint32_t bogus = 99;
    std::memcpy(b.data() + first_tensor_type_field(b), &bogus, 4);
  });
  expect_error(run("generate -m " + p + " -p hi"), "99");
}

TEST_F(CliRealModel, LyingTensorOffset) {
  const std::string p = patched("offset.gguf", [](std::string& b) {
    const uint64_t far = uint64_t{1} << 40;
    std::memcpy(b.data() + first_tensor_type_field(b) + 4, &far, 8);
  });
  expect_error(run("generate -m " + p + " -p hi"), "offset.gguf");
}

TEST_F(CliRealModel, EmptyPromptAndQuery) {
  expect_error(run("generate -m " + model_ + " -p ''"), "empty");
  const std::string ctx = write_file("ctx.txt", "Some context.");
  expect_error(run("generate -m " + model_ + " --context-file " + ctx + " --query ''"), "empty");
  expect_error(run("generate -m " + model_ + " --context-file /nonexistent.txt --query q"),
               "context file");
}

TEST_F(CliRealModel, PromptLongerThanTheModelContext) {
  std::string text;
  for (int i = 0; i < 9000; ++i) text += "word" + std::to_string(i % 10) + " ";
  const std::string ctx = write_file("long.txt", text);
  expect_error(run("generate -m " + model_ + " --context-file " + ctx + " --query what -n 4"),
               "exceeds the model's context");
}

TEST_F(CliRealModel, BadSamplingAndBlockFlags) {
  expect_error(run("generate -m " + model_ + " -p hi --temp -1"), "--temp");
  expect_error(run("generate -m " + model_ + " -p hi --top-p 0"), "--top-p");
  expect_error(run("generate -m " + model_ + " -p hi --block-size -5"), "--block-size");
  expect_error(run("generate -m " + model_ + " -p hi --block-size 0"), "--block-size");
  expect_error(run("generate -m " + model_ + " -p hi -b 4 -a 9"), "--anchor-size");
}

TEST_F(CliRealModel, JsonOutputAndTimings) {
  const Result r = run("generate -m " + model_ + " -p 'The capital of France is' -n 5 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(j["generated_tokens"].get<int>(), 5);
  for (const char* k : {"text", "phase1_s", "query_s", "decode_ms_per_token", "attn"})
    EXPECT_TRUE(j.contains(k)) << k;
}

}  // namespace
}  // namespace starattn
