// The starattn command line on bad input: each case must end with exit code != 0 and one clear
// "starattn: error:" line (never a crash, a hang, or a silent wrong answer). Cases that need the
// real model are skipped when scripts/setup.sh has not fetched it.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "model/gguf.h"
#include "model_files.h"
#include "test_util.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

namespace starattn {
namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

// Runs a shell command line, stdout and stderr together.
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

// `timeout` turns a hang into a failure instead of a stuck test run.
Result run(const std::string& args) {
  return run_cmd("timeout 120 " + std::string(STARATTN_BINARY) + " " + args);
}
Result run_script(const std::string& path) {
  return run_cmd("timeout 120 sh " + path);
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

TEST(Cli, SubcommandsShareTheContextFlagsAndDefaults) {
  // One declaration of --attn and the flags around it: the same values, defaults and help on
  // every subcommand; eval's -b differs on purpose and says why.
  for (const char* sub : {"generate", "bench", "eval", "serve"}) {
    const Result r = run(std::string(sub) + " --help");
    ASSERT_EQ(r.code, 0) << sub;
    for (const char* want : {"--attn TEXT:{dense,star,ring}=star",
                             "--anchor-mode TEXT:{recompute,shared,broadcast}=shared",
                             "--anchor-source TEXT:{first,previous,random,shuffled,constant}=first",
                             "--kv-type TEXT:{bf16,fp8,f32,int8}=bf16", "--chunk INT=0",
                             "-t,--threads", "cores / ranks, at least 1"})
      EXPECT_NE(r.out.find(want), std::string::npos) << sub << ": " << want;
    const bool eval = std::string(sub) == "eval";
    EXPECT_EQ(r.out.find("-b,--block-size INT=-1") != std::string::npos, !eval) << sub;
    if (eval) {
      EXPECT_NE(r.out.find("The default is the paper's L/4"), std::string::npos);
    }
  }
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
  for (const char* sub : {"Usage: starattn", "generate", "bench", "eval", "serve", "--version"})
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
#elif defined(STARATTN_HAVE_CUDA)
    // The CUDA runtime, cuBLAS and NCCL take about 1 GB of address space as they load.
    const std::string limit = "ulimit -v 4000000 && ";  // 4 GB
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

// ---- Sampling flags, stop strings, logprobs and --interactive ----

TEST(Cli, HelpExplainsTheGenerationFeatures) {
  const Result r = run("generate --help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag : {"--min-p", "--repeat-penalty", "--repeat-last-n", "--stop", "--logprobs",
                           "--interactive", "stop_reason", "top_logprobs"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
}

// These are checked before the model loads, so they need no model.
TEST(Cli, BadGenerationFlags) {
  expect_error(run("generate -p hi --min-p 1.5"), "--min-p");
  expect_error(run("generate -p hi --repeat-penalty 0"), "--repeat-penalty");
  expect_error(run("generate -p hi --repeat-last-n -1"), "--repeat-last-n");
  expect_error(run("generate -p hi --logprobs 21 --json"), "--logprobs");
  expect_error(run("generate -p hi --logprobs 2"), "--logprobs needs --json");
  expect_error(run("generate -p hi --stop ''"), "stop string is empty");
  EXPECT_NE(run("generate -i -p hi").code, 0);  // --interactive reads its messages from stdin
}

nlohmann::json parse_json_line(const std::string& out) {
  const size_t at = out.find('{');
  if (at == std::string::npos) return nlohmann::json();
  return nlohmann::json::parse(out.substr(at, out.find('\n', at) - at));
}

// Every line of the output that is a JSON object, in order.
std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] == '{') v.push_back(nlohmann::json::parse(line));
  return v;
}

// ---- --kv-type ----

TEST(Cli, KvTypeOnEveryCommand) {
  for (const char* cmd : {"generate", "bench", "eval", "serve"}) {
    const Result r = run(std::string(cmd) + " --help");
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_NE(r.out.find("--kv-type"), std::string::npos) << cmd;
  }
  // Refused before any model loads, naming the flag.
  for (const char* cmd : {"generate -p hi", "bench", "eval", "serve"}) {
    const Result r = run(std::string(cmd) + " --kv-type int4");
    EXPECT_NE(r.code, 0) << cmd << ": " << r.out;
    EXPECT_NE(r.out.find("--kv-type"), std::string::npos) << cmd << ": " << r.out;
  }
}

// The README's question about examples/harbor_report.txt (~4100 tokens) with each KV cache type,
// on the Q4_1 blocks as the README runs it: the bf16 cache (the default) and the fp8 one give the
// same greedy answer as the exact fp32 cache and the logprobs of its tokens stay within a bound
// of the fp32 cache's, and so does the int8 one; --json reports the KV bytes per token of each
// type (SmolLM2-135M: 30 layers, 3 kv heads of 64: fp32 rows of 768 bytes, bf16 rows of 384, fp8
// and int8 rows of 192 bytes + 3 scales, padded to 208).
//
// The bf16 bound is derived, not measured. Rounding to bf16 changes a key or value by at most
// 2^-9 of itself. The quantised weights' products already round every input to 8 bits per block
// of 32, by up to half a step of max|x| / 127, about 2^-8 of the block's largest value: the K and
// V of the fp32 cache carry that rounding, twice bf16's, and so does every other product. A
// change below that rounding moves a later result only where it tips an 8-bit code over a step,
// which is a change of the same kind and size as the rounding itself, at fewer places. So the
// bf16 cache moves the logprobs by no more than the 8-bit rounding does, which this test measures
// as the change from fp32 weights (--weights-type f32) to the blocks, both with the fp32 cache;
// the bound is twice that, for a largest and a mean over 19 tokens. (Measured here: bf16 0.072
// nats at most, 0.010 on average; the blocks against fp32 weights 0.079 and 0.012.) FP8 E4M3
// keeps 3 mantissa bits, 2^-4 relative, far above the 8-bit rounding: its bounds are those
// measured when it was added (0.229 at most, 0.030 on average), with margin. int8 rounds each
// value by up to half a step of max|x| / 127 over a kv head's 64 values: the 8-bit rounding's
// kind, over a group twice the blocks' 32, so its bound is bf16's (measured: 0.069 nats at most,
// 0.012 on average).
TEST_F(CliRealModel, KvTypesKeepTheReadmeAnswer) {
  const std::string doc = std::string(STARATTN_SOURCE_DIR) + "/examples/harbor_report.txt";
  const std::string base = "generate -m " + model_ + " --chat --context-file " + doc +
                           " --query 'What is the password for the north gate?' -n 24 --json "
                           "--logprobs 1 --progress off";
  // A 4100-token prefill each: about 20 s on two cores, so a longer limit than run()'s.
  auto run_long = [](const std::string& args) {
    return run_cmd("timeout 900 " + std::string(STARATTN_BINARY) + " " + args);
  };
  const Result full = run_long(base + " --kv-type f32"), bf16 = run_long(base),
               fp8 = run_long(base + " --kv-type fp8"), int8 = run_long(base + " --kv-type int8"),
               exact = run_long(base + " --kv-type f32 --weights-type f32");
  for (const Result* r : {&full, &bf16, &fp8, &int8, &exact}) ASSERT_EQ(r->code, 0) << r->out;
  const auto a = parse_json_line(full.out);
  EXPECT_NE(a["text"].get<std::string>().find("COPPER-LANTERN-58"), std::string::npos) << a["text"];
  struct Drift {
    double max = 0, mean = 0;
  };
  // How far b's logprobs are from a's, after checking that b answers with the same tokens.
  auto drift_from_full = [&](const nlohmann::json& b, const std::string& what) {
    Drift d;
    EXPECT_NE(b["text"].get<std::string>().find("COPPER-LANTERN-58"), std::string::npos)
        << what << ": " << b["text"];
    EXPECT_EQ(a["tokens"], b["tokens"]) << what;
    if (a["logprobs"].size() != b["logprobs"].size() || a["logprobs"].empty()) {
      ADD_FAILURE() << what << ": " << b["logprobs"].size() << " logprobs against "
                    << a["logprobs"].size();
      return d;
    }
    for (size_t i = 0; i < a["logprobs"].size(); ++i) {
      const double x = std::abs(a["logprobs"][i]["logprob"].get<double>() -
                                b["logprobs"][i]["logprob"].get<double>());
      d.max = std::max(d.max, x);
      d.mean += x / static_cast<double>(a["logprobs"].size());
    }
    std::printf("%s: largest logprob change of the %zu answer tokens %.4f nats, mean %.4f\n",
                what.c_str(), a["logprobs"].size(), d.max, d.mean);
    return d;
  };
  const Drift rounding = drift_from_full(parse_json_line(exact.out), "fp32 weights");
  EXPECT_GT(rounding.max, 0.0) << "--weights-type f32 is in effect";
  struct Bound {
    const Result& run;
    const char* type;
    double max, mean;
    int64_t row_bytes;
  };
  for (const Bound& t : {Bound{bf16, "bf16", 2 * rounding.max, 2 * rounding.mean, 384},
                         Bound{fp8, "fp8", 0.4, 0.06, 208},
                         Bound{int8, "int8", 2 * rounding.max, 2 * rounding.mean, 208}}) {
    const auto b = parse_json_line(t.run.out);
    const Drift d = drift_from_full(b, std::string(t.type) + " KV");
    EXPECT_LT(d.max, t.max) << t.type << ": largest change of a generated token's logprob";
    EXPECT_LT(d.mean, t.mean) << t.type << ": mean change of the logprobs";
    EXPECT_GT(d.max, 0.0) << t.type << ": the cache type is in effect";
    EXPECT_EQ(b["kv_type"], t.type);
    EXPECT_EQ(b["kv_bytes_per_token"].get<int64_t>(), 2 * 30 * t.row_bytes) << t.type;
  }
  EXPECT_EQ(a["kv_type"], "f32");
  EXPECT_EQ(a["kv_bytes_per_token"].get<int64_t>(), 2 * 30 * 768);
  const nlohmann::json& fit = a["max_context_tokens"];
  EXPECT_GT(fit["fp8"].get<int64_t>(), fit["bf16"].get<int64_t>() * 17 / 10);
  EXPECT_GT(fit["bf16"].get<int64_t>(), fit["f32"].get<int64_t>() * 19 / 10);
  EXPECT_EQ(fit["int8"], fit["fp8"]);
}

// Greedy, ends by itself after ~23 tokens.
const char* kGreedyPrompt = "-p 'Write a list of five fruits, one per line.' --chat -n 30";

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

TEST_F(CliRealModel, StopStringEndsTheTextAndIsNeverShown) {
  const Result full = run("generate -m " + model_ + " " + kGreedyPrompt + " --json");
  ASSERT_EQ(full.code, 0) << full.out;
  const auto j = parse_json_line(full.out);
  const std::string text = j["text"];
  ASSERT_GT(text.size(), 12u) << text;
  // A stop string from the middle of the answer, spanning several tokens.
  const std::string stop = text.substr(text.size() / 2, 6);
  const size_t first = text.find(stop);
  const Result cut = run("generate -m " + model_ + " " + kGreedyPrompt + " --json --stop " +
                         shell_quote(stop) + " --stop 'never appears in it'");
  ASSERT_EQ(cut.code, 0) << cut.out;
  const auto c = parse_json_line(cut.out);
  EXPECT_EQ(c["text"], text.substr(0, first));
  EXPECT_EQ(c["stop_reason"], "stop");
  EXPECT_EQ(c["stop_string"], stop);
  // Generation stopped at the token that completed the stop string, not at the limit.
  const auto all_tokens = j["tokens"].get<std::vector<int>>();
  const auto cut_tokens = c["tokens"].get<std::vector<int>>();
  ASSERT_LT(cut_tokens.size(), all_tokens.size());
  EXPECT_TRUE(std::equal(cut_tokens.begin(), cut_tokens.end(), all_tokens.begin()));
  // Streamed to the terminal: the same text, and no piece of the stop string.
  const Result shown = run("generate -m " + model_ + " " + kGreedyPrompt + " --progress off " +
                           "--stop " + shell_quote(stop));
  ASSERT_EQ(shown.code, 0) << shown.out;
  // stdout is flushed before the timing line goes to stderr.
  EXPECT_EQ(shown.out.substr(0, shown.out.find("timing:")), text.substr(0, first) + "\n");
}

TEST_F(CliRealModel, LogprobsOfEachGeneratedToken) {
  const Result r = run("generate -m " + model_ + " -p 'Name a fruit.' -n 6 --json --logprobs 3");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = parse_json_line(r.out);
  const auto tokens = j["tokens"].get<std::vector<int>>();
  ASSERT_EQ(j["logprobs"].size(), tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto& t = j["logprobs"][i];
    EXPECT_EQ(t["id"], tokens[i]);
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    // Greedy picks the most likely token of the model's distribution.
    EXPECT_EQ(t["top_logprobs"][0]["id"], tokens[i]);
    EXPECT_EQ(t["top_logprobs"][0]["logprob"], t["logprob"]);
    double last = 0;
    for (const auto& alt : t["top_logprobs"]) {
      EXPECT_LE(alt["logprob"].get<double>(), last);
      last = alt["logprob"].get<double>();
      EXPECT_EQ(alt["bytes"].size(), alt["token"].get<std::string>().size());
    }
  }
  // Off by default: no field.
  const Result off = run("generate -m " + model_ + " -p 'Name a fruit.' -n 2 --json");
  EXPECT_FALSE(parse_json_line(off.out).contains("logprobs"));
}

TEST_F(CliRealModel, RepeatPenaltyChangesGreedyDecoding) {
  const std::string p = "-p 'one one one one one one one one' -n 12 --json";
  const auto plain = parse_json_line(run("generate -m " + model_ + " " + p).out);
  const auto pen =
      parse_json_line(run("generate -m " + model_ + " " + p + " --repeat-penalty 1.3").out);
  ASSERT_TRUE(plain.contains("tokens") && pen.contains("tokens"));
  EXPECT_NE(plain["tokens"], pen["tokens"]);  // not the on-device argmax shortcut
}

// Two turns, the second referring to the first answer, against one fresh run of the whole
// conversation with the same split (context in phase 1, the turns in phase 2): the same tokens.
TEST_F(CliRealModel, InteractiveSecondTurnEqualsAFreshRunOfTheWholeConversation) {
  const std::string context =
      "Mira keeps her bicycle in the blue shed behind the bakery. The lock on the blue shed "
      "opens with the code 2741. Her brother Tom keeps his kayak in the garage.";
  const std::string q1 = "Where does Mira keep her bicycle?";
  const std::string q2 = "What code opens that place?";
  const std::string ctx = write_file("chat_ctx.txt", context);
  const std::string in = write_file("chat_in.txt", q1 + "\n\n" + q2 + "\n");
  // The exact fp32 cache: the chat keeps the first answer's KV as decode computed it, the fresh
  // run recomputes it in one prefill call, and those agree only to fp32 rounding; bf16 rows
  // (the default) would round some of those differences up to a bf16 step and part the answers
  // at a near tie, with no error in the conversation's bookkeeping, which is what this tests.
  const std::string flags = " -n 40 -b 16 --json --progress off --kv-type f32";
  const Result chat =
      run("generate -m " + model_ + " --interactive --context-file " + ctx + flags + " < " + in);
  ASSERT_EQ(chat.code, 0) << chat.out;
  const std::vector<nlohmann::json> turns = json_lines(chat.out);
  ASSERT_EQ(turns.size(), 2u) << chat.out;
  EXPECT_EQ(turns[0]["turn"], 1);
  EXPECT_EQ(turns[1]["turn"], 2);
  ASSERT_EQ(turns[0]["stop_reason"], "eos") << "the first answer should end by itself";
  EXPECT_GT(turns[0]["phase1_s"].get<double>(), 0.0);
  EXPECT_EQ(turns[1]["phase1_s"].get<double>(), 0.0);  // phase 1 ran once

  // The whole conversation rendered at once, cut where the first question starts.
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile(model_));
  const ChatTemplate tmpl = ChatTemplate::for_tokenizer(tok);
  const std::string marker = "\x01q\x01";
  const std::string opening = tmpl.render({{"user", context + "\n\n" + marker}}, true);
  const std::string phase1 = opening.substr(0, opening.find(marker));
  const std::string answer1 = tok.decode(turns[0]["tokens"].get<std::vector<int>>());
  const std::string whole =
      tmpl.render({{"user", context + "\n\n" + q1}, {"assistant", answer1}, {"user", q2}}, true);
  ASSERT_EQ(whole.compare(0, phase1.size(), phase1), 0);
  ASSERT_EQ(phase1.substr(phase1.size() - 2), "\n\n");
  // Without --chat, generate runs "CONTEXT\n\n" in phase 1 and the query after it.
  const std::string fresh_ctx = write_file("fresh_ctx.txt", phase1.substr(0, phase1.size() - 2));
  const std::string query = write_file("fresh_query.txt", whole.substr(phase1.size()));
  const std::string script = write_file(
      "fresh.sh", "q=$(cat " + query + "; printf x)\nexec " + std::string(STARATTN_BINARY) +
                      " generate -m " + model_ + " --context-file " + fresh_ctx +
                      " --query \"${q%x}\"" + flags + "\n");
  const Result fresh = run_script(script);
  ASSERT_EQ(fresh.code, 0) << fresh.out;
  const auto f = parse_json_line(fresh.out);
  EXPECT_EQ(f["context_tokens"], turns[0]["context_tokens"]);
  EXPECT_EQ(f["query_tokens"].get<int>(), turns[0]["query_tokens"].get<int>() +
                                              turns[0]["generated_tokens"].get<int>() +
                                              turns[1]["query_tokens"].get<int>());
  EXPECT_EQ(f["tokens"], turns[1]["tokens"])
      << "chat: " << turns[1]["text"] << "\nfresh: " << f["text"];
  EXPECT_FALSE(turns[1]["tokens"].empty());
}

TEST_F(CliRealModel, InteractiveEndsAtExitOrEndOfInput) {
  const std::string in = write_file("chat_exit.txt", "Say hi.\n/exit\nNot read.\n");
  const Result r = run("generate -m " + model_ + " -i -n 4 --progress off < " + in);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(count(r.out, "timing:"), 1) << r.out;  // one turn
  const std::string empty = write_file("chat_empty.txt", "");
  const Result e = run("generate -m " + model_ + " -i -n 4 --json < " + empty);
  EXPECT_EQ(e.code, 0) << e.out;
  EXPECT_TRUE(json_lines(e.out).empty()) << e.out;
}

TEST_F(CliRealModel, InteractiveConversationOutgrowingItsRoomIsAClearError) {
  const std::string ctx = write_file("grow_ctx.txt", "Mira keeps her bicycle in the blue shed.");
  const std::string in = write_file("grow_in.txt", "Where is the bicycle?\nAnd why there?\n");
  const std::string args = "generate -m " + model_ + " -i --context-file " + ctx + " -n 40 --json";
  // The context alone (35 tokens) leaves no room in 30 positions.
  expect_error(run(args + " --ctx-size 30 < " + in), "leaves no room");
  // The first turn fits (its answer is cut at the room left); the second does not.
  const Result r = run(args + " --ctx-size 60 < " + in);
  expect_error(r, "outgrown the --ctx-size of 60 tokens");
  const std::vector<nlohmann::json> turns = json_lines(r.out);
  ASSERT_EQ(turns.size(), 1u) << r.out;
  EXPECT_LT(turns[0]["conversation_tokens"].get<int>(), 60);
  expect_error(run(args + " --ctx-size 9000 < " + in), "--ctx-size must be in 0..8192");
}

}  // namespace
}  // namespace starattn
