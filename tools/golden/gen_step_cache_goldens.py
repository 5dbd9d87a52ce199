#!/usr/bin/env python3
"""Writes the step-cache goldens on the tiny random pipeline of tests/data/pipeline/tiny_wan
(2 DiT blocks), with diffusers' WanPipeline, its UniPC flow scheduler and injected noise:

  first-block  diffusers' own FirstBlockCache hook (diffusers.hooks.apply_first_block_cache):
               the decision of every forward (step, CFG branch), the relative L1 change it
               decided on, and the frames and latents it produced.
  teacache     TeaCache4Wan2.1's decision logic (ali-vilab/TeaCache, teacache_forward with
               use_ret_steps: modulated input e0, ret_steps = 5 steps, cutoff = all steps,
               even calls = cond, odd = uncond, rel-L1 rescaled by numpy.poly1d and
               accumulated) restated around diffusers' WanTransformer3DModel with module
               hooks: the modulation e0 = condition_embedder's timestep_proj, the residual =
               last block's output - patch embedding. Its coefficients are fitted here
               (numpy.polyfit, degree 4) from an uncached run's e0 and output changes, which
               is also the calibration golden.

    python3 tools/golden/gen_step_cache_goldens.py [--out tests/data/step_cache]

Outputs: golden.safetensors (noise; frames_* [F,H,W,3] in [0,1]; latents_* final latents)
and golden.json (settings, per kind the threshold and every decision; the calibration
points (step, x = e0 change, y = output change, as doubles) and the fitted coefficients),
with provenance.
The thresholds are chosen so that every decision is at least 3% away from its threshold
(a decision may not hang on rounding).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from diffusers import WanPipeline
from diffusers.hooks import FirstBlockCacheConfig, apply_first_block_cache
from diffusers.hooks import first_block_cache as fbc
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import provenance  # noqa: E402  (tools/provenance.py)

LIBS = ("torch", "diffusers", "numpy", "safetensors")
SEED = "7 (noise)"
PROMPT = "a red ball rolling to the left on a white background"
NEGATIVE = "blurry, static, low quality"
WIDTH, HEIGHT, FRAMES, STEPS, CFG, SHIFT = 48, 32, 9, 16, 5.0, 3.0
RET_STEPS = 5  # TeaCache4Wan2.1 --use_ret_steps: 5*2 calls
MARGIN = 0.03


def rel_l1(a, b):
    return ((a - b).abs().mean() / b.abs().mean()).item()


def load(folder):
    pipe = WanPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def render(pipe, noise, decode=True):
    """(frames [F, H, W, 3] in [0, 1] or None, final latents)."""
    out = {}

    def on_end(p, i, t, kw):
        out["latents"] = kw["latents"].detach().clone().float().contiguous()
        return {}

    with torch.no_grad():
        frames = pipe(prompt=PROMPT, negative_prompt=NEGATIVE, height=HEIGHT, width=WIDTH, num_frames=FRAMES,
                      num_inference_steps=STEPS, guidance_scale=CFG, latents=noise.clone(),
                      output_type="np" if decode else "latent", max_sequence_length=512,
                      callback_on_step_end=on_end).frames[0]
    if not decode:
        return None, out["latents"]
    return torch.from_numpy(np.ascontiguousarray(frames)).float(), out["latents"]


def observe(folder, noise):
    """Uncached: per call (even = cond) the rel-L1 change of e0 and of the output."""
    pipe = load(folder)
    tr = pipe.transformer
    e0s, outs = [], []
    tr.condition_embedder.register_forward_hook(lambda m, i, o: e0s.append(o[1].detach().clone()))
    tr.register_forward_hook(lambda m, i, o: outs.append(o[0].detach().clone()))
    render(pipe, noise, decode=False)
    xs, ys, steps = [], [], []
    for k in range(2, len(e0s)):  # the same branch one step earlier is call k - 2
        xs.append(rel_l1(e0s[k], e0s[k - 2]))
        ys.append(rel_l1(outs[k], outs[k - 2]))
        steps.append(k // 2)
    return np.array(xs), np.array(ys), steps


def run_first_block(folder, noise, threshold, decode=False):
    pipe = load(folder)
    apply_first_block_cache(pipe.transformer, FirstBlockCacheConfig(threshold=threshold))
    records = []
    original = fbc.FBCHeadBlockHook._should_compute_remaining_blocks

    def logged(self, residual):
        state = self.state_manager.get_state()
        prev = state.head_block_residual
        decision = original(self, residual)
        records.append({"computed": bool(decision), "distance": None if prev is None else rel_l1(residual, prev)})
        return decision

    fbc.FBCHeadBlockHook._should_compute_remaining_blocks = logged
    try:
        frames, latents = render(pipe, noise, decode)
    finally:
        fbc.FBCHeadBlockHook._should_compute_remaining_blocks = original
    for k, r in enumerate(records):
        r["step"], r["branch"] = k // 2, k % 2
    return frames, latents, records


class TeaCacheRestated:
    """teacache_forward's state and decision (use_ret_steps), one object per transformer."""

    def __init__(self, tr, coefficients, threshold, steps):
        self.coefficients, self.threshold = coefficients, threshold
        self.ret_steps, self.cutoff_steps, self.num_steps = RET_STEPS * 2, steps * 2, steps * 2
        self.cnt = 0
        self.acc = {0: 0.0, 1: 0.0}
        self.prev_e0 = {0: None, 1: None}
        self.residual = {0: None, 1: None}
        self.records = []
        self.calc = True
        blocks = tr.blocks
        tr.condition_embedder.register_forward_hook(self.decide)
        for i, blk in enumerate(blocks):
            blk.forward = self.wrap(blk.forward, first=i == 0, last=i == len(blocks) - 1)
        tr.register_forward_hook(self.count)

    def decide(self, module, inputs, output):
        e0 = output[1]  # timestep_proj [B, 6*dim]: the reference's e0, flattened
        par = self.cnt % 2
        distance = None if self.prev_e0[par] is None else rel_l1(e0, self.prev_e0[par])
        decided_on = 0.0  # the sum compared with the threshold (recorded before a reset)
        if self.cnt < self.ret_steps or self.cnt >= self.cutoff_steps:
            self.calc = True
            self.acc[par] = 0.0
        else:
            self.acc[par] += float(np.poly1d(self.coefficients)(distance))
            decided_on = self.acc[par]
            if self.acc[par] < self.threshold:
                self.calc = False
            else:
                self.calc = True
                self.acc[par] = 0.0
        self.prev_e0[par] = e0.clone()
        self.records.append({"step": self.cnt // 2, "branch": par, "computed": self.calc, "distance": distance,
                             "accumulated": decided_on})

    def wrap(self, fwd, first, last):
        def run(hidden_states, *args, **kwargs):
            par = self.cnt % 2
            if first:
                self.ori = hidden_states.clone()
            if not self.calc:  # the blocks are skipped: x + previous_residual after the last one
                return hidden_states + self.residual[par] if last else hidden_states
            out = fwd(hidden_states, *args, **kwargs)
            if last:
                self.residual[par] = out - self.ori
            return out
        return run

    def count(self, module, inputs, output):
        self.cnt += 1
        if self.cnt >= self.num_steps:
            self.cnt = 0


def run_teacache(folder, noise, coefficients, threshold, decode=False):
    pipe = load(folder)
    tc = TeaCacheRestated(pipe.transformer, coefficients, threshold, STEPS)
    frames, latents = render(pipe, noise, decode)
    return frames, latents, tc.records


def margin(records, threshold, key):
    m = float("inf")
    for r in records:
        v = r.get(key)
        if v is None or (key == "accumulated" and r["step"] < RET_STEPS):
            continue
        m = min(m, abs(v - threshold) / threshold)
    return m


def pick(run, candidates, key):
    best = None
    for t in candidates:
        frames, latents, records = run(t)
        skipped = sum(not r["computed"] for r in records)
        m = margin(records, t, key)
        print(f"  threshold {t}: {skipped} of {len(records)} forwards skipped, margin {m:.3f}")
        if 0.2 * len(records) <= skipped <= 0.8 * len(records) and m >= MARGIN and (best is None or m > best[0]):
            best = (m, t)
    if best is None:
        raise SystemExit("no candidate threshold skips 20-80% of the forwards with a safe margin")
    t = best[1]
    frames, latents, records = run(t, True)
    return t, frames, latents, records


def main():
    torch.set_num_threads(2)
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "data", "step_cache"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    folder = os.path.join(here, "..", "..", "tests", "data", "pipeline", "tiny_wan")
    os.makedirs(out, exist_ok=True)
    t_lat = (FRAMES - 1) // 4 + 1
    noise = torch.randn((1, 16, t_lat, HEIGHT // 8, WIDTH // 8), generator=torch.Generator().manual_seed(7))

    xs, ys, steps = observe(folder, noise)
    use = [k for k, s in enumerate(steps) if s >= RET_STEPS]  # the steps TeaCache decides on
    coefficients = [float(c) for c in np.polyfit(xs[use], ys[use], 4)]
    print("calibration", len(use), "points, coefficients", coefficients)

    print("first-block:")
    fb_t, fb_frames, fb_latents, fb_records = pick(
        lambda t, decode=False: run_first_block(folder, noise, t, decode),
        [0.34, 0.36], "distance")  # from a sweep of 0.1 .. 0.5: 0.36 skips 14 of 32 with margin 0.064
    print("teacache:")
    tc_t, tc_frames, tc_latents, tc_records = pick(
        lambda t, decode=False: run_teacache(folder, noise, coefficients, t, decode),
        [0.7, 0.8, 1.0], "accumulated")  # a sweep of 0.05 .. 1.0 skipped 0-2 of 32 below 0.7
    prov = provenance.metadata(__file__, seed=SEED, libs=LIBS)
    save_file({"noise": noise.contiguous(),
               "frames_first_block": fb_frames, "latents_first_block": fb_latents,
               "frames_teacache": tc_frames, "latents_teacache": tc_latents},
              os.path.join(out, "golden.safetensors"), metadata=prov)
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump({"prompt": PROMPT, "negative_prompt": NEGATIVE, "width": WIDTH, "height": HEIGHT,
                   "frames": FRAMES, "steps": STEPS, "cfg": CFG, "shift": SHIFT, "sampler": "unipc",
                   "schedule": "diffusers", "retain_steps": RET_STEPS,
                   "first_block": {"threshold": fb_t, "records": fb_records},
                   "teacache": {"threshold": tc_t, "coefficients": coefficients, "records": tc_records},
                   "calibration": {"steps": [steps[k] for k in use], "x": [float(xs[k]) for k in use],
                                   "y": [float(ys[k]) for k in use], "coefficients": coefficients},
                   "provenance": provenance.json_field(__file__, seed=SEED, libs=LIBS)}, f, indent=1)
    print("first-block threshold", fb_t, "teacache threshold", tc_t)


if __name__ == "__main__":
    main()
