#!/usr/bin/env python3
"""Writes the bicubic resize goldens: random images resized by PyTorch's
F.interpolate(mode="bicubic", align_corners=False), the resize the Wan
image-to-video code applies to its input image (for CLIP and for the
conditioning frame; docs/wan.md §5.1).

    python3 tools/golden/gen_resize_goldens.py [--out tests/data/core]

Output: bicubic.safetensors with <case>.input [.., H, W] and <case>.output
[.., h, w] per case (up- and down-sampling, squashing, odd and 1-pixel sizes),
plus bicubic.json listing the cases.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import provenance  # noqa: E402  (tools/provenance.py)

LIBS = ("torch", "safetensors")
SEED = 20250611

# (name, input shape, output size); inputs in [-1, 1] like Wan's normalised image
CASES = [
    ("up_19x27_to_64x48", (3, 19, 27), (64, 48)),
    ("down_120x90_to_33x47", (3, 120, 90), (33, 47)),
    ("squash_50x30_to_28x28", (3, 50, 30), (28, 28)),
    ("clip_37x53_to_224x224", (1, 37, 53), (224, 224)),
    ("batch_2x3_16x16_to_8x24", (2, 3, 16, 16), (8, 24)),
    ("same_13x11", (3, 13, 11), (13, 11)),
    ("line_1x9_to_4x5", (3, 1, 9), (4, 5)),
    ("pixel_1x1_to_3x2", (1, 1, 1), (3, 2)),
    ("down_by_7_70x63_to_10x9", (3, 70, 63), (10, 9)),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "core"))
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(SEED)
    tensors, index = {}, []
    for name, shape, size in CASES:
        x = torch.rand(shape, generator=gen) * 2 - 1
        x4 = x if x.dim() == 4 else x[None]
        y = F.interpolate(x4, size=size, mode="bicubic", align_corners=False)
        y = y if x.dim() == 4 else y[0]
        tensors[f"{name}.input"] = x.contiguous()
        tensors[f"{name}.output"] = y.contiguous()
        index.append({"name": name, "input": list(shape), "size": list(size)})
    prov = provenance.metadata(__file__, seed=SEED, libs=LIBS)
    save_file(tensors, os.path.join(args.out, "bicubic.safetensors"), metadata=prov)
    with open(os.path.join(args.out, "bicubic.json"), "w") as f:
        json.dump({"provenance": provenance.json_field(__file__, seed=SEED, libs=LIBS), "cases": index}, f, indent=2)
    print("wrote", len(CASES), "cases to", args.out)


if __name__ == "__main__":
    main()
