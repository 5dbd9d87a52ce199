#!/usr/bin/env python3
"""Writes tests/data/core/dtype_tables.safetensors: PyTorch's answers for every
narrow-float bit pattern and for a few thousand fp32 inputs chosen to hit the
rounding edges, so tests/core/test_dtype.cpp can check core/dtype.cpp without Python.

Tensors (all decoded/encoded by torch on CPU):
  bf16_decode   F32[65536]  torch value of bf16 bit pattern i
  f16_decode    F32[65536]  same for fp16
  e4m3_decode   F32[256]    float8_e4m3fn
  e5m2_decode   F32[256]    float8_e5m2
  enc_input     F32[N]      fp32 inputs: ties, ties +- 1 ulp, subnormals, overflow
                            thresholds, inf/NaN, random values over the whole range
  enc_bf16, enc_f16         torch's x.to(dtype)
  enc_e4m3, enc_e5m2        torch's x.to(fp8). Not saturating for e5m2 (out of range
                            gives inf); torch 2.15's CPU cast saturates e4m3fn (older
                            releases gave NaN), the test accepts either
  enc_e4m3_sat, enc_e5m2_sat  torch's x.clamp(-max, max).to(fp8): the saturating cast
                            fp8 quantizers use and core/dtype.cpp implements

Usage: python3 tools/make_dtype_tables.py [out_path]
"""
import sys

import numpy as np
import torch
from safetensors.torch import save_file

import provenance

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/data/core/dtype_tables.safetensors"


def bits_to(dtype, n, int_dtype):
    return torch.arange(n, dtype=torch.int64).to(int_dtype).view(dtype)


def f32_bits(x):
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def from_bits(u):
    return np.asarray(u, dtype=np.uint32).view(np.float32)


def neighbours(vals):
    """Each fp32 value and its two fp32 neighbours (tie +- 1 ulp)."""
    v = np.asarray(vals, dtype=np.float32)
    v = v[np.isfinite(v)]
    return np.concatenate([v, np.nextafter(v, np.float32(np.inf)), np.nextafter(v, np.float32(-np.inf))])


def midpoints(decoded):
    """Midpoints between consecutive finite values of a narrow format (exact in fp32)."""
    d = np.unique(decoded[np.isfinite(decoded)].astype(np.float64))
    return ((d[1:] + d[:-1]) / 2).astype(np.float32)


def main():
    rng = np.random.default_rng(20240601)
    t = {}
    t["bf16_decode"] = bits_to(torch.bfloat16, 65536, torch.int16).float()
    t["f16_decode"] = bits_to(torch.float16, 65536, torch.int16).float()
    t["e4m3_decode"] = bits_to(torch.float8_e4m3fn, 256, torch.uint8).float()
    t["e5m2_decode"] = bits_to(torch.float8_e5m2, 256, torch.uint8).float()

    inputs = []
    # Specials and thresholds of every format.
    inputs += [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.0, -1.0,
               np.finfo(np.float32).max, -np.finfo(np.float32).max, np.finfo(np.float32).tiny,
               from_bits(1), from_bits(0x80000001), from_bits(0x007fffff)]
    for m in [448.0, 464.0, 480.0, 57344.0, 61440.0, 65504.0, 65520.0, 3.3895313892515355e38]:
        inputs += list(neighbours([m, -m]))
    inputs += [1e6, -1e6, 1e30, -1e30, 500.0, -500.0, 70000.0, 2 ** -6, 2 ** -9, 2 ** -10, 2 ** -14, 2 ** -16,
               2 ** -17, 2 ** -24, 2 ** -25, 2 ** -26, 1.5 * 2 ** -25, 2 ** -133, 2 ** -134]
    # Ties of each narrow format (sampled for the 16-bit ones, all for fp8) +- 1 ulp.
    bf = t["bf16_decode"].numpy()
    hf = t["f16_decode"].numpy()
    for dec, k in [(bf, 400), (hf, 400)]:
        mids = midpoints(dec)
        mids = np.concatenate([-mids, mids])
        pick = rng.choice(len(mids), size=k, replace=False)
        inputs += list(neighbours(mids[pick]))
    for dec in [t["e4m3_decode"].numpy(), t["e5m2_decode"].numpy()]:
        inputs += list(neighbours(midpoints(dec)))
    # Random values over the whole exponent range, and random bit patterns.
    mags = 10.0 ** rng.uniform(-46, 38.5, size=800)
    signs = rng.choice([-1.0, 1.0], size=800)
    inputs += list((mags * signs).astype(np.float32))
    inputs += list(from_bits(rng.integers(0, 2 ** 32, size=300, dtype=np.uint64).astype(np.uint32)))
    inputs += list(rng.standard_normal(300).astype(np.float32) * 100)

    x = torch.from_numpy(np.asarray(inputs, dtype=np.float32))
    t["enc_input"] = x
    t["enc_bf16"] = x.to(torch.bfloat16)
    t["enc_f16"] = x.to(torch.float16)
    t["enc_e4m3"] = x.to(torch.float8_e4m3fn)
    t["enc_e5m2"] = x.to(torch.float8_e5m2)
    t["enc_e4m3_sat"] = x.clamp(-448.0, 448.0).to(torch.float8_e4m3fn)
    t["enc_e5m2_sat"] = x.clamp(-57344.0, 57344.0).to(torch.float8_e5m2)
    save_file({k: v.contiguous() for k, v in t.items()}, OUT,
              metadata=provenance.metadata(__file__, seed=20240601, libs=("torch", "numpy", "safetensors")))
    print(f"wrote {OUT}: {len(inputs)} encode inputs")


if __name__ == "__main__":
    main()
