// Pieces shared by the CLI subcommands: default paths, loading a model with its tokenizer,
// thread settings, and the prefill progress bar.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "comm/comm.h"
#include "comm/tensor_comm.h"
#include "engine/progress.h"
#include "engine/run_config.h"
#include "model/loader.h"
#include "tokenizer/tokenizer.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace starattn::app {

// Where scripts/setup.sh puts the default model, relative to the working directory or the binary.
std::string default_model_path();

struct LoadedModel {
  Model model;          // weights empty for a random model
  Tokenizer tokenizer;  // a random model borrows the default model's, if it is there
  bool random = false;  // "random:llama-3.1-8b": the shape only; weights are made on the GPU
  std::string weights_type = "native";  // the --weights-type the model was loaded with
};

// --weights-type, on every subcommand that loads a model: f32 (every matrix expanded to fp32:
// the reference), bf16, or native (the default: a GGUF's quantised blocks kept as they are, read
// from the mapped file); random models also take q4_k and q8_0 (random blocks of that type).
CLI::Option* add_weights_type_option(CLI::App& cmd, std::string& value);
// -t/--threads and --device, as every subcommand takes them.
void add_threads_and_device_options(CLI::App& cmd, int& threads, std::string& device);
// -m/--model, defaulting to default_model_path(); random_ok: the help offers random:llama-3.1-8b
// (generate and bench).
void add_model_option(CLI::App& cmd, std::string& model, bool random_ok);
// --chat-template, as generate, eval and serve take it.
void add_chat_template_option(CLI::App& cmd, std::string& value, const std::string& help_prefix);

// How phase 1 spreads the context over the ranks, as the flags name it: generate, bench, eval
// and serve declare these through add_context_options, so that names, defaults and checks are
// the same in all four. The block and anchor sizes are apart: eval gives them relative to the
// target length (add_block_and_anchor_options is the others' form).
struct ContextFlags {
  std::string attn = "star";
  std::string anchor_mode = "shared";
  std::string anchor_source = "first";
  uint64_t anchor_seed = 0;
  int chunk = 0;
  std::string kv_type = "bf16";
  // Sets the fields of rc that these flags name (attn, anchor, anchor_source, anchor_seed, chunk,
  // kv_type); throws Error for a name the enums do not know.
  void apply(RunConfig& rc) const;
};
// --attn, then -b/--block-size and -a/--anchor-size in tokens into *sizes (-1: the default; when
// sizes is not null), --anchor-mode, --anchor-source, --anchor-seed, --chunk and --kv-type.
// chunk_note, when not empty, is added to --chunk's help.
void add_context_options(CLI::App& cmd, ContextFlags& flags, RunConfig* sizes,
                         const std::string& chunk_note = "");

// A GGUF file, a Hugging Face folder (config.json, *.safetensors, tokenizer.json), or
// "random:llama-3.1-8b" (speed runs on a GPU: random weights of the Llama-3.1-8B shape).
// tokenizer_path, when not empty, replaces the model's tokenizer: a GGUF file or a tokenizer.json.
// weights_type: as --weights-type.
std::unique_ptr<LoadedModel> load_model_and_tokenizer(const std::string& path,
                                                      const std::string& tokenizer_path = "",
                                                      const std::string& weights_type = "native");

// "93.8 MiB (Q4_1 x210, Q8_0 x1; 93.8 MiB read in place from the file)": the weight bytes the
// backend holds and how, for messages.
std::string describe_weights(const Backend& backend);

// The compute backend: "cpu", "cuda" (the GPU of local_device_index), or "auto" (cuda when this
// build has it and a GPU is present, else cpu).
std::unique_ptr<Backend> make_backend(const std::string& device, const LoadedModel& model,
                                      const Comm& comm);

// A check for unsigned flags (--seed): CLI11 would otherwise read "-1" as 2^64 - 1.
CLI::Validator non_negative_integer();

// Checks --device before anything is loaded: one of cpu, cuda, auto, and cuda only in a build
// with CUDA and with a GPU visible; and that the device keeps KV of that type (f32: the CPU only).
void check_device(const std::string& device, KvType kv_type = KvType::Bf16);

// make_tensor_comm, with rank 0 printing its note (if any) to stderr.
std::unique_ptr<TensorComm> connect_ranks(Comm& comm, Backend& backend);

// Text of a generated token; ids beyond the tokenizer (a random model) print as "<id>".
bool token_has_text(const LoadedModel& m, int id);

// Sets this rank's CPU threads (OpenMP; OpenBLAS runs single-threaded inside them) to n, or when
// n is 0 to OMP_NUM_THREADS if set, else to the host's CPUs shared out among the ranks on it
// (cpu::default_threads). Returns the count chosen.
int set_threads(int n, const Comm& comm);
// The most -t accepts: this machine's CPUs. More threads never help the compute, and thousands
// end the process inside OpenBLAS or the OpenMP runtime, with their message instead of ours.
int max_threads();

// How progress is shown on stderr: not at all, one line redrawn in place (a terminal), or a line
// every so often (a pipe or a file: a log stays readable).
enum class ProgressStyle { Off, Redraw, Lines };
// --progress: "off"; "on" (Redraw on a terminal, else Lines); "auto" (Redraw on a terminal; Lines
// under several ranks, because mpirun gives the ranks a pipe for stderr even when its own is a
// terminal; else off).
ProgressStyle progress_style(const std::string& mode, int ranks);

// "loading MODEL (2 ranks, 1 thread each, cpu)": rank 0's line before a slow load, when progress
// is shown.
void print_loading_line(const std::string& model, int ranks, int threads,
                        const std::string& device);

// The progress of one step on rank 0's stderr (progress_frame in engine/progress.h).
class ProgressBar {
 public:
  ProgressBar(std::string label, ProgressStyle style, int ranks)
      : label_(std::move(label)), style_(style), ranks_(ranks) {}
  void update(const Progress& p);
  // Clears a redrawn bar. When this rank finished before the slowest one, says (on a line of its
  // own) about how long that one still needs: the job waits for it.
  void finish();

 private:
  std::string label_;
  ProgressStyle style_;
  int ranks_;
  bool drawn_ = false;
  double start_ = -1.0, last_line_ = -1.0;
  Progress last_;
};

double now_seconds();

}  // namespace starattn::app
