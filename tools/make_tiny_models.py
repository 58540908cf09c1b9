#!/usr/bin/env python3
"""Makes tiny random Llama/Mistral/Qwen2 models and their reference logits for starattn's tests.

Run:  /work/venv/bin/python tools/make_tiny_models.py [--out tests/fixtures/tiny] [--no-check]
                                                     [--only NAME...]
Deterministic (fixed seeds): rerunning rewrites identical weights and logits on the same
torch version. The checks read GGUFs with transformers, which needs the accelerate package.

Models (random weights, odd sizes; each one stands for a family of real checkpoints):
  llama_gqa    Llama, 2 layers, d 72, 6 q / 2 kv heads (head_dim 12), ffn 100, vocab 131, tied
               embeddings; HF folder SHARDED into 2 files (model.safetensors.index.json).
  qwen2_bias   Qwen2, 2 layers, d 64, 4 q / 2 kv heads (head_dim 16), ffn 40, vocab 127, untied,
               random nonzero q/k/v biases.
  llama3_rope  Llama 3.1 style: 2 layers, d 32, 8 q / 2 kv heads with explicit head_dim 16 (q_dim
               128 != d), ffn 32, vocab 89, untied, rope_theta 500000, rope_scaling llama3 (factor
               8, low 1, high 4, original 64), max_position_embeddings 512.
  llama32_tied Llama 3.2 style: 2 layers, d 32, 2 q / 1 kv heads, head_dim 16, ffn 32, vocab 97,
               TIED, rope_theta 500000, llama3 scaling with Llama 3.2's factor 32 (low 1, high 4)
               and its 8192 / 131072 context scaled down 128x to original 64 / max 1024 (so that
               the scaling changes the logits of 29 tokens). Safetensors in BF16, as Meta ships
               Llama 3.2. Also model-q8_0.gguf (llama.cpp's MOSTLY_Q8_0: 2-D tensors Q8_0, 1-D F32).
  mistral_swa  Mistral v0.1/v0.3/NeMo style: MistralForCausalLM, 2 layers, d 24, 2 q / 1 kv heads
               with explicit head_dim 8 (q_dim 16 < d, as NeMo), ffn 32, vocab 83, untied,
               rope_theta 1e6, sliding_window 16 < the 29 test tokens.
  llama2_mha   Llama 2 style: 2 layers, d 16, 2 heads, NO GQA (kv heads = heads), head_dim 8, ffn
               40, vocab 320 (a byte-fallback SentencePiece layout: 3 specials + 256 bytes + 61
               pieces), untied, rope_theta 10000, max 4096. config.json written as the Hub's
               Llama 2 configs are (no num_key_value_heads, head_dim or rope_theta: defaults);
               safetensors in F16 as Meta ships Llama 2; the GGUF holds only the keys llama.cpp's
               converter writes for such a config (no head_count_kv, rope.freq_base, key_length).
  qwen25_tied  Qwen2.5 style (0.5B/1.5B/3B): Qwen2, 2 layers, d 24, 3 q / 1 kv heads (head_dim 8),
               ffn 32, vocab 103, TIED, q/k/v biases, rope_theta 1e6, max 512; config.json says
               sliding_window 16 with use_sliding_window false, as Qwen2.5's configs do (the window
               is off: transformers and starattn attend fully).

Fixture format, one folder per model under tests/fixtures/tiny/<name>/:
  config.json, model.safetensors | model-0000N-of-00002.safetensors + model.safetensors.index.json
               the Hugging Face folder, as transformers' save_pretrained writes it (F32 unless said)
  model-f32.gguf   the same weights as llama.cpp's convert_hf_to_gguf.py would write them (F32):
                   llama.cpp tensor names and metadata keys, llama-arch Q/K rows permuted (Mistral
                   is "llama" there too, and the converter writes no sliding window for it), and
                   for llama3 scaling the `rope_freqs.weight` divisors instead of scaling keys
  model-f16.gguf   llama_gqa only: 2-D tensors F16, 1-D tensors F32 (llama.cpp's MOSTLY_F16)
  model-q8_0.gguf  llama32_tied only: 2-D tensors Q8_0, 1-D tensors F32 (llama.cpp's MOSTLY_Q8_0)
  ids.json         JSON list of 29 token ids (the input, one sequence, position 0 first)
  logits.bin       transformers' fp32 logits for every position (eager attention, no cache):
                   raw little-endian float32, row-major [29, vocab], no header. BF16/F16
                   safetensors: computed in fp32 from the rounded weights the file holds.
  logits-nowindow.bin  mistral_swa only: the same model with sliding_window None (full causal
                   attention), which is also what transformers computes from the GGUF
  logits-q8_0.bin  llama32_tied only: transformers' fp32 logits from model-q8_0.gguf (its own
                   dequantisation), so that the Q8_0 path has an exact oracle

  real_rope/llama3.json  no weights: the Hub config.json of Llama 3.1 8B, 3.2 1B and 3.2 3B, the
                   GGUF metadata keys and rope_freqs.weight llama.cpp's converter writes for them,
                   and transformers' RoPE inv_freq, so that the real RoPE numbers (head_dim 64/128,
                   original 8192) are checked through both loaders.

Weights: embeddings and lm_head N(0, 0.3^2); linear layers N(0, (1.5/sqrt(fan_in))^2) (0.15 to
0.38 here) so that attention is neither flat nor one-hot; RMSNorm weights 1 + N(0, 0.2^2);
biases N(0, 0.5^2).

Unless --no-check, each GGUF is loaded back with transformers (from_pretrained(gguf_file=...)) and
must reproduce the logits: that proves the permutation and metadata are what llama.cpp-compatible
readers expect. transformers' GGUF reader ignores rope_freqs.weight, so for llama3 scaling the check
also reports the (expected) mismatch without scaling, then patches rope_parameters into the
GGUF-derived config and requires a match. transformers' reader also skips the Q/K un-permutation
when head_count_kv is absent (llama.cpp defaults it to head_count), so llama2_mha's GGUF is checked
through a copy that has that one key. For mistral_swa the check also requires that the window
changes exactly the rows at and beyond position 16, and for llama32_tied that the llama3 scaling
changes the logits.

--only NAME... regenerates only the named models (the others keep their files).
"""
import argparse
import copy
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import (AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM,
                          MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
import gguf
from gguf import quants

N_TOKENS = 29
MODELS = ("llama_gqa", "qwen2_bias", "llama3_rope", "llama32_tied", "mistral_swa", "llama2_mha",
          "qwen25_tied")
CLASSES = {"llama": LlamaForCausalLM, "mistral": MistralForCausalLM, "qwen2": Qwen2ForCausalLM}
# The dtype each HF folder is saved in (the rest: F32), as the real checkpoints ship.
ST_DTYPE = {"llama32_tied": torch.bfloat16, "llama2_mha": torch.float16}


def make_config(name):
    common = dict(num_hidden_layers=2, hidden_act="silu", attention_dropout=0.0,
                  bos_token_id=1, eos_token_id=2)
    if name == "llama_gqa":
        return LlamaConfig(hidden_size=72, num_attention_heads=6, num_key_value_heads=2,
                           intermediate_size=100, vocab_size=131, tie_word_embeddings=True,
                           max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0,
                           **common)
    if name == "qwen2_bias":
        return Qwen2Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                           intermediate_size=40, vocab_size=127, tie_word_embeddings=False,
                           max_position_embeddings=384, rms_norm_eps=1e-6, rope_theta=1e6,
                           use_sliding_window=False, **common)
    if name == "llama3_rope":
        scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
        return LlamaConfig(hidden_size=32, num_attention_heads=8, num_key_value_heads=2,
                           head_dim=16, intermediate_size=32, vocab_size=89,
                           tie_word_embeddings=False, max_position_embeddings=512,
                           rms_norm_eps=1e-5, rope_theta=500000.0, rope_scaling=scaling,
                           **common)
    if name == "llama32_tied":
        scaling = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
        return LlamaConfig(hidden_size=32, num_attention_heads=2, num_key_value_heads=1,
                           head_dim=16, intermediate_size=32, vocab_size=97,
                           tie_word_embeddings=True, max_position_embeddings=1024,
                           rms_norm_eps=1e-5, rope_theta=500000.0, rope_scaling=scaling,
                           **common)
    if name == "mistral_swa":
        return MistralConfig(hidden_size=24, num_attention_heads=2, num_key_value_heads=1,
                             head_dim=8, intermediate_size=32, vocab_size=83,
                             tie_word_embeddings=False, max_position_embeddings=256,
                             rms_norm_eps=1e-5, rope_theta=1e6, sliding_window=16, **common)
    if name == "llama2_mha":
        return LlamaConfig(hidden_size=16, num_attention_heads=2, num_key_value_heads=2,
                           intermediate_size=40, vocab_size=320, tie_word_embeddings=False,
                           max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0,
                           **common)
    if name == "qwen25_tied":
        return Qwen2Config(hidden_size=24, num_attention_heads=3, num_key_value_heads=1,
                           intermediate_size=32, vocab_size=103, tie_word_embeddings=True,
                           max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=1e6,
                           use_sliding_window=False, max_window_layers=1, **common)
    raise ValueError(name)


def edit_config_json(name, folder):
    """Rewrites config.json the way the real family's files on the Hub spell it.

    transformers >= 5 writes every field; older files leave out what has a default, and those
    defaults are what the loader must get right."""
    if name not in ("llama2_mha", "qwen25_tied"):
        return
    path = folder / "config.json"
    j = json.loads(path.read_text())
    if name == "llama2_mha":
        # As meta-llama/Llama-2-*-hf: no num_key_value_heads (= heads), head_dim (= d / heads)
        # or rope_theta (= 10000); rope_scaling null; the dtype under its old name.
        for key in ("num_key_value_heads", "head_dim", "rope_parameters"):
            del j[key]
        j["rope_scaling"] = None
        j["torch_dtype"] = j.pop("dtype")
    else:
        # As Qwen/Qwen2.5-*: a sliding_window value that use_sliding_window false switches off.
        j["sliding_window"] = 16
        assert j["use_sliding_window"] is False
    path.write_text(json.dumps(j, indent=2, sort_keys=True) + "\n")


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif pname.endswith(".bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in pname or pname.startswith("lm_head"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(1.5 / math.sqrt(p.shape[1]) * torch.randn(p.shape, generator=g))


def head_dim(cfg):
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads


def gguf_arch(cfg):
    # llama.cpp's converter writes Mistral (and Llama) as "llama".
    return "qwen2" if cfg.model_type == "qwen2" else "llama"


def llama_permute(w, n_head, n_head_kv):
    # Exactly LlamaModel.permute of llama.cpp's convert_hf_to_gguf.py.
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def llama3_rope_factors(cfg):
    # Exactly what llama.cpp's convert_hf_to_gguf.py stores as rope_freqs.weight for llama3.
    rp = cfg.rope_parameters
    base = rp["rope_theta"]
    dim = head_dim(cfg)
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, low, high = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
    old_ctx = rp["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array([float(x) for x in out], dtype=np.float32)


# Keys llama.cpp's converter leaves out for a config.json without num_key_value_heads, rope_theta
# and head_dim (Llama 2 on the Hub); llama.cpp then defaults them (kv heads = heads, theta 10000,
# head size = d / heads).
LEGACY_OMITS = ("head_count_kv", "rope_freq_base", "key_length")


def write_metadata(w, name, cfg, ftype, omit=()):
    """The metadata keys llama.cpp's converter writes for cfg, in its order, less `omit`."""
    w.add_name(name)
    w.add_file_type(ftype)
    w.add_vocab_size(cfg.vocab_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    if "head_count_kv" not in omit:
        w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    if "rope_freq_base" not in omit:
        w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    if "key_length" not in omit:
        w.add_key_length(head_dim(cfg))
        w.add_value_length(head_dim(cfg))
    if gguf_arch(cfg) == "llama":
        w.add_rope_dimension_count(head_dim(cfg))


def write_gguf(path, name, cfg, sd, ftype, omit=()):
    arch = gguf_arch(cfg)
    w = gguf.GGUFWriter(str(path), arch)
    write_metadata(w, name, cfg, ftype, omit)
    f16 = ftype == gguf.LlamaFileType.MOSTLY_F16
    q8_0 = ftype == gguf.LlamaFileType.MOSTLY_Q8_0

    def put(gname, t):
        a = np.ascontiguousarray(t.detach().float().numpy())
        # llama.cpp keeps 1-D tensors (norms, biases, rope_freqs) in F32 in an F16 or Q8_0 file.
        if f16 and a.ndim > 1:
            a = a.astype(np.float16)
        if q8_0 and a.ndim > 1:
            # gguf-py's quantize is llama.cpp's quantize_row_q8_0_ref: blocks of 32 along a row,
            # scale max|x| / 127 stored as f16, values rounded to int8.
            qt = gguf.GGMLQuantizationType.Q8_0
            w.add_tensor(gname, quants.quantize(a, qt), raw_dtype=qt)
            return
        w.add_tensor(gname, a)

    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
    put("token_embd.weight", sd["model.embed_tokens.weight"])
    if (cfg.rope_parameters or {}).get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(cfg))
    for i in range(cfg.num_hidden_layers):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        put(b + "attn_norm.weight", sd[p + "input_layernorm.weight"])
        for proj, gn in (("q", "attn_q"), ("k", "attn_k"), ("v", "attn_v")):
            for kind in ("weight", "bias"):
                key = f"{p}self_attn.{proj}_proj.{kind}"
                if key not in sd:
                    continue
                t = sd[key]
                if arch == "llama" and proj == "q":
                    t = llama_permute(t, nh, nh)
                elif arch == "llama" and proj == "k":
                    t = llama_permute(t, nh, nkv)
                put(f"{b}{gn}.{kind}", t)
        put(b + "attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        put(b + "ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        put(b + "ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        put(b + "ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        put(b + "ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    put("output_norm.weight", sd["model.norm.weight"])
    if not cfg.tie_word_embeddings:
        put("output.weight", sd["lm_head.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids]), use_cache=False).logits[0].float().numpy()


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def gguf_logits(src, hf_cfg, ids):
    """transformers' logits from one GGUF file. With llama3 scaling also the logits it computes
    before rope_parameters are patched in (it ignores rope_freqs.weight), else None."""
    gguf_name = src.name
    with tempfile.TemporaryDirectory() as tmp:
        # Alone in a folder, so that nothing can come from config.json or the safetensors.
        shutil.copy(src, tmp)
        cfg = AutoConfig.from_pretrained(tmp, gguf_file=gguf_name)
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                    "num_key_value_heads", "intermediate_size", "vocab_size",
                    "max_position_embeddings", "tie_word_embeddings"):
            assert getattr(cfg, key) == getattr(hf_cfg, key), (gguf_name, key)
        assert head_dim(cfg) == head_dim(hf_cfg), gguf_name
        assert getattr(cfg, "sliding_window", None) is None, gguf_name  # a GGUF has no window
        cfg._attn_implementation = "eager"
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf_name, config=cfg,
                                                     dtype=torch.float32)
        logits, unscaled = logits_of(model.eval(), ids), None
        if (hf_cfg.rope_parameters or {}).get("rope_type") == "llama3":
            cfg.rope_parameters = dict(hf_cfg.rope_parameters)
            model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf_name, config=cfg,
                                                         dtype=torch.float32)
            logits, unscaled = logits_of(model.eval(), ids), logits
        return logits, unscaled


def check_gguf(folder, gguf_name, hf_cfg, ref, ids, tol, src=None):
    """Loads one GGUF (or src standing in for it) with transformers and compares its logits with
    the reference."""
    logits, unscaled = gguf_logits(src or folder / gguf_name, hf_cfg, ids)
    lines = []
    if unscaled is not None:
        lines.append(f"{folder.name}/{gguf_name}: transformers-from-GGUF max |dlogit| = "
                     f"{float(np.abs(unscaled - ref).max()):.3g} (transformers ignores "
                     "rope_freqs.weight; mismatch expected)")
        lines.append(f"{folder.name}/{gguf_name}: with rope_parameters patched in: ")
    else:
        lines.append(f"{folder.name}/{gguf_name}: transformers-from-GGUF ")
    diff = float(np.abs(logits - ref).max())
    ok = diff <= tol
    lines[-1] += f"max |dlogit| = {diff:.3g}" + ("  OK" if ok else f"  FAIL (tolerance {tol})")
    return ok, lines


def logits_without_window(model, ids):
    w = model.config.sliding_window
    model.config.sliding_window = None
    full = logits_of(model, ids)
    model.config.sliding_window = w
    return full


def family_checks(name, model, ids, ref):
    """Facts about the reference that the tests rely on."""
    if name == "mistral_swa":
        # transformers' Mistral masks keys more than sliding_window - 1 positions back, so rows
        # below the window equal full attention and later rows do not.
        w = model.config.sliding_window
        full = logits_without_window(model, ids)
        inside = float(np.abs(full[:w] - ref[:w]).max())
        beyond = rel_l2(full[w:], ref[w:])
        good = inside < 1e-5 and beyond > 1e-2
        return good, [f"{name}: window {w}: rows < {w} max |dlogit| vs full attention = "
                      f"{inside:.3g}, rows >= {w} rel L2 = {beyond:.3g}" +
                      ("  OK" if good else "  FAIL")]
    if name == "llama32_tied":
        # The scaling must matter within 29 tokens, or the tests could not see it.
        scaled = model.config.rope_parameters
        unscaled = copy.deepcopy(model.config)
        unscaled.rope_parameters = {"rope_type": "default", "rope_theta": scaled["rope_theta"]}
        plain = LlamaForCausalLM(unscaled).float().eval()
        plain.load_state_dict(model.state_dict())
        d = rel_l2(logits_of(plain, ids), ref)
        good = d > 1e-2
        return good, [f"{name}: llama3 scaling changes the logits by rel L2 {d:.3g}" +
                      ("  OK" if good else "  FAIL")]
    return True, []


def make(name, seed, out, check):
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    cfg = make_config(name)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = CLASSES[cfg.model_type](cfg).float().eval()
    randomise(model, seed)
    if cfg.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    # The tied model must hold 2 shards: max_shard_size is set just below half of it.
    n_bytes = sum(p.numel() * 4 for p in model.parameters())
    shard = f"{n_bytes * 6 // 10 // 1000}KB" if name == "llama_gqa" else "100MB"
    if name in ST_DTYPE:
        # Stored rounded; everything else (GGUF, logits) uses the rounded values in fp32. Only
        # the parameters: the RoPE inv_freq buffer stays fp32, as from_pretrained rebuilds it.
        with torch.no_grad():
            for prm in model.parameters():
                prm.copy_(prm.to(ST_DTYPE[name]).float())
        copy.deepcopy(model).to(ST_DTYPE[name]).save_pretrained(folder, max_shard_size=shard)
    else:
        model.save_pretrained(folder, max_shard_size=shard)
    (folder / "generation_config.json").unlink(missing_ok=True)
    edit_config_json(name, folder)
    n_shards = len(list(folder.glob("*.safetensors")))
    assert n_shards == (2 if name == "llama_gqa" else 1), (name, n_shards)

    sd = model.state_dict()
    omit = LEGACY_OMITS if name == "llama2_mha" else ()
    write_gguf(folder / "model-f32.gguf", name, cfg, sd, gguf.LlamaFileType.ALL_F32, omit)
    if name == "llama_gqa":
        write_gguf(folder / "model-f16.gguf", name, cfg, sd, gguf.LlamaFileType.MOSTLY_F16)
    if name == "llama32_tied":
        write_gguf(folder / "model-q8_0.gguf", name, cfg, sd, gguf.LlamaFileType.MOSTLY_Q8_0)

    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, cfg.vocab_size, (N_TOKENS,), generator=g).tolist()
    ids[5], ids[17] = 0, cfg.vocab_size - 1  # the first and last rows of the embedding table
    ref = logits_of(model, ids)
    (folder / "ids.json").write_text(json.dumps(ids) + "\n")
    ref.astype("<f4").tofile(folder / "logits.bin")

    if name == "mistral_swa":
        # The same weights without the window: what transformers computes from the GGUF.
        logits_without_window(model, ids).astype("<f4").tofile(folder / "logits-nowindow.bin")
    ok, lines = True, []
    if name == "llama32_tied":
        # The Q8_0 file's own oracle: transformers dequantises it (exactly: int8 times an f16
        # scale) and runs it in fp32.
        q8 = gguf_logits(folder / "model-q8_0.gguf", cfg, ids)[0]
        q8.astype("<f4").tofile(folder / "logits-q8_0.bin")
        lines.append(f"{name}/model-q8_0.gguf: transformers' Q8_0 logits differ from the fp32 "
                     f"ones by rel L2 {rel_l2(q8, ref):.3g} (quantisation)")
    if check:
        # The reloaded HF folder must reproduce the logits exactly.
        back = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                    attn_implementation="eager")
        diff = float(np.abs(logits_of(back.eval(), ids) - ref).max())
        lines.append(f"{name}: HF folder reload max |dlogit| = {diff:.3g}")
        ok = diff == 0.0
        good, more = family_checks(name, model, ids, ref)
        ok, lines = ok and good, lines + more
        # The GGUFs hold no window: transformers computes full attention from them.
        gguf_ref = ref
        if name == "mistral_swa":
            gguf_ref = np.fromfile(folder / "logits-nowindow.bin", dtype="<f4").reshape(ref.shape)
        for gname, tol in (("model-f32.gguf", 1e-4), ("model-f16.gguf", 5e-2)):
            if not (folder / gname).exists():
                continue
            with tempfile.TemporaryDirectory() as tmp:
                src = None
                if omit:
                    # transformers' GGUF reader skips the Q/K un-permutation when head_count_kv
                    # is absent (llama.cpp defaults it to head_count), so it reads a copy that
                    # has that one key; the other defaults are still its own.
                    src = Path(tmp) / gname
                    write_gguf(src, name, cfg, sd, gguf.LlamaFileType.ALL_F32,
                               tuple(k for k in omit if k != "head_count_kv"))
                    lines.append(f"{name}/{gname}: checked with head_count_kv added (only)")
                good, more = check_gguf(folder, gname, cfg, gguf_ref, ids, tol, src)
            ok, lines = ok and good, lines + more
    print(f"{name}: std(logits) = {ref.std():.2f}, "
          f"{sum(f.stat().st_size for f in folder.iterdir()) / 1024:.0f} KiB")
    for line in lines:
        print("  " + line)
    return ok


# ---- real Llama 3.x RoPE numbers (no weights) ---------------------------------------------------

# The RoPE-relevant part of the config.json files on the Hub (meta-llama/...), in their spelling
# (transformers 4.4x: rope_theta at the top, rope_scaling with rope_type).
REAL_LLAMA3 = {
    "llama-3.1-8b": dict(hidden_size=4096, num_attention_heads=32, num_key_value_heads=8,
                         intermediate_size=14336, num_hidden_layers=32, vocab_size=128256,
                         max_position_embeddings=131072, tie_word_embeddings=False, factor=8.0),
    "llama-3.2-1b": dict(hidden_size=2048, num_attention_heads=32, num_key_value_heads=8,
                         head_dim=64, intermediate_size=8192, num_hidden_layers=16,
                         vocab_size=128256, max_position_embeddings=131072,
                         tie_word_embeddings=True, factor=32.0),
    "llama-3.2-3b": dict(hidden_size=3072, num_attention_heads=24, num_key_value_heads=8,
                         head_dim=128, intermediate_size=8192, num_hidden_layers=28,
                         vocab_size=128256, max_position_embeddings=131072,
                         tie_word_embeddings=True, factor=32.0),
}


class KeyRecorder(gguf.GGUFWriter):
    """Takes GGUFWriter's add_* calls and records the keys instead of writing a file."""

    def __init__(self, arch):  # no file, no GGUFWriter state: only what add_* helpers use
        self.arch = arch
        self.keys = [["general.architecture", "str", arch]]  # GGUFWriter's own first key

    def add_uint32(self, key, val):
        self.keys.append([key, "u32", int(val)])

    def add_float32(self, key, val):
        self.keys.append([key, "f32", float(val)])

    def add_string(self, key, val):
        self.keys.append([key, "str", val])


def make_real_rope(out):
    fixture = {}
    for name, spec in REAL_LLAMA3.items():
        spec = dict(spec)
        factor = spec.pop("factor")
        hub = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
               "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
               "rope_scaling": {"factor": factor, "high_freq_factor": 4.0,
                                "low_freq_factor": 1.0,
                                "original_max_position_embeddings": 8192,
                                "rope_type": "llama3"},
               "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], **spec}
        cfg = LlamaConfig.from_dict(copy.deepcopy(hub))  # from_dict edits what it is given
        inv_freq = LlamaRotaryEmbedding(cfg).inv_freq.float().numpy()
        rec = KeyRecorder("llama")
        write_metadata(rec, name, cfg, gguf.LlamaFileType.MOSTLY_BF16)
        if "head_dim" not in spec:
            # The converter writes key/value_length only from an explicit head_dim (3.1: none).
            rec.keys = [k for k in rec.keys if not k[0].endswith(("key_length", "value_length"))]
        fixture[name] = {"config": hub, "gguf_keys": rec.keys,
                         "rope_freqs": [float(x) for x in llama3_rope_factors(cfg)],
                         "inv_freq": [float(x) for x in inv_freq]}
    folder = out / "real_rope"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "llama3.json").write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"real_rope: {', '.join(fixture)}, "
          f"{(folder / 'llama3.json').stat().st_size / 1024:.0f} KiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent /
                                         "tests" / "fixtures" / "tiny"))
    ap.add_argument("--no-check", action="store_true", help="skip the transformers cross-checks")
    ap.add_argument("--only", nargs="+", choices=MODELS + ("real_rope",),
                    help="regenerate only these")
    args = ap.parse_args()
    out = Path(args.out)
    torch.set_num_threads(1)  # one summation order, so reruns write identical logits
    ok = True
    for seed, name in enumerate(MODELS):
        if not args.only or name in args.only:
            ok = make(name, 1000 + seed, out, not args.no_check) and ok
    if not args.only or "real_rope" in args.only:
        make_real_rope(out)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"total {total / 1024:.0f} KiB in {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
