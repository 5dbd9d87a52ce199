#!/usr/bin/env python3
"""Writes the Wan DiT goldens: a tiny random diffusers WanTransformer3DModel in
every checkpoint layout t2v reads, and the outputs diffusers computes from it.

    python3 tools/golden/gen_dit_goldens.py [--out tests/data/diffusion]

Model: 2 layers, 2 heads of dim 24 (dim 48; RoPE split 8/8/8 real dims), ffn 64,
text_dim 32, freq_dim 256, patch (1,2,2), in/out 16. Every parameter is random,
including scale_shift_table, q/k RMS norm weights and the affine cross-attention
LayerNorm, so a wrong name mapping or a swapped norm cannot go unnoticed.

Outputs under --out:
  tiny_dit/diffusers/            config.json + diffusion_pytorch_model.safetensors (save_pretrained)
  tiny_dit/diffusers_sharded/    config.json + 2 shards + diffusion_pytorch_model.safetensors.index.json
  tiny_dit/original.safetensors  original Wan key names (norm2/norm3 swapped back), F32
  tiny_dit/comfy.safetensors     same, with the `model.diffusion_model.` prefix
  tiny_dit/original_bf16.safetensors, original_f16.safetensors
  tiny_dit/original_fp8_scaled.safetensors  block Linear weights F8_E4M3 + scale_weight, marker `scaled_fp8`
  tiny_dit/config_original.json  the original-style config.json (dim, num_heads, ...)
  cases.safetensors              per case <case>.hidden_states / .timestep / .encoder_hidden_states /
                                 .sample (+ named intermediates for some cases)
  cases.json                     case list with shapes

The forward runs in fp32 on CPU. Context: diffusers' transformer does not pad;
the pipeline pads the trimmed T5 rows with zeros to 512. Here the model is always
called with the zero-padded [B, 512, text_dim] context, while the stored input
keeps only its first L rows for some cases (t2v pads to 512 itself).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from diffusers import WanTransformer3DModel
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import provenance  # noqa: E402  (tools/provenance.py)

LIBS = ("torch", "diffusers", "safetensors", "numpy")
SEED = "0 (torch.manual_seed), 20240521 (weights and inputs)"

TEXT_LEN = 512
PREFIX = "model.diffusion_model."


# ---- the one rename table: canonical (original Wan) name -> diffusers name -----
def diffusers_name(key: str) -> str:
    top = {
        "text_embedding.0.": "condition_embedder.text_embedder.linear_1.",
        "text_embedding.2.": "condition_embedder.text_embedder.linear_2.",
        "time_embedding.0.": "condition_embedder.time_embedder.linear_1.",
        "time_embedding.2.": "condition_embedder.time_embedder.linear_2.",
        "time_projection.1.": "condition_embedder.time_proj.",
        "head.head.": "proj_out.",
    }
    if key == "head.modulation":
        return "scale_shift_table"
    for a, b in top.items():
        if key.startswith(a):
            return b + key[len(a):]
    if not key.startswith("blocks."):
        return key  # patch_embedding.*
    _, i, rest = key.split(".", 2)
    block = {
        "modulation": "scale_shift_table",
        "norm3.weight": "norm2.weight",  # cross-attention affine LN (the name swap)
        "norm3.bias": "norm2.bias",
        "ffn.0.weight": "ffn.net.0.proj.weight",
        "ffn.0.bias": "ffn.net.0.proj.bias",
        "ffn.2.weight": "ffn.net.2.weight",
        "ffn.2.bias": "ffn.net.2.bias",
    }
    if rest in block:
        return f"blocks.{i}.{block[rest]}"
    attn, sub = rest.split(".", 1)
    attn = {"self_attn": "attn1", "cross_attn": "attn2"}[attn]
    proj, leaf = sub.split(".", 1)
    proj = {"q": "to_q", "k": "to_k", "v": "to_v", "o": "to_out.0"}.get(proj, proj)
    return f"blocks.{i}.{attn}.{proj}.{leaf}"


def canonical_names(num_layers):
    names = ["patch_embedding.weight", "patch_embedding.bias"]
    for m in ["text_embedding.0", "text_embedding.2", "time_embedding.0", "time_embedding.2", "time_projection.1"]:
        names += [m + ".weight", m + ".bias"]
    for i in range(num_layers):
        b = f"blocks.{i}."
        names.append(b + "modulation")
        for a in ["self_attn", "cross_attn"]:
            for p in "qkvo":
                names += [f"{b}{a}.{p}.weight", f"{b}{a}.{p}.bias"]
            names += [f"{b}{a}.norm_q.weight", f"{b}{a}.norm_k.weight"]
        names += [b + "norm3.weight", b + "norm3.bias"]
        names += [b + "ffn.0.weight", b + "ffn.0.bias", b + "ffn.2.weight", b + "ffn.2.bias"]
    names += ["head.modulation", "head.head.weight", "head.head.bias"]
    return names


def randomize(model, gen):
    """Random values for every parameter, scaled so activations stay O(1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("scale_shift_table"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / np.sqrt(fan_in))


def make_context(gen, batch, real_lengths, text_dim, stored_rows):
    """Zero-padded context [B, 512, text_dim]; the stored input keeps `stored_rows` rows."""
    ctx = torch.zeros(batch, TEXT_LEN, text_dim)
    for b, n in enumerate(real_lengths):
        ctx[b, :n] = torch.randn(n, text_dim, generator=gen)
    return ctx, ctx[:, :stored_rows].contiguous()


def original_state_dict(model, num_layers):
    sd = model.state_dict()
    return {k: sd[diffusers_name(k)].detach().clone().contiguous() for k in canonical_names(num_layers)}


def fp8_scaled(sd):
    """Comfy 'scaled fp8': 2-D block Linear weights as float8_e4m3fn + fp32 scale_weight."""
    out, rounded = {}, {}
    for k, v in sd.items():
        if k.startswith("blocks.") and k.endswith(".weight") and v.dim() == 2:
            scale = v.abs().max() / 448.0
            q = (v / scale).to(torch.float8_e4m3fn)
            out[k] = q
            out[k[: -len("weight")] + "scale_weight"] = scale.reshape(()).float()
            rounded[k] = q.float() * scale
        else:
            out[k] = v.to(torch.float16)
            rounded[k] = out[k].float()
    out["scaled_fp8"] = torch.zeros(2, dtype=torch.float8_e4m3fn)
    return out, rounded


def load_original_into(model, sd):
    """Loads original-layout (rounded) weights into a copy of the diffusers model."""
    state = {diffusers_name(k): v.float() for k, v in sd.items()}
    model.load_state_dict(state, strict=True)


def capture_intermediates(model):
    """Forward hooks named like t2v's dump names."""
    store = {}
    hooks = []

    def hook(name, fn=lambda o: o):
        def h(_m, _i, out):
            store[name] = fn(out).detach().clone().float()
        return h

    ce = model.condition_embedder
    hooks.append(model.patch_embedding.register_forward_hook(hook("patch_embedding", lambda o: o.flatten(2).transpose(1, 2))))
    hooks.append(ce.time_embedder.register_forward_hook(hook("time_embedding")))
    hooks.append(ce.time_proj.register_forward_hook(hook("time_projection")))
    hooks.append(ce.text_embedder.register_forward_hook(hook("text_embedding")))
    for i, blk in enumerate(model.blocks):
        hooks.append(blk.attn1.register_forward_hook(hook(f"blocks.{i}.self_attn.out")))
        hooks.append(blk.attn2.register_forward_hook(hook(f"blocks.{i}.cross_attn.out")))
        hooks.append(blk.ffn.register_forward_hook(hook(f"blocks.{i}.ffn.out")))
        hooks.append(blk.register_forward_hook(hook(f"blocks.{i}.out")))
    hooks.append(model.proj_out.register_forward_hook(hook("head.out")))
    return store, hooks


def run(model, x, t, ctx_padded, with_intermediates=False):
    store, hooks = (capture_intermediates(model) if with_intermediates else ({}, []))
    with torch.no_grad():
        out = model(hidden_states=x, timestep=t, encoder_hidden_states=ctx_padded, return_dict=False)[0]
    for h in hooks:
        h.remove()
    return out.float().contiguous(), store


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/diffusion")
    args = ap.parse_args()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(20240521)

    cfg = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=24, in_channels=16, out_channels=16,
               text_dim=32, freq_dim=256, ffn_dim=64, num_layers=2, cross_attn_norm=True,
               qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
    model = WanTransformer3DModel(**cfg).float().eval()
    randomize(model, gen)
    dim = cfg["num_attention_heads"] * cfg["attention_head_dim"]

    root = os.path.join(args.out, "tiny_dit")
    os.makedirs(root, exist_ok=True)
    model.save_pretrained(os.path.join(root, "diffusers"), safe_serialization=True)
    prov = provenance.metadata(__file__, seed=SEED, libs=LIBS)
    provenance.stamp_safetensors(os.path.join(root, "diffusers", "diffusion_pytorch_model.safetensors"), prov)

    # Sharded diffusers copy: two shards and an index, as large checkpoints ship.
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    keys = sorted(sd)
    half = len(keys) // 2
    shard_dir = os.path.join(root, "diffusers_sharded")
    os.makedirs(shard_dir, exist_ok=True)
    weight_map = {}
    for n, part in enumerate([keys[:half], keys[half:]]):
        fname = f"diffusion_pytorch_model-{n + 1:05d}-of-00002.safetensors"
        save_file({k: sd[k] for k in part}, os.path.join(shard_dir, fname), metadata={"format": "pt", **prov})
        weight_map.update({k: fname for k in part})
    total = sum(v.numel() * v.element_size() for v in sd.values())
    with open(os.path.join(shard_dir, "diffusion_pytorch_model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
    with open(os.path.join(root, "diffusers", "config.json")) as f:
        diffusers_cfg = f.read()
    with open(os.path.join(shard_dir, "config.json"), "w") as f:
        f.write(diffusers_cfg)

    # Original / Comfy single files.
    orig = original_state_dict(model, cfg["num_layers"])
    assert len(orig) == len(sd), "rename table does not cover every diffusers tensor"
    save_file(orig, os.path.join(root, "original.safetensors"), metadata={"format": "pt", **prov})
    save_file({PREFIX + k: v for k, v in orig.items()}, os.path.join(root, "comfy.safetensors"), metadata=prov)
    bf16 = {k: v.to(torch.bfloat16) for k, v in orig.items()}
    f16 = {k: v.to(torch.float16) for k, v in orig.items()}
    save_file(bf16, os.path.join(root, "original_bf16.safetensors"), metadata=prov)
    save_file(f16, os.path.join(root, "original_f16.safetensors"), metadata=prov)
    fp8, fp8_rounded = fp8_scaled(orig)
    save_file(fp8, os.path.join(root, "original_fp8_scaled.safetensors"), metadata=prov)
    with open(os.path.join(root, "config_original.json"), "w") as f:
        json.dump({"_class_name": "WanModel", "dim": dim, "eps": 1e-6, "ffn_dim": cfg["ffn_dim"],
                   "freq_dim": cfg["freq_dim"], "in_dim": 16, "model_type": "t2v",
                   "num_heads": cfg["num_attention_heads"], "num_layers": cfg["num_layers"], "out_dim": 16,
                   "text_len": TEXT_LEN, "text_dim": cfg["text_dim"], "patch_size": [1, 2, 2]}, f, indent=2)

    # Cases: (name, batch, T, h, w, timesteps, real context rows per sample, stored rows, intermediates)
    cases = [
        ("odd_t3_h6_w10", 1, 3, 6, 10, [500.0], [7], TEXT_LEN, True),
        ("tiny_t1_h2_w2", 1, 1, 2, 2, [0.0], [3], 3, False),
        ("t2_h4_w6_t1", 1, 2, 4, 6, [1.0], [20], 24, False),
        ("t2_h4_w6_t999", 1, 2, 4, 6, [999.0], [512], TEXT_LEN, False),
        ("batch2_cfg", 2, 3, 4, 4, [999.0, 500.0], [9, 4], 16, True),
    ]
    tensors, index = {}, []
    for name, b, t, h, w, ts, real, stored, inter in cases:
        x = torch.randn(b, 16, t, h, w, generator=gen)
        tt = torch.tensor(ts, dtype=torch.float32)
        ctx_padded, ctx_stored = make_context(gen, b, real, cfg["text_dim"], stored)
        out, store = run(model, x, tt, ctx_padded, inter)
        tensors[f"{name}.hidden_states"] = x
        tensors[f"{name}.timestep"] = tt
        tensors[f"{name}.encoder_hidden_states"] = ctx_stored
        tensors[f"{name}.sample"] = out
        for k, v in store.items():
            tensors[f"{name}.{k}"] = v.contiguous()
        index.append({"name": name, "hidden_states": list(x.shape), "timestep": ts, "context_rows": stored,
                      "real_rows": real, "intermediates": sorted(store)})

    # Reduced-precision files: expected outputs of the same fp32 forward with the
    # rounded weights (what loading those files and computing in fp32 must give).
    name, x, tt = "odd_t3_h6_w10", tensors["odd_t3_h6_w10.hidden_states"], tensors["odd_t3_h6_w10.timestep"]
    ctx_padded = torch.zeros(1, TEXT_LEN, cfg["text_dim"])
    ctx_padded[:, :tensors[f"{name}.encoder_hidden_states"].shape[1]] = tensors[f"{name}.encoder_hidden_states"]
    for tag, sd_r in [("bf16", bf16), ("f16", f16), ("fp8_scaled", fp8_rounded)]:
        m = WanTransformer3DModel(**cfg).float().eval()
        load_original_into(m, sd_r)
        tensors[f"{name}.sample_{tag}_weights"] = run(m, x, tt, ctx_padded)[0]

    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(args.out, "cases.safetensors"),
              metadata=prov)
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump({"provenance": provenance.json_field(__file__, seed=SEED, libs=LIBS),
                   "model": cfg | {"patch_size": list(cfg["patch_size"])}, "cases": index}, f, indent=2)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
