#!/usr/bin/env python3
"""Writes the end-to-end image-to-video goldens: tiny random Wan2.1 I2V and FLF2V
models built with the official code (wan/modules: T5Encoder, WanVAE_, WanModel,
the CLIP VisionTransformer), saved as a diffusers folder and as a folder of
ComfyUI-style single files, and the frames the official WanI2V.generate and
WanFLF2V.generate (wan/image2video.py, wan/first_last_frame2video.py) make from
them on the CPU, with the noise they drew saved for t2v's --noise.

    python3 tools/golden/gen_i2v_pipeline_golden.py --wan21 PATH [--out tests/data/i2v]

The reference classes load 14B checkpoints in their constructors; the generator
builds the same objects around tiny models (object.__new__ plus the attributes
generate() reads) and calls generate() unchanged. Sizes: umT5 32 wide / 2 layers
(the tokenizer of tests/data/pipeline), DiT 32 wide / 2 heads / 2 layers, VAE base 4,
CLIP ViT 80 wide / 1 head / 3 blocks / patch 4 / image 16 (17 tokens). The image
embedder is the reference's MLPProj at width 80 (it hard-codes 1280), FLF2V
positions over 2 x 17 tokens (it hard-codes 2 x 257).

Outputs under --out:
  diffusers/        model_index.json, transformer/ (I2V), transformer_flf2v/, text_encoder/,
                    tokenizer/, vae/, image_encoder/ (diffusers / transformers names)
  comfy/            wan2.1_i2v_tiny.safetensors (model.diffusion_model. prefix), umt5_tiny.safetensors
                    (transformers names + spiece_model), wan_2.1_vae_tiny.safetensors (original names),
                    clip_vision_tiny.safetensors (transformers names, F16), and the DiT's config.json
                    (the head count of a 32-wide DiT does not show in its shapes)
  flf2v/            the FLF2V DiT, original names (flf2v_tiny.safetensors) with its config.json
  first.png, last.png     50x30 input frames (the video is 48x16 at --size 48x32)
  golden.safetensors      per case: <case>.noise, <case>.frames [F, H, W, 3] in [0, 1],
                          <case>.y [20, T, h, w] (mask + image latents), <case>.clip_fea, <case>.mask
  golden.json             the cases (settings, prompts, which model files)
"""
import argparse
import json
import os
import shutil
import sys
import types

import numpy as np
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import gen_clip_goldens as clipgen  # noqa: E402  (to_transformers: open_clip -> transformers names)
import gen_dit_i2v_goldens as ditgen  # noqa: E402  (diffusers_name: the DiT rename table)
import provenance  # noqa: E402
import wan_upstream  # noqa: E402

LIBS = ("torch", "diffusers", "transformers", "safetensors", "numpy", "PIL")
SEED = "20250614 (weights, images), 42 / 7 / 3 (generate seeds)"
TOKENIZER = os.path.join(HERE, "..", "..", "tests", "data", "pipeline", "tiny_wan", "tokenizer")

DIM, HEADS, FFN, LAYERS, TEXT_DIM = 32, 2, 32, 2, 32
CLIP_W, CLIP_LAYERS, CLIP_MLP, CLIP_PATCH, CLIP_IMAGE = 80, 3, 64, 4, 16
TOKENS = (CLIP_IMAGE // CLIP_PATCH) ** 2 + 1


def randomize(module, gen, std_scale=1.0):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if ("norm" in name or "gamma" in name) and p.ndim <= 1 or name.endswith("gamma"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("modulation"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif p.ndim <= 1 or name.endswith(("emb_pos", "cls_embedding", "pos_embedding")):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(std_scale * torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5)


def t5_to_transformers(sd):
    """Wan's T5 names -> transformers UMT5EncoderModel names (docs/wan.md §1.7)."""
    out = {"shared.weight": sd["token_embedding.weight"], "encoder.embed_tokens.weight": sd["token_embedding.weight"],
           "encoder.final_layer_norm.weight": sd["norm.weight"]}
    m = {"norm1.weight": "layer.0.layer_norm.weight", "attn.q.weight": "layer.0.SelfAttention.q.weight",
         "attn.k.weight": "layer.0.SelfAttention.k.weight", "attn.v.weight": "layer.0.SelfAttention.v.weight",
         "attn.o.weight": "layer.0.SelfAttention.o.weight",
         "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
         "norm2.weight": "layer.1.layer_norm.weight", "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",
         "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight", "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight"}
    for k, v in sd.items():
        if k.startswith("blocks."):
            _, i, rest = k.split(".", 2)
            out[f"encoder.block.{i}.{m[rest]}"] = v
    return {k: v.contiguous() for k, v in out.items()}


def build(up, gen):
    tok = up.tokenizers.HuggingfaceTokenizer(name=TOKENIZER, seq_len=512, clean="whitespace")
    vocab = len(tok.tokenizer)
    t5 = up.t5.T5Encoder(vocab, TEXT_DIM, TEXT_DIM, 48, 2, 2, 32, shared_pos=False, dropout=0.0).eval()
    randomize(t5, gen)
    with torch.no_grad():
        t5.token_embedding.weight.copy_(torch.randn(t5.token_embedding.weight.shape, generator=gen))
    vae = up.vae.WanVAE_(dim=4, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                         temperal_downsample=[False, True, True], dropout=0.0).eval()
    randomize(vae, gen)
    with torch.no_grad():  # decoded pixels mostly inside [-1, 1], so the clamp hides little
        vae.decoder.head[2].weight.mul_(0.6)
        vae.decoder.head[2].bias.zero_()
    vt = up.clip.VisionTransformer(image_size=CLIP_IMAGE, patch_size=CLIP_PATCH, dim=CLIP_W,
                                   mlp_ratio=CLIP_MLP / CLIP_W, out_dim=32, num_heads=CLIP_W // 80,
                                   num_layers=CLIP_LAYERS, pool_type="token", pre_norm=True, post_norm=False,
                                   activation="gelu", norm_eps=1e-5).eval()
    randomize(vt, gen)
    with torch.no_grad():  # float16 values, so the F16 single file is exact
        for p in vt.parameters():
            p.copy_(p.half().float())
    dits = {}
    for mt in ("i2v", "flf2v"):
        m = up.model.WanModel(model_type=mt, patch_size=(1, 2, 2), text_len=512, in_dim=36, dim=DIM, ffn_dim=FFN,
                              freq_dim=256, text_dim=TEXT_DIM, out_dim=16, num_heads=HEADS, num_layers=LAYERS,
                              cross_attn_norm=True, eps=1e-6)
        m.img_emb = up.model.MLPProj(CLIP_W, DIM, flf_pos_emb=mt == "flf2v")
        if mt == "flf2v":
            m.img_emb.emb_pos = torch.nn.Parameter(torch.zeros(1, 2 * TOKENS, CLIP_W))
        randomize(m, gen)
        dits[mt] = m.eval()
    return tok, t5, vae, vt, dits


def wrappers(up, tok, t5, vae, vt, dit, neg):
    """The reference pipeline objects around the tiny models."""
    t5w = object.__new__(up.t5.T5EncoderModel)
    t5w.text_len, t5w.dtype, t5w.device, t5w.model, t5w.tokenizer = 512, torch.float32, "cpu", t5, tok
    vaew = object.__new__(up.vae.WanVAE)
    vaew.dtype, vaew.device, vaew.model = torch.float32, "cpu", vae
    mean = torch.tensor([-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715,
                         0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921])
    std = torch.tensor([2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652,
                        1.5579, 1.6382, 1.1253, 2.8251, 1.9160])
    vaew.mean, vaew.std, vaew.scale = mean, std, [mean, 1.0 / std]
    clipw = object.__new__(up.clip.CLIPModel)
    clipw.dtype, clipw.device = torch.float32, "cpu"
    clipw.model = types.SimpleNamespace(image_size=CLIP_IMAGE, visual=vt, to=lambda *a, **k: None,
                                        cpu=lambda *a, **k: None)
    clipw.transforms = types.SimpleNamespace(transforms=[up.clip.T.Normalize(
        mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711])])
    common = dict(device=torch.device("cpu"), rank=0, use_usp=False, t5_cpu=False, num_train_timesteps=1000,
                  param_dtype=torch.float32, text_encoder=t5w, vae_stride=(4, 8, 8), patch_size=(1, 2, 2),
                  vae=vaew, clip=clipw, model=dit, sp_size=1, sample_neg_prompt=neg)
    return common


def save_models(root, tok_dir, t5, vae, vt, dits, prov):
    d = os.path.join(root, "diffusers")
    c = os.path.join(root, "comfy")
    for p in (d, c):
        shutil.rmtree(p, ignore_errors=True)
        os.makedirs(p)
    shutil.copytree(tok_dir, os.path.join(d, "tokenizer"))
    # text encoder
    t5sd = {k: v.detach().clone() for k, v in t5.state_dict().items()}
    hf_t5 = UMT5EncoderModel(UMT5Config(vocab_size=t5.token_embedding.num_embeddings, d_model=TEXT_DIM, num_layers=2,
                                        num_heads=2, d_kv=16, d_ff=48, relative_attention_num_buckets=32,
                                        relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
                                        layer_norm_epsilon=1e-6, dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
                                        decoder_start_token_id=0))
    tsd = t5_to_transformers(t5sd)
    hf_t5.load_state_dict({k: v for k, v in tsd.items() if k != "encoder.embed_tokens.weight"}, strict=False)
    hf_t5.save_pretrained(os.path.join(d, "text_encoder"), safe_serialization=True)
    provenance.stamp_safetensors(os.path.join(d, "text_encoder", "model.safetensors"), prov)
    with open(os.path.join(tok_dir, "spiece.model"), "rb") as f:
        spiece = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).clone()
    comfy_t5 = dict(tsd)
    comfy_t5.pop("encoder.embed_tokens.weight")
    comfy_t5["spiece_model"] = spiece
    save_file(comfy_t5, os.path.join(c, "umt5_tiny.safetensors"), metadata=prov)
    # VAE
    vsd = {k: v.detach().clone().contiguous() for k, v in vae.state_dict().items()}
    save_file(vsd, os.path.join(c, "wan_2.1_vae_tiny.safetensors"), metadata=prov)
    dv = AutoencoderKLWan(base_dim=4, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                          temperal_downsample=[False, True, True], dropout=0.0)
    dv.load_state_dict(convert_wan_vae_to_diffusers(dict(vsd)), strict=True)
    dv.save_pretrained(os.path.join(d, "vae"), safe_serialization=True)
    provenance.stamp_safetensors(os.path.join(d, "vae", "diffusion_pytorch_model.safetensors"), prov)
    # CLIP
    csd = {k: v.detach().clone() for k, v in vt.state_dict().items()}
    clipgen.WIDTH, clipgen.LAYERS = CLIP_W, CLIP_LAYERS
    hf_clip = CLIPVisionModel(CLIPVisionConfig(hidden_size=CLIP_W, intermediate_size=CLIP_MLP, num_attention_heads=1,
                                               num_hidden_layers=CLIP_LAYERS, patch_size=CLIP_PATCH,
                                               image_size=CLIP_IMAGE, hidden_act="gelu", layer_norm_eps=1e-5))
    hf_clip.save_pretrained(os.path.join(d, "image_encoder"), safe_serialization=True)
    save_file(clipgen.to_transformers(csd), os.path.join(d, "image_encoder", "model.safetensors"), metadata=prov)
    save_file({k: v.half() for k, v in clipgen.to_transformers(csd).items()},
              os.path.join(c, "clip_vision_tiny.safetensors"), metadata=prov)
    # DiTs
    for mt, m in dits.items():
        sd = {k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}
        cfg = dict(patch_size=(1, 2, 2), num_attention_heads=HEADS, attention_head_dim=DIM // HEADS, in_channels=36,
                   out_channels=16, text_dim=TEXT_DIM, freq_dim=256, ffn_dim=FFN, num_layers=LAYERS,
                   cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=CLIP_W,
                   added_kv_proj_dim=DIM, rope_max_seq_len=1024,
                   pos_embed_seq_len=2 * TOKENS if mt == "flf2v" else None)
        dm = WanTransformer3DModel(**cfg)
        dm.load_state_dict({ditgen.diffusers_name(k): v for k, v in sd.items()}, strict=True)
        sub = "transformer" if mt == "i2v" else "transformer_flf2v"
        dm.save_pretrained(os.path.join(d, sub), safe_serialization=True)
        provenance.stamp_safetensors(os.path.join(d, sub, "diffusion_pytorch_model.safetensors"), prov)
        # Single files: the head count of a 32-wide DiT is not visible in its shapes (the
        # released 14B ones are), so its config.json lies beside it.
        if mt == "i2v":
            save_file({"model.diffusion_model." + k: v for k, v in sd.items()},
                      os.path.join(c, "wan2.1_i2v_tiny.safetensors"), metadata=prov)
            shutil.copy(os.path.join(d, sub, "config.json"), os.path.join(c, "config.json"))
        else:
            f = os.path.join(root, "flf2v")
            shutil.rmtree(f, ignore_errors=True)
            os.makedirs(f)
            save_file(sd, os.path.join(f, "flf2v_tiny.safetensors"), metadata=prov)
            shutil.copy(os.path.join(d, sub, "config.json"), os.path.join(f, "config.json"))
    with open(os.path.join(d, "model_index.json"), "w") as f:
        json.dump({"_class_name": "WanImageToVideoPipeline", "_diffusers_version": "0.42.1",
                   "image_encoder": ["transformers", "CLIPVisionModel"],
                   "image_processor": ["transformers", "CLIPImageProcessor"],
                   "scheduler": ["diffusers", "UniPCMultistepScheduler"],
                   "text_encoder": ["transformers", "UMT5EncoderModel"], "tokenizer": ["transformers", "T5Tokenizer"],
                   "transformer": ["diffusers", "WanTransformer3DModel"], "vae": ["diffusers", "AutoencoderKLWan"]},
                  f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    wan_upstream.add_argument(ap)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "tests", "data", "i2v"))
    args = ap.parse_args()
    up = wan_upstream.load(args.wan21)
    extra = {"Wan-Video/Wan2.1": up.commit, "torchvision": up.torchvision}
    prov = provenance.metadata(__file__, seed=SEED, libs=LIBS, extra=extra)
    root = os.path.abspath(args.out)
    os.makedirs(root, exist_ok=True)
    gen = torch.Generator().manual_seed(20250614)
    tok, t5, vae, vt, dits = build(up, gen)
    save_models(root, TOKENIZER, t5, vae, vt, dits, prov)

    # Input frames: smooth shapes on noise, 50x30 (the video is 48x16 at --size 48x32).
    def image(seed):
        g = torch.Generator().manual_seed(seed)
        yy, xx = torch.meshgrid(torch.linspace(0, 1, 30), torch.linspace(0, 1, 50), indexing="ij")
        base = torch.stack([xx, yy, 1 - xx * yy]) * 200 + torch.rand(3, 30, 50, generator=g) * 55
        return Image.fromarray(base.permute(1, 2, 0).clamp(0, 255).to(torch.uint8).numpy(), "RGB")
    first, last = image(1), image(2)
    first.save(os.path.join(root, "first.png"))
    last.save(os.path.join(root, "last.png"))
    first, last = Image.open(os.path.join(root, "first.png")).convert("RGB"), \
        Image.open(os.path.join(root, "last.png")).convert("RGB")

    i2v_neg = up.configs.WAN_CONFIGS["i2v-14B"].sample_neg_prompt
    flf_neg = up.configs.WAN_CONFIGS["flf2v-14B"].sample_neg_prompt
    cases = [
        dict(name="i2v_unipc_diffusers", model="diffusers", type="i2v", solver="unipc", steps=4, cfg=5.0, shift=3.0,
             frames=9, seed=42, prompt="a red ball rolling to the left on a white background",
             negative="blurry, static, low quality"),
        dict(name="i2v_dpm_comfy", model="comfy", type="i2v", solver="dpm++", steps=4, cfg=4.0, shift=5.0,
             frames=9, seed=7, prompt="a blue square moving up", negative=None),
        dict(name="flf2v_unipc", model="comfy", dit="flf2v/flf2v_tiny.safetensors", type="flf2v", solver="unipc",
             steps=3, cfg=5.0, shift=3.0, frames=81, seed=3, prompt="a green circle growing", negative=None),
    ]
    tensors, index = {}, []
    for c in cases:
        dit = dits[c["type"]]
        attrs = wrappers(up, tok, t5, vae, vt, dit, i2v_neg if c["type"] == "i2v" else flf_neg)
        cls = up.image2video.WanI2V if c["type"] == "i2v" else up.first_last_frame2video.WanFLF2V
        pipe = object.__new__(cls)
        for k, v in attrs.items():
            setattr(pipe, k, v)
        seen = {}

        def pre(_m, args_, kw):
            seen.setdefault("y", kw["y"][0].detach().clone())
            seen.setdefault("clip_fea", kw["clip_fea"].detach().clone())
        h = dit.register_forward_pre_hook(pre, with_kwargs=True)
        kwargs = dict(max_area=48 * 32, frame_num=c["frames"], shift=c["shift"], sample_solver=c["solver"],
                      sampling_steps=c["steps"], guide_scale=c["cfg"], n_prompt=c["negative"] or "",
                      seed=c["seed"], offload_model=False)
        with torch.no_grad():
            if c["type"] == "i2v":
                video = pipe.generate(c["prompt"], first, **kwargs)
            else:
                video = pipe.generate(c["prompt"], first, last, **kwargs)
        h.remove()
        T, lh, lw = seen["y"].shape[1:]
        # The noise generate() drew: torch.randn on a CPU generator seeded with the seed.
        noise = torch.randn(16, T, lh, lw, dtype=torch.float32, generator=torch.Generator().manual_seed(c["seed"]))
        frames = ((video.float() + 1) / 2).permute(1, 2, 3, 0).contiguous()  # [F, H, W, 3] in [0, 1]
        print(f"{c['name']}: video {tuple(video.shape)}, latent {T}x{lh}x{lw}, clip {tuple(seen['clip_fea'].shape)}")
        tensors[f"{c['name']}.noise"] = noise[None].contiguous()
        tensors[f"{c['name']}.frames"] = frames
        tensors[f"{c['name']}.y"] = seen["y"].contiguous()
        tensors[f"{c['name']}.clip_fea"] = seen["clip_fea"].contiguous()
        entry = {k: v for k, v in c.items()}
        entry.update(width=int(video.shape[3]), height=int(video.shape[2]), size="48x32")
        index.append(entry)
    save_file(tensors, os.path.join(root, "golden.safetensors"), metadata=prov)
    with open(os.path.join(root, "golden.json"), "w") as f:
        json.dump({"provenance": provenance.json_field(__file__, seed=SEED, libs=LIBS, extra=extra),
                   "i2v_default_negative": i2v_neg, "flf2v_default_negative": flf_neg, "cases": index}, f, indent=2,
                  ensure_ascii=False)
    for r, _, files in os.walk(root):
        for fn in files:
            os.chmod(os.path.join(r, fn), 0o644)
    print("wrote", root)


if __name__ == "__main__":
    main()
