#!/usr/bin/env python3
"""Paired comparison of two methods in one `starattn eval` results.jsonl.

Both methods ran the same samples (same seed, ids), so each sample is a pair. Prints, per
length and overall, B's score as a fraction of A's, a 95% bootstrap interval of that ratio
(samples resampled as pairs), and how many samples scored higher, lower or gave the same text.

Usage: tools/paired_accuracy.py RESULTS.jsonl "METHOD A" "METHOD B" [--resamples N]
  e.g. tools/paired_accuracy.py tests/fixtures/eval/smollm2_gpu_fp8_50/results.jsonl \\
         dense "dense kv=fp8"
"""
import argparse
import json
import random
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--resamples", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    by = {}
    with open(args.results) as f:
        for line in f:
            r = json.loads(line)
            by[(r["method"], r["id"])] = r
    ids = sorted(i for (m, i) in by if m == args.a and (args.b, i) in by)
    if not ids:
        sys.exit(f"no samples with both methods {args.a!r} and {args.b!r}")

    rng = random.Random(args.seed)

    def report(label, sel):
        xa = [by[(args.a, i)]["score"] for i in sel]
        xb = [by[(args.b, i)]["score"] for i in sel]
        if sum(xa) == 0:
            print(f"{label}: {args.a} scores 0, no ratio")
            return
        ratios = []
        for _ in range(args.resamples):
            k = [rng.randrange(len(sel)) for _ in sel]
            den = sum(xa[j] for j in k)
            if den > 0:
                ratios.append(sum(xb[j] for j in k) / den)
        ratios.sort()
        lo, hi = ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]
        up = sum(y > x for x, y in zip(xa, xb))
        down = sum(y < x for x, y in zip(xa, xb))
        same = sum(by[(args.a, i)]["pred"] == by[(args.b, i)]["pred"] for i in sel)
        print(f"{label}: {100 * sum(xb) / sum(xa):.1f}% of {args.a} "
              f"(95% interval {100 * lo:.1f}-{100 * hi:.1f}%), {len(sel)} samples: "
              f"{up} higher, {down} lower, {same} the same text")

    for length in sorted({by[(args.a, i)]["length"] for i in ids}):
        report(str(length), [i for i in ids if by[(args.a, i)]["length"] == length])
    report("all", ids)


if __name__ == "__main__":
    main()
