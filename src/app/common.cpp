#include "app/common.h"

#include <unistd.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#ifdef STARATTN_HAVE_CUDA
#include "backend/cuda/cuda_factory.h"
#endif
#include "backend/cpu/threads.h"
#include "model/gguf.h"
#include "starattn/error.h"

namespace starattn::app {

namespace fs = std::filesystem;

namespace {

// What is at path, or file_type::not_found. Every other failure (no permission to search a
// folder, a loop of symbolic links) is an Error naming it: the throwing std::filesystem calls
// would raise filesystem_error instead, and from default_model_path that escapes before main
// can handle anything.
fs::file_status status_of(const std::string& path, const std::string& what) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  SA_CHECK(!ec || st.type() == fs::file_type::not_found, "cannot access ", what, " ", path, ": ",
           ec.message());
  return st;
}

}  // namespace

std::string default_model_path() {
  // Runs while the flags are declared, before any error handling: nothing here may throw, and
  // an unreadable candidate is simply not the default.
  const std::string rel = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::error_code ec;
  if (fs::exists(rel, ec)) return rel;
  // Also look next to the build folder, so `build/starattn` works from anywhere in the checkout.
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
         dir = dir.parent_path()) {
      if (fs::exists(dir / rel, ec)) return (dir / rel).string();
    }
  }
  return rel;
}

namespace {

Tokenizer load_tokenizer(const std::string& path) {
  const fs::file_status st = status_of(path, "tokenizer");
  SA_CHECK(fs::exists(st), "tokenizer not found: ", path);
  if (fs::is_directory(st)) {
    const fs::path dir(path);
    const fs::path config = dir / "tokenizer_config.json";
    return Tokenizer::from_hf_json(
        (dir / "tokenizer.json").string(),
        fs::exists(status_of(config.string(), "tokenizer config")) ? config.string() : "");
  }
  if (fs::path(path).extension() == ".json") return Tokenizer::from_hf_json(path);
  return Tokenizer::from_gguf(GgufFile(path));
}

}  // namespace

CLI::Option* add_weights_type_option(CLI::App& cmd, std::string& value) {
  return cmd
      .add_option("--weights-type", value,
                  "How weight matrices are held: native (a GGUF's quantised blocks as they are, "
                  "read from the mapped file), f32 (expanded to fp32: the reference) or bf16; "
                  "random models: bf16, q4_k or q8_0")
      ->check(CLI::IsMember({"native", "f32", "bf16", "q4_k", "q8_0"}))
      ->capture_default_str();
}

void add_threads_and_device_options(CLI::App& cmd, int& threads, std::string& device) {
  cmd.add_option("-t,--threads", threads, "CPU threads; 0 = all cores")
      ->check(CLI::Range(0, max_threads()))
      ->capture_default_str();
  cmd.add_option("--device", device,
                 "cpu, cuda (one GPU per rank, by local rank) or auto (cuda when present)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
      ->capture_default_str();
}

std::unique_ptr<LoadedModel> load_model_and_tokenizer(const std::string& path,
                                                      const std::string& tokenizer_path,
                                                      const std::string& weights_type) {
  auto m = std::make_unique<LoadedModel>();
  m->weights_type = weights_type;
  const std::string random_prefix = "random:";
  if (path.rfind(random_prefix, 0) == 0) {
    const std::string shape = path.substr(random_prefix.size());
    SA_CHECK(shape == "llama-3.1-8b", "unknown random model '", shape,
             "' (supported: random:llama-3.1-8b)");
    // A random model has no file format of its own: native means bf16.
    if (weights_type == "native" || weights_type == "f32") m->weights_type = "bf16";
#ifdef STARATTN_HAVE_CUDA
    m->random = true;
    m->model.config = llama31_8b_config();
    // A random model has no tokenizer of its own: --tokenizer, else the default model's if present.
    const std::string tok = !tokenizer_path.empty() ? tokenizer_path : default_model_path();
    std::error_code ec;
    if (!tokenizer_path.empty() || fs::exists(tok, ec)) m->tokenizer = load_tokenizer(tok);
    return m;
#else
    fail("random models need the CUDA backend, and this build has none");
#endif
  }
  SA_CHECK(fs::exists(status_of(path, "model")), "model not found: ", path,
           " (run scripts/setup.sh to fetch the default model, or pass -m FILE.gguf|HF_FOLDER)");
  SA_CHECK(weights_type != "q4_k" && weights_type != "q8_0", "--weights-type ", weights_type,
           " is for random models; a model file keeps its own types with native");
  m->model = load_model(path, parse_weights_type(weights_type));
  m->tokenizer = load_tokenizer(tokenizer_path.empty() ? path : tokenizer_path);
  SA_CHECK(m->tokenizer.vocab_size() <= m->model.config.vocab_size, "tokenizer has ",
           m->tokenizer.vocab_size(), " tokens but the model's embedding has only ",
           m->model.config.vocab_size, " rows");
  return m;
}

void set_threads(int n) {
  cpu::set_threads(n);
}

int max_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 256;  // 0: unknown; then only absurd counts are refused
}

CLI::Validator non_negative_integer() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        const bool ok =
            !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
        return ok ? "" : "must be a non-negative integer, got " + value;
      },
      "UINT");
}

void check_device(const std::string& device, KvType kv_type) {
  SA_CHECK(device == "cpu" || device == "cuda" || device == "auto", "unknown device '", device,
           "' (expected cpu, cuda or auto)");
#ifdef STARATTN_HAVE_CUDA
  SA_CHECK(device != "cuda" || cuda_device_count() > 0,
           "--device cuda: no CUDA GPU is visible to this process");
  const bool gpu = device == "cuda" || (device == "auto" && cuda_device_count() > 0);
#else
  SA_CHECK(device != "cuda", "--device cuda: this build has no CUDA backend (nvcc was not found)");
  const bool gpu = false;
#endif
  SA_CHECK(kv_type != KvType::F32 || !gpu,
           "--kv-type f32 is the CPU's exact fp32 cache; a GPU keeps its KV in bf16 or fp8");
}

std::unique_ptr<Backend> make_backend(const std::string& device, const LoadedModel& m,
                                      [[maybe_unused]] const Comm& comm) {
  check_device(device);
#ifdef STARATTN_HAVE_CUDA
  const int gpus = cuda_device_count();
  if (device == "cuda" || (device == "auto" && gpus > 0)) {
    const int gpu = local_device_index(comm, gpus);
    if (m.random)
      return make_cuda_random_backend(m.model.config, gpu, /*seed=*/1234, m.weights_type);
    return make_cuda_backend(m.model, gpu);
  }
#else
  (void)comm;
  SA_CHECK(device != "cuda", "--device cuda: this build has no CUDA backend (nvcc was not found)");
#endif
  SA_CHECK(!m.random, "random models run on a GPU only (--device cuda)");
  return std::make_unique<CpuBackend>(m.model.config, m.model.weights);
}

std::unique_ptr<TensorComm> connect_ranks(Comm& comm, Backend& backend) {
  std::string note;
  std::unique_ptr<TensorComm> t = make_tensor_comm(comm, backend, &note);
  if (!note.empty() && comm.rank() == 0) std::fprintf(stderr, "note: %s\n", note.c_str());
  return t;
}

std::string describe_weights(const Backend& backend) {
  const auto mib = [](size_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
    return std::string(buf);
  };
  return mib(backend.weight_bytes()) + " (" + backend.weight_storage() + ")";
}

bool token_has_text(const LoadedModel& m, int id) {
  return id < m.tokenizer.vocab_size();
}

double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

void ProgressBar::update(int64_t done, int64_t total) {
  if (!enabled_ || total <= 0) return;
  const double t = now_seconds();
  if (start_ < 0) start_ = t;
  const double frac = static_cast<double>(done) / static_cast<double>(total);
  const int width = 30, filled = static_cast<int>(frac * width);
  const double elapsed = t - start_;
  const double eta = frac > 0 ? elapsed * (1.0 - frac) / frac : 0.0;
  std::string bar(filled, '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "\r%s [%s] %lld/%lld tokens, %.0f tok/s, ETA %.0fs ", label_.c_str(),
               bar.c_str(), static_cast<long long>(done), static_cast<long long>(total),
               elapsed > 0 ? done / elapsed : 0.0, eta);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
  drawn_ = false;
}

}  // namespace starattn::app
