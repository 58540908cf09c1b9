"""PyTorch SDPA on the shapes of attention_bench.cu, in the same run, and the side-by-side table.

Usage (on the GPU machine): python3 bench/attention/sdpa_baseline.py [ours.txt]
ours.txt holds attention_bench's "name|ms|rate|unit" lines; its copy row gives the byte ceiling.
Timing: CUDA events around each call, warm-up first, median of repeats, random normal data.
"""

import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

PEAK_TFLOPS = 989.0  # H100 / H200 SXM dense bf16
H, KVH, D = 32, 8, 128


def median_ms(fn, warm, reps):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def sdpa_ms(backend, q, k, v, causal, warm, reps):
    """Native GQA (enable_gqa) first; a backend without it gets K/V expanded, said in the name."""
    with sdpa_kernel(backend):
        try:
            F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
            torch.cuda.synchronize()
            return median_ms(lambda: F.scaled_dot_product_attention(
                q, k, v, is_causal=causal, enable_gqa=True), warm, reps), ""
        except RuntimeError:
            pass
        ke, ve = (t.repeat_interleave(H // KVH, dim=1) for t in (k, v))
        try:
            F.scaled_dot_product_attention(q, ke, ve, is_causal=causal)
            torch.cuda.synchronize()
            return median_ms(lambda: F.scaled_dot_product_attention(
                q, ke, ve, is_causal=causal), warm, reps), " (kv expanded)"
        except RuntimeError as e:
            print(f"{backend}: unsupported here: {str(e).splitlines()[0][:100]}")
            return None, ""


def main():
    dev = torch.cuda.get_device_properties(0)
    print(f"torch {torch.__version__}, {dev.name}, {dev.multi_processor_count} SMs")
    rows = []  # (name, impl, ms, rate, unit, ratio)
    ours = {}
    if len(sys.argv) > 1:
        for line in open(sys.argv[1]):
            name, ms, rate, unit = line.strip().split("|")
            ours[name] = (float(ms), float(rate), unit)
    copy_tbs = ours.get("d2d copy (ceiling)", (0, 0, ""))[1]
    if not copy_tbs:  # no bench results: measure the byte ceiling here
        x = torch.empty(1 << 29, dtype=torch.bfloat16, device="cuda")
        y = torch.empty_like(x)
        ms = median_ms(lambda: y.copy_(x), 3, 20)
        copy_tbs = 2 * x.numel() * 2 / (ms * 1e-3) / 1e12
        del x, y

    backends = [("SDPA flash", SDPBackend.FLASH_ATTENTION), ("SDPA cuDNN", SDPBackend.CUDNN_ATTENTION)]
    n = 32768
    q = torch.randn(1, H, n, D, dtype=torch.bfloat16, device="cuda")
    k, v = (torch.randn(1, KVH, n, D, dtype=torch.bfloat16, device="cuda") for _ in range(2))
    flops = 4.0 * H * D * n * n / 2
    name = "prefill causal 32K d128 GQA 32/8"
    if name in ours:
        ms, rate, _ = ours[name]
        rows.append((name, "ours", ms, rate, "TFLOP/s", rate / PEAK_TFLOPS))
    for impl, be in backends:
        ms, note = sdpa_ms(be, q, k, v, True, 2, 10)
        if ms:
            t = flops / (ms * 1e-3) / 1e12
            rows.append((name, impl + note, ms, t, "TFLOP/s", t / PEAK_TFLOPS))
    del q, k, v

    nk = 131072
    q = torch.randn(1, H, 1, D, dtype=torch.bfloat16, device="cuda")
    k, v = (torch.randn(1, KVH, nk, D, dtype=torch.bfloat16, device="cuda") for _ in range(2))
    nbytes = 2.0 * nk * KVH * D * 2
    name = "decode 1q x 128K GQA 32/8"
    if name in ours:
        ms, rate, _ = ours[name]
        rows.append((name, "ours", ms, rate, "TB/s", rate / copy_tbs))
    for impl, be in backends:
        ms, note = sdpa_ms(be, q, k, v, False, 10, 100)
        if ms:
            t = nbytes / (ms * 1e-3) / 1e12
            rows.append((name, impl + note, ms, t, "TB/s", t / copy_tbs))
    # Shared context: S query rows (a served step's sequences) over the same 128K keys, no mask.
    # The rate is TB/s of K + V; the TFLOP/s column of the note is 4 * S * H * D * nk / time.
    for s in (1, 8, 32, 64):
        q = torch.randn(1, H, s, D, dtype=torch.bfloat16, device="cuda")
        name = f"shared S={s} x 128K GQA 32/8"
        flops = 4.0 * s * H * D * nk
        for impl_name in (name, name + " (decode kernel)", name + " (prefill kernel)",
                          name + " (S separate decodes)"):
            if impl_name in ours:
                ms, rate, _ = ours[impl_name]
                impl = "ours" + impl_name[len(name):]
                rows.append((name, impl, ms, rate, "TB/s", rate / copy_tbs))
                print(f"{name} {impl}: {flops / (ms * 1e-3) / 1e12:.1f} TFLOP/s")
        for impl, be in backends + [("SDPA efficient", SDPBackend.EFFICIENT_ATTENTION)]:
            ms, note = sdpa_ms(be, q, k, v, False, 10, 50)
            if ms:
                t = nbytes / (ms * 1e-3) / 1e12
                rows.append((name, impl + note, ms, t, "TB/s", t / copy_tbs))
                print(f"{name} {impl + note}: {flops / (ms * 1e-3) / 1e12:.1f} TFLOP/s")
    for extra in ("items 32 seq x 1 row x 2K keys", "items 32 seq (attention+merge each)"):
        if extra in ours:
            ms, rate, _ = ours[extra]
            rows.append((extra, "ours", ms, rate, "TB/s", rate / copy_tbs))
    for extra, unit, ceiling in (("prefill causal 32K (mma.sync)", "TFLOP/s", PEAK_TFLOPS),
                                 ("decode 4q x 128K GQA 32/8 causal", "TB/s", copy_tbs)):
        if extra in ours:
            ms, rate, _ = ours[extra]
            rows.append((extra, "ours", ms, rate, unit, rate / ceiling))

    print(f"\nroofline: {PEAK_TFLOPS:.0f} TFLOP/s bf16 dense; {copy_tbs:.2f} TB/s measured d2d copy")
    print(f"{'case':36} {'impl':26} {'ms':>9} {'rate':>16} {'roofline':>8}")
    for name, impl, ms, rate, unit, ratio in rows:
        print(f"{name:36} {impl:26} {ms:9.3f} {rate:8.2f} {unit:7} {100 * ratio:7.1f}%")


if __name__ == "__main__":
    main()
