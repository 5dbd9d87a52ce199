#!/usr/bin/env python3
"""Writes the image-input golden data (tests/data/image/) with PIL and torch.

    python3 tools/golden/gen_image_goldens.py [--out tests/data/image]

  resize.safetensors   for each case NAME: NAME.in U8 [H, W, 3] (random RGB), NAME.out U8 [h, w, 3] =
                       Image.fromarray(in).resize((w, h), Image.LANCZOS): up, down, one axis only,
                       odd sizes, large factors
  ti2v.safetensors     NAME.in U8 [H, W, 3], NAME.out F32 [3, oh, ow]: the TI2V image as
                       Wan-Video/Wan2.2 textimage2video.py prepares it (best_output_size for the
                       area W*H, Lanczos by max(ow/iw, oh/ih) to (round(iw*s), round(ih*s)),
                       centre crop, to_tensor, (x - 0.5) / 0.5); __metadata__ "cases" lists
                       [name, area, ow, oh, resized_w, resized_h]
  bicubic.safetensors  NAME.in F32 [3, H, W], NAME.out F32 [3, h, w] =
                       F.interpolate(in[None], size=(h, w), mode="bicubic", align_corners=False)
  sizes.json           best_output_size and the I2V-A14B size for many (iw, ih, area)
  *.png                images of each colour type, and *.rgb.safetensors: PIL's
                       Image.open(png).convert("RGB") as U8 [H, W, 3]

best_output_size and the A14B size formula are the official ones, restated here (the checkout
need not be importable): the C++ tests check their own port against these numbers.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import provenance  # noqa: E402

LIBS = ("torch", "PIL", "numpy", "safetensors")
SEED = 424242


def best_output_size(w, h, dw, dh, expected_area):
    # Wan-Video/Wan2.2 wan/utils/utils.py
    ratio = w / h
    ow = (expected_area * ratio) ** 0.5
    oh = expected_area / ow
    ow1 = int(ow // dw * dw)
    oh1 = int(expected_area / ow1 // dh * dh)
    ratio1 = ow1 / oh1
    oh2 = int(oh // dh * dh)
    ow2 = int(expected_area / oh2 // dw * dw)
    ratio2 = ow2 / oh2
    if max(ratio / ratio1, ratio1 / ratio) < max(ratio / ratio2, ratio2 / ratio):
        return ow1, oh1
    return ow2, oh2


def a14b_size(iw, ih, max_area):
    # Wan-Video/Wan2.2 wan/image2video.py
    ar = ih / iw
    lat_h = round(np.sqrt(max_area * ar) // 8 // 2 * 2)
    lat_w = round(np.sqrt(max_area / ar) // 8 // 2 * 2)
    return lat_w * 8, lat_h * 8


def ti2v_image(img, area):
    ih, iw = img.height, img.width
    ow, oh = best_output_size(iw, ih, 32, 32, area)
    scale = max(ow / iw, oh / ih)
    rw, rh = round(iw * scale), round(ih * scale)
    img = img.resize((rw, rh), Image.LANCZOS)
    x1, y1 = (img.width - ow) // 2, (img.height - oh) // 2
    img = img.crop((x1, y1, x1 + ow, y1 + oh))
    t = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255)  # to_tensor
    return t.sub_(0.5).div_(0.5), (ow, oh, rw, rh)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(provenance.ROOT, "tests", "data", "image"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    prov = provenance.metadata(__file__, seed=SEED, libs=LIBS)

    def rand_img(h, w, smooth):
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if smooth:  # a gradient plus noise: values near 0 and 255 exercise the clipping
            y, x = np.mgrid[0:h, 0:w]
            g = (x * 255 / max(w - 1, 1))[..., None] * np.array([1.0, 0.3, 0.0]) + (y * 255 / max(h - 1, 1))[..., None] * np.array([0.0, 0.7, 1.0])
            a = np.clip(g + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        return a

    resize = {}
    cases = [("up", 7, 9, 20, 17), ("down", 40, 33, 11, 13), ("down_big", 97, 61, 12, 7), ("width_only", 10, 16, 10, 23),
             ("height_only", 18, 12, 31, 12), ("mixed", 25, 30, 40, 11), ("same", 9, 8, 9, 8), ("odd_up", 3, 5, 29, 31)]
    for name, h, w, oh, ow in cases:
        a = rand_img(h, w, smooth=(name in ("down", "mixed", "up")))
        b = np.asarray(Image.fromarray(a).resize((ow, oh), Image.LANCZOS))
        resize[f"{name}.in"] = torch.from_numpy(a.copy())
        resize[f"{name}.out"] = torch.from_numpy(b.copy())
    save_file(resize, os.path.join(out, "resize.safetensors"), metadata=prov)

    ti2v, meta = {}, []
    for name, h, w, area in [("landscape", 45, 80, 64 * 32), ("portrait", 70, 38, 96 * 64), ("square", 33, 33, 64 * 64),
                             ("wide", 20, 90, 256 * 64), ("upscale", 12, 17, 96 * 64)]:
        a = rand_img(h, w, smooth=True)
        t, (ow, oh, rw, rh) = ti2v_image(Image.fromarray(a), area)
        ti2v[f"{name}.in"] = torch.from_numpy(a.copy())
        ti2v[f"{name}.out"] = t.contiguous()
        meta.append([name, area, ow, oh, rw, rh])
    save_file(ti2v, os.path.join(out, "ti2v.safetensors"), metadata={"cases": json.dumps(meta), **prov})

    bic = {}
    g = torch.Generator().manual_seed(SEED)
    for name, h, w, oh, ow in [("up", 5, 7, 16, 24), ("down", 33, 40, 16, 8), ("same", 8, 8, 8, 8), ("mixed", 9, 30, 24, 16)]:
        x = torch.rand((3, h, w), generator=g) * 2 - 1
        bic[f"{name}.in"] = x
        bic[f"{name}.out"] = F.interpolate(x[None], size=(oh, ow), mode="bicubic", align_corners=False)[0].contiguous()
    save_file(bic, os.path.join(out, "bicubic.safetensors"), metadata=prov)

    sizes = []
    for iw, ih, area in [(1280, 704, 1280 * 704), (1920, 1080, 1280 * 704), (1080, 1920, 1280 * 704), (640, 480, 1280 * 704),
                         (500, 333, 832 * 480), (333, 500, 832 * 480), (1000, 1000, 1280 * 720), (4000, 100, 1280 * 704),
                         (100, 4000, 1280 * 704), (77, 55, 256 * 256), (1280, 720, 1280 * 720), (720, 1280, 832 * 480)]:
        ow, oh = best_output_size(iw, ih, 32, 32, area)
        aw, ah = a14b_size(iw, ih, area)
        sizes.append({"iw": iw, "ih": ih, "area": area, "ti2v": [ow, oh], "a14b": [int(aw), int(ah)]})
    with open(os.path.join(out, "sizes.json"), "w") as f:
        json.dump({"provenance": provenance.json_field(__file__, SEED, LIBS), "cases": sizes}, f, indent=1)

    # One PNG per colour type and what PIL's convert("RGB") makes of it.
    base = rand_img(6, 10, smooth=True)
    pngs = {
        "rgb": Image.fromarray(base),
        "gray": Image.fromarray(base[..., 0]),
        "rgba": Image.fromarray(np.dstack([base, rng.integers(0, 256, base.shape[:2], dtype=np.uint8)])),
        "gray_alpha": Image.fromarray(np.dstack([base[..., 1], base[..., 2]]), mode="LA"),
        "palette": Image.fromarray(base).convert("P", palette=Image.ADAPTIVE, colors=16),
    }
    for name, im in pngs.items():
        path = os.path.join(out, f"{name}.png")
        im.save(path)
        rgb = np.asarray(Image.open(path).convert("RGB"))
        save_file({"rgb": torch.from_numpy(rgb.copy())}, os.path.join(out, f"{name}.rgb.safetensors"), metadata=prov)
    with open(os.path.join(out, "not_an_image.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n this is not a PNG")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
