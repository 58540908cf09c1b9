#!/usr/bin/env python3
"""Writes tests/fixtures/fp8/e4m3.bin: FP8 E4M3 ("e4m3fn") conversions by PyTorch's
torch.float8_e4m3fn, the oracle for src/attention/kv_format.cpp.

The file (little-endian):
  "SAF8" | u32 version (1)
  u32 n | f32 x[n] | u8 e4m3(x)[n]             fp32 -> E4M3 (round to nearest even, saturating)
  f32 value[256]                               E4M3 byte b -> fp32
  u32 rows | u32 heads | u32 head_dim
  f32 x[rows, heads, head_dim]                 KV rows to quantise, one scale per (row, head)
  f32 scale[rows, heads]                       amax / 448
  u8 q[rows, heads, head_dim]                  e4m3(x / scale), 0 where the scale is 0

Usage: /work/venv/bin/python tools/make_fp8_fixtures.py [out_dir]
"""

import os
import struct
import sys

import numpy as np
import torch

FP8_MAX = np.float32(448.0)


def e4m3_bytes(x: np.ndarray) -> np.ndarray:
    return torch.from_numpy(x.astype(np.float32)).to(torch.float8_e4m3fn).view(torch.uint8).numpy()


def scalar_inputs(rng: np.random.Generator) -> np.ndarray:
    vals = [0.0, -0.0, 448.0, -448.0, 449.0, 463.99, 464.0, 465.0, 500.0, 1e30, -1e30,
            np.inf, -np.inf, np.nan, 2.0**-9, 2.0**-10, 1.5 * 2.0**-10, 2.0**-6, 2.0**-7,
            0.015624, 0.0156249, 0.01562501, 1e-30, -1e-30, 2.0**-149]
    # Every representable value, the midpoints between neighbours (ties: round to even) and
    # values just either side of each midpoint.
    reps = np.unique(np.abs(torch.arange(256, dtype=torch.uint8).view(torch.float8_e4m3fn)
                            .to(torch.float32).numpy()))
    reps = reps[np.isfinite(reps)]
    mids = (reps[:-1].astype(np.float64) + reps[1:]) / 2
    for v in np.concatenate([reps, mids]):
        vals += [v, -v, np.nextafter(np.float32(v), np.float32(0)),
                 np.nextafter(np.float32(v), np.float32(np.inf))]
    # Random magnitudes over the whole range (log-uniform), both signs.
    mags = np.exp(rng.uniform(np.log(2.0**-12), np.log(600.0), 1500))
    vals += list(mags * rng.choice([-1.0, 1.0], mags.size))
    return np.array(vals, dtype=np.float32)


def kv_rows(rng: np.random.Generator, rows: int, heads: int, head_dim: int) -> np.ndarray:
    x = rng.standard_normal((rows, heads, head_dim)).astype(np.float32)
    x[1] *= 1e-3  # small values: the scale, not the format's range, sets the precision
    x[2, :, 5] = 80.0  # an outlier channel, as real keys have
    x[3, 1] = 0.0  # a head of zeros: scale 0
    x[4] = rng.standard_t(2, (heads, head_dim)).astype(np.float32) * 10  # heavy tails
    x[5, 2, 7] = -1e4  # one huge value in a head
    return x


def main() -> None:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "fp8")
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(20261201)

    xs = scalar_inputs(rng)
    qs = e4m3_bytes(xs)
    table = torch.arange(256, dtype=torch.uint8).view(torch.float8_e4m3fn).to(torch.float32)

    rows, heads, head_dim = 6, 4, 64
    x = kv_rows(rng, rows, heads, head_dim)
    amax = np.abs(x).max(axis=2)
    scale = (amax / FP8_MAX).astype(np.float32)  # IEEE fp32 division
    safe = np.where(scale > 0, scale, np.float32(1))[:, :, None]
    q = e4m3_bytes((x / safe).astype(np.float32))  # fp32 / fp32, one rounding
    q[scale == 0] = 0

    path = os.path.join(out_dir, "e4m3.bin")
    with open(path, "wb") as f:
        f.write(b"SAF8" + struct.pack("<I", 1))
        f.write(struct.pack("<I", xs.size) + xs.tobytes() + qs.astype(np.uint8).tobytes())
        f.write(table.numpy().astype("<f4").tobytes())
        f.write(struct.pack("<III", rows, heads, head_dim))
        f.write(x.astype("<f4").tobytes() + scale.astype("<f4").tobytes())
        f.write(q.astype(np.uint8).tobytes())
    print(f"wrote {path}: {xs.size} scalars, {rows}x{heads}x{head_dim} rows "
          f"(torch {torch.__version__})")


if __name__ == "__main__":
    main()
