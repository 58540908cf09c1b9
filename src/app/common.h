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

// Sets OpenMP and OpenBLAS threads; 0 keeps the defaults (all cores).
void set_threads(int n);
// The most -t accepts: this machine's CPUs. More threads never help the compute, and thousands
// end the process inside OpenBLAS or the OpenMP runtime, with their message instead of ours.
int max_threads();

// A one-line progress bar on stderr, redrawn in place; silent when disabled.
class ProgressBar {
 public:
  ProgressBar(std::string label, bool enabled) : label_(std::move(label)), enabled_(enabled) {}
  void update(int64_t done, int64_t total);
  void finish();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  double start_ = -1.0;
};

double now_seconds();

}  // namespace starattn::app
