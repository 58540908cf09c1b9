// Pieces shared by the CLI subcommands: default paths, loading a model with its tokenizer,
// thread settings, and the prefill progress bar.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "model/loader.h"
#include "tokenizer/tokenizer.h"

namespace starattn::app {

// Where scripts/setup.sh puts the default model, relative to the working directory or the binary.
std::string default_model_path();

struct LoadedModel {
  Model model;
  Tokenizer tokenizer;
};
// A GGUF file, or a Hugging Face folder (config.json, *.safetensors, tokenizer.json).
std::unique_ptr<LoadedModel> load_model_and_tokenizer(const std::string& path);

// The compute backend for a loaded model. Only "cpu" exists until the CUDA backend lands.
std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model);

// Sets OpenMP and OpenBLAS threads; 0 keeps the defaults (all cores).
void set_threads(int n);

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
