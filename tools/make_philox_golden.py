#!/usr/bin/env python3
"""Writes tests/data/core/philox_golden.safetensors: philox_normal(seed, i) computed
by a plain Python Philox4x32-10 (no shared code with core/philox.cpp), for two seeds
at a few hundred element indices, including indices past 2^32 (high counter word).

Formula (core/philox.cpp): key = (seed lo, seed hi), counter = (i lo, i hi, 0, 0);
x = Philox4x32-10(counter, key); u0 = (x0 + 1) / 2^32; u1 = (x1 + 1) / 2^32;
z = sqrt(-2 ln u0) * cos(2 pi u1) in double, rounded to fp32.

Usage: python3 tools/make_philox_golden.py [out_path]
"""
import math
import random
import sys

import torch
from safetensors.torch import save_file

import provenance

M = 0xFFFFFFFF


def philox4x32_10(ctr, key):
    c, k = list(ctr), list(key)
    for r in range(10):
        if r:
            k = [(k[0] + 0x9E3779B9) & M, (k[1] + 0xBB67AE85) & M]
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & M, (p0 >> 32) ^ c[3] ^ k[1], p0 & M]
    return c


def normal(seed, i):
    x = philox4x32_10([i & M, i >> 32, 0, 0], [seed & M, seed >> 32])
    u0, u1 = (x[0] + 1) / 2.0 ** 32, (x[1] + 1) / 2.0 ** 32
    return math.sqrt(-2.0 * math.log(u0)) * math.cos(2.0 * math.pi * u1)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/core/philox_golden.safetensors"
    assert philox4x32_10([0] * 4, [0, 0]) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    rng = random.Random(5)
    idx = list(range(256)) + [M, M + 1, 2 ** 40 + 3, 2 ** 63 - 1] + [rng.randrange(2 ** 48) for _ in range(124)]
    big = 0xFEDCBA9876543210
    save_file({"index": torch.tensor(idx, dtype=torch.int64),
               "normal_seed42": torch.tensor([normal(42, i) for i in idx], dtype=torch.float64).float(),
               "normal_seed_big": torch.tensor([normal(big, i) for i in idx], dtype=torch.float64).float()},
              out, metadata={"seed_big": str(big),
                             # the Philox seeds are 42 and seed_big; random.Random(5) picks the indices
                             **provenance.metadata(__file__, seed="5", libs=("torch", "safetensors"))})
    print(f"wrote {out}: {len(idx)} indices")


if __name__ == "__main__":
    main()
