#!/usr/bin/env python3
"""The synthetic world the default model (models/t2v-tiny) is trained on.

One coloured object (circle, square or triangle) moves over a plain or
gradient background; a caption grammar describes it with varied wording.
Everything is drawn with numpy at 4x supersampling, so edges are antialiased
and every clip is reproducible from its seed.

    python3 tools/world/world.py --show 8          # print 8 sample captions
    python3 tools/world/world.py --write DIR -n 6  # write sample clips as .npy + captions

The constants here are the specification the C++ semantic evaluator
(tests/eval/) checks generated videos against; docs/default_model.md lists them.
"""
import argparse
import json
import math
import os
import random

import numpy as np

WIDTH = HEIGHT = 64
FRAMES = 17  # 4k+1: one latent frame for the first frame, then one per 4 frames
FPS = 8
SUPERSAMPLE = 4

# Saturated colours far apart in hue, so segmentation by hue is unambiguous.
COLOURS = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (235, 215, 30),
    "green": (30, 175, 60),
    "blue": (35, 75, 225),
    "purple": (150, 50, 200),
}
SHAPES = ["circle", "square", "triangle"]
MOTIONS = ["left", "right", "up", "down", "diagonal", "bouncing", "growing", "shrinking"]
# Achromatic backgrounds: the object is the only saturated thing in a frame.
BACKGROUNDS = ["white", "black", "gray", "gradient"]

# Colour x shape x motion combinations never shown in training; the evaluator
# prompts use only these. Every colour, shape and motion still appears in
# training in other combinations (checked by check_held_out()).
HELD_OUT = [
    ("red", "triangle", "up"),
    ("red", "square", "bouncing"),
    ("orange", "circle", "down"),
    ("orange", "triangle", "growing"),
    ("yellow", "square", "left"),
    ("yellow", "circle", "diagonal"),
    ("green", "circle", "right"),
    ("green", "triangle", "shrinking"),
    ("blue", "triangle", "left"),
    ("blue", "square", "growing"),
    ("purple", "square", "right"),
    ("purple", "circle", "shrinking"),
    ("red", "circle", "growing"),
    ("blue", "circle", "bouncing"),
    ("green", "square", "down"),
    ("orange", "square", "diagonal"),
]

SHAPE_WORDS = {"circle": ["circle", "ball", "disc", "round dot"], "square": ["square", "box", "block"],
               "triangle": ["triangle"]}
MOTION_PHRASES = {
    "left": ["moving to the left", "moves left", "rolling to the left", "slides to the left", "going left",
             "drifting left"],
    "right": ["moving to the right", "moves right", "rolling to the right", "slides to the right", "going right",
              "drifting right"],
    "up": ["moving up", "moves upward", "rising", "floats up", "going up", "sliding upward"],
    "down": ["moving down", "moves downward", "falling", "sinks down", "going down", "sliding downward"],
    "diagonal": ["moving diagonally", "moves diagonally up and to the right", "drifting diagonally",
                 "going diagonally to the upper right"],
    "bouncing": ["bouncing", "bounces up and down", "bouncing on the floor", "hopping up and down"],
    "growing": ["growing", "grows bigger", "getting larger", "expanding", "growing in size"],
    "shrinking": ["shrinking", "shrinks", "getting smaller", "contracting", "shrinking in size"],
}
BACKGROUND_PHRASES = {
    "white": ["on a white background", "against a white backdrop", "over a white background"],
    "black": ["on a black background", "against a black backdrop", "in the dark"],
    "gray": ["on a gray background", "against a grey backdrop", "over a gray background"],
    "gradient": ["on a gradient background", "over a gray gradient", "against a shaded backdrop"],
}


def check_held_out():
    held = set(HELD_OUT)
    assert len(held) == len(HELD_OUT)
    for c, s, m in HELD_OUT:
        assert c in COLOURS and s in SHAPES and m in MOTIONS
    train = [(c, s, m) for c in COLOURS for s in SHAPES for m in MOTIONS if (c, s, m) not in held]
    for c in COLOURS:
        assert any(t[0] == c for t in train)
    for s in SHAPES:
        assert any(t[1] == s for t in train)
    for m in MOTIONS:
        assert any(t[2] == m for t in train)
    return train


TRAIN_COMBOS = check_held_out()


def caption(colour, shape, motion, background, rng, mention_background=None):
    """One caption for the scene; wording varies with rng."""
    noun = rng.choice(SHAPE_WORDS[shape])
    verb = rng.choice(MOTION_PHRASES[motion])
    article = "an" if colour[0] in "aeiou" else "a"
    words = f"{article} {colour} {noun} {verb}"
    if mention_background is None:
        mention_background = rng.random() < 0.6
    if mention_background:
        words += " " + rng.choice(BACKGROUND_PHRASES[background])
    return words


def canonical_caption(colour, shape, motion, background=None):
    """The plain wording used for evaluation prompts and samples."""
    noun = SHAPE_WORDS[shape][0]
    verb = MOTION_PHRASES[motion][0]
    article = "an" if colour[0] in "aeiou" else "a"
    text = f"{article} {colour} {noun} {verb}"
    if background:
        text += " " + BACKGROUND_PHRASES[background][0]
    return text


def background_image(kind, h, w):
    if kind == "white":
        return np.full((h, w, 3), 245.0)
    if kind == "black":
        return np.full((h, w, 3), 15.0)
    if kind == "gray":
        return np.full((h, w, 3), 128.0)
    # top-to-bottom gray gradient, light to dark
    ramp = np.linspace(215.0, 55.0, h)[:, None, None]
    return np.broadcast_to(ramp, (h, w, 3)).copy()


# Where things happen. Every motion follows one path through the middle of the
# frame, shifted by up to JITTER pixels in x and y, with a small spread of size
# and speed. This is sized to what a 1.8M-parameter transformer learns on two
# CPU cores. Measured with wider spreads: with positions uniform over the frame,
# after 1,800 steps the transformer denoised real clips well in one step (objects
# sharp from noise level 0.6 down) yet sampled from noise only scattered
# fragments; with a jitter of 5 pixels it still converged on a shrunken core of
# the object. At high noise a denoiser predicts the mean over the world's
# spread, and this small a model had not yet learned to read the noise for the
# particulars; near one path, that mean is already the object. Sizes: at radius
# 7.5-9 px, after 1,200 steps on these paths, motion was right in 15 of 16
# held-out videos and shape in 3: circle, square and triangle differ in a few
# 4x4 blocks at that size; at 9.5-11 px in twice as many.
CENTRE = (WIDTH / 2, HEIGHT / 2)
JITTER = 2.0


def trajectory(motion, rng):
    """Centre (x, y) in pixels and half-size r for each frame."""
    n = FRAMES
    t = np.linspace(0.0, 1.0, n)
    cx = CENTRE[0] + rng.uniform(-JITTER, JITTER)
    cy = CENTRE[1] + rng.uniform(-JITTER, JITTER)
    r0 = rng.uniform(9.5, 11.0)
    travel = rng.uniform(27.0, 31.0)
    ramp = (t - 0.5) * travel  # centred on the middle frame
    if motion in ("left", "right"):
        xs = cx + (ramp if motion == "right" else -ramp)
        return xs, np.full(n, cy), np.full(n, r0)
    if motion in ("up", "down"):
        ys = cy + (ramp if motion == "down" else -ramp)
        return np.full(n, cx), ys, np.full(n, r0)
    if motion == "diagonal":  # towards the upper right
        d = ramp * 0.75
        return cx + d, cy - d, np.full(n, r0)
    if motion == "bouncing":  # falls to the floor and back up, a |cos| arc
        floor = HEIGHT - r0 - 1.5
        height = rng.uniform(26.0, 29.0)
        phase = np.abs(np.cos(math.pi * t))
        return np.full(n, cx), floor - height * phase, np.full(n, r0)
    # growing / shrinking: radius x2.1 between the ends, centre fixed
    small, big = rng.uniform(6.0, 7.0), rng.uniform(13.5, 14.5)
    rs = small + (big - small) * t
    if motion == "shrinking":
        rs = rs[::-1]
    return np.full(n, cx), np.full(n, cy), rs


def shape_mask(shape, cx, cy, r, h, w):
    """Coverage in [0, 1] of the shape centred at (cx, cy) with half-size r."""
    s = SUPERSAMPLE
    ys = (np.arange(h * s) + 0.5) / s
    xs = (np.arange(w * s) + 0.5) / s
    X, Y = np.meshgrid(xs, ys)
    if shape == "circle":
        m = (X - cx) ** 2 + (Y - cy) ** 2 <= r * r
    elif shape == "square":
        # The circle inscribed in the square (side = its diameter). At 0.9 r, an area
        # nearly the circle's, the two differed in normalised latents by a mean square
        # of 0.0074 (circle vs triangle: 0.037) and the transformer drew one rounded
        # blob for both; at r the difference is 0.020.
        a = r
        m = (np.abs(X - cx) <= a) & (np.abs(Y - cy) <= a)
    else:  # upward equilateral triangle with circumradius 1.25 r
        R = r * 1.25
        top = (cx, cy - R)
        left = (cx - R * math.sqrt(3) / 2, cy + R / 2)
        right = (cx + R * math.sqrt(3) / 2, cy + R / 2)

        def side(p, q):
            return (q[0] - p[0]) * (Y - p[1]) - (q[1] - p[1]) * (X - p[0])

        d1, d2, d3 = side(top, left), side(left, right), side(right, top)
        m = ((d1 <= 0) & (d2 <= 0) & (d3 <= 0)) | ((d1 >= 0) & (d2 >= 0) & (d3 >= 0))
    return m.reshape(h, s, w, s).mean(axis=(1, 3))


def render(colour, shape, motion, background, rng):
    """uint8 video [FRAMES, HEIGHT, WIDTH, 3]."""
    xs, ys, rs = trajectory(motion, rng)
    bg = background_image(background, HEIGHT, WIDTH)
    rgb = np.array(COLOURS[colour], dtype=np.float64)
    out = np.empty((FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for f in range(FRAMES):
        cov = shape_mask(shape, xs[f], ys[f], rs[f], HEIGHT, WIDTH)[..., None]
        out[f] = np.clip(np.rint(bg * (1 - cov) + rgb * cov), 0, 255).astype(np.uint8)
    return out


def sample_scene(rng, combos=None):
    colour, shape, motion = rng.choice(combos or TRAIN_COMBOS)
    return colour, shape, motion, rng.choice(BACKGROUNDS)


def make_example(seed, combos=None):
    rng = random.Random(seed)
    colour, shape, motion, background = sample_scene(rng, combos)
    video = render(colour, shape, motion, background, rng)
    text = caption(colour, shape, motion, background, rng)
    return video, text, dict(colour=colour, shape=shape, motion=motion, background=background)


def corpus_lines():
    """Every caption wording the grammar can produce (for the tokenizer)."""
    lines = []
    for c in COLOURS:
        for s in SHAPES:
            for noun in SHAPE_WORDS[s]:
                for m in MOTIONS:
                    for verb in MOTION_PHRASES[m]:
                        article = "an" if c[0] in "aeiou" else "a"
                        base = f"{article} {c} {noun} {verb}"
                        lines.append(base)
                        for b in BACKGROUNDS:
                            for bp in BACKGROUND_PHRASES[b]:
                                lines.append(base + " " + bp)
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--show", type=int, default=0)
    ap.add_argument("--write")
    ap.add_argument("-n", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    for _ in range(a.show):
        print(caption(*sample_scene(rng), rng))
    if a.write:
        os.makedirs(a.write, exist_ok=True)
        meta = []
        for i in range(a.n):
            video, text, info = make_example(a.seed * 1000 + i)
            np.save(os.path.join(a.write, f"clip{i}.npy"), video)
            meta.append(dict(file=f"clip{i}.npy", caption=text, **info))
        with open(os.path.join(a.write, "clips.json"), "w") as f:
            json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
