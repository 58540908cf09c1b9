#include "app/common.h"

#include <omp.h>
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
#include "app/kv_report.h"
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
  cmd.add_option("-t,--threads", threads,
                 "CPU threads of each rank; 0 = OMP_NUM_THREADS if set, else this host's cores "
                 "shared out among the ranks on it (cores / ranks, at least 1; no more than the "
                 "cores a rank is bound to)")
      ->check(CLI::Range(0, max_threads()))
      ->capture_default_str();
  cmd.add_option("--device", device,
                 "cpu, cuda (one GPU per rank, by local rank) or auto (cuda when present)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
      ->capture_default_str();
}

void add_model_option(CLI::App& cmd, std::string& model, bool random_ok) {
  const std::string help =
      random_ok ? "Model: a GGUF file, a Hugging Face folder (config.json, *.safetensors, "
                  "tokenizer.json), or random:llama-3.1-8b (random weights, GPU only)"
                : "Model: a GGUF file or a Hugging Face folder (config.json, *.safetensors, "
                  "tokenizer.json)";
  model = default_model_path();
  cmd.add_option("-m,--model", model, help)->capture_default_str();
}

void add_chat_template_option(CLI::App& cmd, std::string& value, const std::string& help_prefix) {
  cmd.add_option("--chat-template", value,
                 help_prefix +
                     ": a built-in name (chatml, llama2, llama3, mistral) or a file with a Jinja "
                     "template");
}

namespace {

// A flag whose values are the names of an enum's table.
template <typename E, size_t N>
void add_enum_option(CLI::App& cmd, const std::string& flags, std::string& value,
                     const EnumName<E> (&names)[N], const std::string& help) {
  cmd.add_option(flags, value, help)
      ->check(CLI::IsMember(enum_names(names)))
      ->capture_default_str();
}

}  // namespace

void ContextFlags::apply(RunConfig& rc) const {
  rc.attn = parse_attn_mode(attn);
  rc.anchor = parse_anchor_mode(anchor_mode);
  rc.anchor_source = parse_anchor_source(anchor_source);
  rc.anchor_seed = anchor_seed;
  rc.chunk = chunk;
  rc.kv_type = parse_kv_type(kv_type.c_str());
}

void add_context_options(CLI::App& cmd, ContextFlags& f, RunConfig* sizes,
                         const std::string& chunk_note) {
  add_enum_option(cmd, "--attn", f.attn, kAttnModeNames,
                  "Context attention: star (Star Attention), ring (exact, context-parallel) or "
                  "dense (exact, on rank 0 alone)");
  if (sizes != nullptr) {
    cmd.add_option("-b,--block-size", sizes->block_size,
                   "Star block size B in tokens (>= 1); -1 = context tokens / ranks, rounded up")
        ->capture_default_str();
    cmd.add_option("-a,--anchor-size", sizes->anchor_size,
                   "Star anchor size A in tokens (0 <= A <= B); -1 = B; 0 = no anchor")
        ->capture_default_str();
  }
  add_enum_option(cmd, "--anchor-mode", f.anchor_mode, kAnchorModeNames,
                  "Where a rank gets the anchor's KV (all give the same results): recompute (per "
                  "block, as the paper), shared (once per rank), broadcast (sent by rank 0 layer "
                  "by layer)");
  add_enum_option(cmd, "--anchor-source", f.anchor_source, kAnchorSourceNames,
                  "What the anchor holds (an experiment; positions stay 0..A-1): first (the "
                  "context's first A tokens), previous (each block's previous block; needs "
                  "--anchor-mode recompute), random, shuffled (the first A in a random order) or "
                  "constant (the first token repeated)");
  cmd.add_option("--anchor-seed", f.anchor_seed, "Seed of the random and shuffled anchors")
      ->check(non_negative_integer())
      ->capture_default_str();
  cmd.add_option("--chunk", f.chunk,
                 "Tokens per forward call in long prefills; 0 = the device's default (CPU 512, "
                 "GPU 8192)" +
                     (chunk_note.empty() ? "" : "; " + chunk_note))
      ->capture_default_str();
  add_enum_option(cmd, "--kv-type", f.kv_type, kKvTypeNames, kKvTypeHelp);
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

int set_threads(int n, const Comm& comm) {
  if (n <= 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    if (env != nullptr && *env != '\0') {
      cpu::set_threads(0);  // the runtime has read it already
      return omp_get_max_threads();
    }
    n = cpu::default_threads(cpu::host_cpus(), cpu::allowed_cpus(), comm.local_size());
  }
  cpu::set_threads(n);
  return n;
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
  SA_CHECK(kv_type != KvType::Int8 || !gpu,
           "--kv-type int8 is the CPU's for now; a GPU keeps its KV in bf16 or fp8");
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

ProgressStyle progress_style(const std::string& mode, int ranks) {
  const bool tty = isatty(STDERR_FILENO) != 0;
  if (mode == "off") return ProgressStyle::Off;
  if (tty) return ProgressStyle::Redraw;
  return mode == "on" || ranks > 1 ? ProgressStyle::Lines : ProgressStyle::Off;
}

void print_loading_line(const std::string& model, int ranks, int threads,
                        const std::string& device) {
  std::fprintf(stderr, "loading %s (%d rank%s, %d CPU thread%s each, %s)\n", model.c_str(), ranks,
               ranks == 1 ? "" : "s", threads, threads == 1 ? "" : "s", device.c_str());
  std::fflush(stderr);
}

void ProgressBar::update(const Progress& p) {
  if (style_ == ProgressStyle::Off || p.tokens_total <= 0) return;
  const double t = now_seconds();
  if (start_ < 0) start_ = last_line_ = t;  // the step's first frame: the clock starts
  last_ = p;
  const std::string frame = progress_frame(label_, p, t - start_, ranks_);
  if (style_ == ProgressStyle::Redraw) {
    std::fprintf(stderr, "\r%s\033[K", frame.c_str());
    drawn_ = true;
  } else if (t - last_line_ >= 10.0) {
    // A log gets a line every ten seconds, so a long run can be followed with tail -f.
    std::fprintf(stderr, "%s\n", frame.c_str());
    last_line_ = t;
  }
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
  drawn_ = false;
  if (style_ != ProgressStyle::Off && last_.work_done > 0 &&
      last_.work_done < 0.999 * last_.work_total) {
    const std::optional<double> eta =
        eta_seconds(now_seconds() - start_, last_.work_done, last_.work_total);
    std::fprintf(stderr, "%s: rank 0 is done; the slowest rank needs about %s more\n",
                 label_.c_str(), short_duration(eta.value_or(0)).c_str());
  }
  std::fflush(stderr);
}

}  // namespace starattn::app
