#!/usr/bin/env python3
"""What the HTTP layer costs: a long context encoded once through `starattn serve`, then the time
to first token of short questions about it, measured by the official openai client.

  serve_bench.py --bin build/starattn --tokenizer TOKENIZER.json [--model random:llama-3.1-8b]
                 [--device cuda] [--context-tokens 131072] [--question-tokens 64] [--repeats 7]
  serve_bench.py --bin build/starattn --document examples/harbor_report.txt --device cpu
                 [--model MODEL] [--questions "Q1|Q2|Q3"]

The first form makes the document from prose repeated to the wanted length, counted with Hugging
Face `tokenizers` on the same tokenizer.json the server uses, and asks questions of a given
length. The second takes a document and chat questions as they are, and times the first question
(which encodes the document: its time to first token includes phase 1) against the later ones on
the cached context. Prints one JSON line with the numbers last.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_text(tok, words, n_tokens):
    """The longest run of `words` (cycled) that encodes to at most n_tokens tokens."""
    def count(n):
        return len(tok.encode(" ".join(words[i % len(words)] for i in range(n))).ids)
    lo, hi = 1, 2 * n_tokens + 1  # every word is at least one token
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if count(mid) <= n_tokens else (lo, mid - 1)
    return " ".join(words[i % len(words)] for i in range(lo))


def start(cmd):
    """Starts the server on a free port; returns (process, base URL, log file) once it answers."""
    port = free_port()
    log = open(f"/tmp/serve_bench_{port}.log", "w")
    srv = subprocess.Popen(cmd + ["--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 600
    while True:
        if srv.poll() is not None:
            sys.exit(f"the server exited: {open(log.name).read()}")
        try:
            urllib.request.urlopen(base + "/health", timeout=2)
            return srv, base, log
        except OSError:
            if time.time() > deadline:
                sys.exit("the server did not come up")
            time.sleep(0.5)


def stop(srv):
    srv.terminate()
    try:
        srv.wait(60)
    except subprocess.TimeoutExpired:
        srv.kill()


def ttft(client, model, **kw):
    """(seconds to the first streamed token, seconds to the end) of one request."""
    t0, first = time.time(), None
    for ch in client.chat.completions.create(model=model, stream=True, temperature=0, **kw):
        if first is None and ch.choices and ch.choices[0].delta.content:
            first = time.time() - t0
    return (first if first is not None else time.time() - t0), time.time() - t0


def chat_questions(args, cmd, openai):
    """A real document and real questions: the first question brings the document inline (it is
    encoded then), the later ones name the cached context."""
    doc = open(args.document).read()
    questions = args.questions.split("|")
    srv, base, _ = start(cmd)
    try:
        client = openai.OpenAI(base_url=base + "/v1", api_key="none", timeout=900, max_retries=0)
        model = client.models.list().data[0].id
        msg = [{"role": "user", "content": questions[0]}]
        first, _ = ttft(client, model, messages=msg, max_tokens=4, extra_body={"context": doc})
        ctx = client.post("/contexts", body={"text": doc}, cast_to=object)  # found, not encoded
        later = [ttft(client, model, messages=[{"role": "user", "content": q}], max_tokens=4,
                      extra_body={"context_id": ctx["id"]})[0] for q in questions[1:]]
        result = {"context_tokens": ctx["tokens"], "phase1_seconds": ctx["seconds"],
                  "first_question_ttft_s": first, "later_ttft_median_s": statistics.median(later),
                  "later_ttft_s": later}
        print(f"{ctx['tokens']}-token document: first question {first:.2f} s to its first token "
              f"(phase 1 {ctx['seconds']:.2f} s of it); later questions on the cached context "
              f"{statistics.median(later):.3f} s (median of {len(later)})")
        print(json.dumps(result))
    finally:
        stop(srv)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--tokenizer", help="the synthetic form's tokenizer.json (not with --document)")
    p.add_argument("--model", help="default: random:llama-3.1-8b, or with --document starattn's")
    p.add_argument("--device", default="cuda")
    p.add_argument("--context-tokens", type=int, default=131072)
    p.add_argument("--question-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--document")
    p.add_argument("--questions", default="What is the password for the north gate?|"
                   "What did the Lantern carry on day 1?|Where did the Windrose come from on day 2?|"
                   "What was the weather on day 3?")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if not args.document and not args.tokenizer:
        p.error("--tokenizer is needed without --document")

    import openai
    cmd = [args.bin, "serve", "--device", args.device, "-t", str(args.threads)]
    if args.document:
        return chat_questions(args, cmd + (["-m", args.model] if args.model else []), openai)
    cmd += ["-m", args.model or "random:llama-3.1-8b"]
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(args.tokenizer)
    words = open(os.path.join(ROOT, "examples", "harbor_report.txt")).read().split()
    doc = make_text(tok, words, args.context_tokens)
    questions = [make_text(tok, words[97 * k:] + words, args.question_tokens)
                 for k in range(args.repeats)]
    srv, base, log = start(cmd + ["--tokenizer", args.tokenizer])
    try:
        client = openai.OpenAI(base_url=base + "/v1", api_key="none", timeout=900, max_retries=0)
        model = client.models.list().data[0].id
        t0 = time.time()
        ctx = client.post("/contexts", body={"text": doc, "chat": False}, cast_to=object)
        encode_wall = time.time() - t0
        print(f"context: {ctx['tokens']} tokens, phase 1 {ctx['seconds']:.3f} s "
              f"(client wall {encode_wall:.3f} s)", flush=True)

        ttft, total = [], []
        for q in questions + questions[:1]:  # the first round warms up
            t0 = time.time()
            first = None
            for ch in client.completions.create(model=model, prompt=q, max_tokens=4,
                                                temperature=0, stream=True,
                                                extra_body={"context_id": ctx["id"]}):
                if first is None and ch.choices and ch.choices[0].text:
                    first = time.time() - t0
            total.append(time.time() - t0)
            ttft.append(first if first is not None else total[-1])
        ttft, total = ttft[1:], total[1:]
        with urllib.request.urlopen(base + "/metrics") as r:
            metrics = r.read().decode()
        server_ttft = [line for line in metrics.splitlines()
                       if line.startswith("starattn_time_to_first_token_seconds")]
        result = {"context_tokens": ctx["tokens"], "phase1_seconds": ctx["seconds"],
                  "question_tokens": args.question_tokens,
                  "ttft_median_s": statistics.median(ttft), "ttft_min_s": min(ttft),
                  "ttft_max_s": max(ttft), "four_tokens_median_s": statistics.median(total),
                  "server_ttft": server_ttft}
        print(f"time to first token, {args.question_tokens}-token question on the cached context, "
              f"through HTTP (openai client, streamed): median {1e3 * result['ttft_median_s']:.1f} "
              f"ms (min {1e3 * min(ttft):.1f}, max {1e3 * max(ttft):.1f}) over {len(ttft)}")
        print(json.dumps(result))
    finally:
        stop(srv)


if __name__ == "__main__":
    main()
