#!/usr/bin/env python3
"""What the HTTP layer costs: a long context encoded once through `starattn serve`, then the time
to first token of short questions about it, measured by the official openai client.

  serve_bench.py --bin build/starattn --tokenizer TOKENIZER.json [--model random:llama-3.1-8b]
                 [--device cuda] [--context-tokens 131072] [--question-tokens 64] [--repeats 7]

The document is prose repeated to the wanted length, counted with Hugging Face `tokenizers` on
the same tokenizer.json the server uses. Prints one JSON line with the numbers last.
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--model", default="random:llama-3.1-8b")
    p.add_argument("--device", default="cuda")
    p.add_argument("--context-tokens", type=int, default=131072)
    p.add_argument("--question-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()

    import openai
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(args.tokenizer)
    words = open(os.path.join(ROOT, "examples", "harbor_report.txt")).read().split()
    doc = make_text(tok, words, args.context_tokens)
    questions = [make_text(tok, words[97 * k:] + words, args.question_tokens)
                 for k in range(args.repeats)]

    port = free_port()
    log = open(f"/tmp/serve_bench_{port}.log", "w")
    srv = subprocess.Popen([args.bin, "serve", "-m", args.model, "--device", args.device,
                            "--tokenizer", args.tokenizer, "--port", str(port)],
                           stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 600
        while True:
            if srv.poll() is not None:
                sys.exit(f"the server exited: {open(log.name).read()}")
            try:
                urllib.request.urlopen(base + "/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("the server did not come up")
                time.sleep(0.5)
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
        srv.terminate()
        try:
            srv.wait(60)
        except subprocess.TimeoutExpired:
            srv.kill()


if __name__ == "__main__":
    main()
