#!/usr/bin/env python3
"""Writes the CLIP vision goldens: a tiny random open_clip ViT built by the
official Wan2.1 code (wan/modules/clip.py VisionTransformer), the features
Wan's CLIPModel.visual computes from images in [-1, 1] (bicubic squash to the
input size, x*0.5+0.5, CLIP normalisation, blocks up to the second-to-last), and
the same weights in every layout t2v reads, cross-checked against transformers'
CLIPVisionModel (hidden_states[-2]).

    python3 tools/golden/gen_clip_goldens.py --wan21 PATH [--out tests/data/image_encoder]

Model: width 64, 2 heads (config.json), 3 blocks (2 run), MLP 96, patch 4,
image 16 (17 tokens). Every weight is random and rounded to float16 values, so
the F16 ComfyUI-style file holds exactly the F32 weights.

Outputs under --out:
  tiny_clip/config.json, model.safetensors   transformers CLIPVisionModel (diffusers image_encoder/)
  tiny_clip_comfy_f16.safetensors            transformers names, F16, with visual_projection (ComfyUI)
  tiny_clip_wan.safetensors                  Wan's open_clip names (visual.*, fused to_qkv) plus text-tower
                                             tensors, as the official .pth converted to safetensors
  cases.safetensors                          <case>.image [B,3,H,W] in [-1,1], <case>.pixel_values (the
                                             preprocessed input), <case>.features [B,17,64]
  cases.json                                 case list
"""
import argparse
import json
import os
import sys
import types

import torch
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import provenance  # noqa: E402  (tools/provenance.py)
import wan_upstream  # noqa: E402

LIBS = ("torch", "transformers", "safetensors")
SEED = 20250612

WIDTH, HEADS, LAYERS, MLP, PATCH, IMAGE = 64, 2, 3, 96, 4, 16


def randomize(module, gen):
    """Random parameters (norm gains near 1), rounded to float16 values."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and p.ndim == 1 and name.endswith("weight"):
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=gen)
            elif p.ndim == 1 or name.endswith("bias"):
                v = 0.1 * torch.randn(p.shape, generator=gen)
            elif name.endswith(("cls_embedding", "pos_embedding")):
                v = 0.5 * torch.randn(p.shape, generator=gen)
            else:
                v = torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5
            p.copy_(v.half().float())


def to_transformers(sd, prefix="vision_model."):
    """open_clip VisionTransformer state dict -> transformers CLIPVisionModel names."""
    out = {
        prefix + "embeddings.patch_embedding.weight": sd["patch_embedding.weight"],
        prefix + "embeddings.class_embedding": sd["cls_embedding"].reshape(-1),
        prefix + "embeddings.position_embedding.weight": sd["pos_embedding"].reshape(-1, WIDTH),
        prefix + "pre_layrnorm.weight": sd["pre_norm.weight"], prefix + "pre_layrnorm.bias": sd["pre_norm.bias"],
        prefix + "post_layernorm.weight": sd["post_norm.weight"], prefix + "post_layernorm.bias": sd["post_norm.bias"],
    }
    for i in range(LAYERS):
        o, t = f"transformer.{i}.", f"{prefix}encoder.layers.{i}."
        qkv_w, qkv_b = sd[o + "attn.to_qkv.weight"].chunk(3), sd[o + "attn.to_qkv.bias"].chunk(3)
        for j, n in enumerate("qkv"):
            out[t + f"self_attn.{n}_proj.weight"], out[t + f"self_attn.{n}_proj.bias"] = qkv_w[j], qkv_b[j]
        pairs = {"attn.proj": "self_attn.out_proj", "norm1": "layer_norm1", "norm2": "layer_norm2",
                 "mlp.0": "mlp.fc1", "mlp.2": "mlp.fc2"}
        for a, b in pairs.items():
            out[t + b + ".weight"], out[t + b + ".bias"] = sd[o + a + ".weight"], sd[o + a + ".bias"]
    return {k: v.contiguous() for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    wan_upstream.add_argument(ap)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data",
                                                  "image_encoder"))
    args = ap.parse_args()
    up = wan_upstream.load(args.wan21)
    extra = {"Wan-Video/Wan2.1": up.commit, "torchvision": up.torchvision}
    prov = provenance.metadata(__file__, seed=SEED, libs=LIBS, extra=extra)
    os.makedirs(args.out, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)

    vt = up.clip.VisionTransformer(image_size=IMAGE, patch_size=PATCH, dim=WIDTH, mlp_ratio=MLP / WIDTH,
                                   out_dim=32, num_heads=HEADS, num_layers=LAYERS, pool_type="token",
                                   pre_norm=True, post_norm=False, activation="gelu", norm_eps=1e-5).eval()
    randomize(vt, gen)
    sd = {k: v.detach().clone() for k, v in vt.state_dict().items()}

    # Wan's CLIPModel.visual, on an object with the attributes it reads.
    normalize = up.clip.T.Normalize(mean=[0.48145466, 0.4578275, 0.40821073],
                                    std=[0.26862954, 0.26130258, 0.27577711])
    wrapper = types.SimpleNamespace(model=types.SimpleNamespace(image_size=IMAGE, visual=vt),
                                    transforms=types.SimpleNamespace(transforms=[normalize]), dtype=torch.float32)
    captured = {}
    hook = vt.register_forward_pre_hook(lambda m, a, kw: captured.__setitem__("x", a[0].detach().clone()),
                                        with_kwargs=True)

    # transformers' CLIPVisionModel with the same weights: the cross-check.
    hf_cfg = CLIPVisionConfig(hidden_size=WIDTH, intermediate_size=MLP, num_attention_heads=HEADS,
                              num_hidden_layers=LAYERS, patch_size=PATCH, image_size=IMAGE, hidden_act="gelu",
                              layer_norm_eps=1e-5, projection_dim=32)
    hf = CLIPVisionModel(hf_cfg).eval()
    # transformers 5 keeps CLIPVisionModel's keys without the `vision_model.` prefix.
    missing, unexpected = hf.load_state_dict(to_transformers(sd, prefix=""), strict=False)
    assert not unexpected and all("position_ids" in k for k in missing), (missing, unexpected)

    cases = [("one_23x31", (1, 3, 23, 31)), ("batch2_16x16", (2, 3, 16, 16)), ("tall_40x12", (1, 3, 40, 12)),
             ("large_61x45", (1, 3, 61, 45))]
    tensors, index = {}, []
    for name, shape in cases:
        img = torch.rand(shape, generator=gen) * 2 - 1
        with torch.no_grad():
            feats = up.clip.CLIPModel.visual(wrapper, [u[:, None] for u in img])  # list of [3, 1, H, W]
            ref = hf(pixel_values=captured["x"], output_hidden_states=True).hidden_states[-2]
        err = (feats - ref).abs().max().item() / feats.abs().max().item()
        assert err < 1e-5, f"{name}: transformers disagrees with the official ViT by {err}"
        print(f"{name}: features {tuple(feats.shape)}, transformers agrees to {err:.2e}")
        tensors[f"{name}.image"] = img.contiguous()
        tensors[f"{name}.pixel_values"] = captured["x"].contiguous()
        tensors[f"{name}.features"] = feats.float().contiguous()
        index.append({"name": name, "image": list(shape), "features": list(feats.shape)})
    hook.remove()

    # The layouts.
    # The published diffusers image_encoder/ (written by transformers 4) has `vision_model.` keys;
    # transformers 5 writes them without: the config from save_pretrained, the weights as published.
    hf.save_pretrained(os.path.join(args.out, "tiny_clip"), safe_serialization=True)
    save_file(to_transformers(sd), os.path.join(args.out, "tiny_clip", "model.safetensors"), metadata=prov)
    comfy = {k: v.half() for k, v in to_transformers(sd).items()}
    comfy["visual_projection.weight"] = (torch.randn(32, WIDTH, generator=gen) * 0.1).half()
    comfy["vision_model.embeddings.position_ids"] = torch.arange(IMAGE // PATCH * IMAGE // PATCH + 1)[None]
    save_file(comfy, os.path.join(args.out, "tiny_clip_comfy_f16.safetensors"), metadata=prov)
    wan = {"visual." + k: v.contiguous() for k, v in sd.items()}
    wan["textual.token_embedding.weight"] = torch.randn(10, 8, generator=gen)  # the text tower, unused
    wan["log_scale"] = torch.tensor(4.6052)
    save_file(wan, os.path.join(args.out, "tiny_clip_wan.safetensors"), metadata=prov)
    save_file(tensors, os.path.join(args.out, "cases.safetensors"), metadata=prov)
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump({"provenance": provenance.json_field(__file__, seed=SEED, libs=LIBS, extra=extra),
                   "model": {"width": WIDTH, "heads": HEADS, "layers": LAYERS, "mlp": MLP, "patch": PATCH,
                             "image": IMAGE}, "cases": index}, f, indent=2)
    for root, _, files in os.walk(args.out):
        for fn in files:
            os.chmod(os.path.join(root, fn), 0o644)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
