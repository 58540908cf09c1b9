"""Summarises compare.sh's runs.jsonl: the median over the pairs of each measure for starattn and
llama.cpp, their ratio, and the load averages seen (a shared machine: read the numbers with them).
Usage: summarise.py runs.jsonl"""
import json
import statistics
import sys
from collections import defaultdict


def values(rec):
    """(name, value, unit) rows of one run."""
    r, m = rec["result"], rec["measure"]
    if rec["engine"] == "starattn":
        if m == "prefill":
            return [(f"prefill {p['tokens']}", p["tok_s"], "tok/s") for p in r["prefill"]]
        if m.startswith("decode@"):
            return [(f"decode after {m[7:]}", r["decode"]["tok_s"], "tok/s")]
    else:
        if m == "prefill":
            return [(f"prefill {t['n_prompt']}", t["avg_ts"], "tok/s") for t in r]
        if m.startswith("decode@"):
            return [(f"decode after {t['n_depth']}", t["avg_ts"], "tok/s") for t in r]
    if m == "readme_job":
        rows = [("README job wall", r["wall_s"], "s"), ("README job peak RSS",
                                                        r["max_rss_kib"] / 1024, "MiB")]
        rows.append(("README job answer found", 1.0 if r["answer_found"] else 0.0, "runs"))
        return rows
    return []


def main():
    runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    table = defaultdict(list)
    loads = defaultdict(list)
    for rec in runs:
        for name, v, unit in values(rec):
            table[(rec["threads"], name, unit, rec["engine"])].append(v)
            loads[rec["threads"]].append(rec["load"])
    print("| threads | measure | starattn | llama.cpp | starattn / llama.cpp | runs |")
    print("|---|---|---|---|---|---|")
    keys = sorted({(t, n, u) for (t, n, u, _) in table})
    for t, name, unit in keys:
        a = table.get((t, name, unit, "starattn"), [])
        b = table.get((t, name, unit, "llama.cpp"), [])
        if not a or not b:
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        if unit == "runs":
            print(f"| {t} | {name} | {sum(a):.0f}/{len(a)} | {sum(b):.0f}/{len(b)} | | |")
            continue
        # Speed ratios: > 1 means starattn is faster (for wall time, llama / starattn).
        ratio = mb / ma if unit == "s" else ma / mb
        what = "speed" if unit != "MiB" else "memory"
        print(f"| {t} | {name} | {ma:.2f} {unit} | {mb:.2f} {unit} | {ratio:.2f}x {what} | "
              f"{len(a)} |")
    for t, ls in sorted(loads.items()):
        print(f"\nload average (1 min) during the {t}-thread runs: min {min(ls):.1f}, median "
              f"{statistics.median(ls):.1f}, max {max(ls):.1f}")


if __name__ == "__main__":
    main()
