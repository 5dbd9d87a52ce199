#!/usr/bin/env python3
"""Fits the latent-to-RGB map of a model's VAE for live previews (app/latent_preview.h) and
writes it as latent_rgb.json beside the model.

    python3 tools/fit_latent_rgb.py --model models/t2v-tiny [--clips 32] [--out FILE]

The previews apply rgb = x0 . factors + bias to the DiT's normalised latents x0 ((z - mean) / std
with the VAE config's latents_mean / latents_std) and show the result clamped to [-1, 1]. The
fit, per VAE: clips of the synthetic world (tools/world/world.py) are encoded with the VAE
(the latent distribution's mean), decoded again, and the decoded frames are averaged over the
pixels each latent covers (its spatial block; frame 0 for latent frame 0, frames 4t-3..4t for
latent frame t); least squares of those colours in [-1, 1] on [x0, 1] gives the C x 3 factors
and the bias. The file records the fit's error and its provenance (tools/provenance.py).

For the Wan2.1 VAE t2v uses ComfyUI's published table (comfy/latent_formats.py, Wan21) when the
model folder has no latent_rgb.json; this script is for other VAEs (the default model's 12
channels) or to fit Wan2.1's on clips of one's own choosing.
"""
import argparse
import json
import os
import random
import re
import sys

import numpy as np
import torch
from diffusers import AutoencoderKLWan

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "world"))
import provenance  # noqa: E402  (tools/provenance.py)
import world  # noqa: E402  (tools/world/world.py)

LIBS = ("torch", "diffusers", "numpy")


def latent_targets(frames, t_lat, sf, tf):
    """frames [3, F, H, W] in [-1, 1] -> mean colour per latent [3, T, H/sf, W/sf]."""
    c, f, h, w = frames.shape
    out = np.empty((c, t_lat, h // sf, w // sf), dtype=np.float64)
    for t in range(t_lat):
        lo, hi = (0, 1) if t == 0 else (tf * t - (tf - 1), tf * t + 1)
        block = frames[:, lo:hi].mean(axis=1)  # [3, H, W]
        out[:, t] = block.reshape(c, h // sf, sf, w // sf, sf).mean(axis=(2, 4))
    return out


def format_doc(doc):
    """JSON with one line per latent channel."""
    text = json.dumps(doc, indent=1)
    return re.sub(r"\[\s+(-?[0-9.e-]+),\s+(-?[0-9.e-]+),\s+(-?[0-9.e-]+)\s+\]", r"[\1, \2, \3]", text) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a diffusers model folder (its vae/ is fitted)")
    ap.add_argument("--out", help="default: <model>/latent_rgb.json")
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    out_path = a.out or os.path.join(a.model, "latent_rgb.json")

    torch.manual_seed(a.seed)
    vae = AutoencoderKLWan.from_pretrained(os.path.join(a.model, "vae"), torch_dtype=torch.float32).eval()
    cfg = vae.config
    c = cfg.z_dim
    mean = np.array(cfg.latents_mean, dtype=np.float64).reshape(c, 1, 1, 1)
    std = np.array(cfg.latents_std, dtype=np.float64).reshape(c, 1, 1, 1)
    sf = int(getattr(cfg, "scale_factor_spatial", 8))
    tf = int(getattr(cfg, "scale_factor_temporal", 4))

    rng = random.Random(a.seed)
    xs, ys = [], []
    with torch.no_grad():
        for _ in range(a.clips):
            video, _, _ = world.make_example(rng.randrange(1 << 30), world.TRAIN_COMBOS + world.HELD_OUT)
            x = torch.from_numpy(video).float().div(127.5).sub(1.0).permute(3, 0, 1, 2)[None]  # [1, 3, F, H, W]
            z = vae.encode(x).latent_dist.mean
            decoded = vae.decode(z).sample.clamp(-1, 1)[0].double().numpy()  # [3, F, H, W]
            z = z[0].double().numpy()  # [C, T, h, w]
            xn = (z - mean) / std
            target = latent_targets(decoded, z.shape[1], sf, tf)
            xs.append(xn.reshape(c, -1).T)
            ys.append(target.reshape(3, -1).T)
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    design = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    pred = np.clip(design @ coef, -1, 1)
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    psnr = float(20 * np.log10(2.0 / rmse))  # over the [-1, 1] range
    doc = {
        "latent_channels": c,
        "space": "normalised latents (z - latents_mean) / latents_std, as the DiT samples them",
        "output": "rgb in [-1, 1] = x0 . factors + bias, clamped; shown as (rgb + 1) * 127.5",
        "factors": [[round(float(v), 6) for v in row] for row in coef[:c]],
        "bias": [round(float(v), 6) for v in coef[c]],
        "fit": {
            "data": f"{a.clips} clips of tools/world/world.py ({world.WIDTH}x{world.HEIGHT}, {world.FRAMES} frames), "
                    "encoded and decoded by this VAE",
            "latents": int(x.shape[0]),
            "rmse": round(rmse, 6),
            "psnr_db": round(psnr, 2),
        },
        "provenance": provenance.json_field(__file__, a.seed, LIBS),
    }
    with open(out_path, "w") as f:
        f.write(format_doc(doc))
    print(f"wrote {out_path}: {c} channels, rmse {rmse:.4f} ({psnr:.1f} dB) over {x.shape[0]} latents")


if __name__ == "__main__":
    main()
