#!/usr/bin/env python3
"""Makes tiny random Llama/Qwen2 models and their reference logits for starattn's tests.

Run:  /work/venv/bin/python tools/make_tiny_models.py [--out tests/fixtures/tiny] [--no-check]
Deterministic (fixed seeds): rerunning rewrites identical weights and logits on the same
torch version.

Models (fp32, random weights, GQA, odd sizes):
  llama_gqa    Llama, 2 layers, d 72, 6 q / 2 kv heads (head_dim 12), ffn 100, vocab 131, tied
               embeddings; HF folder SHARDED into 2 files (model.safetensors.index.json).
  qwen2_bias   Qwen2, 2 layers, d 64, 4 q / 2 kv heads (head_dim 16), ffn 40, vocab 127, untied,
               random nonzero q/k/v biases.
  llama3_rope  Llama, 2 layers, d 32, 8 q / 2 kv heads with explicit head_dim 16 (q_dim 128 != d),
               ffn 32, vocab 89, untied, rope_theta 500000, rope_scaling llama3 (factor 8, low 1,
               high 4, original 64), max_position_embeddings 512.

Fixture format, one folder per model under tests/fixtures/tiny/<name>/:
  config.json, model.safetensors | model-0000N-of-00002.safetensors + model.safetensors.index.json
               the Hugging Face folder, as transformers' save_pretrained writes it (F32)
  model-f32.gguf   the same weights as llama.cpp's convert_hf_to_gguf.py would write them (F32):
                   llama.cpp tensor names and metadata keys, llama-arch Q/K rows permuted, and
                   for llama3_rope the `rope_freqs.weight` divisors instead of scaling keys
  model-f16.gguf   llama_gqa only: 2-D tensors F16, 1-D tensors F32 (llama.cpp's MOSTLY_F16)
  ids.json         JSON list of 29 token ids (the input, one sequence, position 0 first)
  logits.bin       transformers' fp32 logits for every position (eager attention, no cache):
                   raw little-endian float32, row-major [29, vocab], no header

Weights: embeddings and lm_head N(0, 0.3^2); linear layers N(0, (1.5/sqrt(fan_in))^2) (0.15 to
0.27 here) so that attention is neither flat nor one-hot; RMSNorm weights 1 + N(0, 0.2^2);
biases N(0, 0.5^2).

Unless --no-check, each GGUF is loaded back with transformers (from_pretrained(gguf_file=...)) and
must reproduce the logits: that proves the permutation and metadata are what llama.cpp-compatible
readers expect. transformers' GGUF reader ignores rope_freqs.weight, so for llama3_rope the check
also reports the (expected) mismatch without scaling, then patches rope_parameters into the
GGUF-derived config and requires a match.
"""
import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import (AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)
import gguf

N_TOKENS = 29


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
    raise ValueError(name)


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


def write_gguf(path, name, cfg, sd, f16):
    arch = cfg.model_type if cfg.model_type == "qwen2" else "llama"
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(name)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(cfg.vocab_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_key_length(head_dim(cfg))
    w.add_value_length(head_dim(cfg))
    if arch == "llama":
        w.add_rope_dimension_count(head_dim(cfg))

    def put(gname, t):
        a = t.detach().float().numpy()
        # llama.cpp keeps 1-D tensors (norms, biases, rope_freqs) in F32 in an F16 file.
        if f16 and a.ndim > 1:
            a = a.astype(np.float16)
        w.add_tensor(gname, np.ascontiguousarray(a))

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


def check_gguf(folder, gguf_name, hf_cfg, ref, ids, tol):
    """Loads one GGUF with transformers and compares its logits with the reference."""
    with tempfile.TemporaryDirectory() as tmp:
        # Alone in a folder, so that nothing can come from config.json or the safetensors.
        shutil.copy(folder / gguf_name, tmp)
        cfg = AutoConfig.from_pretrained(tmp, gguf_file=gguf_name)
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                    "num_key_value_heads", "intermediate_size", "vocab_size",
                    "max_position_embeddings", "tie_word_embeddings"):
            assert getattr(cfg, key) == getattr(hf_cfg, key), (gguf_name, key)
        assert head_dim(cfg) == head_dim(hf_cfg), gguf_name
        cfg._attn_implementation = "eager"
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf_name, config=cfg,
                                                     dtype=torch.float32)
        diff = float(np.abs(logits_of(model.eval(), ids) - ref).max())
        lines = [f"{folder.name}/{gguf_name}: transformers-from-GGUF max |dlogit| = {diff:.3g}"]
        scaling = (hf_cfg.rope_parameters or {}).get("rope_type") == "llama3"
        if scaling:
            # transformers does not read rope_freqs.weight; give it the scaling and try again.
            lines[-1] += " (transformers ignores rope_freqs.weight; mismatch expected)"
            cfg.rope_parameters = dict(hf_cfg.rope_parameters)
            model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf_name, config=cfg,
                                                         dtype=torch.float32)
            diff = float(np.abs(logits_of(model.eval(), ids) - ref).max())
            lines.append(f"{folder.name}/{gguf_name}: with rope_parameters patched in: "
                         f"max |dlogit| = {diff:.3g}")
        ok = diff <= tol
        lines[-1] += "  OK" if ok else f"  FAIL (tolerance {tol})"
        return ok, lines


def make(name, seed, out, check):
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    cfg = make_config(name)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = (LlamaForCausalLM if cfg.model_type == "llama" else Qwen2ForCausalLM)(cfg)
    model = model.float().eval()
    randomise(model, seed)
    if cfg.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    # The tied model must hold 2 shards: max_shard_size is set just below half of it.
    n_bytes = sum(p.numel() * 4 for p in model.parameters())
    shard = f"{n_bytes * 6 // 10 // 1000}KB" if name == "llama_gqa" else "100MB"
    model.save_pretrained(folder, max_shard_size=shard)
    (folder / "generation_config.json").unlink(missing_ok=True)
    n_shards = len(list(folder.glob("*.safetensors")))
    assert n_shards == (2 if name == "llama_gqa" else 1), (name, n_shards)

    sd = model.state_dict()
    write_gguf(folder / "model-f32.gguf", name, cfg, sd, f16=False)
    if name == "llama_gqa":
        write_gguf(folder / "model-f16.gguf", name, cfg, sd, f16=True)

    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, cfg.vocab_size, (N_TOKENS,), generator=g).tolist()
    ids[5], ids[17] = 0, cfg.vocab_size - 1  # the first and last rows of the embedding table
    ref = logits_of(model, ids)
    (folder / "ids.json").write_text(json.dumps(ids) + "\n")
    ref.astype("<f4").tofile(folder / "logits.bin")

    ok, lines = True, []
    if check:
        # The reloaded HF folder must reproduce the logits exactly.
        back = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                    attn_implementation="eager")
        diff = float(np.abs(logits_of(back.eval(), ids) - ref).max())
        lines.append(f"{name}: HF folder reload max |dlogit| = {diff:.3g}")
        ok = diff == 0.0
        for gname, tol in (("model-f32.gguf", 1e-4), ("model-f16.gguf", 5e-2)):
            if (folder / gname).exists():
                good, more = check_gguf(folder, gname, cfg, ref, ids, tol)
                ok, lines = ok and good, lines + more
    print(f"{name}: std(logits) = {ref.std():.2f}, "
          f"{sum(f.stat().st_size for f in folder.iterdir()) / 1024:.0f} KiB")
    for line in lines:
        print("  " + line)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent /
                                         "tests" / "fixtures" / "tiny"))
    ap.add_argument("--no-check", action="store_true", help="skip the transformers cross-checks")
    args = ap.parse_args()
    out = Path(args.out)
    torch.set_num_threads(1)  # one summation order, so reruns write identical logits
    ok = True
    for seed, name in enumerate(("llama_gqa", "qwen2_bias", "llama3_rope")):
        ok = make(name, 1000 + seed, out, not args.no_check) and ok
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"total {total / 1024:.0f} KiB in {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
