#!/usr/bin/env python3
"""Writes the end-to-end pipeline golden: a tiny random Wan pipeline saved as a
diffusers folder (tokenizer, text_encoder, transformer, vae, scheduler), and the
frames diffusers' WanPipeline makes from it with injected noise.

    python3 tools/golden/gen_pipeline_golden.py [--out tests/data/pipeline]

Outputs (all small):
  tiny_wan/                      the diffusers folder (model_index.json + parts). Kept when it
                                 exists: the model is rebuilt in a temporary folder and only
                                 compared (tensor bytes must be identical; --rebuild-model
                                 replaces it). The golden is computed from the committed files.
  golden.safetensors             noise [1,16,T,h,w], frames [F,H,W,3] in [0,1],
                                 prompt_embeds / negative_prompt_embeds [1,512,D],
                                 latents_step{i} after each scheduler step, timesteps
  golden.json                    prompt, negative prompt, size, frames, steps, cfg, shift
Every safetensors file carries tools/provenance.py metadata; golden.json a "provenance" field.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import sentencepiece as spm
import torch
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
from safetensors.torch import save_file
from transformers import AutoTokenizer, T5Tokenizer, UMT5Config, UMT5EncoderModel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import provenance  # noqa: E402  (tools/provenance.py)

LIBS = ("torch", "diffusers", "transformers", "tokenizers", "sentencepiece", "safetensors", "numpy")
SEED = "1234 (weights), 7 (noise)"
WEIGHTS = ["text_encoder/model.safetensors", "transformer/diffusion_pytorch_model.safetensors",
           "vae/diffusion_pytorch_model.safetensors"]

PROMPT = "a red ball rolling to the left on a white background"
NEGATIVE = "blurry, static, low quality"
WIDTH, HEIGHT, FRAMES, STEPS, CFG, SHIFT = 48, 32, 9, 4, 5.0, 3.0

CORPUS = [
    "a {c} {s} {m} on a {b} background".format(c=c, s=s, m=m, b=b)
    for c in ["red", "green", "blue", "yellow", "white", "black", "purple", "orange"]
    for s in ["ball", "square", "triangle", "circle", "box"]
    for m in ["rolling to the left", "moving up", "bouncing", "growing", "shrinking", "sliding right"]
    for b in ["white", "black", "gray", "gradient"]
] + ["blurry, static, low quality, worst quality", "a cat surfing a wave at sunset", "一只红色的球向左滚动"]


def make_tokenizer(folder):
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w") as f:
            f.write("\n".join(CORPUS) + "\n")
        prefix = os.path.join(tmp, "spiece")
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=prefix, vocab_size=96, hard_vocab_limit=False, model_type="unigram",
            pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0,
            normalization_rule_name="nmt_nfkc", num_threads=1, minloglevel=2)
        os.makedirs(folder, exist_ok=True)
        shutil.copy(prefix + ".model", os.path.join(folder, "spiece.model"))
    # Going through the slow tokenizer makes transformers convert the whole
    # SentencePiece vocabulary (constructing the fast one directly keeps only
    # the special tokens).
    T5Tokenizer.from_pretrained(folder, extra_ids=0).save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert len(tok) > 50, f"tokenizer has only {len(tok)} tokens"
    return tok


def prompt_clean_for_check(text):
    return " ".join(text.split())


def randomize(module, gen, std=0.2):
    # Every parameter random (norm gains around 1), so no part of the network is a no-op.
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim <= 1 or "norm" in name or "gamma" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = max(1, p[0].numel())
                p.copy_(torch.randn(p.shape, generator=gen) * (std if fan_in < 8 else 1.0 / fan_in ** 0.5))


def tensor_bytes(path):
    """name -> (dtype, shape, data bytes) of a safetensors file (metadata ignored)."""
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], blob[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in header.items()}


def build_model(folder):
    """Writes the tiny random pipeline to `folder` (a diffusers folder)."""
    os.makedirs(folder)
    gen = torch.Generator().manual_seed(1234)

    tok = make_tokenizer(os.path.join(folder, "tokenizer"))
    te = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tok), d_model=32, num_layers=2, num_heads=2, d_kv=16, d_ff=48,
        relative_attention_num_buckets=32, relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, dropout_rate=0.0,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    randomize(te, gen, 0.5)
    with torch.no_grad():
        te.shared.weight.mul_(0.0).add_(torch.randn(te.shared.weight.shape, generator=gen))
    tr = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=24, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=64, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
    randomize(tr, gen)
    vae = AutoencoderKLWan(base_dim=4, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1, attn_scales=[],
                           temperal_downsample=[False, True, True], dropout=0.0)
    randomize(vae, gen)
    with torch.no_grad():  # keep decoded pixels mostly inside [-1, 1] so the clamp does not hide errors
        vae.decoder.conv_out.weight.mul_(0.6)
        vae.decoder.conv_out.bias.zero_()
    sched = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                    num_train_timesteps=1000, flow_shift=SHIFT)
    pipe = WanPipeline(tokenizer=tok, text_encoder=te, transformer=tr, vae=vae, scheduler=sched)
    pipe.to(torch.float32)
    pipe.save_pretrained(folder, safe_serialization=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "pipeline"))
    ap.add_argument("--rebuild-model", action="store_true",
                    help="replace tiny_wan/ even when the rebuilt weights differ from the committed ones")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    folder = os.path.join(out, "tiny_wan")
    prov = provenance.metadata(__file__, seed=SEED, libs=LIBS)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, "tiny_wan")
        build_model(fresh)
        if os.path.exists(folder) and not args.rebuild_model:
            # Tests and the C++ pipeline golden depend on these exact weights: keep the
            # committed folder, and record provenance only when this run reproduces it.
            for w in WEIGHTS:
                if tensor_bytes(os.path.join(fresh, w)) != tensor_bytes(os.path.join(folder, w)):
                    raise SystemExit(f"{w}: the rebuilt weights differ from the committed ones; "
                                     "pass --rebuild-model to replace tiny_wan/ (and re-run the C++ tests)")
            print("tiny_wan/: rebuilt weights are identical to the committed ones; kept")
        else:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(fresh, folder)
    for w in WEIGHTS:
        provenance.stamp_safetensors(os.path.join(folder, w), prov)

    # Reload from disk so the golden is made from exactly the committed files.
    pipe = WanPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    t_lat = (FRAMES - 1) // 4 + 1
    noise = torch.randn((1, 16, t_lat, HEIGHT // 8, WIDTH // 8), generator=torch.Generator().manual_seed(7))
    steps = {}

    def on_step(p, i, t, kw):
        steps[f"latents_step{i}"] = kw["latents"].detach().clone().float().contiguous()
        steps.setdefault("_timesteps", []).append(int(t))
        return {}

    pos, neg = pipe.encode_prompt(PROMPT, NEGATIVE, do_classifier_free_guidance=True, max_sequence_length=512)
    with torch.no_grad():
        frames = pipe(prompt=PROMPT, negative_prompt=NEGATIVE, height=HEIGHT, width=WIDTH, num_frames=FRAMES,
                      num_inference_steps=STEPS, guidance_scale=CFG, latents=noise.clone(), output_type="np",
                      max_sequence_length=512, callback_on_step_end=on_step).frames[0]
    timesteps = steps.pop("_timesteps")
    tensors = {
        "noise": noise.contiguous(),
        "frames": torch.from_numpy(np.ascontiguousarray(frames)).float(),
        "prompt_embeds": pos.detach().float().contiguous(),
        "negative_prompt_embeds": neg.detach().float().contiguous(),
        "timesteps": torch.tensor(timesteps, dtype=torch.int64),
        **steps,
    }
    save_file(tensors, os.path.join(out, "golden.safetensors"), metadata=prov)
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump({"prompt": PROMPT, "negative_prompt": NEGATIVE, "width": WIDTH, "height": HEIGHT,
                   "frames": FRAMES, "steps": STEPS, "cfg": CFG, "shift": SHIFT, "sampler": "unipc",
                   "schedule": "diffusers", "timesteps": timesteps,
                   "provenance": provenance.json_field(__file__, seed=SEED, libs=LIBS)}, f, indent=2)
    ids = pipe.tokenizer(prompt_clean_for_check(PROMPT)).input_ids
    assert 2 not in ids, f"prompt has unknown tokens: {ids}"
    print("prompt ids", ids)
    print("frames", frames.shape, "range", float(frames.min()), float(frames.max()), "timesteps", timesteps)


if __name__ == "__main__":
    main()
