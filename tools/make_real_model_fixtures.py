#!/usr/bin/env python3
"""Greedy continuations of SmolLM2-135M-Instruct (the default model) by Hugging Face transformers.

Run:  /work/venv/bin/python tools/make_real_model_fixtures.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
Needs: pip install torch transformers gguf tokenizers

transformers reads the GGUF itself (gguf-py dequantises the Q4_1/Q8_0 tensors to fp32, the same
values starattn's reader produces) and runs its own fp32 Llama forward pass, so the fixture is an
oracle that shares no code with starattn. Prompts are tokenized by transformers' tokenizer
(converted from the GGUF), and their ids are stored, so the C++ test of the forward pass does not
depend on starattn's tokenizer; the tokenizer test can compare its own ids with them.

Output: tests/fixtures/smollm2/greedy.json
  [{"name": ..., "text": prompt text, "prompt_ids": [...], "greedy_ids": [N generated ids],
    "greedy_text": decoded continuation}, ...]
"""
import argparse
import json
import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

N_NEW = 40

PROMPTS = [
    ("chat_capital", "chat", "What is the capital of France? Answer in one sentence."),
    ("chat_story", "chat", "Write a short poem about the sea."),
    ("plain_fox", "plain", "The quick brown fox jumps over the lazy dog. The quick brown fox"),
    ("plain_code", "plain", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--out", default="tests/fixtures/smollm2/greedy.json")
    args = ap.parse_args()
    folder, name = os.path.split(os.path.abspath(args.model))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
    model.eval()
    out = []
    for pname, kind, text in PROMPTS:
        if kind == "chat":
            rendered = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                               add_generation_prompt=True)
        else:
            rendered = text
        ids = tok(rendered, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            gen = model.generate(torch.tensor([ids]), max_new_tokens=N_NEW, do_sample=False,
                                 eos_token_id=None, pad_token_id=0)
        new = gen[0, len(ids):].tolist()
        out.append({"name": pname, "text": rendered, "prompt_ids": ids, "greedy_ids": new,
                    "greedy_text": tok.decode(new)})
        print(pname, len(ids), "->", repr(tok.decode(new)))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
