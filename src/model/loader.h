// One entry point for models on disk: a GGUF file (llama.cpp) or a Hugging Face folder
// (config.json + safetensors). Both give the same ModelConfig and the same Weights in the Hugging
// Face layout (see weights.h), so the forward pass never knows where a model came from.
//
// Supported: HF LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM; GGUF general.architecture
// "llama" (Mistral GGUFs say "llama" too) and "qwen2". How matrices are stored is the caller's
// choice (WeightsType): fp32, bf16, or a GGUF's quantised blocks read in place from the mapped
// file. Nothing is printed; every problem throws starattn::Error with a one-line message.
//
// Conventions a reader of the code must know:
// - llama.cpp's converter permutes llama-arch Q/K rows (and biases) within each head for its
//   interleaved RoPE; the loader undoes it (HF row j*(hd/2)+i == GGUF row 2i+j) so that one
//   half-split ("neox") RoPE serves every source. qwen2 GGUFs are not permuted.
// - Llama-3.1-style RoPE scaling: HF rope_scaling / rope_parameters {rope_type: "llama3", ...}.
//   A GGUF can describe it with {arch}.rope.scaling.type = "llama3" plus .factor,
//   .original_context_length, .low_freq_factor, .high_freq_factor (our extension of llama.cpp's
//   keys), or, as llama.cpp's converter does, with only a `rope_freqs.weight` tensor of per-
//   frequency divisors. Then the loader finds the llama3 parameters that reproduce those divisors
//   (Llama 3.x always uses low_freq_factor 1 and high_freq_factor 4) and fails if none do.
// - Sliding window: starattn computes full causal attention only. transformers' Mistral with
//   config.json sliding_window W (Mistral 7B v0.1: 4096; v0.2+, NeMo: null), and Qwen2 with
//   use_sliding_window, let position p see keys p-W+1..p only; below W that is full attention.
//   So such a config caps max_positions at W, and generate/eval/bench refuse longer inputs
//   instead of computing something transformers does not (forward_test.cpp, MistralWindow). A
//   GGUF has no window: llama.cpp's converter writes Mistral as "llama" with no window key, and
//   transformers reads that file without a window (tools/make_tiny_models.py checks it); we too
//   attend fully up to its context_length.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace starattn {

class GgufFile;

struct Model {
  ModelConfig config;
  Weights weights;
};

// A directory is read as a Hugging Face folder, a file as GGUF. F32 (the default) expands every
// matrix to fp32: the reference path. A Hugging Face folder's matrices are fp32 under Native.
Model load_model(const std::string& path, WeightsType weights = WeightsType::F32);

// Parses a Hugging Face config.json (already read as JSON); the result is validated.
ModelConfig config_from_hf(const nlohmann::json& config);
// Reads the model config from GGUF metadata and the tensor table (vocab size, tied output, biases,
// rope_freqs); the result is validated.
ModelConfig config_from_gguf(const GgufFile& file);

// The llama3 RoPE divisor of each frequency i in [0, head_dim/2): the rotation frequency
// theta^(-2i/head_dim) is divided by it. All ones without llama3 scaling.
std::vector<double> llama3_rope_divisors(const ModelConfig& config);

}  // namespace starattn
