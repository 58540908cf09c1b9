#!/usr/bin/env python3
"""Writes the dequantisation fixtures under tests/fixtures/quant/ using gguf-py as the oracle.

The C++ dequantisers (src/model/ggml_types.cpp) were written from the ggml block layouts; these
fixtures hold gguf-py's own dequantisation of the same bytes, so tests/gguf_test.cpp checks our
code against an implementation nobody here wrote.

For each ggml type there is one file, tests/fixtures/quant/<TYPE>.bin, holding one or more records.
A record, all little-endian:

    char[4]  magic "SAQF"
    u32      ggml type id (the GGUF numbering: F32=0, F16=1, Q4_0=2, ...)
    u32      kind: 0 = random block bytes, 1 = gguf-py quantised random floats, 2 = special values
    u32      n_elements (a whole number of blocks)
    u32      n_bytes    (the raw size of those blocks)
    u8[n_bytes]         raw ggml blocks
    f32[n_elements]     gguf.quants.dequantize of those blocks

Random-byte blocks get their fp16 scale fields overwritten with finite values (some subnormal), so
every expected output is finite, and every bit pattern of the quant fields is exercised.

Run:  /work/venv/bin/python tools/make_quant_fixtures.py   (needs the PyPI packages gguf, numpy)
The output is deterministic (fixed seed); keep the total under 150 KB.
"""

import pathlib
import struct

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T
from gguf import quants

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "quant"

# Byte offsets of the fp16 scale fields inside one block, per ggml-common.h.
SCALE_OFFSETS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}
# Types gguf-py can quantise as well as dequantise.
QUANTISABLE = [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]

KIND_RANDOM_BYTES, KIND_QUANTISED, KIND_SPECIAL = 0, 1, 2


def record(qtype: T, kind: int, raw: np.ndarray) -> bytes:
    # gguf-py returns F16/F32 "quantised" data as float arrays: take their bytes, do not cast.
    raw = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)
    block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
    assert raw.size % block_bytes == 0
    n = raw.size // block_bytes * block_elems
    expected = quants.dequantize(raw, qtype).astype(np.float32).reshape(-1)
    assert expected.size == n
    header = b"SAQF" + struct.pack("<4I", int(qtype), kind, n, raw.size)
    return header + raw.tobytes() + expected.astype("<f4").tobytes()


def random_scales(rng: np.random.Generator, count: int) -> np.ndarray:
    """Finite fp16 values over a wide range of magnitudes, including subnormals and zero."""
    mags = rng.uniform(0.5, 1.0, count) * np.exp2(rng.integers(-20, 2, count).astype(np.float64))
    vals = (mags * rng.choice([-1.0, 1.0], count)).astype(np.float16)
    vals[0] = np.float16(0.0)
    return vals


def random_blocks(rng: np.random.Generator, qtype: T, n_blocks: int) -> np.ndarray:
    _, block_bytes = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, (n_blocks, block_bytes), dtype=np.uint8)
    for off in SCALE_OFFSETS[qtype]:
        scales = random_scales(rng, n_blocks)
        blocks[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return blocks


def main() -> None:
    rng = np.random.default_rng(20240607)
    OUT.mkdir(parents=True, exist_ok=True)
    files = {}

    for qtype in SCALE_OFFSETS:
        block_elems, _ = GGML_QUANT_SIZES[qtype]
        n_blocks = 8 if block_elems == 32 else 4
        files[qtype] = [record(qtype, KIND_RANDOM_BYTES, random_blocks(rng, qtype, n_blocks))]

    # Float types: arbitrary finite values plus the special patterns a converter can get wrong.
    f32 = (rng.standard_normal(256) * np.exp2(rng.integers(-30, 30, 256))).astype("<f4")
    f32_special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-40, 3.4e38], "<f4")
    files[T.F32] = [record(T.F32, KIND_RANDOM_BYTES, f32.view(np.uint8)),
                    record(T.F32, KIND_SPECIAL, f32_special.view(np.uint8))]

    f16_bits = rng.integers(0, 0x7C00, 256, dtype=np.uint16)  # finite, non-negative
    f16_bits |= rng.integers(0, 2, 256, dtype=np.uint16) << 15
    f16_special = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0200, 0x0400, 0x7BFF,
                            0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x3C00, 0xBC00, 0x3555, 0x0155],
                           dtype="<u2")
    files[T.F16] = [record(T.F16, KIND_RANDOM_BYTES, f16_bits.astype("<u2").view(np.uint8)),
                    record(T.F16, KIND_SPECIAL, f16_special.view(np.uint8))]

    # bf16 is a plain shift, so every bit pattern is fair, NaNs and infinities included.
    bf16_bits = rng.integers(0, 0x10000, 256, dtype=np.uint16).astype("<u2")
    files[T.BF16] = [record(T.BF16, KIND_RANDOM_BYTES, bf16_bits.view(np.uint8))]

    for qtype in QUANTISABLE:
        x = (rng.standard_normal(256) * rng.uniform(0.01, 3.0)).astype(np.float32)
        x[:32] = 0.0  # an all-zero block: d = 0
        files[qtype].append(record(qtype, KIND_QUANTISED, quants.quantize(x, qtype)))

    total = 0
    for qtype, recs in files.items():
        path = OUT / f"{qtype.name}.bin"
        data = b"".join(recs)
        path.write_bytes(data)
        total += len(data)
        print(f"{path.relative_to(OUT.parent.parent.parent)}: {len(recs)} records, {len(data)} bytes")
    assert total < 150_000, f"fixtures are {total} bytes; keep them under 150 KB"
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
