#!/usr/bin/env python3
"""Writes ground-truth clips for the semantic evaluator's own test: world clips
(every held-out combination on every background, plus random training
combinations) as PNG strips of 17 frames, both as drawn and as the default
model's VAE reproduces them (4x4 block means).

    python3 tools/world/make_eval_fixtures.py [--out tests/data/eval]
"""
import argparse
import json
import os
import random
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402


def mosaic(video):
    f, h, w, c = video.shape
    m = video.astype(np.float64).reshape(f, h // 4, 4, w // 4, 4, c).mean(axis=(2, 4))
    return np.clip(np.rint(m.repeat(4, 1).repeat(4, 2)), 0, 255).astype(np.uint8)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "data", "eval"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(77)
    scenes = [(c, s, m, world.BACKGROUNDS[i % 4]) for i, (c, s, m) in enumerate(world.HELD_OUT)]
    scenes += [(*rng.choice(world.TRAIN_COMBOS), rng.choice(world.BACKGROUNDS)) for _ in range(32)]
    index = []
    for i, (c, s, m, b) in enumerate(scenes):
        video = world.render(c, s, m, b, random.Random(1000 + i))
        for kind, v in (("clean", video), ("blocks", mosaic(video))):
            name = f"{i:02d}-{kind}.png"
            Image.fromarray(np.concatenate(list(v), axis=1)).save(os.path.join(a.out, name), optimize=True)
            index.append(dict(file=name, kind=kind, colour=c, shape=s, motion=m, background=b,
                              prompt=world.caption(c, s, m, b, random.Random(i))))
    with open(os.path.join(a.out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    print(len(index), "clips")


if __name__ == "__main__":
    main()
