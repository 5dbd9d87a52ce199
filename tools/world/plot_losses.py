#!/usr/bin/env python3
"""Draws the transformer's training curves for the default model's card: the
loss and the attribute probe (train.py's probe_log.jsonl), over one run or a
lineage of runs each started from the previous one's weights.

    python3 tools/world/plot_losses.py --work W1 [--work W2 ...] [--label L1 ...] --out models/t2v-tiny/loss_curve.png
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def smooth(v, k=50):
    out, acc = [], []
    for x in v:
        acc.append(x)
        if len(acc) > k:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", action="append", required=True, help="a work folder; repeat in training order")
    ap.add_argument("--label", action="append", default=[], help="one per --work")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(7, 6), dpi=80, sharex=True)
    offset, minutes = 0, 0.0
    for i, w in enumerate(a.work):
        log = read(os.path.join(w, "dit_log.jsonl"))
        probe = read(os.path.join(w, "probe_log.jsonl"))
        if not log:
            continue
        # A resumed run appends to the same log with its own clock; count steps, sum minutes.
        steps = [offset + k for k in range(len(log))]
        segs, prev = 0.0, 0.0
        for r in log:
            if r["t"] < prev:
                segs += prev
            prev = r["t"]
        minutes += (segs + prev) / 60
        ax.plot(steps, [r["loss"] for r in log], color="#ccc", lw=0.5)
        ax.plot(steps, smooth([r["loss"] for r in log]), color=f"C{i}",
                label=a.label[i] if i < len(a.label) else os.path.basename(w))
        first = log[0]["step"]
        for key, style in (("motion", "-"), ("shape", "--"), ("colour", ":")):
            pts = [(offset + p["step"] - first, p[f"held_out_{key}_gap"]) for p in probe]
            if pts:
                bx.plot(*zip(*pts), style, color=f"C{i}", marker=".", label=f"{key}" if i == len(a.work) - 1 else None)
        if i:
            for axis in (ax, bx):
                axis.axvline(offset, color="#888", lw=0.6)
        offset += len(log)
    ax.set_title(f"transformer, flow matching: {offset} steps, {minutes:.0f} min on 2 CPU cores")
    ax.set_ylabel("velocity MSE (batch 32)")
    ax.set_ylim(0, 0.25)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    bx.set_yscale("log")
    bx.set_ylabel("loss rise, wrong attribute\n(held-out clips)")
    bx.set_xlabel("step")
    bx.grid(alpha=0.3)
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out)
    print("wrote", a.out, f"({offset} steps, {minutes:.0f} min)")


if __name__ == "__main__":
    main()
