#!/usr/bin/env python3
"""Draws the training loss curves of the default model for its model card.

    python3 tools/world/plot_losses.py --work W --out models/t2v-tiny/loss_curves.png
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def smooth(v, k=10):
    out, acc = [], []
    for x in v:
        acc.append(x)
        if len(acc) > k:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    vae = read(os.path.join(a.work, "vae_log.jsonl"))
    dit = read(os.path.join(a.work, "dit_log.jsonl"))
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6), dpi=80)
    ax[0].plot([r["step"] for r in vae], [r["psnr"] for r in vae], color="#bbb", lw=0.8)
    ax[0].plot([r["step"] for r in vae], smooth([r["psnr"] for r in vae]), color="C0", label="whole VAE, 5 frames")
    dec_path = os.path.join(a.work, "decoder_log.jsonl")
    if os.path.exists(dec_path):  # decoder fine-tuning with the encoder frozen, 9-frame clips
        dec = read(dec_path)
        off = vae[-1]["step"] + 1
        ax[0].plot([off + r["step"] for r in dec], [r["psnr"] for r in dec], color="#bbb", lw=0.8)
        ax[0].plot([off + r["step"] for r in dec], smooth([r["psnr"] for r in dec]), color="C2",
                   label="decoder only, 9 frames")
    ax[0].legend(loc="lower right")
    ax[0].set_title("VAE reconstruction (training batch)")
    ax[0].set_xlabel("step (batch 4 x 5 frames)")
    ax[0].set_ylabel("PSNR (dB)")
    ax[0].grid(alpha=0.3)
    ax[1].plot([r["step"] for r in dit], [r["loss"] for r in dit], color="#bbb", lw=0.8)
    ax[1].plot([r["step"] for r in dit], smooth([r["loss"] for r in dit]), color="C1")
    ax[1].set_title("DiT flow-matching loss")
    ax[1].set_xlabel("step (batch 48)")
    ax[1].set_ylabel("MSE of velocity")
    ax[1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(a.out)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
