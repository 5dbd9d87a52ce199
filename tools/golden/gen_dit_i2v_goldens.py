#!/usr/bin/env python3
"""Writes the image-to-video DiT goldens from the official Wan2.1 WanModel
(wan/modules/model.py, model_type "i2v" and "flf2v") on tiny random configs, in
the original, ComfyUI and diffusers layouts; the diffusers copy is cross-checked
against diffusers' WanTransformer3DModel.

    python3 tools/golden/gen_dit_i2v_goldens.py --wan21 PATH [--out tests/data/diffusion]

Model: 2 layers, 2 heads of 24 (dim 48), ffn 64, text_dim 32, in 36 / out 16,
image_dim 40. The reference hard-codes a 1280-wide image embedder (MLPProj(1280, dim))
and 514 FLF2V positions; both are rebuilt here at the tiny width with the
reference's own MLPProj class (the arithmetic is unchanged). Every parameter is
random.

Outputs under --out/tiny_dit_i2v/:
  i2v.safetensors, i2v_comfy.safetensors, i2v_diffusers/ (config.json + weights)
  flf2v.safetensors, flf2v_diffusers/
and --out/i2v_cases.safetensors / i2v_cases.json: per case <case>.hidden_states
[B, 36, T, H, W] (noise ‖ mask ‖ image latents), .timestep, .encoder_hidden_states
[B, L, 32], .image_features [B, I, 40], .sample, and named intermediates.
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
import provenance  # noqa: E402  (tools/provenance.py)
import wan_upstream  # noqa: E402

LIBS = ("torch", "diffusers", "safetensors")
SEED = 20250613
DIM, HEADS, FFN, TEXT_DIM, LAYERS, IMAGE_DIM, TOKENS = 48, 2, 64, 32, 2, 40, 5


def diffusers_name(key):
    """Original Wan key -> diffusers WanTransformer3DModel key (the rename table of
    docs/wan.md §2.11, image-to-video rows included)."""
    top = {
        "text_embedding.0.": "condition_embedder.text_embedder.linear_1.",
        "text_embedding.2.": "condition_embedder.text_embedder.linear_2.",
        "time_embedding.0.": "condition_embedder.time_embedder.linear_1.",
        "time_embedding.2.": "condition_embedder.time_embedder.linear_2.",
        "time_projection.1.": "condition_embedder.time_proj.",
        "head.head.": "proj_out.",
        "img_emb.proj.0.": "condition_embedder.image_embedder.norm1.",
        "img_emb.proj.1.": "condition_embedder.image_embedder.ff.net.0.proj.",
        "img_emb.proj.3.": "condition_embedder.image_embedder.ff.net.2.",
        "img_emb.proj.4.": "condition_embedder.image_embedder.norm2.",
    }
    if key == "head.modulation":
        return "scale_shift_table"
    if key == "img_emb.emb_pos":
        return "condition_embedder.image_embedder.pos_embed"
    for a, b in top.items():
        if key.startswith(a):
            return b + key[len(a):]
    if not key.startswith("blocks."):
        return key
    _, i, rest = key.split(".", 2)
    block = {"modulation": "scale_shift_table", "norm3.weight": "norm2.weight", "norm3.bias": "norm2.bias",
             "ffn.0.weight": "ffn.net.0.proj.weight", "ffn.0.bias": "ffn.net.0.proj.bias",
             "ffn.2.weight": "ffn.net.2.weight", "ffn.2.bias": "ffn.net.2.bias"}
    if rest in block:
        return f"blocks.{i}.{block[rest]}"
    attn, sub = rest.split(".", 1)
    attn = {"self_attn": "attn1", "cross_attn": "attn2"}[attn]
    proj, leaf = sub.split(".", 1)
    proj = {"q": "to_q", "k": "to_k", "v": "to_v", "o": "to_out.0", "k_img": "add_k_proj", "v_img": "add_v_proj",
            "norm_k_img": "norm_added_k"}.get(proj, proj)
    return f"blocks.{i}.{attn}.{proj}.{leaf}"


def build(up, model_type, gen):
    m = up.model.WanModel(model_type=model_type, patch_size=(1, 2, 2), text_len=512, in_dim=36, dim=DIM,
                          ffn_dim=FFN, freq_dim=256, text_dim=TEXT_DIM, out_dim=16, num_heads=HEADS,
                          num_layers=LAYERS, cross_attn_norm=True, eps=1e-6)
    # The reference's MLPProj at the tiny image width (it hard-codes 1280 and 2 x 257).
    m.img_emb = up.model.MLPProj(IMAGE_DIM, DIM, flf_pos_emb=model_type == "flf2v")
    if model_type == "flf2v":
        m.img_emb.emb_pos = torch.nn.Parameter(torch.zeros(1, 2 * TOKENS, IMAGE_DIM))
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name and name.endswith("weight") or name.startswith("img_emb.proj.0.weight") or \
                    name.startswith("img_emb.proj.4.weight"):
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith("modulation"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias") or name.endswith("emb_pos"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5)
    return m.eval()


def hooks(m, store):
    hs = []

    def hook(name):
        def h(_m, _i, out):
            store[name] = out.detach().clone().float()
        return h
    hs.append(m.img_emb.register_forward_hook(hook("image_embedding")))
    hs.append(m.text_embedding.register_forward_hook(hook("text_embedding")))
    for i, blk in enumerate(m.blocks):
        hs.append(blk.cross_attn.register_forward_hook(hook(f"blocks.{i}.cross_attn.out")))
        hs.append(blk.register_forward_hook(hook(f"blocks.{i}.out")))
    return hs


def diffusers_copy(m, model_type, folder, prov):
    cfg = dict(patch_size=(1, 2, 2), num_attention_heads=HEADS, attention_head_dim=DIM // HEADS, in_channels=36,
               out_channels=16, text_dim=TEXT_DIM, freq_dim=256, ffn_dim=FFN, num_layers=LAYERS,
               cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=IMAGE_DIM,
               added_kv_proj_dim=DIM, rope_max_seq_len=1024,
               pos_embed_seq_len=2 * TOKENS if model_type == "flf2v" else None)
    d = WanTransformer3DModel(**cfg).eval()
    sd = {diffusers_name(k): v for k, v in m.state_dict().items()}
    missing, unexpected = d.load_state_dict(sd, strict=True), None
    d.save_pretrained(folder, safe_serialization=True)
    provenance.stamp_safetensors(os.path.join(folder, "diffusion_pytorch_model.safetensors"), prov)
    return d


def main():
    ap = argparse.ArgumentParser()
    wan_upstream.add_argument(ap)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "diffusion"))
    args = ap.parse_args()
    up = wan_upstream.load(args.wan21)
    extra = {"Wan-Video/Wan2.1": up.commit}
    prov = provenance.metadata(__file__, seed=SEED, libs=LIBS, extra=extra)
    gen = torch.Generator().manual_seed(SEED)
    root = os.path.join(args.out, "tiny_dit_i2v")
    os.makedirs(root, exist_ok=True)

    tensors, index = {}, []
    # (case, model type, T, h, w, timestep, real text rows, stored text rows)
    cases = [("i2v_t3_h4_w6", "i2v", 3, 4, 6, 999.0, 7, 7), ("i2v_t2_h6_w4", "i2v", 2, 6, 4, 500.0, 512, 512),
             ("flf2v_t3_h4_w4", "flf2v", 3, 4, 4, 731.0, 11, 16)]
    models = {}
    for mt in ("i2v", "flf2v"):
        m = build(up, mt, gen)
        models[mt] = m
        orig = {k: v.detach().contiguous() for k, v in m.state_dict().items()}
        save_file(orig, os.path.join(root, f"{mt}.safetensors"), metadata=prov)
        if mt == "i2v":
            save_file({"model.diffusion_model." + k: v for k, v in orig.items()},
                      os.path.join(root, "i2v_comfy.safetensors"), metadata=prov)
        models[mt + "_diffusers"] = diffusers_copy(m, mt, os.path.join(root, f"{mt}_diffusers"), prov)

    for name, mt, T, h, w, ts, real, stored in cases:
        m = models[mt]
        x = torch.randn(16, T, h, w, generator=gen)
        y = torch.cat([(torch.rand(4, T, h, w, generator=gen) > 0.5).float(), torch.randn(16, T, h, w, generator=gen)])
        ctx = torch.randn(real, TEXT_DIM, generator=gen)
        n_img = 2 if mt == "flf2v" else 1
        clip = torch.randn(n_img, TOKENS, IMAGE_DIM, generator=gen)
        t = torch.tensor([ts])
        store = {}
        hs = hooks(m, store)
        with torch.no_grad():
            out = m([x], t=t, context=[ctx], seq_len=T * h * w // 4, clip_fea=clip, y=[y])[0]
        for hk in hs:
            hk.remove()
        # diffusers on the same inputs (its context padded to 512 rows by the caller).
        ctx512 = torch.zeros(1, 512, TEXT_DIM)
        ctx512[0, :real] = ctx
        with torch.no_grad():
            ref = models[mt + "_diffusers"](hidden_states=torch.cat([x, y])[None], timestep=t,
                                            encoder_hidden_states=ctx512,
                                            encoder_hidden_states_image=clip.reshape(1, -1, IMAGE_DIM) if mt == "i2v"
                                            else clip, return_dict=False)[0][0]
        err = (ref - out).abs().max().item() / out.abs().max().item()
        print(f"{name}: sample {tuple(out.shape)}, diffusers agrees to {err:.2e}")
        assert err < 1e-4, err
        stored_ctx = torch.zeros(stored, TEXT_DIM)
        stored_ctx[:real] = ctx
        tensors[f"{name}.hidden_states"] = torch.cat([x, y])[None].contiguous()
        tensors[f"{name}.timestep"] = t
        tensors[f"{name}.encoder_hidden_states"] = stored_ctx[None].contiguous()
        tensors[f"{name}.image_features"] = clip.reshape(1, n_img * TOKENS, IMAGE_DIM).contiguous()
        tensors[f"{name}.sample"] = out[None].float().contiguous()
        for k, v in store.items():
            tensors[f"{name}.{k}"] = v.contiguous()
        index.append({"name": name, "model": mt, "hidden_states": [1, 36, T, h, w], "timestep": ts,
                      "context_rows": stored, "real_rows": real, "image_tokens": n_img * TOKENS,
                      "intermediates": sorted(store)})
    save_file(tensors, os.path.join(args.out, "i2v_cases.safetensors"), metadata=prov)
    with open(os.path.join(args.out, "i2v_cases.json"), "w") as f:
        json.dump({"provenance": provenance.json_field(__file__, seed=SEED, libs=LIBS, extra=extra),
                   "model": {"dim": DIM, "heads": HEADS, "ffn": FFN, "text_dim": TEXT_DIM, "layers": LAYERS,
                             "image_dim": IMAGE_DIM, "image_tokens_per_frame": TOKENS},
                   "cases": index}, f, indent=2)
    for r, _, files in os.walk(args.out):
        for fn in files:
            os.chmod(os.path.join(r, fn), 0o644)
    print("wrote", root)


if __name__ == "__main__":
    main()
