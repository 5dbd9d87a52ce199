#!/usr/bin/env python3
"""Writes the Wan2.2 TI2V DiT goldens (tests/data/diffusion22/): a tiny random TI2V DiT
(48 latent channels, per-token timesteps) and its outputs from the official WanModel
(Wan-Video/Wan2.2 wan/modules/model.py) and diffusers' WanTransformer3DModel.

    python3 tools/golden/gen_wan22_dit_goldens.py --wan22 PATH_TO_Wan2.2_CHECKOUT [--out tests/data/diffusion22]

Model: 2 layers, 2 heads of 24 (dim 48), ffn 64, text_dim 32, in/out 48, model_type ti2v.
Cases (timestep per token in frame, row, column order, as textimage2video.py builds it):
  t2v        every token t (the official t2v branch)
  i2v        tokens of latent frame 0 get 0, the rest t (the official i2v branch)
  mixed_b2   batch 2, the i2v pattern with different t per sample
  scattered  an arbitrary value per token (neither per-sample nor per-frame)
  scalar     a [B] timestep (the per-sample path) for the same model
Each case stores NAME.hidden_states [B,48,T,h,w], NAME.timestep ([B, N] or [B]),
NAME.encoder_hidden_states [B, L, 32] (the first L rows; the rest are zeros up to 512),
NAME.sample (the official output) and NAME.sample_diffusers.
"""
import argparse
import json
import os
import sys

import torch
from diffusers import WanTransformer3DModel
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import provenance  # noqa: E402
import wan22_reference  # noqa: E402
from gen_dit_goldens import diffusers_name, canonical_names, randomize  # noqa: E402

LIBS = ("torch", "diffusers", "safetensors")
SEED = 20250801
TEXT_LEN = 512


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wan22", required=True)
    ap.add_argument("--out", default=os.path.join(provenance.ROOT, "tests", "data", "diffusion22"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(SEED)
    cfg = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=24, in_channels=48, out_channels=48,
               text_dim=32, freq_dim=256, ffn_dim=64, num_layers=2, cross_attn_norm=True,
               qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
    model = WanTransformer3DModel(**cfg).float().eval()
    randomize(model, gen)
    prov = provenance.metadata(__file__, seed=SEED, libs=LIBS)
    prov["wan22_commit"] = wan22_reference.commit(args.wan22)
    model.save_pretrained(os.path.join(out, "tiny_ti2v", "diffusers"), safe_serialization=True)
    provenance.stamp_safetensors(os.path.join(out, "tiny_ti2v", "diffusers", "diffusion_pytorch_model.safetensors"), prov)
    sd = model.state_dict()
    orig = {k: sd[diffusers_name(k)].detach().clone().contiguous() for k in canonical_names(2)}
    save_file(orig, os.path.join(out, "tiny_ti2v", "original.safetensors"), metadata=prov)
    ocfg = {"_class_name": "WanModel", "model_type": "ti2v", "dim": 48, "ffn_dim": 64, "freq_dim": 256, "in_dim": 48,
            "out_dim": 48, "num_heads": 2, "num_layers": 2, "text_len": TEXT_LEN, "text_dim": 32, "eps": 1e-6}
    with open(os.path.join(out, "tiny_ti2v", "config.json"), "w") as f:
        json.dump(ocfg, f, indent=1)

    WanModel = wan22_reference.module(args.wan22, "modules.model").WanModel
    official = WanModel(model_type="ti2v", patch_size=(1, 2, 2), text_len=TEXT_LEN, in_dim=48, dim=48, ffn_dim=64,
                        freq_dim=256, text_dim=32, out_dim=48, num_heads=2, num_layers=2).eval()
    official.load_state_dict(orig, strict=True)

    tensors, cases = {}, []
    for name, B, T, h, w, L, kind in [("t2v", 1, 3, 4, 6, 7, 't2v'), ("i2v", 1, 3, 4, 6, 5, 'i2v'),
                                     ("mixed_b2", 2, 2, 2, 4, 9, 'i2v'), ("scattered", 1, 2, 4, 2, 3, 'scattered'),
                                     ("scalar", 1, 2, 2, 4, 4, 'scalar')]:
        x = torch.randn(B, 48, T, h, w, generator=gen)
        N = T * (h // 2) * (w // 2)
        t0 = torch.tensor([937.0, 412.0][:B])
        if kind == "t2v":
            ts = t0[:, None].expand(B, N).clone()
        elif kind == "i2v":
            ts = t0[:, None].expand(B, N).clone()
            ts[:, : (h // 2) * (w // 2)] = 0.0  # latent frame 0: the image
        elif kind == "scattered":
            ts = torch.randint(0, 1000, (B, N), generator=gen).float()
        else:
            ts = t0
        ctx = torch.zeros(B, TEXT_LEN, 32)
        ctx[:, :L] = torch.randn(B, L, 32, generator=gen)
        with torch.no_grad():
            ref = torch.stack(official([x[b] for b in range(B)], t=ts, context=[ctx[b, :L] for b in range(B)], seq_len=N))
            dif = model(hidden_states=x, timestep=ts, encoder_hidden_states=ctx, return_dict=False)[0]
        rel = ((ref - dif).abs().max() / ref.abs().max()).item()
        print(f"{name:10s} x {list(x.shape)} t {list(ts.shape)}: official vs diffusers rel {rel:.2e}")
        assert rel < 1e-5
        tensors.update({f"{name}.hidden_states": x, f"{name}.timestep": ts.contiguous(),
                        f"{name}.encoder_hidden_states": ctx[:, :L].contiguous(), f"{name}.sample": ref.contiguous(),
                        f"{name}.sample_diffusers": dif.contiguous()})
        cases.append(name)
    save_file(tensors, os.path.join(out, "cases.safetensors"), metadata={"cases": json.dumps(cases), **prov})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
