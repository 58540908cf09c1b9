#!/usr/bin/env python3
"""Hugging Face transformers' batched decode over one shared prefix, beside `starattn bench
--sequences` in the same run: random Llama-3.1-8B-shaped weights (bf16, SDPA), a prefix of N
tokens encoded once, its KV copied to S sequences (transformers has no shared-prefix attention, so
each sequence holds and reads its own copy), then one token of every sequence a step.

  python3 bench/batch/hf_batched.py --tokens 131072 --sequences 1,8,32,64 [--steps 16]

A batch whose KV copies do not fit on the GPU is reported as such, not run. CUDA events, warm-up
first, the median step.
"""
import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "model"))
from hf_baseline import llama31_8b_config  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=131072)
    ap.add_argument("--sequences", default="1,8,32,64")
    ap.add_argument("--steps", type=int, default=16)
    args = ap.parse_args()
    from transformers import DynamicCache, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = llama31_8b_config()
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    for p in model.parameters():
        torch.nn.init.normal_(p, 0.0, 0.02)
    model.eval()
    n = args.tokens
    kv_per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 2
    ids = torch.randint(0, cfg.vocab_size, (1, n), device="cuda")
    with torch.no_grad():
        cache = DynamicCache()
        # The prefix in pieces, so the activations stay small.
        for at in range(0, n, 8192):
            model(ids[:, at:at + 8192], past_key_values=cache, use_cache=True, logits_to_keep=1)
        prefix = [(layer.keys, layer.values) for layer in cache.layers]
    del cache
    torch.cuda.empty_cache()
    print(f"HF transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
          f"prefix {n} tokens")
    print(f"{'sequences':>10} {'ms/step':>10} {'tokens/s':>10}")
    for s in [int(x) for x in args.sequences.split(",")]:
        need = kv_per_token * (n + args.steps + 8) * s
        free, _ = torch.cuda.mem_get_info()
        if need > free * 0.9:
            print(f"{s:>10} {'-':>10} {'-':>10}   (the {s} KV copies need {need / 2**30:.0f} GiB, "
                  f"{free / 2**30:.0f} GiB free)")
            continue
        cache = DynamicCache()
        for layer, (k, v) in enumerate(prefix):
            cache.update(k.expand(s, -1, -1, -1).contiguous(), v.expand(s, -1, -1, -1).contiguous(),
                         layer)
        tok = torch.randint(0, cfg.vocab_size, (s, 1), device="cuda")
        times = []
        with torch.no_grad():
            for i in range(args.steps + 3):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                out = model(tok, past_key_values=cache, use_cache=True)
                tok = out.logits[:, -1:].argmax(-1)
                b.record()
                b.synchronize()
                if i >= 3:
                    times.append(a.elapsed_time(b))
        ms = statistics.median(times)
        print(f"{s:>10} {ms:>10.2f} {s * 1e3 / ms:>10.1f}", flush=True)
        del cache, out
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
