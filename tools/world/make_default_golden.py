#!/usr/bin/env python3
"""Proves the shipped default model is a working diffusers pipeline and writes
the golden frames `t2v generate` must reproduce.

    python3 tools/world/make_default_golden.py [--model models/t2v-tiny] [--out tests/data/default_model]

Loads the folder with diffusers' WanPipeline (fp32), renders one prompt at the
folder's defaults (t2v.json) from injected noise, and writes:
  golden.safetensors  noise [1,C,T,h,w] fp32, frames [F,H,W,3] fp16 in [0,1]
  golden.json         prompt, negative prompt, settings, "provenance" (generator, versions, seed)
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from diffusers import WanPipeline
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import provenance  # noqa: E402  (tools/provenance.py)

LIBS = ("torch", "diffusers", "transformers", "tokenizers", "safetensors", "numpy")
SEED = 11  # the noise

PROMPT = "a green circle moving to the right on a black background"  # a held-out combination


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(root, "models", "t2v-tiny"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "default_model"))
    ap.add_argument("--prompt", default=PROMPT)
    a = ap.parse_args()
    with open(os.path.join(a.model, "t2v.json")) as f:
        d = json.load(f)
    pipe = WanPipeline.from_pretrained(a.model, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    # WanPipeline samples with the folder's scheduler; t2v with t2v.json's shift.
    assert abs(pipe.scheduler.config.flow_shift - d["shift"]) < 1e-9, \
        f"scheduler flow_shift {pipe.scheduler.config.flow_shift} != t2v.json shift {d['shift']}"
    t_lat = (d["frames"] - 1) // pipe.vae_scale_factor_temporal + 1
    noise = torch.randn((1, pipe.transformer.config.in_channels, t_lat, d["height"] // pipe.vae_scale_factor_spatial,
                         d["width"] // pipe.vae_scale_factor_spatial),
                        generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        frames = pipe(prompt=a.prompt, negative_prompt=d["negative_prompt"], height=d["height"], width=d["width"],
                      num_frames=d["frames"], num_inference_steps=d["steps"], guidance_scale=d["cfg"],
                      latents=noise.clone(), output_type="np", max_sequence_length=512).frames[0]
    os.makedirs(a.out, exist_ok=True)
    save_file({"noise": noise.contiguous(), "frames": torch.from_numpy(np.ascontiguousarray(frames)).half()},
              os.path.join(a.out, "golden.safetensors"), metadata=provenance.metadata(__file__, SEED, LIBS))
    with open(os.path.join(a.out, "golden.json"), "w") as f:
        json.dump({"prompt": a.prompt, "negative_prompt": d["negative_prompt"], "width": d["width"],
                   "height": d["height"], "frames": d["frames"], "steps": d["steps"], "cfg": d["cfg"],
                   "shift": d["shift"], "sampler": d["sampler"], "schedule": "diffusers",
                   "provenance": provenance.json_field(__file__, SEED, LIBS)}, f, indent=2)
        f.write("\n")
    print("frames", frames.shape, "range", float(frames.min()), float(frames.max()))


if __name__ == "__main__":
    main()
