#!/usr/bin/env python3
"""How often each method of a `starattn eval` results file gives exactly dense's answer.

Usage: tools/eval_agreement.py OUT/results.jsonl

For every method, over the samples it shares with the dense run: the share of identical
predictions and the mean score of both on those samples. An exact method (ring) should agree on
every sample up to floating-point ties; Star Attention's approximation shows as disagreement.
Standard library only.
"""
import collections
import json
import sys


def main(path):
    by_method = collections.defaultdict(dict)
    dense = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # the partial last line of an interrupted run
            by_method[r["method"]][r["id"]] = r
            if r["attn"] == "dense" and dense is None:
                dense = r["method"]
    if dense is None:
        sys.exit("no dense results in " + path)
    print("| method | samples shared with dense | same answer as dense | score | dense score |")
    print("|---|---:|---:|---:|---:|")
    for method, recs in by_method.items():
        shared = [i for i in recs if i in by_method[dense]]
        if not shared:
            continue
        same = sum(recs[i]["pred"] == by_method[dense][i]["pred"] for i in shared)
        score = 100.0 * sum(recs[i]["score"] for i in shared) / len(shared)
        dscore = 100.0 * sum(by_method[dense][i]["score"] for i in shared) / len(shared)
        print(f"| {method} | {len(shared)} | {same} ({100.0 * same / len(shared):.0f}%) "
              f"| {score:.1f} | {dscore:.1f} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
