// Memory of `starattn generate` on the default model with its Q4_1 blocks kept (the default
// --weights-type native): peak resident memory at most 1.5 times the file plus the KV cache (bf16,
// the default).
// Weights are read from the mapped file (their pages count once, as the file's), so what is
// left for the tokenizer, the libraries, activations and scratch is half the file. Skipped when
// scripts/setup.sh has not fetched the model.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace starattn {
namespace {

namespace fs = std::filesystem;

struct ChildRun {
  int status = -1;
  long max_rss_kib = 0;  // of the process and what it waited for
  std::string out;
};

// Runs argv with stdout to a file; the peak memory comes from wait4 for this child alone (the
// test binary's other children do not count).
ChildRun run(const std::vector<std::string>& args, const std::string& out_path) {
  ChildRun r;
  const pid_t pid = fork();
  if (pid == 0) {
    std::FILE* f = std::freopen(out_path.c_str(), "w", stdout);
    if (!f) _exit(127);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) return r;
  r.status = status;
  r.max_rss_kib = ru.ru_maxrss;
  std::ifstream in(out_path);
  std::stringstream s;
  s << in.rdbuf();
  r.out = s.str();
  return r;
}

TEST(Memory, GeneratePeakIsAboutTheFileSizePlusKv) {
  const std::string model = test::real_model_path();
  if (!fs::exists(model)) GTEST_SKIP() << "no " << model << " (run scripts/setup.sh)";
  // A quarter of the README's document (about 1000 tokens) keeps the test to seconds.
  std::ifstream doc(std::string(STARATTN_SOURCE_DIR) + "/examples/harbor_report.txt");
  std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
  text.resize(std::min<size_t>(text.size(), 4500));
  const fs::path dir = fs::temp_directory_path() / "starattn_rss_test";
  fs::create_directories(dir);
  const std::string ctx = (dir / "context.txt").string();
  std::ofstream(ctx) << text;
  const int n_predict = 4;
  const ChildRun r = run({"timeout", "300", STARATTN_BINARY, "generate", "-m", model, "--chat",
                          "--context-file", ctx, "--query", "Who wrote the report?", "-n",
                          std::to_string(n_predict), "--json", "--progress", "off"},
                         (dir / "out.json").string());
  ASSERT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["weights_type"], "native");
  // The default cache is bf16: SmolLM2's 30 layers of K and V of 3 heads x 64, 23040 bytes a token.
  EXPECT_EQ(j["kv_type"], "bf16");
  EXPECT_EQ(j["kv_bytes_per_token"].get<double>(), 30.0 * 2 * 192 * 2);
  const double rows =
      j["context_tokens"].get<double>() + j["query_tokens"].get<double>() + n_predict;
  const double kv = j["kv_bytes_per_token"].get<double>() * rows;
  const double file = static_cast<double>(fs::file_size(model));
  const double peak = r.max_rss_kib * 1024.0;
  // What the program holds before any model: its libraries as loaded. A CUDA build maps and
  // relocates the CUDA runtime, cuBLAS and NCCL at start-up (about 225 MiB, against 13 for a
  // CPU-only build), whichever device it then runs on.
  const ChildRun bare = run({STARATTN_BINARY, "--version"}, (dir / "version.txt").string());
  ASSERT_TRUE(WIFEXITED(bare.status) && WEXITSTATUS(bare.status) == 0) << bare.out;
  const double base = bare.max_rss_kib * 1024.0;
  RecordProperty("peak_mib", std::to_string(peak / (1 << 20)));
  RecordProperty("kv_mib", std::to_string(kv / (1 << 20)));
  EXPECT_LE(peak, base + 1.5 * file + kv)
      << "peak " << peak / (1 << 20) << " MiB, program alone " << base / (1 << 20) << " MiB, file "
      << file / (1 << 20) << " MiB, KV " << kv / (1 << 20) << " MiB";
  EXPECT_GT(j["weight_bytes"].get<double>(), 0.8 * file);
  EXPECT_LT(j["weight_bytes"].get<double>(), file);
}

}  // namespace
}  // namespace starattn
