"""Hugging Face transformers + SDPA on the same random-weight Llama-3.1-8B shape, in the same run as
model_bench, and the side-by-side table.

Usage (on the GPU machine): python3 bench/model/hf_baseline.py [ours.txt] [--tokens N] [--steps S]
ours.txt holds model_bench's "name|ms|rate|unit" lines (its ceilings give the roofline ratios).
Prefill: one forward of N tokens with logits for the last row only (logits_to_keep=1), as our
engine computes them. Decode: one token a step with the default (dynamic) KV cache after an
N-token prefill. CUDA events, warm-up first, median of repeats, random bf16 weights (std 0.02).
"""

import argparse
import statistics

import torch
from transformers import LlamaConfig, LlamaForCausalLM

N_PARAMS = 6.98e9


def llama31_8b_config():
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192, "rope_theta": 500000.0}
    common = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                  num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                  max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=False,
                  attn_implementation="sdpa")
    try:  # transformers 5: rope_parameters
        return LlamaConfig(rope_parameters=rope, **common)
    except TypeError:
        rope = dict(rope)
        theta = rope.pop("rope_theta")
        return LlamaConfig(rope_scaling=rope, rope_theta=theta, **common)


def timed(fn, warm, reps, setup=None):
    times = []
    for i in range(warm + reps):
        if setup:
            setup()
        torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        if i >= warm:
            times.append(a.elapsed_time(b))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours", nargs="?")
    ap.add_argument("--tokens", type=int, default=32768)
    ap.add_argument("--steps", type=int, default=32)
    args = ap.parse_args()
    n = args.tokens
    ours = {}
    if args.ours:
        for line in open(args.ours):
            name, ms, rate, unit = line.strip().split("|")
            ours[name] = (float(ms), float(rate), unit)

    dev = torch.cuda.get_device_properties(0)
    import transformers
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {dev.name}")
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    cfg = llama31_8b_config()
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    model.eval()
    with torch.no_grad():
        for p in model.parameters():  # random weights whatever the library's init did
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)
    print(f"attention: {model.config._attn_implementation}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e9:.2f}B params")
    ids = torch.randint(0, cfg.vocab_size, (1, n), device="cuda")

    rows = []
    flops = 2 * N_PARAMS * n + 262144.0 * n * n
    with torch.inference_mode():
        state = {}

        def prefill():
            state["out"] = model(ids, use_cache=True, logits_to_keep=1)

        def drop():
            state.clear()
            torch.cuda.empty_cache()

        ms = timed(prefill, 1, 3, setup=drop)
        rows.append((f"prefill dense {n // 1024}K", ms, flops / (ms * 1e-3) / 1e12, "TFLOP/s"))

        past = state["out"].past_key_values
        tok = ids[:, -1:]

        def step():
            nonlocal past
            out = model(tok, past_key_values=past, use_cache=True)
            past = out.past_key_values

        ms = timed(step, 3, args.steps)
        kv_bytes = 2.0 * 32 * n * 1024 * 2
        weight_bytes = 2.0 * (8.03e9 - 128256 * 4096)
        rows.append((f"decode 1 token @ {n // 1024}K context", ms,
                     (weight_bytes + kv_bytes) / (ms * 1e-3) / 1e12, "TB/s"))

    copy = next((v[1] for k, v in ours.items() if k.startswith("d2d copy")), 0.0)
    gemm = next((v[1] for k, v in ours.items() if k.startswith("cuBLAS bf16 GEMM")), 0.0)
    print(f"\nceilings (measured by model_bench in this run): {copy:.2f} TB/s copy, "
          f"{gemm:.0f} TFLOP/s cuBLAS bf16 GEMM; 989 TFLOP/s datasheet")
    print(f"{'case':40} {'impl':22} {'ms':>10} {'rate':>9} {'unit':8} {'roofline':>8} {'vs 989':>7}")

    def line(name, impl, ms, rate, unit):
        ceil = copy if unit == "TB/s" else gemm
        ratio = f"{100 * rate / ceil:7.1f}%" if ceil else "     n/a"
        peak = f"{100 * rate / 989:6.1f}%" if unit == "TFLOP/s" else ""
        print(f"{name:40} {impl:22} {ms:10.2f} {rate:9.1f} {unit:8} {ratio:>8} {peak:>7}")

    for name, (ms, rate, unit) in ours.items():
        if not name.startswith(("d2d", "cuBLAS")):
            line(name, "starattn (cuda)", ms, rate, unit)
    for name, ms, rate, unit in rows:
        line(name, "HF transformers+SDPA", ms, rate, unit)
    pre = [v for k, v in ours.items() if k.startswith(f"prefill dense {n // 1024}K chunk {n}")]
    # generate's default decode path: a replayed CUDA graph with the greedy choice on the device
    # (HF's step also leaves its logits on the GPU). The other rows are the comparison.
    dec = [v for k, v in ours.items() if k.startswith("decode 1 token") and "greedy" in k]
    if pre and dec:
        print(f"\nprefill {n // 1024}K: ours {pre[0][0] / 1e3:.3f} s (target <= 1.2 s), "
              f"HF {rows[0][1] / 1e3:.3f} s, ours/HF {pre[0][0] / rows[0][1]:.2f}x time")
        print(f"decode  @{n // 1024}K: ours {dec[0][0]:.2f} ms/token (target <= 7.5), "
              f"HF {rows[1][1]:.2f} ms/token, ours/HF {dec[0][0] / rows[1][1]:.2f}x time")


if __name__ == "__main__":
    main()
