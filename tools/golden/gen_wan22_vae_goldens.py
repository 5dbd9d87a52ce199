#!/usr/bin/env python3
"""Writes the Wan2.2 VAE golden data (tests/data/vae22/) with diffusers' AutoencoderKLWan
(is_residual=True, patch_size=2) and checks it against the official Wan2.2 code.

    python3 tools/golden/gen_wan22_vae_goldens.py --wan22 PATH_TO_Wan2.2_CHECKOUT [--out tests/data/vae22]

The official code (Wan-Video/Wan2.2, wan/modules/vae2_2.py) is imported from the given
checkout at run time; nothing of it is copied here. A tiny random model with the real
Wan2.2 structure: residual down/up blocks with the AvgDown3D / DupUp3D shortcuts, the
2x2 pixel patchify in and out (12 channels), z_dim 48 with the real 48 latent
statistics, a decoder base width different from the encoder's, temperal_downsample
[False, True, True] (4x time, 16x space). Every parameter is re-drawn from a seeded
generator.

Outputs:
  diffusers/config.json, diffusers/diffusion_pytorch_model.safetensors   (diffusers `vae/` layout)
  wan22_vae_original.safetensors  the same tensors under the original Wan2.2_VAE.pth names
                                  (encoder.downsamples.{i}.downsamples.{j}, decoder.upsamples.{i}.upsamples.{j}, ...)
  goldens.safetensors             decode: NAME.latents [B,48,T,h,w] (VAE space), NAME.sample
                                  [B,3,1+4(T-1),16h,16w] = diffusers decode (clamped);
                                  encode: NAME.sample [B,3,F,H,W], NAME.latent_mean/.latent_logvar;
                                  NAME.official: the official WanVAE_ decode / encode (mean) of the
                                  same input, for the record (the C++ tests compare against both);
                                  decode_t2_tiled.sample: diffusers tiled_decode (tiles of 2x3 latent
                                  px at stride 1x2).
"""
import argparse
import json
import os
import sys

import torch
from diffusers import AutoencoderKLWan
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import provenance  # noqa: E402

LIBS = ("torch", "diffusers", "safetensors")
SEED = 20250728

# The 48 latent channel statistics of Wan2.2_VAE (wan/modules/vae2_2.py, Wan2_2_VAE).
MEAN = [-0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813, 0.0891,
        0.1570, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
        -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230, -0.0313, -0.1649, 0.0117, 0.0723,
        -0.2839, -0.2083, -0.0520, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667]
STD = [0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901, 0.6885,
       0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659, 0.7069, 0.5338,
       0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944, 0.5726, 1.2042, 0.5458,
       1.6887, 0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744]

CONFIG = dict(base_dim=3, decoder_base_dim=4, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
              temperal_downsample=[False, True, True], is_residual=True, in_channels=12, out_channels=12,
              patch_size=2, scale_factor_temporal=4, scale_factor_spatial=16, latents_mean=MEAN, latents_std=STD)

# (name, B, T, h, w) latent sizes; (name, B, F, H, W) pixel sizes (multiples of 16).
DECODE_CASES = [("decode_t1", 1, 1, 3, 5), ("decode_t2", 1, 2, 2, 3), ("decode_t3_b2", 2, 3, 3, 2),
                ("decode_t4", 1, 4, 2, 3)]
ENCODE_CASES = [("encode_f1", 1, 1, 48, 80), ("encode_f5", 1, 5, 32, 48), ("encode_f9_b2", 2, 9, 16, 32)]

RES = [("norm1.gamma", "residual.0.gamma"), ("conv1.", "residual.2."), ("norm2.gamma", "residual.3.gamma"),
       ("conv2.", "residual.6."), ("conv_shortcut.", "shortcut.")]


def res_to_original(rest):
    for d, o in RES:
        if rest.startswith(d):
            return o + rest[len(d):]
    raise KeyError(rest)


def diffusers_to_original(key, num_res_blocks):
    """The Wan2.2 VAE's diffusers name -> its Wan2.2_VAE.pth name (the inverse of diffusers'
    convert_vae_22 rename)."""
    p = key.split(".")
    if p[0] in ("quant_conv", "post_quant_conv"):
        return {"quant_conv": "conv1", "post_quant_conv": "conv2"}[p[0]] + "." + ".".join(p[1:])
    side = p[0]
    fixed = {"conv_in": "conv1", "norm_out": "head.0", "conv_out": "head.2"}
    if p[1] in fixed:
        return f"{side}.{fixed[p[1]]}." + ".".join(p[2:])
    if p[1] == "mid_block":
        if p[2] == "attentions":
            return f"{side}.middle.1." + ".".join(p[4:])
        return f"{side}.middle.{ {'0': 0, '1': 2}[p[3]] }." + res_to_original(".".join(p[4:]))
    if p[1] == "down_blocks":
        i = p[2]
        if p[3] == "resnets":
            return f"encoder.downsamples.{i}.downsamples.{p[4]}." + res_to_original(".".join(p[5:]))
        if p[3] == "downsampler":  # the resample follows the stage's residual blocks
            return f"encoder.downsamples.{i}.downsamples.{num_res_blocks}." + ".".join(p[4:])
    if p[1] == "up_blocks":
        i = p[2]
        if p[3] == "resnets":
            return f"decoder.upsamples.{i}.upsamples.{p[4]}." + res_to_original(".".join(p[5:]))
        if p[3] == "upsampler":
            return f"decoder.upsamples.{i}.upsamples.{num_res_blocks + 1}." + ".".join(p[4:])
    raise KeyError(key)


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5)


def load_official_module(wan22, rel_path):
    """One file of the checkout as a module, without the `wan` package's __init__ (which
    builds CUDA-only defaults at import)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("wan22_" + os.path.basename(rel_path)[:-3],
                                                  os.path.join(wan22, rel_path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def official_model(wan22, sd_orig):
    """WanVAE_ from the official checkout with the same weights (strict load)."""
    m = load_official_module(wan22, "wan/modules/vae2_2.py").WanVAE_(dim=CONFIG["base_dim"], dec_dim=CONFIG["decoder_base_dim"], z_dim=CONFIG["z_dim"],
                dim_mult=CONFIG["dim_mult"], num_res_blocks=CONFIG["num_res_blocks"], attn_scales=[],
                temperal_downsample=CONFIG["temperal_downsample"]).eval()
    m.load_state_dict(sd_orig, strict=True)
    return m


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wan22", required=True, help="a checkout of Wan-Video/Wan2.2 (its wan/ package is imported)")
    ap.add_argument("--out", default=os.path.join(provenance.ROOT, "tests", "data", "vae22"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(SEED)

    model = AutoencoderKLWan(**CONFIG).eval()
    randomize(model, gen)
    with torch.no_grad():  # a few percent of the outputs reach the clamp, most stay inside
        model.decoder.conv_out.weight.mul_(0.5)
    model.save_pretrained(os.path.join(out, "diffusers"), safe_serialization=True)
    prov = provenance.metadata(__file__, seed=SEED, libs=LIBS)
    provenance.stamp_safetensors(os.path.join(out, "diffusers", "diffusion_pytorch_model.safetensors"), prov)

    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    orig = {diffusers_to_original(k, CONFIG["num_res_blocks"]): v for k, v in sd.items()}
    assert len(orig) == len(sd)
    save_file(orig, os.path.join(out, "wan22_vae_original.safetensors"), metadata=prov)
    official = official_model(args.wan22, orig)  # a strict load: the names are the official ones

    # The real Wan2.2_VAE's names and shapes (meta device: no memory); the same inverse
    # rename must give the official module's names.
    real_cfg = dict(CONFIG, base_dim=160, decoder_base_dim=256)
    with torch.device("meta"):
        real = AutoencoderKLWan(**real_cfg)
        real_official = load_official_module(args.wan22, "wan/modules/vae2_2.py").WanVAE_(
            dim=160, dec_dim=256, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
            temperal_downsample=[False, True, True])
    real_sd = real.state_dict()
    names = {diffusers_to_original(k, 2): k for k in real_sd}
    assert set(names) == set(real_official.state_dict()), sorted(set(names) ^ set(real_official.state_dict()))[:8]
    with open(os.path.join(out, "wan2.2_vae_keys.txt"), "w") as f:
        f.write(f"# Wan2.2 VAE (base_dim 160, decoder_base_dim 256): {len(names)} tensors, "
                f"{sum(v.numel() for v in real_sd.values())} parameters\n")
        f.write("# original_key diffusers_key shape\n")
        for o in sorted(names):
            f.write(f"{o} {names[o]} {','.join(str(n) for n in real_sd[names[o]].shape)}\n")

    mean = torch.tensor(MEAN).view(1, 48, 1, 1, 1)
    std = torch.tensor(STD).view(1, 48, 1, 1, 1)
    goldens, meta = {}, {"decode": [], "encode": []}
    with torch.no_grad():
        for name, b, t, h, w in DECODE_CASES:
            z = torch.randn((b, 48, t, h, w), generator=gen) * std + mean
            x = model.decode(z).sample
            assert x.shape == (b, 3, 1 + 4 * (t - 1), 16 * h, 16 * w), x.shape
            # The official decode takes the normalised latent and the scale [mean, 1/std].
            xo = torch.cat([official.decode(((z[i:i + 1] - mean) * (1.0 / std)), [mean.flatten(), 1.0 / std.flatten()])
                            for i in range(b)]).clamp(-1, 1)
            print(f"{name:14s} {list(x.shape)} diffusers vs official rel {rel(x, xo):.2e}, "
                  f"|x|>=1: {(x.abs() >= 1).float().mean():.3f}")
            assert rel(x, xo) < 1e-5
            goldens[f"{name}.latents"] = z.contiguous()
            goldens[f"{name}.sample"] = x.contiguous()
            goldens[f"{name}.official"] = xo.contiguous()
            meta["decode"].append(name)
        model.enable_tiling(tile_sample_min_height=32, tile_sample_min_width=48, tile_sample_stride_height=16,
                            tile_sample_stride_width=32)
        x = model.decode(goldens["decode_t2.latents"]).sample
        model.use_tiling = False
        goldens["decode_t2_tiled.sample"] = x.contiguous()
        for name, b, f, hh, ww in ENCODE_CASES:
            x = torch.rand((b, 3, f, hh, ww), generator=gen) * 2 - 1
            dist = model.encode(x).latent_dist
            mo = torch.cat([official.encode(x[i:i + 1], [torch.zeros(48), torch.ones(48)]) for i in range(b)])
            print(f"{name:14s} {list(dist.mean.shape)} diffusers vs official mean rel {rel(dist.mean, mo):.2e}")
            assert rel(dist.mean, mo) < 1e-5
            goldens[f"{name}.sample"] = x.contiguous()
            goldens[f"{name}.latent_mean"] = dist.mean.contiguous()
            goldens[f"{name}.latent_logvar"] = dist.logvar.contiguous()
            goldens[f"{name}.official"] = mo.contiguous()
            meta["encode"].append(name)
    save_file(goldens, os.path.join(out, "goldens.safetensors"),
              metadata={"cases": json.dumps(meta), "config": json.dumps(CONFIG), **prov})
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns)
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
