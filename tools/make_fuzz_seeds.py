#!/usr/bin/env python3
"""Writes the seed inputs of the libFuzzer harnesses (tests/fuzz/seeds/<harness>/) from the test
fixtures, in the layouts the harnesses read (tests/fuzz/*_fuzz.cpp say which).

Seeds are starting points for mutation, not expected results: each one is a small valid input
(most of them cut down from a fixture), so that the fuzzer starts from files that get past the
first checks. scripts/fuzz.sh adds the fixtures that are small enough to be seeds as they are.

  gguf/              one GGUF per tensor type starattn dequantises (a one-row tensor whose bytes
                     are the quant fixture's first blocks), with metadata of every value type
  safetensors/       F32, F16 and BF16 tensors, one of zero elements, and __metadata__
  tokenize/          the tokenizer fixture's strings, behind the byte that picks the tokenizer
  eval_results/      the first lines of each results.jsonl fixture
  chat_template/     each chat template fixture and Jinja case, NUL, then a conversation
  openai_request/    request bodies of each endpoint's features

Run:  /work/venv/bin/python tools/make_fuzz_seeds.py   (needs the PyPI packages gguf, numpy,
safetensors). Deterministic; keep the total under 150 KB.
"""

import json
import pathlib
import shutil
import struct

import numpy as np
import gguf
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T
from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
OUT = ROOT / "tests" / "fuzz" / "seeds"

TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K,
         T.Q5_K, T.Q6_K]


def first_record_blocks(qtype, n_blocks):
    # tests/fixtures/quant/<TYPE>.bin: "SAQF", type, kind, n_elements, n_bytes, raw, expected.
    data = (FIX / "quant" / f"{qtype.name}.bin").read_bytes()
    magic, tid, _kind, _n, n_bytes = struct.unpack_from("<4sIIII", data, 0)
    assert magic == b"SAQF" and tid == qtype.value
    block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
    raw = data[20:20 + n_bytes]
    n_blocks = min(n_blocks, len(raw) // block_bytes)
    return np.frombuffer(raw[:n_blocks * block_bytes], dtype=np.uint8), n_blocks * block_elems


def write_gguf_seeds():
    out = OUT / "gguf"
    out.mkdir(parents=True)
    for qtype in TYPES:
        w = gguf.GGUFWriter(str(out / f"{qtype.name.lower()}.gguf"), "llama")
        w.add_uint32("llama.block_count", 1)
        w.add_int32("test.i32", -7)
        w.add_uint64("test.u64", 2**40)
        w.add_int64("test.i64", -(2**40))
        w.add_uint8("test.u8", 200)
        w.add_int8("test.i8", -3)
        w.add_uint16("test.u16", 60000)
        w.add_int16("test.i16", -300)
        w.add_float32("test.f32", 0.5)
        w.add_float64("test.f64", -1e300)
        w.add_bool("test.bool", True)
        w.add_array("test.strings", ["a", "bb", ""])
        w.add_array("test.ints", [1, 2, 3])
        w.add_string("tokenizer.ggml.model", "gpt2")
        w.add_array("tokenizer.ggml.tokens", ["a", "b", "ab", "<|eot_id|>"])
        w.add_array("tokenizer.ggml.token_type", [1, 1, 1, 3])
        w.add_array("tokenizer.ggml.merges", ["a b"])
        w.add_uint32("tokenizer.ggml.bos_token_id", 3)
        # One block of a quantised type, 16 elements of a float type.
        raw, _ = first_record_blocks(qtype, 16 if GGML_QUANT_SIZES[qtype][0] == 1 else 1)
        w.add_tensor("w", raw.reshape(1, -1), raw_dtype=qtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


def write_safetensors_seeds():
    out = OUT / "safetensors"
    out.mkdir(parents=True)
    rng = np.random.default_rng(7)
    save_file({"a": rng.standard_normal((2, 3)).astype(np.float32),
               "b": rng.standard_normal((4,)).astype(np.float16),
               "empty": np.zeros((0, 3), dtype=np.float32),
               "i": np.arange(3, dtype=np.int32)},
              str(out / "mixed.safetensors"), metadata={"format": "pt"})
    # BF16 as safetensors stores it (numpy has no bfloat16): the high half of each fp32.
    f32 = rng.standard_normal((3, 2)).astype(np.float32)
    bf16 = (f32.view(np.uint32) >> 16).astype(np.uint16)
    header = json.dumps({"model.embed_tokens.weight": {"dtype": "BF16", "shape": [3, 2],
                                                       "data_offsets": [0, bf16.nbytes]}})
    header = header.encode() + b" " * (-len(header) % 8)
    (out / "bf16.safetensors").write_bytes(struct.pack("<Q", len(header)) + header
                                           + bf16.tobytes())


def write_tokenize_seeds():
    out = OUT / "tokenize"
    out.mkdir(parents=True)
    strings = json.loads((FIX / "tokenizer" / "strings.json").read_text())
    texts = [s.encode() for s in strings["strings"] if 0 < len(s.encode()) <= 200]
    texts += [bytes.fromhex(h) for h in strings["invalid_utf8_hex"]]
    texts += [b"<|begin_of_text|>Hi<|eot_id|>", b"<s> [INST] Hi [/INST]</s>"]
    # Every fourth text, encoded by each of the four tokenizers with and without special
    # tokens parsed; and decoding of a few id runs.
    for i, t in enumerate(texts[::4]):
        (out / f"text{i:03d}").write_bytes(bytes([i % 8]) + t)
    for sel in range(4):
        ids = struct.pack("<8i", 0, 1, 2, 3, 100, 1000, 0x40000000 | 5, -1)
        (out / f"ids{sel}").write_bytes(bytes([8 | sel]) + ids)


def write_eval_seeds():
    out = OUT / "eval_results"
    out.mkdir(parents=True)
    for d in sorted((FIX / "eval").iterdir()):
        lines = (d / "results.jsonl").read_text().splitlines(keepends=True)
        (out / f"{d.name}.jsonl").write_text("".join(lines[:3]))


def write_chat_seeds():
    out = OUT / "chat_template"
    out.mkdir(parents=True)
    t = json.loads((FIX / "chat" / "templates.json").read_text())
    conv = t["conversations"][2]
    tail = b"".join(b"\0" + m["role"].encode() + b"\0" + m["content"].encode() for m in conv)
    for i, (name, tmpl) in enumerate(t["templates"].items()):
        (out / f"template{i:02d}").write_bytes(tmpl["source"].encode() + tail)
    cases = json.loads((FIX / "chat" / "jinja_cases.json").read_text())["cases"]
    for i, case in enumerate(cases[::3]):
        (out / f"case{i:03d}").write_bytes(case["template"].encode() + tail)


def write_openai_seeds():
    out = OUT / "openai_request"
    out.mkdir(parents=True)
    bodies = [
        {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "Hi"}],
         "max_tokens": 16, "temperature": 0.7, "top_p": 0.9, "seed": 5, "stop": ["\n", "END"],
         "stream": True, "stream_options": {"include_usage": True}, "logprobs": True,
         "top_logprobs": 2},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
         "max_completion_tokens": 4, "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1,
         "n": 1, "presence_penalty": 0, "response_format": {"type": "text"}, "tools": [],
         "context_id": "ctx-1"},
        {"model": "m", "prompt": "Once upon a time", "max_tokens": 8, "logprobs": 3,
         "stop": "\n", "echo": False, "context": "A document."},
        {"prompt": ["one prompt"], "repeat_penalty": 1.2, "seed": -1},
        {"text": "A long document.", "chat": True, "system": "You answer from the document.",
         "model": "m"},
    ]
    for i, b in enumerate(bodies):
        (out / f"body{i}.json").write_text(json.dumps(b))


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    write_gguf_seeds()
    write_safetensors_seeds()
    write_tokenize_seeds()
    write_eval_seeds()
    write_chat_seeds()
    write_openai_seeds()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {sum(1 for p in OUT.rglob('*') if p.is_file())} seeds, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
