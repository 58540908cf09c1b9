#!/usr/bin/env python3
"""Writes tests/fixtures/sampler/cases.json using Hugging Face transformers' logits processors as
the oracle for src/engine/sampler.cpp.

Each case holds a random logit vector, the tokens the sampler has seen (prompt and generated, in
order), the sampler options, and what transformers makes of them, applied in the order its
generate() applies them:

    RepetitionPenaltyLogitsProcessor -> TemperatureLogitsWarper -> TopKLogitsWarper
        -> TopPLogitsWarper -> MinPLogitsWarper

The repetition penalty's window (repeat_last_n, 0 = every token seen) is ours, not transformers':
the oracle is given only the last repeat_last_n tokens as its input_ids.

For sampling cases (temperature > 0) the fixture lists the surviving candidates, each with its
processed logit (penalised, divided by the temperature); every other token is -inf in
transformers' output. For greedy cases (temperature 0) it holds the argmax after the penalty,
which is all transformers' greedy search does with these options.

"logprobs" holds torch.log_softmax (float64) of two cases' raw logits and their most likely
tokens: the model's distribution that --logprobs reports.

No case sits on a knife's edge: a case is redrawn (next seed) when a cumulative probability is
within 1e-4 of the top-p threshold, a probability ratio within 1e-4 of min_p, or two logits at
the top-k or greedy boundary within 1e-5 of each other (unless the case is about ties), so
float32 (transformers) and double (ours) rounding cannot disagree.

Run:  /work/venv/bin/python tools/make_sampler_fixtures.py   (needs torch, transformers)
The output is deterministic (fixed seeds) and about 35 KB.
"""

import json
import pathlib

import numpy as np
import torch
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sampler"

# name, vocab, logit scale, options; "ties" puts two equal logits at the top-k boundary;
# "boost_seen" makes the most recent seen token the raw argmax (so a penalty has to move it);
# "boost_old" makes a token seen only before the window the raw argmax. Unless a case says
# "cuts_nothing", every cut it turns on must remove tokens, and a penalty (and its window) must
# change the result (seeds are redrawn until they do).
CASES = [
    dict(name="greedy_penalty_moves_argmax", vocab=48, temperature=0.0, repeat_penalty=1.5,
         repeat_last_n=64, boost_seen=True),
    dict(name="greedy_window_excludes_old_token", vocab=48, temperature=0.0, repeat_penalty=1.5,
         repeat_last_n=4, boost_old=True),
    dict(name="temperature_only", vocab=40, temperature=0.7),
    # Every token survives, so every penalised logit shows, negative ones included.
    dict(name="penalty_alone", vocab=40, temperature=1.0, repeat_penalty=1.4, repeat_last_n=0,
         cuts_nothing=True),
    dict(name="top_k", vocab=40, temperature=1.0, top_k=5),
    dict(name="top_k_ties_kept", vocab=40, temperature=1.0, top_k=3, ties=True),
    dict(name="top_k_above_vocab", vocab=12, temperature=0.9, top_k=50, cuts_nothing=True),
    dict(name="top_p", vocab=50, temperature=0.8, top_p=0.9),
    dict(name="min_p", vocab=50, temperature=1.2, min_p=0.1),
    dict(name="min_p_one_keeps_the_max", vocab=30, temperature=1.0, min_p=1.0),
    dict(name="min_p_after_top_k", vocab=50, temperature=0.5, top_k=8, min_p=0.3, scale=0.5),
    dict(name="all_cuts_with_penalty", vocab=60, temperature=0.9, top_k=20, top_p=0.95, min_p=0.1,
         repeat_penalty=1.2, repeat_last_n=0),
    dict(name="reward_repeats", vocab=60, temperature=1.0, top_p=0.5, repeat_penalty=0.8,
         repeat_last_n=16),
    dict(name="penalty_window_then_top_p", vocab=60, temperature=1.3, top_p=0.7, min_p=0.15,
         repeat_penalty=1.8, repeat_last_n=8),
    # Flat enough that top-p keeps several hundred candidates (the sampler's sort grows).
    dict(name="wide_nucleus", vocab=700, temperature=1.5, top_p=0.95, scale=0.6),
]


def f32_text(x):
    """Shortest text that reads back as exactly this float32."""
    s = "%.9g" % np.float32(x)
    assert np.float32(float(s)) == np.float32(x)
    return float(s)


def oracle(logits, seen, c):
    scores = torch.tensor(np.asarray(logits, dtype=np.float32))[None, :]
    window = seen[-c["repeat_last_n"]:] if c["repeat_last_n"] > 0 else seen
    if c["repeat_penalty"] != 1.0 and window:
        proc = RepetitionPenaltyLogitsProcessor(penalty=float(c["repeat_penalty"]))
        scores = proc(torch.tensor([window]), scores)
    if c["temperature"] == 0.0:
        return scores, {"argmax": int(torch.argmax(scores[0]))}
    warpers = []
    if c["temperature"] != 1.0:
        warpers.append(TemperatureLogitsWarper(float(c["temperature"])))
    if c["top_k"] > 0:
        warpers.append(TopKLogitsWarper(top_k=c["top_k"]))
    if c["top_p"] < 1.0:
        warpers.append(TopPLogitsWarper(top_p=float(c["top_p"])))
    if c["min_p"] > 0.0:
        warpers.append(MinPLogitsWarper(min_p=float(c["min_p"])))
    stages = [scores]
    for w in warpers:
        stages.append(w(None, stages[-1].clone()))
    out = stages[-1][0]
    keep = torch.isfinite(out).nonzero().flatten().tolist()
    return stages, {"candidates": [[i, f32_text(out[i].item())] for i in keep]}


def every_cut_bites(stages, c):
    """True when each of top-k, top-p and min-p that is on removes at least one token."""
    kept = [int(torch.isfinite(s).sum()) for s in stages]
    i = 1 + (c["temperature"] != 1.0)
    for on in (c["top_k"] > 0, c["top_p"] < 1.0, c["min_p"] > 0.0):
        if on:
            if kept[i] >= kept[i - 1]:
                return False
            i += 1
    return True


def near_an_edge(stages, c):
    """True when float rounding could decide a cut (see the module docstring)."""
    if c["temperature"] == 0.0:
        top2 = torch.topk(stages[0][0].double(), 2).values
        return (top2[0] - top2[1]).item() < 1e-5
    i = 1 + (c["temperature"] != 1.0)
    if c["top_k"] > 0 and not c.get("ties") and c["top_k"] < c["vocab"]:
        s = torch.sort(stages[i - 1][0].double(), descending=True).values
        if (s[c["top_k"] - 1] - s[c["top_k"]]).item() < 1e-5:
            return True
    i += c["top_k"] > 0
    if c["top_p"] < 1.0:
        s = torch.sort(stages[i - 1][0].double()).values
        cum = torch.softmax(s, 0).cumsum(0)
        if (cum - (1.0 - c["top_p"])).abs().min().item() < 1e-4:
            return True
    i += c["top_p"] < 1.0
    if c["min_p"] > 0.0 and c["min_p"] < 1.0:
        s = stages[i - 1][0].double()
        ratio = torch.exp(s - s.max())
        if ((ratio - c["min_p"]).abs() / c["min_p"]).min().item() < 1e-4:
            return True
    return False


def make_case(spec, seed):
    c = dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
             repeat_last_n=64, scale=2.0)
    c.update(spec)
    rng = np.random.default_rng(seed)
    n = c["vocab"]
    logits = (rng.standard_normal(n) * c["scale"]).astype(np.float32)
    # Seen tokens with repeats; some ids more than once.
    seen = [int(t) for t in rng.integers(0, n, size=24)]
    if c.get("ties"):
        order = np.argsort(-logits)
        logits[order[3]] = logits[order[2]]  # 3rd and 4th best tie at the top-3 boundary
    if c.get("boost_seen"):
        logits[seen[-1]] = logits.max() + 0.5
    if c.get("boost_old"):
        old = next(t for t in seen[:-c["repeat_last_n"]] if t not in seen[-c["repeat_last_n"]:])
        logits[old] = logits.max() + 0.5
    stages, expect = oracle(logits, seen, c)
    if c["temperature"] == 0.0:
        stages = [stages]
    if near_an_edge(stages, c):
        return None
    if c["temperature"] > 0.0 and not c.get("cuts_nothing") and not every_cut_bites(stages, c):
        return None
    # The penalty, and its window, must change the answer, or the case would not test them.
    # (A boost_old case is about a token the window leaves unpenalised: there only the window
    # must matter.)
    if c["repeat_penalty"] != 1.0:
        if not c.get("boost_old") and oracle(logits, seen, dict(c, repeat_penalty=1.0))[1] == expect:
            return None
        if 0 < c["repeat_last_n"] < len(seen) and \
                oracle(logits, seen, dict(c, repeat_last_n=0))[1] == expect:
            return None
    case = {k: c[k] for k in ("name", "temperature", "top_k", "top_p", "min_p", "repeat_penalty",
                              "repeat_last_n")}
    case["seen"] = seen
    case["logits"] = [f32_text(x) for x in logits]
    case.update(expect)
    return case


def logprob_case(cases, name, k, with_all):
    """torch's log_softmax (float64) of a case's raw logits, the model's distribution, and its k
    best tokens; "all" (every token's) only when with_all, to keep the fixture small."""
    logits = next(c["logits"] for c in cases if c["name"] == name)
    lp = torch.log_softmax(torch.tensor(logits, dtype=torch.float64), 0)
    top = torch.topk(lp, k + 1)
    assert top.values[k - 1] - top.values[k] > 1e-6  # no tie at the cut
    out = {"case": name, "k": k,
           "top": [[int(i), float("%.9g" % v)] for v, i in zip(top.values[:k], top.indices[:k])]}
    if with_all:
        out["all"] = [float("%.9g" % v) for v in lp]
    return out


def main():
    cases = []
    for k, spec in enumerate(CASES):
        seed = 1000 * k
        while (case := make_case(spec, seed)) is None:
            seed += 1
            assert seed < 1000 * k + 500, f"{spec['name']}: no usable seed; change its options"
        cases.append(case)
        what = case.get("argmax", len(case.get("candidates", [])))
        print(f"{case['name']}: seed {seed}, {'argmax' if 'argmax' in case else 'kept'} {what}")
    # Check the cases do what their names promise, so the fixture cannot quietly lose its point.
    by = {c["name"]: c for c in cases}
    raw_best = lambda c: int(np.argmax(c["logits"]))
    assert by["greedy_penalty_moves_argmax"]["argmax"] != raw_best(by["greedy_penalty_moves_argmax"])
    assert by["greedy_window_excludes_old_token"]["argmax"] == raw_best(
        by["greedy_window_excludes_old_token"])
    assert len(by["top_k_ties_kept"]["candidates"]) == 4
    pa = by["penalty_alone"]
    assert any(pa["logits"][t] < 0 for t in pa["seen"]) and any(pa["logits"][t] > 0 for t in pa["seen"])
    assert len(by["wide_nucleus"]["candidates"]) > 300
    assert len(by["min_p_one_keeps_the_max"]["candidates"]) == 1
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {"generator": "tools/make_sampler_fixtures.py",
           "order": "repetition_penalty, temperature, top_k, top_p, min_p", "cases": cases,
           "logprobs": [logprob_case(cases, "top_p", 5, True),
                        logprob_case(cases, "wide_nucleus", 20, False)]}
    (OUT / "cases.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {OUT / 'cases.json'} ({(OUT / 'cases.json').stat().st_size} bytes)")


if __name__ == "__main__":
    main()
