#!/usr/bin/env python3
"""Trains the default model (models/t2v-tiny) on the synthetic world, with the
upstream classes: a SentencePiece tokenizer on the caption grammar,
transformers' UMT5EncoderModel, diffusers' AutoencoderKLWan and
WanTransformer3DModel. Sized to finish on 2 CPU cores in about an hour.

    python3 tools/world/train.py tokenizer --work W
    python3 tools/world/train.py vae --work W [--vae-minutes 22]
    python3 tools/world/train.py vae2 --work W [--vae2-minutes 14]
    python3 tools/world/train.py latents --work W [--clips 4000]
    python3 tools/world/train.py dit --work W [--dit-minutes 40] [--resume]
    python3 tools/world/train.py decoder --work W [--decoder-minutes 30]   (alongside dit)
    python3 tools/world/train.py export --work W --out models/t2v-tiny

Each stage writes its result and a loss log (JSON lines) into W; `all` runs
them in order. docs/default_model.md describes the choices.
"""
import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "2")))

# 4x spatial / 4x temporal compression (three stages instead of Wan2.1's four):
# the shallower network reaches a usable reconstruction in the CPU budget, and
# 16x16 latents at 64x64 keep the shapes' corners for the transformer.
VAE_CFG = dict(base_dim=16, z_dim=12, dim_mult=[1, 2, 4], num_res_blocks=1, attn_scales=[],
               temperal_downsample=[True, True], dropout=0.0, scale_factor_spatial=4, scale_factor_temporal=4)
TE_CFG = dict(d_model=64, num_layers=2, num_heads=2, d_kv=32, d_ff=128, relative_attention_num_buckets=32,
              relative_attention_max_distance=128, feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6,
              dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
# Patches of 2x2 latents (8x8 pixels; 320 tokens per clip); the rest is Wan2.1's
# layout at small width. Four heads of 32: more distinct attention patterns (one
# per motion offset, say) than two of 64 at the same cost.
DIT_CFG = dict(patch_size=(1, 2, 2), num_attention_heads=4, attention_head_dim=32, in_channels=12, out_channels=12,
               text_dim=64, freq_dim=256, ffn_dim=512, num_layers=6, cross_attn_norm=True,
               qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
TEXT_LEN = 512      # WanPipeline pads prompts to 512 tokens; the model is trained the same way
CAPTION_DROP = 0.1  # empty caption, so classifier-free guidance has an unconditional model
SHIFT = 3.0         # flow shift used at sampling time (scheduler config)
# Noise levels for training: logit-normal, shifted by TRAIN_SHIFT. Shifting by 3
# (the sampling shift) put 84% of the samples above s = 0.53, where only the
# layout is decided; objects stayed scattered blobs after 1,200 steps. At 16x16
# latents the unshifted distribution (median 0.5) is the one SD3 found right
# for low resolutions.
TRAIN_SHIFT = 1.0


def log_line(path, **kw):
    with open(path, "a") as f:
        f.write(json.dumps(kw) + "\n")


def to_unit(video_u8):
    """uint8 [F,H,W,3] -> float [3,F,H,W] in [-1, 1]."""
    return torch.from_numpy(video_u8).permute(3, 0, 1, 2).float() / 127.5 - 1.0


# ---------------------------------------------------------------- tokenizer
def stage_tokenizer(work):
    import sentencepiece as spm
    from transformers import AutoTokenizer, T5Tokenizer
    folder = os.path.join(work, "tokenizer")
    os.makedirs(folder, exist_ok=True)
    lines = world.corpus_lines()
    words = sorted(set(w for line in lines for w in line.split()))
    # The grammar's words are whole pieces (SentencePiece's unigram trainer
    # splits them oddly on so small a corpus); letters, digits and punctuation
    # stay in the vocabulary so any other text still tokenizes.
    extra = ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", ".,;:!?'\"()-/"] * 50
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w") as f:
            f.write("\n".join(lines + extra) + "\n")
        prefix = os.path.join(tmp, "spiece")
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=prefix, vocab_size=200, hard_vocab_limit=False, model_type="unigram",
            pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0, normalization_rule_name="nmt_nfkc",
            num_threads=1, minloglevel=2, user_defined_symbols=["\u2581" + w for w in words])
        shutil.copy(prefix + ".model", os.path.join(folder, "spiece.model"))
    # Through the slow tokenizer so transformers converts the whole vocabulary.
    T5Tokenizer.from_pretrained(folder, extra_ids=0).save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    print("tokenizer:", len(tok), "tokens;", tok.tokenize(world.canonical_caption("red", "circle", "left", "white")))


def load_tokenizer(work):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(os.path.join(work, "tokenizer"))


# ---------------------------------------------------------------- VAE
def vae_batch(rng, n, frames):
    clips = []
    for _ in range(n):
        video, _, _ = world.make_example(rng.getrandbits(48))
        start = rng.randrange(0, world.FRAMES - frames + 1)
        clips.append(to_unit(video[start:start + frames]))
    return torch.stack(clips)


class _NoClampTorch:
    """diffusers' Wan decoder clamps its output to [-1, 1]; during training that
    zeroes the gradient of every overshooting pixel, so training sees this
    stand-in whose clamp is the identity (inference keeps the clamp)."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def clamp(x, min=None, max=None):
        return x


def skip_init(vae):
    # Zero the last conv of every residual branch and the attention output, so
    # each block starts as the identity: the deep, magnitude-normalised network
    # then trains several times faster from scratch (measured: 18 vs 14 dB
    # after 200 steps).
    with torch.no_grad():
        for name, mod in vae.named_modules():
            if name.endswith("conv2") or name.endswith(".proj"):
                mod.weight.zero_()
                mod.bias.zero_()


def object_weight(x):
    """Per-pixel loss weight: 10 on the (saturated) object, 1 on the achromatic
    background. Unweighted, the small VAE settles on luminance alone: the
    object is a few percent of the pixels."""
    sat = x.max(dim=1, keepdim=True).values - x.min(dim=1, keepdim=True).values  # [-1, 1] units
    return 1.0 + 9.0 * (sat > 0.5).float()


def stage_vae(work, minutes, batch=4, frames=5, lr=1e-3, resume=False):
    import diffusers.models.autoencoders.autoencoder_kl_wan as wan_vae_module
    from diffusers import AutoencoderKLWan
    torch.manual_seed(0)
    if resume:  # second phase: 9-frame clips (three encoder chunks), colour-weighted
        vae = AutoencoderKLWan.from_pretrained(os.path.join(work, "vae"))
        frames, lr = 9, 5e-4
    else:
        vae = AutoencoderKLWan(**VAE_CFG)
        skip_init(vae)
    wan_vae_module.torch = _NoClampTorch()
    opt = torch.optim.Adam(vae.parameters(), lr=lr, betas=(0.9, 0.99))
    rng = random.Random(2 if resume else 1)
    logp = os.path.join(work, "vae_log.jsonl")
    step = 0
    if resume:
        with open(logp) as f:
            step = sum(1 for line in f if line.strip())
    elif os.path.exists(logp):
        os.remove(logp)
    first = step
    budget = minutes * 60.0
    t0 = time.time()
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1.0:
            break
        # Time-based schedule: warm-up, then cosine to 5% of the peak.
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step - first + 1) / 30) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        x = vae_batch(rng, batch, frames)
        mean = vae.encode(x).latent_dist.mean
        y = vae.decode(mean).sample
        mse = ((y - x) ** 2).mean()
        w = object_weight(x) if resume else 1.0
        loss = (w * (y - x) ** 2).mean() + (w * (y - x).abs()).mean() + 1e-4 * (mean ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))
        log_line(logp, step=step, loss=loss.item(), psnr=psnr, lr=opt.param_groups[0]["lr"], t=time.time() - t0)
        if step % 20 == 0:
            print(f"vae {step} loss {loss.item():.4f} psnr {psnr:.1f} dB  {time.time() - t0:.0f}s", flush=True)
        step += 1
    wan_vae_module.torch = torch
    tmp = os.path.join(work, "vae.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    vae.save_pretrained(tmp, safe_serialization=True)
    shutil.rmtree(os.path.join(work, "vae"), ignore_errors=True)
    os.rename(tmp, os.path.join(work, "vae"))


def stage_decoder(work, minutes, batch=4, frames=9, lr=3e-4):
    """Fine-tunes the decoder (and post_quant_conv) with the encoder frozen: the
    latent space the transformer learns stays exactly the same, so this can
    run alongside the transformer's training."""
    import diffusers.models.autoencoders.autoencoder_kl_wan as wan_vae_module
    from diffusers import AutoencoderKLWan
    vae = AutoencoderKLWan.from_pretrained(os.path.join(work, "vae"))
    for p in list(vae.encoder.parameters()) + list(vae.quant_conv.parameters()):
        p.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    wan_vae_module.torch = _NoClampTorch()
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.99))
    rng = random.Random(5)
    logp = os.path.join(work, "decoder_log.jsonl")
    if os.path.exists(logp):
        os.remove(logp)
    budget = minutes * 60.0
    t0 = time.time()
    step = 0
    last_save = t0
    while time.time() - t0 < budget:
        frac = (time.time() - t0) / budget
        for g in opt.param_groups:
            g["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        x = vae_batch(rng, batch, frames)
        with torch.no_grad():
            mean = vae.encode(x).latent_dist.mean
        y = vae.decode(mean).sample
        mse = ((y - x) ** 2).mean()
        loss = mse + (y - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))
        log_line(logp, step=step, loss=loss.item(), psnr=psnr, lr=opt.param_groups[0]["lr"], t=time.time() - t0)
        if step % 20 == 0:
            print(f"decoder {step} psnr {psnr:.1f} dB  {time.time() - t0:.0f}s", flush=True)
        step += 1
        if time.time() - last_save > 300 or time.time() - t0 >= budget:
            tmp = os.path.join(work, "vae_dec.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            vae.save_pretrained(tmp, safe_serialization=True)
            shutil.rmtree(os.path.join(work, "vae_dec"), ignore_errors=True)
            os.rename(tmp, os.path.join(work, "vae_dec"))
            last_save = time.time()
    wan_vae_module.torch = torch


# ---------------------------------------------------------------- latents
def block_code(x):
    """What the block-codec encoder (linear_vae.py) computes, without running
    it: [B,3,F,64,64] -> [B,12,T,16,16], per latent frame the 4x4 block means
    of its frames (the first latent frame holds only frame 0)."""
    b, _, f, h, w = x.shape
    m = x.reshape(b, 3, f, h // 4, 4, w // 4, 4).mean(dim=(4, 6))  # [B,3,F,h/4,w/4]
    t = (f - 1) // 4 + 1
    z = x.new_zeros(b, 12, t, h // 4, w // 4)
    z[:, 0:3, 0] = m[:, :, 0]
    for i in range(1, t):
        for k in range(4):
            z[:, 3 * k:3 * k + 3, i] = m[:, :, 1 + 4 * (i - 1) + k]
    return z


def _render_codes(seeds):
    """Worker: renders clips from their seeds and returns their block codes."""
    torch.set_num_threads(1)
    vids, caps, infos = [], [], []
    for seed in seeds:
        video, text, info = world.make_example(seed)
        vids.append(to_unit(video))
        caps.append(text)
        infos.append(info)
    return block_code(torch.stack(vids)).half(), caps, infos


def stage_latents(work, clips, workers=2):
    """Renders the training clips (in `workers` processes) and stores their
    latent codes as fp16 (block means of 8-bit pixels: 3 significant digits are
    all there is)."""
    import multiprocessing as mp
    from diffusers import AutoencoderKLWan
    vae = AutoencoderKLWan.from_pretrained(os.path.join(work, "vae")).eval()
    rng = random.Random(2)
    seeds = [rng.getrandbits(48) for _ in range(clips)]
    with torch.no_grad():  # the shortcut equals the real encoder
        video, _, _ = world.make_example(seeds[0])
        x = to_unit(video)[None]
        err = (vae.encode(x).latent_dist.mean - block_code(x)).abs().max().item()
    assert err < 1e-3, f"block code differs from the encoder by {err}"
    print(f"block code vs encoder: max abs diff {err:.2e}")
    t0 = time.time()
    chunks = [seeds[i:i + 200] for i in range(0, clips, 200)]
    lat, caps, infos = [], [], []
    with mp.get_context("fork").Pool(workers) as pool:
        for k, (z, c, inf) in enumerate(pool.imap(_render_codes, chunks)):
            lat.append(z)
            caps += c
            infos += inf
            if k % 10 == 0:
                print(f"latents {len(caps)}/{clips} {time.time() - t0:.0f}s", flush=True)
    lat = torch.cat(lat)
    mean = lat.float().mean(dim=(0, 2, 3, 4))
    std = lat.float().std(dim=(0, 2, 3, 4))
    torch.save(dict(latents=lat, captions=caps, infos=infos, mean=mean, std=std), os.path.join(work, "latents.pt"))
    print("latent mean", mean.numpy().round(3), "std", std.numpy().round(3))


# ---------------------------------------------------------------- DiT + text encoder
def encode_text(te, tok, captions, device="cpu", length=TEXT_LEN):
    """Prompt embeddings exactly as WanPipeline builds them: tokens up to the
    first pad, encoder output zeroed past the prompt, padded to TEXT_LEN.
    length=None stops after the longest prompt plus one padding position (for
    CompactCrossAttention, which stands in for the rest)."""
    enc = tok(captions, padding="longest", truncation=True, max_length=TEXT_LEN, add_special_tokens=True,
              return_attention_mask=True, return_tensors="pt")
    mask = enc.attention_mask
    h = te(enc.input_ids, mask).last_hidden_state
    h = h * mask[..., None].to(h.dtype)
    n = TEXT_LEN if length == TEXT_LEN else min(TEXT_LEN, h.shape[1] + 1)
    out = h.new_zeros(h.shape[0], n, h.shape[2])
    out[:, :h.shape[1]] = h
    return out


class CompactCrossAttention:
    """diffusers' WanAttnProcessor for the cross-attention, over a context cut
    to the longest prompt plus one padding position whose logit carries
    +log(number of padding positions it stands for). Exact: WanPipeline's
    padding positions are all the same zero vector, so they have one key and
    one value, and softmax over n copies of a logit equals one logit + log n.
    It halves the cost of a training step (the cross-attention over 512
    positions was most of it); inference uses the stock processor."""

    def __init__(self):
        self.bias = None

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        q = attn.norm_q(attn.to_q(hidden_states))
        k = attn.norm_k(attn.to_k(encoder_hidden_states))
        v = attn.to_v(encoder_hidden_states)
        q, k, v = (t.unflatten(2, (attn.heads, -1)).transpose(1, 2) for t in (q, k, v))
        k, v = k.to(q.dtype), v.to(q.dtype)
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=self.bias.to(q.dtype))
        o = o.transpose(1, 2).flatten(2, 3).type_as(q)
        return attn.to_out[1](attn.to_out[0](o))


def use_compact_cross_attention(tr):
    proc = CompactCrossAttention()
    for blk in tr.blocks:
        blk.attn2.set_processor(proc)

    def set_context(ctx):
        n = ctx.shape[1]
        bias = torch.zeros(1, 1, 1, n)
        bias[..., -1] = math.log(TEXT_LEN - (n - 1))
        proc.bias = bias
    return set_context


def fixed_text_encoder(vocab):
    """A umT5 whose blocks add nothing (attention and FFN output projections zero), so
    each token's output is its own embedding, RMS-normalised; the embeddings are fixed
    random vectors. Every word of the grammar is distinct from the first step, and a bag
    of words is enough for the world's captions (object colours are chromatic, background
    colours achromatic). Measured reason: trained jointly from scratch, the encoder had
    after 2,300 steps separated colours (cosine 0.76 between red/blue captions) but
    hardly shapes (0.96) or directions (0.90), and the transformer followed colour only."""
    from transformers import UMT5Config, UMT5EncoderModel
    te = UMT5EncoderModel(UMT5Config(vocab_size=vocab, **TE_CFG))
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        te.shared.weight.copy_(torch.randn(te.shared.weight.shape, generator=g))
        for blk in te.encoder.block:
            blk.layer[0].SelfAttention.o.weight.zero_()
            blk.layer[1].DenseReluDense.wo.weight.zero_()
        te.encoder.final_layer_norm.weight.fill_(1.0)
    te.requires_grad_(False)
    return te


SWAPS = ("colour", "shape", "motion")


def probe_set(n_per_combo=3):
    """Clips for the attribute probe: every held-out combination and as many
    trained ones, with canonical captions and, per attribute, the caption with
    that attribute changed."""
    rng = random.Random(77)
    trained = [world.TRAIN_COMBOS[i] for i in range(0, len(world.TRAIN_COMBOS), 8)][:len(world.HELD_OUT)]
    items = []
    colours = list(world.COLOURS)
    for group, combos in (("held_out", world.HELD_OUT), ("trained", trained)):
        for c, s, m in combos:
            for _ in range(n_per_combo):
                bg = rng.choice(world.BACKGROUNDS)
                video = world.render(c, s, m, bg, rng)
                alt = dict(colour=(colours[(colours.index(c) + 1) % len(colours)], s, m),
                           shape=(c, world.SHAPES[(world.SHAPES.index(s) + 1) % 3], m),
                           motion=(c, s, world.MOTIONS[(world.MOTIONS.index(m) + 1) % len(world.MOTIONS)]))
                items.append(dict(group=group, video=video, caption=world.canonical_caption(c, s, m, bg),
                                  **{k: world.canonical_caption(*v, bg) for k, v in alt.items()}))
    return items


def attribute_probe(tr, te, tok, items, lat_mean, lat_std, set_context, levels=(0.5, 0.75, 0.9)):
    """How much the transformer uses each attribute of the prompt: the rise of
    its flow-matching loss when the caption names another colour, shape or
    motion (fixed clips, noise and noise levels). Zero means ignored."""
    x0 = (block_code(torch.stack([to_unit(it["video"]) for it in items])) - lat_mean) / lat_std
    g = torch.Generator().manual_seed(9)
    out = {}
    with torch.no_grad():
        losses = {}
        for key in ("caption",) + SWAPS:
            ctx = encode_text(te, tok, [it[key] for it in items], length=None)
            set_context(ctx)
            per = torch.zeros(len(items))
            g.manual_seed(9)
            for s in levels:
                noise = torch.randn(x0.shape, generator=g)
                xt = (1 - s) * x0 + s * noise
                pred = tr(hidden_states=xt, timestep=torch.full((len(items),), s * 1000.0),
                          encoder_hidden_states=ctx, return_dict=False)[0]
                per += ((pred - (noise - x0)) ** 2).mean(dim=(1, 2, 3, 4)) / len(levels)
            losses[key] = per
        for group in ("held_out", "trained"):
            sel = torch.tensor([it["group"] == group for it in items])
            out[f"{group}_loss"] = round(losses["caption"][sel].mean().item(), 5)
            for k in SWAPS:
                out[f"{group}_{k}_gap"] = round((losses[k][sel] - losses["caption"][sel]).mean().item(), 5)
    return out


def object_mask(lat):
    """1 on latent positions at or next to the object, 0 on the background: (B, 1, T, H, W).

    The background is achromatic and constant along each row (plain, or the top-to-bottom
    gradient), so a position belongs to the object where it differs from its row's median;
    the mask is dilated by one position so the blocks where one shape has ink and another
    has not (a square's corners, a circle's rim) are inside it.
    """
    import torch.nn.functional as F
    med = lat.median(-1, keepdim=True).values
    m = ((lat - med).abs().sum(1, keepdim=True) > 0.3).float()
    return F.max_pool3d(m, (1, 3, 3), 1, (0, 1, 1))


def stage_dit(work, minutes, batch=32, lr=1e-3, resume=False, te_kind="fixed", init=None, bf16=True,
              probe_every=500, snapshot_minutes=20.0, train_shift=TRAIN_SHIFT, object_weight=0.0):
    from diffusers import WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel
    tok = load_tokenizer(work)
    data = torch.load(os.path.join(work, "latents.pt"))
    lat_mean = data["mean"].view(1, -1, 1, 1, 1)
    lat_std = data["std"].view(1, -1, 1, 1, 1)
    lat = data["latents"]  # fp16; normalised per batch
    caps = data["captions"]
    n = lat.shape[0]
    torch.manual_seed(0)
    if resume:  # continue from the last saved (EMA) weights
        te = UMT5EncoderModel.from_pretrained(os.path.join(work, "dit", "text_encoder"))
        tr = WanTransformer3DModel.from_pretrained(os.path.join(work, "dit", "transformer"))
    else:
        te = (fixed_text_encoder(len(tok)) if te_kind == "fixed"
              else UMT5EncoderModel(UMT5Config(vocab_size=len(tok), **TE_CFG)))
        # init: start the transformer from another run's weights (its denoising prior): a work
        # folder (INIT/dit/transformer) or an exported model folder such as models/t2v-tiny.
        if init:
            def init_part(name):  # a work folder keeps its parts under dit/, a model folder at the top
                src = os.path.join(init, "dit", name)
                return src if os.path.isdir(src) else os.path.join(init, name)
            tr = WanTransformer3DModel.from_pretrained(init_part("transformer"))
            # The transformer was trained against that folder's own encoder: keep it exactly.
            if te_kind == "fixed" and os.path.isdir(init_part("text_encoder")):
                te = UMT5EncoderModel.from_pretrained(init_part("text_encoder"))
        else:
            tr = WanTransformer3DModel(**DIT_CFG)
    if te_kind == "fixed":
        te.requires_grad_(False)
    set_context = use_compact_cross_attention(tr)
    probe_items = probe_set()
    params = [p for p in list(te.parameters()) + list(tr.parameters()) if p.requires_grad]
    print(f"transformer {sum(p.numel() for p in tr.parameters()) / 1e6:.2f} M parameters, {n} clips, "
          f"batch {batch}, bf16 autocast {bf16}", flush=True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.99))
    ema_tr = {k: v.detach().clone() for k, v in tr.state_dict().items()}
    ema_te = {k: v.detach().clone() for k, v in te.state_dict().items()}
    rng = np.random.default_rng(3)
    logp = os.path.join(work, "dit_log.jsonl")
    probep = os.path.join(work, "probe_log.jsonl")
    step = 0
    if resume and os.path.exists(logp):
        with open(logp) as f:
            step = sum(1 for line in f if line.strip())
    else:
        for p in (logp, probep):
            if os.path.exists(p):
                os.remove(p)
    first = step
    budget = minutes * 60.0
    t0 = time.time()
    last_save = last_snap = t0
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1.0:
            break
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step - first + 1) / 200) * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * frac)))
        idx = rng.integers(0, n, batch)
        raw = lat[idx].float()
        x0 = (raw - lat_mean) / lat_std
        texts = ["" if rng.random() < CAPTION_DROP else caps[i] for i in idx]
        with torch.no_grad() if te_kind == "fixed" else torch.enable_grad():
            ctx = encode_text(te, tok, texts, length=None)
        set_context(ctx)
        # Flow matching: x_t = (1 - s) x0 + s noise, target noise - x0, with s
        # logit-normal (shifted by train_shift).
        u = torch.sigmoid(torch.randn(batch))
        s = train_shift * u / (1 + (train_shift - 1) * u)
        noise = torch.randn_like(x0)
        sv = s.view(-1, 1, 1, 1, 1)
        xt = (1 - sv) * x0 + sv * noise
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = tr(hidden_states=xt, timestep=s * 1000, encoder_hidden_states=ctx, return_dict=False)[0]
        err = (pred.float() - (noise - x0)) ** 2
        if object_weight:
            w = 1 + object_weight * object_mask(raw)
            loss = (err * w).mean() / w.mean()
        else:
            loss = err.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(0.999, (1 + step - first) / (10 + step - first))
        with torch.no_grad():
            for ema, model in ((ema_tr, tr), (ema_te, te)):
                for k, v in model.state_dict().items():
                    if v.dtype.is_floating_point:
                        ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
        log_line(logp, step=step, loss=loss.item(), lr=opt.param_groups[0]["lr"], t=time.time() - t0)
        if step % 50 == 0:
            print(f"dit {step} loss {loss.item():.4f}  {time.time() - t0:.0f}s", flush=True)
        if probe_every and step % probe_every == 0 and step > first:
            r = attribute_probe(tr, te, tok, probe_items, lat_mean, lat_std, set_context)
            log_line(probep, step=step, t=time.time() - t0, **r)
            print("probe", step, json.dumps(r), flush=True)
        if time.time() - last_save > 300:
            save_dit(work, tr, te, ema_tr, ema_te)
            last_save = time.time()
        if snapshot_minutes and time.time() - last_snap > snapshot_minutes * 60:
            save_dit(work, tr, te, ema_tr, ema_te, name=f"dit_step{step}")
            last_snap = time.time()
        step += 1
    save_dit(work, tr, te, ema_tr, ema_te)


def save_dit(work, tr, te, ema_tr, ema_te, name="dit"):
    import copy
    tr2, te2 = copy.deepcopy(tr), copy.deepcopy(te)
    tr2.load_state_dict(ema_tr)
    te2.load_state_dict(ema_te)
    tmp = os.path.join(work, name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tr2.save_pretrained(os.path.join(tmp, "transformer"), safe_serialization=True)
    te2.save_pretrained(os.path.join(tmp, "text_encoder"), safe_serialization=True)
    shutil.rmtree(os.path.join(work, name), ignore_errors=True)
    os.rename(tmp, os.path.join(work, name))


# ---------------------------------------------------------------- export
def stage_export(work, out):
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5EncoderModel
    data = torch.load(os.path.join(work, "latents.pt"))
    dec = os.path.join(work, "vae_dec")
    vae = AutoencoderKLWan.from_pretrained(dec if os.path.isdir(dec) else os.path.join(work, "vae"))
    vae.register_to_config(latents_mean=[round(float(v), 6) for v in data["mean"]],
                           latents_std=[round(float(v), 6) for v in data["std"]])
    tok = load_tokenizer(work)
    te = UMT5EncoderModel.from_pretrained(os.path.join(work, "dit", "text_encoder"))
    tr = WanTransformer3DModel.from_pretrained(os.path.join(work, "dit", "transformer"))
    sched = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000,
                                    flow_shift=SHIFT)
    pipe = WanPipeline(tokenizer=tok, text_encoder=te, transformer=tr, vae=vae, scheduler=sched)
    tmp = out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp, safe_serialization=True)
    # The fast tokenizer saves tokenizer.json only; SentencePiece readers need the model.
    shutil.copy(os.path.join(work, "tokenizer", "spiece.model"), os.path.join(tmp, "tokenizer", "spiece.model"))
    with open(os.path.join(tmp, "t2v.json"), "w") as f:
        json.dump(dict(width=world.WIDTH, height=world.HEIGHT, frames=world.FRAMES, fps=world.FPS, steps=20, cfg=4.0,
                       shift=SHIFT, sampler="unipc", negative_prompt=""), f, indent=2)
        f.write("\n")
    card = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_card.md")
    shutil.copy(card, os.path.join(tmp, "README.md"))
    if os.path.exists(os.path.join(out, "loss_curve.png")):
        shutil.copy(os.path.join(out, "loss_curve.png"), os.path.join(tmp, "loss_curve.png"))
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"exported {out}: {total / 1e6:.2f} MB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["tokenizer", "vae", "vae_linear", "vae2", "latents", "dit", "decoder", "export", "all"])
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", default="models/t2v-tiny")
    ap.add_argument("--vae-minutes", type=float, default=22.0)
    ap.add_argument("--clips", type=int, default=16000)
    ap.add_argument("--resume", action="store_true", help="dit: continue from the saved weights in WORK/dit")
    ap.add_argument("--vae2-minutes", type=float, default=14.0)
    ap.add_argument("--decoder-minutes", type=float, default=30.0)
    ap.add_argument("--dit-minutes", type=float, default=40.0)
    ap.add_argument("--te", choices=["trained", "fixed"], default="fixed",
                    help="dit: fixed_text_encoder() (default), or train the text encoder jointly")
    ap.add_argument("--batch", type=int, default=32, help="dit: clips per step")
    ap.add_argument("--lr", type=float, default=1e-3, help="dit: peak learning rate")
    ap.add_argument("--fp32", action="store_true", help="dit: no bf16 autocast")
    ap.add_argument("--train-shift", type=float, default=TRAIN_SHIFT, help="dit: shift of the noise-level distribution")
    ap.add_argument("--object-weight", type=float, default=0.0,
                    help="dit: extra loss weight on the object and the positions next to it (0: plain MSE); "
                         "circle and square differ there in a few blocks")
    ap.add_argument("--init", help="dit: start the transformer from another work folder (INIT/dit/transformer) or "
                                   "a model folder (INIT/transformer, e.g. models/t2v-tiny)")
    a = ap.parse_args()
    if a.object_weight < 0:
        ap.error(f"--object-weight {a.object_weight}: must be 0 (plain MSE) or positive")
    os.makedirs(a.work, exist_ok=True)
    # `all` leaves out the decoder stage, which runs alongside `dit`
    stages = ["tokenizer", "vae_linear", "latents", "dit", "export"] if a.stage == "all" else [a.stage]
    for s in stages:
        t = time.time()
        if s == "tokenizer":
            stage_tokenizer(a.work)
        elif s == "vae":
            stage_vae(a.work, a.vae_minutes)
        elif s == "vae_linear":
            from diffusers import AutoencoderKLWan
            import linear_vae
            vae = linear_vae.build(AutoencoderKLWan(**VAE_CFG))
            shutil.rmtree(os.path.join(a.work, "vae"), ignore_errors=True)
            vae.save_pretrained(os.path.join(a.work, "vae"), safe_serialization=True)
        elif s == "vae2":
            stage_vae(a.work, a.vae2_minutes, resume=True)
        elif s == "latents":
            stage_latents(a.work, a.clips)
        elif s == "dit":
            stage_dit(a.work, a.dit_minutes, batch=a.batch, lr=a.lr, resume=a.resume, te_kind=a.te, init=a.init,
                      bf16=not a.fp32, train_shift=a.train_shift, object_weight=a.object_weight)
        elif s == "decoder":
            stage_decoder(a.work, a.decoder_minutes)
        else:
            stage_export(a.work, a.out)
        log_line(os.path.join(a.work, "stages.jsonl"), stage=s, seconds=time.time() - t,
                 threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
