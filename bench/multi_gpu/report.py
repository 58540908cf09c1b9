#!/usr/bin/env python3
"""Tables and plot for docs/PERFORMANCE.md from bench/multi_gpu/scaling.sh's JSON lines.

    python3 bench/multi_gpu/report.py RESULTS.jsonl [PLOT.png]

Prints markdown: phase 1 and time to first token per configuration and length, each next to its
ideal on the critical-path rank, and decode. Ideals use the Llama-3.1-8B shape's FLOPs
(2·P·N for the matmuls, 262144·N² for causal attention) at two
rates: the datasheet peak (989 TFLOP/s) and the rates our kernels measured on the H100 (cuBLAS
GEMM 769 TFLOP/s, our attention 607 TFLOP/s). The plot (matplotlib) shows phase 1 against N.
"""
import json
import sys

P = 6.979e9  # matmul parameters per token
ATT = 262144.0  # causal attention FLOPs per N^2 (2 * 32 layers * 4096 q_dim)
PEAK = (989e12, 989e12)  # (GEMM, attention) FLOP/s
MEASURED = (769e12, 607e12)


def seconds(linear_tokens, causal_sq, rates):
    """Time for `linear_tokens` tokens through the matmuls and `causal_sq` units of N^2 causal
    attention (a full, unmasked square counts 2)."""
    return 2 * P * linear_tokens / rates[0] + ATT * causal_sq / rates[1]


def ideal(label, gpus, n, rates):
    """Phase-1 time of the slowest rank, no communication, kernels at `rates`."""
    if label.startswith("dense"):
        return seconds(n, n * n, rates)
    if label.startswith("ring"):
        return seconds(n, n * n, rates) / gpus
    # star B=..., A = B, anchor mode last word
    mode = label.split()[-1]
    b = 32768 if "32K" in label else (n + 3) // 4
    blocks = [(s, min(b, n - s)) for s in range(0, n, b)]
    per = -(-len(blocks) // gpus)
    worst = 0.0
    for r in range(gpus):
        mine = blocks[r * per:(r + 1) * per]
        t = 0.0
        made_anchor = False
        for s, size in mine:
            if s == 0:  # block 0: the anchor's own text, no prefix
                t += seconds(size, size * size, rates)
                made_anchor = True
                continue
            a = min(b, n)
            if mode == "recompute" or (mode == "shared" and not made_anchor):
                t += seconds(a, a * a, rates)
                made_anchor = True
            t += seconds(size, size * size + 2 * size * a, rates)
        worst = max(worst, t)
    return worst


def load(path):
    rows = []
    for line in open(path):
        if line.strip():
            rows.append(json.loads(line))
    return rows


def fmt_n(n):
    return f"{n // 1048576}M" if n >= 1048576 else f"{n // 1024}K"


def main():
    rows = load(sys.argv[1])
    gpus = max(r["gpus"] for r in rows)
    points = {}  # (label, n) -> (phase1, first token, gpus)
    decode = []
    for r in rows:
        j = r["json"]
        for p in j["prefill"]:
            points[(r["label"], p["tokens"])] = (p["phase1_seconds"], p["seconds"], r["gpus"])
        if "decode" in j:
            d = j["decode"]
            decode.append((r["label"], d["context"], d["ms_per_token"], d["comm_ms_per_token"]))
    labels = sorted({k[0] for k in points}, key=lambda s: (not s.startswith("dense"),
                                                          not s.startswith("ring"), s))
    lengths = sorted({k[1] for k in points})

    print(f"| config | GPUs | N | phase 1 (s) | first token (s) | ideal at measured rates (s) "
          f"| ideal at peak (s) | of measured-rate ideal |")
    print("|---|---|---|---|---|---|---|---|")
    for lab in labels:
        for n in lengths:
            if (lab, n) not in points:
                continue
            p1, ttft, g = points[(lab, n)]
            ctx = n - 64
            im, ip = ideal(lab, g, ctx, MEASURED), ideal(lab, g, ctx, PEAK)
            print(f"| {lab} | {g} | {fmt_n(n)} | {p1:.2f} | {ttft:.2f} | {im:.2f} | {ip:.2f} "
                  f"| {100 * im / p1:.0f}% |")
    print()
    print("| star vs ring, phase 1 | N | ring (s) | star (s) | speed-up | ideal speed-up (measured rates) |")
    print("|---|---|---|---|---|---|")
    for n in lengths:
        if ("ring", n) not in points:
            continue
        ring = points[("ring", n)][0]
        for lab in labels:
            if not lab.startswith("star") or (lab, n) not in points:
                continue
            s = points[(lab, n)][0]
            ctx = n - 64
            ideal_ratio = ideal("ring", gpus, ctx, MEASURED) / ideal(lab, gpus, ctx, MEASURED)
            print(f"| {lab} | {fmt_n(n)} | {ring:.2f} | {s:.2f} | {ring / s:.2f}x "
                  f"| {ideal_ratio:.2f}x |")
    print()
    print("| decode | context | ms/token | moving tensors (ms/token) | share |")
    print("|---|---|---|---|---|")
    for lab, ctx, ms, comm in decode:
        print(f"| {lab} | {fmt_n(ctx)} | {ms:.2f} | {comm:.3f} | {100 * comm / ms:.1f}% |")

    if len(sys.argv) > 2:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        for lab, style in [("dense", "k-o"), ("ring", "r-s"), ("star B=32K shared", "b-^"),
                           ("star B=32K recompute", "c-v"), ("star B=N/4 shared", "g-D")]:
            ns = [n for n in lengths if (lab, n) in points]
            if not ns:
                continue
            g = points[(lab, ns[0])][2]
            ax.plot(ns, [points[(lab, n)][0] for n in ns], style,
                    label=f"{lab} ({g} GPU{'s' if g > 1 else ''})")
            ax.plot(ns, [ideal(lab, g, n - 64, MEASURED) for n in ns], style[0] + ":", alpha=0.5)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(lengths)
        ax.set_xticklabels([fmt_n(n) for n in lengths])
        ax.set_xlabel("context tokens")
        ax.set_ylabel("phase 1 (s)")
        ax.set_title(f"Phase 1 on {gpus} H200s, Llama-3.1-8B shape (dotted: ideal at measured "
                     "kernel rates)", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(sys.argv[2])


if __name__ == "__main__":
    main()
