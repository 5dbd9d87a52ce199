#!/usr/bin/env python3
"""Writes the Wan VAE golden data (tests/data/vae/) with diffusers' AutoencoderKLWan.

    python3 tools/gen_vae_goldens.py [--out tests/data/vae]

A small random AutoencoderKLWan (base_dim 4, dim_mult [1,2,4,4], num_res_blocks 2,
z_dim 16, temperal_downsample [False, True, True]) exercises every resample kind
of the real Wan2.1 VAE: downsample2d and downsample3d in the encoder, upsample3d
and upsample2d in the decoder. Every parameter is re-drawn from a seeded
generator (RMS norm gammas and biases included), so a wrong gamma or a dropped
bias shows up in the outputs.

Outputs:
  diffusers/config.json, diffusers/diffusion_pytorch_model.safetensors
                          the model saved by save_pretrained (diffusers `vae/` layout)
  wan_vae_original.safetensors
                          the same tensors under the original Wan / ComfyUI key names
                          (docs/wan.md §3.4, §3.5), checked by running diffusers' own
                          single-file converter on it and comparing with the state dict
  wan2.1_vae_keys.txt     "original_key diffusers_key dim0,dim1,..." for every tensor of the
                          real Wan2.1 VAE (base_dim 96), from a meta-device model (no memory)
  goldens.safetensors     for each case NAME:
                            decode: NAME.latents [B,16,T,h,w] (denormalised: what the
                                    pipeline passes to vae.decode), NAME.sample
                                    [B,3,1+4(T-1),8h,8w] = vae.decode(latents).sample
                                    (post_quant_conv + chunked decoder + clamp to [-1,1])
                            encode: NAME.sample [B,3,F,H,W] in [-1,1], NAME.latent_mean and
                                    NAME.latent_logvar [B,16,T,h,w] = vae.encode(x).latent_dist
                                    .mean / .logvar (logvar clamped to [-30,20] by diffusers)
                          decode_t2_tiled.sample: decode_t2's latents through diffusers' tiled_decode
                                    with 2x3 latent tiles at stride 1x2 (16x24 px tiles, 8x16 px stride)

The decode input is NOT normalised: diffusers' AutoencoderKLWan.decode takes the
latent in the VAE's own space; WanPipeline denormalises first
(latents / (1/std) + mean). We feed randn * std + mean, i.e. a denormalised latent.
"""
import argparse
import json
import os

import torch
from diffusers import AutoencoderKLWan
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
from safetensors.torch import save_file

import provenance

LIBS = ("torch", "diffusers", "safetensors")

SEED = 20240531
CONFIG = dict(base_dim=4, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
              temperal_downsample=[False, True, True])

# (name, B, T, h, w): odd latent sizes on purpose.
DECODE_CASES = [("decode_t1", 1, 1, 3, 5), ("decode_t2", 1, 2, 4, 6), ("decode_t3_b2", 2, 3, 3, 5),
                ("decode_t5", 1, 5, 3, 5)]
# (name, B, F, H, W): H, W multiples of 8 with odd H/8, W/8.
ENCODE_CASES = [("encode_f1", 1, 1, 24, 40), ("encode_f5", 1, 5, 32, 48), ("encode_f9_b2", 2, 9, 8, 24)]

RES_RENAME = [("norm1.gamma", "residual.0.gamma"), ("conv1.", "residual.2."), ("norm2.gamma", "residual.3.gamma"),
              ("conv2.", "residual.6."), ("conv_shortcut.", "shortcut.")]


def resnet_to_original(rest):
    for d, o in RES_RENAME:
        if rest.startswith(d):
            return o + rest[len(d):]
    raise KeyError(rest)


def diffusers_to_original(key, num_res_blocks):
    """Inverse of the original -> diffusers key mapping (docs/wan.md §3.7), for any num_res_blocks."""
    p = key.split(".")
    top = {"quant_conv": "conv1", "post_quant_conv": "conv2"}
    if p[0] in top:
        return top[p[0]] + "." + ".".join(p[1:])
    side = p[0]  # encoder | decoder
    if p[1] == "conv_in":
        return f"{side}.conv1." + ".".join(p[2:])
    if p[1] == "norm_out":
        return f"{side}.head.0." + ".".join(p[2:])
    if p[1] == "conv_out":
        return f"{side}.head.2." + ".".join(p[2:])
    if p[1] == "mid_block":
        if p[2] == "attentions":
            return f"{side}.middle.1." + ".".join(p[4:])
        idx = {"0": 0, "1": 2}[p[3]]
        return f"{side}.middle.{idx}." + resnet_to_original(".".join(p[4:]))
    if p[1] == "down_blocks":  # same flat index; resample blocks keep their names
        rest = ".".join(p[3:])
        if p[3] in ("resample", "time_conv"):
            return f"encoder.downsamples.{p[2]}.{rest}"
        return f"encoder.downsamples.{p[2]}." + resnet_to_original(rest)
    if p[1] == "up_blocks":
        stage = int(p[2])
        base = stage * (num_res_blocks + 2)  # each stage: num_res_blocks+1 resnets, then one upsampler
        if p[3] == "resnets":
            return f"decoder.upsamples.{base + int(p[4])}." + resnet_to_original(".".join(p[5:]))
        if p[3] == "upsamplers":
            return f"decoder.upsamples.{base + num_res_blocks + 1}." + ".".join(p[5:])
    raise KeyError(key)


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)  # U(0.5, 1.5)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)


def original_state_dict(model, num_res_blocks):
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    orig = {diffusers_to_original(k, num_res_blocks): v for k, v in sd.items()}
    assert len(orig) == len(sd), "key collision in the inverse mapping"
    return sd, orig


def check_with_diffusers_converter(sd, orig):
    back = convert_wan_vae_to_diffusers(orig)
    assert set(back) == set(sd), sorted(set(back) ^ set(sd))[:10]
    for k in sd:
        assert torch.equal(back[k], sd[k]), k


def stats(name, t):
    sat = (t.abs() >= 1.0).float().mean().item()
    print(f"{name:24s} {list(t.shape)} mean {t.mean():+.4f} std {t.std():.4f} |x|>=1: {sat:.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "vae"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(SEED)

    model = AutoencoderKLWan(**CONFIG).eval()
    randomize(model, gen)
    # Scale the decoder's last conv so that a few percent of the outputs reach the
    # [-1, 1] clamp (tested) while most stay inside (an all +-1 golden hides errors).
    with torch.no_grad():
        model.decoder.conv_out.weight.mul_(0.75)
    model.save_pretrained(os.path.join(out, "diffusers"), safe_serialization=True)
    prov = provenance.metadata(__file__, seed=SEED, libs=LIBS)
    provenance.stamp_safetensors(os.path.join(out, "diffusers", "diffusion_pytorch_model.safetensors"), prov)

    sd, orig = original_state_dict(model, CONFIG["num_res_blocks"])
    check_with_diffusers_converter(sd, orig)
    save_file(orig, os.path.join(out, "wan_vae_original.safetensors"), metadata=prov)

    # The real Wan2.1 VAE's names and shapes, without allocating it.
    with torch.device("meta"):
        real = AutoencoderKLWan()
    real_sd = real.state_dict()
    real_names = {diffusers_to_original(k, 2): k for k in real_sd}
    assert set(convert_wan_vae_to_diffusers({o: real_sd[d] for o, d in real_names.items()})) == set(real_sd)
    n_params = sum(v.numel() for v in real_sd.values())
    with open(os.path.join(out, "wan2.1_vae_keys.txt"), "w") as f:
        f.write(f"# Wan2.1 VAE (base_dim 96): {len(real_names)} tensors, {n_params} parameters\n")
        f.write("# original_key diffusers_key shape\n")
        for o in sorted(real_names):
            d = real_names[o]
            f.write(f"{o} {d} {','.join(str(n) for n in real_sd[d].shape)}\n")

    mean = torch.tensor(model.config.latents_mean).view(1, 16, 1, 1, 1)
    std = torch.tensor(model.config.latents_std).view(1, 16, 1, 1, 1)
    goldens = {}
    meta = {"decode": [], "encode": []}
    with torch.no_grad():
        for name, b, t, h, w in DECODE_CASES:
            z = torch.randn((b, 16, t, h, w), generator=gen) * std + mean
            x = model.decode(z).sample
            assert x.shape == (b, 3, 1 + 4 * (t - 1), 8 * h, 8 * w)
            goldens[f"{name}.latents"] = z.contiguous()
            goldens[f"{name}.sample"] = x.contiguous()
            stats(name, x)
            meta["decode"].append(name)
        # diffusers' tiled decode with tiny tiles (latent 2x3, stride 1x2), on decode_t2's latents.
        model.enable_tiling(tile_sample_min_height=16, tile_sample_min_width=24, tile_sample_stride_height=8,
                            tile_sample_stride_width=16)
        x = model.decode(goldens["decode_t2.latents"]).sample
        model.use_tiling = False
        goldens["decode_t2_tiled.sample"] = x.contiguous()
        err = (x - goldens["decode_t2.sample"]).abs()
        print(f"tiled vs untiled decode_t2: max abs {err.max():.4f}, rms {err.pow(2).mean().sqrt():.4f}")
        for name, b, f, hh, ww in ENCODE_CASES:
            x = torch.rand((b, 3, f, hh, ww), generator=gen) * 2 - 1
            dist = model.encode(x).latent_dist
            goldens[f"{name}.sample"] = x.contiguous()
            goldens[f"{name}.latent_mean"] = dist.mean.contiguous()
            goldens[f"{name}.latent_logvar"] = dist.logvar.contiguous()
            stats(name, dist.mean)
            meta["encode"].append(name)
    save_file(goldens, os.path.join(out, "goldens.safetensors"),
              metadata={"cases": json.dumps(meta), "config": json.dumps(CONFIG), **prov})
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns)
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
