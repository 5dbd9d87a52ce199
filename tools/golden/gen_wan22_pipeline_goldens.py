#!/usr/bin/env python3
"""Writes the Wan2.2 end-to-end goldens (tests/data/pipeline22/): tiny random Wan2.2
models as diffusers folders and single files, and the frames the official Wan2.2
pipelines make from them with injected noise.

    python3 tools/golden/gen_wan22_pipeline_goldens.py --wan22 PATH_TO_Wan2.2_CHECKOUT [--out tests/data/pipeline22]

References (Wan-Video/Wan2.2, imported from the checkout at run time): WanTI2V.generate
(textimage2video.py: text-to-video and image-to-video), WanT2V.generate (text2video.py,
T2V-A14B) and WanI2V.generate (image2video.py, I2V-A14B), run on the CPU in fp32. What is
stubbed, and why (tools/golden/wan22_reference.py, plus here):
  - the objects are built without their __init__ (which loads .pth checkpoints onto CUDA):
    the DiTs are the official WanModel and the VAEs the official WanVAE_ classes, loaded
    with the tiny weights written here; device = cpu, offload_model = False;
  - the text encoder is the official HuggingfaceTokenizer (cleaning, padding to 512) on the
    tiny tokenizer of tests/data/pipeline/tiny_wan, and transformers' UMT5EncoderModel on its
    tiny encoder (the reference the umT5 goldens use), trimmed to each prompt's tokens as
    T5EncoderModel does;
  - flash_attention -> torch SDPA in fp32; torchvision and imageio are not installed, so the
    two modules are stood in by to_tensor alone (the one function the pipelines use);
  - torch.randn during generate() returns the injected noise (checked for shape).
The umT5 text encoder and tokenizer are the tiny ones of tests/data/pipeline/tiny_wan (the
C++ tests pass them with --t5/--tokenizer), and A14B uses its tiny Wan2.1 VAE (--vae).

Outputs:
  ti2v/            model_index.json (WanPipeline, expand_timesteps), transformer/, vae/ (Wan2.2 VAE)
  ti2v_files/      ti2v_dit.safetensors + config.json (original names, model_type ti2v), vae.safetensors
  t2v_a14b/        model_index.json (WanPipeline, boundary_ratio 0.875), transformer/ (high), transformer_2/ (low)
  i2v_a14b/        model_index.json (WanImageToVideoPipeline, boundary_ratio 0.9), transformer/, transformer_2/
  a14b_files/      i2v_high.safetensors, i2v_low.safetensors (original names)
  image.png        the input image (50 x 30 RGB)
  golden.safetensors  per case NAME.noise, NAME.frames [F, H, W, 3] in [0, 1]
  golden.json      per case the t2v arguments that reproduce it
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
from easydict import EasyDict
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import UMT5EncoderModel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import provenance  # noqa: E402
import wan22_reference  # noqa: E402
from gen_dit_goldens import canonical_names, diffusers_name, randomize  # noqa: E402
from gen_wan22_vae_goldens import MEAN, STD, diffusers_to_original as vae22_original  # noqa: E402

sys.path.insert(0, os.path.join(HERE, ".."))
from gen_vae_goldens import diffusers_to_original as vae21_original  # noqa: E402

LIBS = ("torch", "diffusers", "transformers", "safetensors", "numpy", "PIL")
SEED = 20250805
TINY = os.path.join(provenance.ROOT, "tests", "data", "pipeline", "tiny_wan")
PROMPT = "a red ball rolling to the left on a white background"
NEGATIVE = "blurry, static, low quality"
NEG_DEFAULT = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，"
               "残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，"
               "三条腿，背景人很多，倒着走")


def stub_modules():
    def to_tensor(pic):
        a = np.asarray(pic, dtype=np.uint8).copy()
        return torch.from_numpy(a).permute(2, 0, 1).float().div(255)  # torchvision's to_tensor for RGB uint8
    tv = types.ModuleType("torchvision")
    tr = types.ModuleType("torchvision.transforms")
    fn = types.ModuleType("torchvision.transforms.functional")
    fn.to_tensor = to_tensor
    tv.transforms, tr.functional = tr, fn
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tr, "torchvision.transforms.functional": fn,
                        "imageio": types.ModuleType("imageio")})
    torch.cuda.current_device = lambda: 0  # only a default argument evaluated at import (t5.py)


class TextEncoder:
    """T5EncoderModel's __call__ contract on the tiny umT5 (see the module docstring)."""

    def __init__(self, wan22):
        tok = wan22_reference.module(wan22, "modules.tokenizers")
        self.tokenizer = tok.HuggingfaceTokenizer(name=os.path.join(TINY, "tokenizer"), seq_len=512, clean="whitespace")
        self.model = UMT5EncoderModel.from_pretrained(os.path.join(TINY, "text_encoder")).float().eval()

    def __call__(self, texts, device):
        ids, mask = self.tokenizer(texts, return_mask=True, add_special_tokens=True)
        seq_lens = mask.gt(0).sum(dim=1).long()
        with torch.no_grad():
            context = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return [u[:v] for u, v in zip(context, seq_lens)]


def tiny_dit(gen, in_ch, out_ch):
    cfg = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=24, in_channels=in_ch,
               out_channels=out_ch, text_dim=32, freq_dim=256, ffn_dim=64, num_layers=2, cross_attn_norm=True,
               qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
    m = WanTransformer3DModel(**cfg).float().eval()
    randomize(m, gen)
    return m


def official_dit(wan22, model, model_type):
    sd = model.state_dict()
    orig = {k: sd[diffusers_name(k)].detach().clone().contiguous() for k in canonical_names(2)}
    c = model.config
    WanModel = wan22_reference.module(wan22, "modules.model").WanModel
    m = WanModel(model_type=model_type, patch_size=(1, 2, 2), text_len=512, in_dim=c.in_channels, dim=48, ffn_dim=64,
                 freq_dim=256, text_dim=32, out_dim=c.out_channels, num_heads=2, num_layers=2).eval()
    m.load_state_dict(orig, strict=True)
    return m, orig


def original_config(model, model_type):
    c = model.config
    return {"_class_name": "WanModel", "model_type": model_type, "dim": 48, "ffn_dim": 64, "freq_dim": 256,
            "in_dim": c.in_channels, "out_dim": c.out_channels, "num_heads": 2, "num_layers": 2, "text_len": 512,
            "text_dim": 32, "eps": 1e-6}


def save_folder(folder, index, transformers, vae=None, prov=None):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "model_index.json"), "w") as f:
        json.dump(index, f, indent=1)
    for sub, m in transformers.items():
        m.save_pretrained(os.path.join(folder, sub), safe_serialization=True)
        provenance.stamp_safetensors(os.path.join(folder, sub, "diffusion_pytorch_model.safetensors"), prov)
    if vae is not None:
        vae.save_pretrained(os.path.join(folder, "vae"), safe_serialization=True)
        provenance.stamp_safetensors(os.path.join(folder, "vae", "diffusion_pytorch_model.safetensors"), prov)


def obj(cls, **attrs):
    o = cls.__new__(cls)
    for k, v in attrs.items():
        setattr(o, k, v)
    return o


class InjectedNoise:
    def __init__(self, noise):
        self.noise, self.orig = noise, torch.randn

    def __enter__(self):
        def randn(*shape, **kw):
            s = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)) else shape
            assert tuple(s) == tuple(self.noise.shape[-len(s):]), (s, self.noise.shape)
            return self.noise.reshape(s).clone()
        torch.randn = randn

    def __exit__(self, *a):
        torch.randn = self.orig


def frames_of(video):  # [3, F, H, W] in [-1, 1] -> [F, H, W, 3] in [0, 1]
    return ((video.clamp(-1, 1) + 1) / 2).permute(1, 2, 3, 0).contiguous().float()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wan22", required=True)
    ap.add_argument("--out", default=os.path.join(provenance.ROOT, "tests", "data", "pipeline22"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    stub_modules()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(SEED)
    prov = provenance.metadata(__file__, seed=SEED, libs=LIBS)
    prov["wan22_commit"] = wan22_reference.commit(args.wan22)
    W = args.wan22

    # ---- models ----
    ti2v = tiny_dit(gen, 48, 48)
    vae22 = AutoencoderKLWan(base_dim=4, decoder_base_dim=4, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=1,
                             attn_scales=[], temperal_downsample=[False, True, True], is_residual=True, in_channels=12,
                             out_channels=12, patch_size=2, scale_factor_temporal=4, scale_factor_spatial=16,
                             latents_mean=MEAN, latents_std=STD).eval()
    from gen_wan22_vae_goldens import randomize as vae_randomize
    vae_randomize(vae22, gen)
    save_folder(os.path.join(out, "ti2v"), {"_class_name": "WanPipeline", "_diffusers_version": "0.42.1",
                                           "boundary_ratio": None, "expand_timesteps": True,
                                           "transformer": ["diffusers", "WanTransformer3DModel"],
                                           "transformer_2": [None, None], "vae": ["diffusers", "AutoencoderKLWan"],
                                           "text_encoder": ["transformers", "UMT5EncoderModel"],
                                           "tokenizer": ["transformers", "T5TokenizerFast"],
                                           "scheduler": ["diffusers", "UniPCMultistepScheduler"]},
                {"transformer": ti2v}, vae22, prov)
    t2v_hi, t2v_lo = tiny_dit(gen, 16, 16), tiny_dit(gen, 16, 16)
    save_folder(os.path.join(out, "t2v_a14b"), {"_class_name": "WanPipeline", "boundary_ratio": 0.875,
                                               "transformer": ["diffusers", "WanTransformer3DModel"],
                                               "transformer_2": ["diffusers", "WanTransformer3DModel"]},
                {"transformer": t2v_hi, "transformer_2": t2v_lo}, None, prov)
    i2v_hi, i2v_lo = tiny_dit(gen, 36, 16), tiny_dit(gen, 36, 16)
    save_folder(os.path.join(out, "i2v_a14b"), {"_class_name": "WanImageToVideoPipeline", "boundary_ratio": 0.9,
                                               "image_encoder": [None, None], "image_processor": [None, None],
                                               "transformer": ["diffusers", "WanTransformer3DModel"],
                                               "transformer_2": ["diffusers", "WanTransformer3DModel"]},
                {"transformer": i2v_hi, "transformer_2": i2v_lo}, None, prov)

    off_ti2v, sd_ti2v = official_dit(W, ti2v, "ti2v")
    off_t2v_hi, _ = official_dit(W, t2v_hi, "t2v")
    off_t2v_lo, _ = official_dit(W, t2v_lo, "t2v")
    off_i2v_hi, sd_i2v_hi = official_dit(W, i2v_hi, "i2v")
    off_i2v_lo, sd_i2v_lo = official_dit(W, i2v_lo, "i2v")
    files = os.path.join(out, "ti2v_files")
    os.makedirs(files)
    save_file(sd_ti2v, os.path.join(files, "ti2v_dit.safetensors"), metadata=prov)
    with open(os.path.join(files, "config.json"), "w") as f:
        json.dump(original_config(ti2v, "ti2v"), f, indent=1)
    vsd = {k: v.detach().contiguous() for k, v in vae22.state_dict().items()}
    vorig = {vae22_original(k, 1): v for k, v in vsd.items()}
    save_file(vorig, os.path.join(files, "vae.safetensors"), metadata=prov)
    afiles = os.path.join(out, "a14b_files")
    os.makedirs(afiles)
    save_file(sd_i2v_hi, os.path.join(afiles, "i2v_high.safetensors"), metadata=prov)
    save_file(sd_i2v_lo, os.path.join(afiles, "i2v_low.safetensors"), metadata=prov)
    with open(os.path.join(afiles, "config.json"), "w") as f:  # both experts' (read beside each file)
        json.dump(original_config(i2v_hi, "i2v"), f, indent=1)

    vae_mod22 = wan22_reference.module(W, "modules.vae2_2")
    m22 = vae_mod22.WanVAE_(dim=4, dec_dim=4, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=1, attn_scales=[],
                            temperal_downsample=[False, True, True]).eval()
    m22.load_state_dict(vorig, strict=True)
    vae22_off = obj(vae_mod22.Wan2_2_VAE, dtype=torch.float, device="cpu", model=m22,
                    scale=[torch.tensor(MEAN), 1.0 / torch.tensor(STD)])
    vae_mod21 = wan22_reference.module(W, "modules.vae2_1")
    v21 = AutoencoderKLWan.from_pretrained(os.path.join(TINY, "vae")).eval()
    m21 = vae_mod21.WanVAE_(dim=v21.config.base_dim, z_dim=16, dim_mult=[1, 2, 4, 4],
                            num_res_blocks=v21.config.num_res_blocks, attn_scales=[],
                            temperal_downsample=[False, True, True]).eval()
    m21.load_state_dict({vae21_original(k, v21.config.num_res_blocks): v for k, v in v21.state_dict().items()},
                        strict=True)
    mean21, std21 = torch.tensor(v21.config.latents_mean), torch.tensor(v21.config.latents_std)
    vae21_off = obj(vae_mod21.Wan2_1_VAE, dtype=torch.float, device="cpu", model=m21, mean=mean21, std=std21,
                    scale=[mean21, 1.0 / std21])

    text = TextEncoder(W)
    base_cfg = EasyDict(num_train_timesteps=1000, param_dtype=torch.float32, sample_neg_prompt=NEG_DEFAULT,
                        patch_size=(1, 2, 2))
    common = dict(device=torch.device("cpu"), rank=0, t5_cpu=True, init_on_cpu=False, sp_size=1,
                  num_train_timesteps=1000, param_dtype=torch.float32, sample_neg_prompt=NEG_DEFAULT,
                  patch_size=(1, 2, 2), text_encoder=text)
    TI2V = wan22_reference.module(W, "textimage2video").WanTI2V
    T2V = wan22_reference.module(W, "text2video").WanT2V
    I2V = wan22_reference.module(W, "image2video").WanI2V
    ti2v_pipe = obj(TI2V, config=base_cfg, vae_stride=(4, 16, 16), vae=vae22_off, model=off_ti2v, **common)
    t2v_pipe = obj(T2V, config=base_cfg, vae_stride=(4, 8, 8), vae=vae21_off, boundary=0.875,
                   high_noise_model=off_t2v_hi, low_noise_model=off_t2v_lo, **common)
    i2v_pipe = obj(I2V, config=base_cfg, vae_stride=(4, 8, 8), vae=vae21_off, boundary=0.9,
                   high_noise_model=off_i2v_hi, low_noise_model=off_i2v_lo, **common)

    rng = np.random.default_rng(SEED)
    y, x = np.mgrid[0:30, 0:50]
    img = np.clip(np.dstack([x * 5, y * 8, 255 - x * 5]) + rng.normal(0, 25, (30, 50, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(os.path.join(out, "image.png"))
    pil = Image.open(os.path.join(out, "image.png")).convert("RGB")

    tiny = "tests/data/pipeline/tiny_wan"
    cases, golden = [], {}

    def run(name, pipe, kw, noise_shape, argv):
        noise = torch.randn(noise_shape, generator=gen)
        with InjectedNoise(noise), torch.no_grad():
            video = pipe.generate(PROMPT, n_prompt=NEGATIVE, seed=1, offload_model=False, **kw)
        frames = frames_of(video)
        golden[f"{name}.noise"] = noise[None].contiguous()
        golden[f"{name}.frames"] = frames
        cases.append({"name": name, "args": argv, "frames_shape": list(frames.shape)})
        print(f"{name:24s} noise {list(noise.shape)} -> frames {list(frames.shape)}")

    both = ["--t5", f"{tiny}/text_encoder", "--tokenizer", f"{tiny}/tokenizer"]
    p22 = "tests/data/pipeline22"
    # TI2V text-to-video: 64x32, 9 frames -> latent [48, 3, 2, 4].
    run("ti2v_t2v_unipc", ti2v_pipe, dict(size=(64, 32), frame_num=9, shift=5.0, sample_solver="unipc",
                                          sampling_steps=3, guide_scale=5.0), (48, 3, 2, 4),
        ["--model", f"{p22}/ti2v", *both, "--size", "64x32", "--frames", "9", "--steps", "3", "--cfg", "5",
         "--shift", "5", "--sampler", "unipc"])
    run("ti2v_t2v_dpm_files", ti2v_pipe, dict(size=(32, 64), frame_num=5, shift=3.0, sample_solver="dpm++",
                                              sampling_steps=3, guide_scale=3.5), (48, 2, 4, 2),
        ["--dit", f"{p22}/ti2v_files/ti2v_dit.safetensors", "--vae", f"{p22}/ti2v_files/vae.safetensors", *both,
         "--size", "32x64", "--frames", "5", "--steps", "3", "--cfg", "3.5", "--shift", "3", "--sampler", "dpm++"])
    # TI2V image-to-video: area 64*64 -> best_output_size(50, 30, 32, 32, 4096) = 96x32.
    ow, oh = wan22_reference.module(W, "utils.utils").best_output_size(50, 30, 32, 32, 64 * 64)
    run("ti2v_i2v_unipc", ti2v_pipe, dict(img=pil, max_area=64 * 64, frame_num=9, shift=5.0, sample_solver="unipc",
                                          sampling_steps=3, guide_scale=5.0), (48, 3, oh // 16, ow // 16),
        ["--model", f"{p22}/ti2v", *both, "--image", f"{p22}/image.png", "--size", "64x64", "--frames", "9",
         "--steps", "3", "--cfg", "5", "--shift", "5", "--sampler", "unipc"])
    run("ti2v_i2v_dpm_cfg1", ti2v_pipe, dict(img=pil, max_area=64 * 64, frame_num=5, shift=5.0, sample_solver="dpm++",
                                             sampling_steps=3, guide_scale=1.0), (48, 2, oh // 16, ow // 16),
        ["--model", f"{p22}/ti2v", *both, "--image", f"{p22}/image.png", "--size", "64x64", "--frames", "5",
         "--steps", "3", "--cfg", "1", "--shift", "5", "--sampler", "dpm++"])
    # T2V-A14B: shift 3, 4 steps -> t = 999, 899 (high), 749, 499 (low) at boundary 0.875.
    a14b = ["--model", f"{p22}/t2v_a14b", "--vae", f"{tiny}/vae", *both]
    run("t2v_a14b_unipc", t2v_pipe, dict(size=(48, 32), frame_num=9, shift=3.0, sample_solver="unipc",
                                         sampling_steps=4, guide_scale=(3.0, 4.0)), (16, 3, 4, 6),
        [*a14b, "--size", "48x32", "--frames", "9", "--steps", "4", "--cfg", "4", "--cfg-low", "3", "--shift", "3",
         "--sampler", "unipc"])
    t2v_pipe.boundary = 0.7
    run("t2v_a14b_dpm_boundary", t2v_pipe, dict(size=(32, 48), frame_num=5, shift=3.0, sample_solver="dpm++",
                                                sampling_steps=4, guide_scale=(2.0, 5.0)), (16, 2, 6, 4),
        [*a14b, "--size", "32x48", "--frames", "5", "--steps", "4", "--cfg", "5", "--cfg-low", "2", "--shift", "3",
         "--sampler", "dpm++", "--boundary", "0.7", "--low-memory"])
    t2v_pipe.boundary = 0.875
    # I2V-A14B: area 48*32 -> the official size for a 50x30 image.
    ar = 30 / 50
    lat_h = round(np.sqrt(48 * 32 * ar) // 8 // 2 * 2)
    lat_w = round(np.sqrt(48 * 32 / ar) // 8 // 2 * 2)
    i2v = ["--vae", f"{tiny}/vae", *both, "--image", f"{p22}/image.png"]
    run("i2v_a14b_unipc", i2v_pipe, dict(img=pil, max_area=48 * 32, frame_num=9, shift=5.0, sample_solver="unipc",
                                         sampling_steps=4, guide_scale=(3.5, 3.5)), (16, 3, lat_h, lat_w),
        ["--model", f"{p22}/i2v_a14b", *i2v, "--size", "48x32", "--frames", "9", "--steps", "4", "--cfg", "3.5",
         "--shift", "5", "--sampler", "unipc"])
    run("i2v_a14b_dpm_files", i2v_pipe, dict(img=pil, max_area=48 * 32, frame_num=5, shift=5.0, sample_solver="dpm++",
                                             sampling_steps=4, guide_scale=(2.5, 4.5)), (16, 2, lat_h, lat_w),
        ["--dit", f"{p22}/a14b_files/i2v_high.safetensors", "--dit-low", f"{p22}/a14b_files/i2v_low.safetensors",
         *i2v, "--size", "48x32", "--frames", "5", "--steps", "4", "--cfg", "4.5", "--cfg-low", "2.5", "--shift", "5",
         "--sampler", "dpm++"])

    save_file(golden, os.path.join(out, "golden.safetensors"), metadata=prov)
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump({"prompt": PROMPT, "negative_prompt": NEGATIVE, "cases": cases,
                   "provenance": {**provenance.json_field(__file__, SEED, LIBS), "wan22_commit": prov["wan22_commit"]}},
                  f, indent=1, ensure_ascii=False)
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns)
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
