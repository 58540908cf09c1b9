#include "app/common.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/threads.h"
#include "model/gguf.h"
#include "starattn/error.h"

namespace starattn::app {

namespace fs = std::filesystem;

std::string default_model_path() {
  const std::string rel = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (fs::exists(rel)) return rel;
  // Also look next to the build folder, so `build/starattn` works from anywhere in the checkout.
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
         dir = dir.parent_path()) {
      if (fs::exists(dir / rel)) return (dir / rel).string();
    }
  }
  return rel;
}

std::unique_ptr<LoadedModel> load_model_and_tokenizer(const std::string& path) {
  SA_CHECK(fs::exists(path), "model not found: ", path,
           " (run scripts/setup.sh to fetch the default model, or pass -m FILE.gguf|HF_FOLDER)");
  auto m = std::make_unique<LoadedModel>();
  m->model = load_model(path);
  if (fs::is_directory(path)) {
    const fs::path dir(path);
    const fs::path config = dir / "tokenizer_config.json";
    m->tokenizer = Tokenizer::from_hf_json((dir / "tokenizer.json").string(),
                                           fs::exists(config) ? config.string() : "");
  } else {
    GgufFile f(path);
    m->tokenizer = Tokenizer::from_gguf(f);
  }
  SA_CHECK(m->tokenizer.vocab_size() <= m->model.config.vocab_size, "tokenizer has ",
           m->tokenizer.vocab_size(), " tokens but the model's embedding has only ",
           m->model.config.vocab_size, " rows");
  return m;
}

void set_threads(int n) {
  cpu::set_threads(n);
}

std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model) {
  SA_CHECK(device == "cpu", "unknown device '", device, "' (this build supports: cpu)");
  return std::make_unique<CpuBackend>(model.config, model.weights);
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
