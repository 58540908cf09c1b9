// The starattn command line on bad input: each case must end with exit code != 0 and one clear
// "starattn: error:" line (never a crash, a hang, or a silent wrong answer). Cases that need the
// real model are skipped when scripts/setup.sh has not fetched it.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "model_files.h"
#include "test_util.h"

namespace starattn {
namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

Result run_cmd(const std::string& shell_cmd) {
  const std::string cmd = "(" + shell_cmd + ") 2>&1";
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

Result run(const std::string& args) {
  // `timeout` turns a hang into a failure instead of a stuck test run.
  return run_cmd("timeout 120 " + std::string(STARATTN_BINARY) + " " + args);
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

// A command run from another working directory.
Result run_in(const std::string& dir, const std::string& args) {
  return run_cmd("cd '" + dir + "' && timeout 120 " + std::string(STARATTN_BINARY) + " " + args);
}

// A fresh folder under the test's temp dir.
std::string fresh_dir(const std::string& name) {
  const fs::path dir = fs::path(tmp_path(name));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

TEST(Cli, HelpExplainsEveryFlag) {
  const Result r = run("generate --help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag : {"--model", "--prompt", "--file", "--context-file", "--query",
                           "--n-predict", "--temp", "--top-k", "--top-p", "--seed", "--chat",
                           "--json", "--attn", "--block-size", "--anchor-size", "--anchor-mode"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  EXPECT_EQ(run("bench --help").code, 0);
}

TEST(Cli, VersionAndBareUsage) {
  const Result v = run("--version");
  EXPECT_EQ(v.code, 0) << v.out;
  EXPECT_EQ(v.out.rfind("starattn 0.", 0), 0u) << v.out;
  EXPECT_NE(v.out.find(" build, CUDA o"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("OpenBLAS"), std::string::npos) << v.out;
  // No subcommand: the usage (naming every subcommand), and exit 1 since nothing was done.
  const Result bare = run("");
  EXPECT_EQ(bare.code, 1) << bare.out;
  for (const char* sub : {"generate", "bench", "eval", "--version"})
    EXPECT_NE(bare.out.find(sub), std::string::npos) << sub << " in:\n" << bare.out;
  EXPECT_EQ(count(bare.out, "starattn: error:"), 0) << bare.out;
}

TEST(Cli, UnknownSubcommandOrFlag) {
  expect_error(run("genrate -p hi"), "unknown subcommand 'genrate'");
  expect_error(run("--frobnicate"), "--frobnicate");
  expect_error(run("generate -p hi -n many"), "--n-predict");
}

// Every flag is checked before anything is loaded: with a model path that does not exist, the
// error must still be the flag's. Each case names the flag at fault.
TEST(Cli, FlagsAreCheckedBeforeTheModel) {
  const std::string gen = "generate -m /nonexistent.gguf -p hi ";
  expect_error(run(gen + "-t -1"), "--threads");
  expect_error(run(gen + "-t 9999"), "--threads");
  expect_error(run(gen + "--seed -1"), "--seed");
  expect_error(run(gen + "-n -2"), "-n must be >= 0");
  expect_error(run(gen + "-b 0"), "--block-size");
  expect_error(run(gen + "-b 4 -a 9"), "--anchor-size");
  expect_error(run(gen + "-a -3"), "--anchor-size");
  expect_error(run(gen + "--chunk -1"), "--chunk");
  expect_error(run(gen + "--temp -1"), "--temp");
  const std::string bench = "bench -m /nonexistent.gguf ";
  expect_error(run(bench + "-t -1"), "--threads");
  expect_error(run(bench + "-t 9999"), "--threads");
  expect_error(run(bench + "--attn star -b 0"), "--block-size");
  expect_error(run(bench + "--attn star -b 4 -a 9"), "--anchor-size");
  expect_error(run(bench + "--chunk -1"), "--chunk");
  expect_error(run(bench + "--prefill 1"), "--prefill");
  const std::string eval = "eval -m /nonexistent.gguf -o " + fresh_dir("eval_flags") + " ";
  expect_error(run(eval + "-t -1"), "--threads");
  expect_error(run(eval + "-t 9999"), "--threads");
  expect_error(run(eval + "--seed -1"), "--seed");
  expect_error(run(eval + "-b 0"), "-b");
  expect_error(run(eval + "--chunk -1"), "--chunk");
#ifndef STARATTN_HAVE_CUDA
  for (const std::string& cmd : {gen, bench, eval})
    expect_error(run(cmd + "--device cuda"), "no CUDA backend");
#endif
}

// `models` in the working directory that cannot be searched (here a loop of symbolic links,
// which std::filesystem refuses even for root, as it refuses a folder without permission for
// anyone else) must not crash any command before main's error handling.
TEST(Cli, UnsearchableModelsFolder) {
  const std::string dir = fresh_dir("loop");
  fs::create_directory_symlink("models", fs::path(dir) / "models");
  for (const char* args : {"--help", "generate --help", "bench --help", "eval --help", "--version"})
    EXPECT_EQ(run_in(dir, args).code, 0) << args << ":\n" << run_in(dir, args).out;
  expect_error(run_in(dir, "generate -m models/m.gguf -p hi"), "Too many levels of symbolic links");
  expect_error(run_in(dir, "generate -m models -p hi"), "Too many levels of symbolic links");
}

// Text inputs are read whole, so only regular files within the 1 GiB cap are accepted: before
// the model is loaded, quickly, with the reason.
TEST(Cli, TextInputsMustBeRegularFiles) {
  const std::string dir = fresh_dir("inputs");
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string big = dir + "/big.txt";  // sparse: no disk space used
  { std::ofstream(big) << "x"; }
  fs::resize_file(big, (uint64_t{1} << 30) + 1);
  const std::string gen = "generate -m /nonexistent.gguf ";
  expect_error(run(gen + "--context-file /dev/zero --query q"), "a character device");
  expect_error(run(gen + "-f /dev/zero"), "a character device");
  expect_error(run(gen + "--context-file " + fifo + " --query q"), "a FIFO");
  expect_error(run(gen + "-f " + fifo), "a FIFO");
  expect_error(run(gen + "--context-file " + dir + " --query q"), "a directory");
  expect_error(run(gen + "-f " + big), "more than the limit of 1 GiB");
  expect_error(run(gen + "-f " + dir + "/absent.txt"), "No such file");
  const std::string eval = "eval -m /nonexistent.gguf -o " + dir + "/out --haystack ";
  expect_error(run(eval + "/dev/zero"), "a character device");
  expect_error(run(eval + fifo), "a FIFO");
  expect_error(run(eval + dir), "a directory");
}

// Numbers in results.jsonl are range-checked: 1e300 as a length once printed as
// "-9223372036854775808 tokens" with exit 0.
TEST(Cli, ResultsWithAbsurdNumbers) {
  const std::string fixture = test::fixture("eval/smollm2_2048/results.jsonl");
  std::string line = read_file(fixture);
  line = line.substr(0, line.find('\n'));
  const std::string dir = fresh_dir("results");
  write_file("results/results.jsonl", line + "\n");
  ASSERT_EQ(run("eval --report -o " + dir).code, 0);
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, std::string>>{{"length", "1e300"},
                                                        {"length", "-5"},
                                                        {"length", "18446744073709551615"},
                                                        {"index", "2.5"},
                                                        {"ranks", "0"},
                                                        {"score", "7"},
                                                        {"decode_s", "-1"}}) {
    auto j = nlohmann::json::parse(line);
    j[field] = nlohmann::json::parse(value);
    write_file("results/results.jsonl", j.dump() + "\n" + line + "\n");
    expect_error(run("eval --report -o " + dir), "\"" + field + "\"");
  }
}

// Counts in a model file are checked against the tensors the file holds before anything is
// allocated per layer: a tiny file claiming millions of layers fails at once, within a small
// address space (ulimit -v), instead of reaching gigabytes first.
TEST(Cli, LyingLayerCountsAllocateNothing) {
  using testfiles::GgufBuilder;
  const std::string dir = fresh_dir("lying");
  for (const uint32_t layers : {10'000'000u, 0x7fffffffu}) {
    GgufBuilder b =
        GgufBuilder::copy_of(GgufFile(testfiles::tiny_fixture("llama_gqa/model-f32.gguf")));
    b.set_u32("llama.block_count", layers);
    b.write(dir + "/lying.gguf");
    const std::string hf = dir + "/hf";
    fs::create_directories(hf);
    fs::copy_file(testfiles::tiny_fixture("qwen2_bias/model.safetensors"),
                  hf + "/model.safetensors", fs::copy_options::overwrite_existing);
    auto config = test::read_json(testfiles::tiny_fixture("qwen2_bias/config.json"));
    config["num_hidden_layers"] = layers;
    write_file("lying/hf/config.json", config.dump());
#if defined(__SANITIZE_ADDRESS__)
    const std::string limit = "";  // ASan reserves terabytes of address space for its shadow
#else
    const std::string limit = "ulimit -v 1000000 && ";  // 1 GB
#endif
    for (const std::string& model : {dir + "/lying.gguf", hf}) {
      const Result r =
          run_cmd(limit + "timeout 20 " + STARATTN_BINARY + " generate -m " + model + " -p hi");
      expect_error(r, std::to_string(layers));
      EXPECT_EQ(r.out.find("out of memory"), std::string::npos) << r.out;
    }
  }
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
