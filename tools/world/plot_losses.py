#!/usr/bin/env python3
"""Draws the transformer's training loss for the default model's card.

    python3 tools/world/plot_losses.py --work W --out models/t2v-tiny/loss_curve.png
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


def smooth(v, k=25):
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
    dit = read(os.path.join(a.work, "dit_log.jsonl"))
    fig, ax = plt.subplots(1, 1, figsize=(6, 3.4), dpi=80)
    steps = [r["step"] for r in dit]
    ax.plot(steps, [r["loss"] for r in dit], color="#bbb", lw=0.6, label="batch")
    ax.plot(steps, smooth([r["loss"] for r in dit]), color="C1", label="mean of 25")
    ax.set_title(f"transformer + text encoder, flow matching ({dit[-1]['t'] / 60:.0f} min, 2 CPU cores)")
    ax.set_xlabel("step (batch 48)")
    ax.set_ylabel("velocity MSE")
    ax.set_ylim(0, max(1.0, min(2.5, max(r["loss"] for r in dit))))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
