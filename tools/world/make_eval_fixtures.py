#!/usr/bin/env python3
"""Writes the ground truth for the semantic evaluator's own test
(tests/eval/semantic_eval_test.cpp) into tests/data/eval/:

- 48 world clips as drawn (every held-out combination, each background in
  turn, plus 32 random training scenes) as lossless PNG strips of 17 frames
  side by side; the test derives the degraded versions (block mosaic as the
  default model's VAE draws, blur, noise, chroma subsampling, JPEG, colour
  cast) itself;
- index.json: each clip's scene and caption, the world's word lists (so the
  C++ copies can be checked against world.py), and caption variants covering
  every noun, motion phrase and background phrase of the grammar.

    python3 tools/world/make_eval_fixtures.py [--out tests/data/eval]
"""
import argparse
import glob
import json
import os
import random
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import provenance  # noqa: E402  (tools/provenance.py)
import world  # noqa: E402


def caption_variants():
    """Every (noun, motion phrase) pair once, colours and background phrases in
    turn, so each word list entry is parsed at least once; [text, colour, shape, motion]."""
    colours = list(world.COLOURS)
    backgrounds = [None] + [p for b in world.BACKGROUNDS for p in world.BACKGROUND_PHRASES[b]]
    out = []
    i = 0
    for shape, nouns in world.SHAPE_WORDS.items():
        for noun in nouns:
            for motion, phrases in world.MOTION_PHRASES.items():
                for verb in phrases:
                    colour = colours[i % len(colours)]
                    article = "an" if colour[0] in "aeiou" else "a"
                    text = f"{article} {colour} {noun} {verb}"
                    bg = backgrounds[i % len(backgrounds)]
                    if bg:
                        text += " " + bg
                    out.append([text, colour, shape, motion])
                    i += 1
    for c, s, m in world.HELD_OUT:
        for b in world.BACKGROUNDS:
            out.append([world.canonical_caption(c, s, m, b), c, s, m])
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "data", "eval"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for old in glob.glob(os.path.join(a.out, "*.png")):
        os.remove(old)
    rng = random.Random(77)
    scenes = [(c, s, m, world.BACKGROUNDS[i % 4]) for i, (c, s, m) in enumerate(world.HELD_OUT)]
    scenes += [(*rng.choice(world.TRAIN_COMBOS), rng.choice(world.BACKGROUNDS)) for _ in range(32)]
    clips = []
    for i, (c, s, m, b) in enumerate(scenes):
        video = world.render(c, s, m, b, random.Random(1000 + i))
        name = f"{i:02d}.png"
        Image.fromarray(np.concatenate(list(video), axis=1)).save(os.path.join(a.out, name), optimize=True)
        clips.append(dict(file=name, colour=c, shape=s, motion=m, background=b,
                          held_out=(c, s, m) in world.HELD_OUT,
                          prompt=world.caption(c, s, m, b, random.Random(i))))
    index = dict(
        # The PNG strips carry no metadata of their own: this records how they were made too.
        provenance=provenance.json_field(__file__, seed="77 (scenes), 1000+i (clip i), i (caption i)",
                                         libs=("numpy", "PIL")),
        world=dict(width=world.WIDTH, height=world.HEIGHT, frames=world.FRAMES, fps=world.FPS,
                   colours=world.COLOURS, shapes=world.SHAPES, motions=world.MOTIONS,
                   backgrounds=world.BACKGROUNDS, held_out=world.HELD_OUT, shape_words=world.SHAPE_WORDS,
                   motion_phrases=world.MOTION_PHRASES),
        clips=clips,
        captions=caption_variants())
    with open(os.path.join(a.out, "index.json"), "w") as f:
        json.dump(index, f, separators=(",", ":"))
        f.write("\n")
    print(len(clips), "clips,", len(index["captions"]), "caption variants")


if __name__ == "__main__":
    main()
