#!/usr/bin/env python3
"""Writes the LoRA goldens: tiny LoRA files in the three key conventions t2v
reads (diffusers/PEFT, original Wan / ComfyUI / LightX2V, kohya), the weights of
the tiny test DiT (tests/data/diffusion/tiny_dit) after merging them as the
upstream loaders do, and end-to-end frames of the tiny pipeline
(tests/data/pipeline/tiny_wan, same transformer shapes) with LoRAs and with the
step-distilled sampler.

    python3 tools/golden/gen_lora_goldens.py [--out tests/data/lora] [--lightx2v PATH/TO/LightX2V]

References, per convention (every LoRA tensor read in its stored dtype and
merged in fp32, as each upstream does):
  diffusers  diffusers 0.42 + PEFT 0.21: files without alpha through the public path
             (WanPipeline.lora_state_dict -> load_lora_into_transformer ->
             fuse_lora(lora_scale=strength)); files with `<module>.alpha` (which
             diffusers' Wan loader does not read) through PEFT itself:
             LoraConfig(rank_pattern, alpha_pattern = the file's alphas,
             lora_bias for PEFT's `lora_B.bias`) -> add_adapter ->
             set_peft_model_state_dict -> fuse_lora. Cross-checked against
             ComfyUI's merge (below) on the same file with its module names
             renamed to the original ones (all but PEFT's lora_B.bias).
  original   ComfyUI's semantics (comfy/lora.py load_lora + model_lora_keys_unet,
             comfy/weight_adapter/lora.py / comfy.lora.calculate_weight):
             W += strength * (alpha / rank) * up @ down, W += strength * diff,
             b += strength * diff_b, patches in order on an fp32 copy. ComfyUI
             is not pip-installable, so those functions are restated below.
             Cross-checked against diffusers' own converter
             (_convert_non_diffusers_wan_lora_to_diffusers) + PEFT on the block
             keys (it drops norm diffs and block `.diff` weights, and refuses
             alphas outside the blocks), fed the stored values as F32 (it scales
             by alpha in the file's dtype, rounding F16/BF16 first).
  kohya      ComfyUI's semantics (the `lora_unet_` + '.'->'_' key map), cross-
             checked against diffusers' musubi converter + PEFT on the blocks.
  lightx2v   `.diff_m` (modulation) and friends: LightX2V's LoRALoader.apply_lora
             (lightx2v/utils/lora_loader.py), restated; with --lightx2v the
             upstream file is imported (loguru stubbed) and must agree exactly.
Stacking: the deltas of several LoRAs add up (ComfyUI applies the patches of
every LoRA in order to one fp32 weight).

End to end: diffusers' WanPipeline on tiny_wan with the merged weights loaded
into its transformer (the official diffusers pipeline with the merged weights),
noise injected; the distilled runs swap in a scheduler object that is LightX2V's
WanStepDistillScheduler restated (gen_distill_goldens.Restated) behind the
interface WanPipeline calls, with guidance_scale 1 (one forward per step).

Outputs under --out:
  <convention>[_variant].safetensors   the LoRA files (F32, F16, BF16; with and without alpha)
  other_model.safetensors              a LoRA for a wider model (dim 64): must be refused
  merged.safetensors                   per case `<case>/<canonical key>`: the merged F32 weight of
                                       every key the case changes (all other keys stay as they are)
  e2e.safetensors                      `noise` and per case `<case>.frames` [F, H, W, 3] in [0, 1]
  cases.json                           the cases (files, strengths, reference, cross-check numbers),
                                       the e2e settings, and the library versions
Every file carries tools/provenance.py's generator / versions / seed (safetensors
__metadata__, the JSON's "provenance").
"""
import argparse
import importlib.util
import json
import os
import sys
import types

import numpy as np
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import provenance  # noqa: E402  (tools/provenance.py)
from gen_dit_goldens import diffusers_name  # noqa: E402  (the one rename table, Python side)
from gen_distill_goldens import Restated  # noqa: E402

import diffusers  # noqa: E402
from diffusers import WanPipeline, WanTransformer3DModel  # noqa: E402
from diffusers.loaders.lora_conversion_utils import (  # noqa: E402
    _convert_musubi_wan_lora_to_diffusers,
    _convert_non_diffusers_wan_lora_to_diffusers,
)
from peft import LoraConfig  # noqa: E402
from peft.utils import set_peft_model_state_dict  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TINY = os.path.join(ROOT, "tests", "data", "diffusion", "tiny_dit")
PIPE = os.path.join(ROOT, "tests", "data", "pipeline")
RANK = 4
SEED = 2024        # the LoRA tensors
NOISE_SEED = 7     # the e2e starting noise
LIBS = ("torch", "diffusers", "peft", "safetensors")

# e2e settings: the pipeline golden's prompt and size, 5 frames (2 latent frames).
PROMPT = "a red ball rolling to the left on a white background"
NEGATIVE = "blurry, static, low quality"
WIDTH, HEIGHT, FRAMES = 48, 32, 5


# ---- the LoRA files ----------------------------------------------------------------------
def pair(gen, out, inn, rank=RANK):
    down = torch.randn(rank, inn, generator=gen) / inn ** 0.5
    up = torch.randn(out, rank, generator=gen) * (0.6 / rank ** 0.5)
    return down, up


def alpha_of(gen):
    return float(torch.randint(2, 13, (1,), generator=gen).item())  # 2..12, exact in every dtype


def block_modules(block_ids):
    out = []
    for i in block_ids:
        for a in ("self_attn", "cross_attn"):
            out += [f"blocks.{i}.{a}.{p}" for p in "qkvo"]
        out += [f"blocks.{i}.ffn.0", f"blocks.{i}.ffn.2"]
    return out


NON_BLOCK = ["text_embedding.0", "text_embedding.2", "time_embedding.2", "time_projection.1", "head.head"]


def shape_of(base, module):
    return base[module + ".weight"].shape


def original_lora(base, gen, block_ids, naming, prefix="diffusion_model.", alpha=True, diffs=True):
    """ComfyUI / LightX2V style: pairs (with alpha), diff, diff_b, norm diffs, non-block modules."""
    down_name, up_name = naming
    num_layers = 1 + max(int(k.split(".")[1]) for k in base if k.startswith("blocks."))
    sd = {}
    targets = block_modules(block_ids) + ["text_embedding.0", "time_embedding.2", "time_projection.1", "head.head"]
    if diffs:  # blocks.1.self_attn.o gets a full `.diff` instead (ComfyUI keeps only one patch per weight)
        targets.remove("blocks.1.self_attn.o")
    for m in targets:
        out, inn = shape_of(base, m)
        d, u = pair(gen, out, inn)
        sd[f"{prefix}{m}.{down_name}.weight"] = d
        sd[f"{prefix}{m}.{up_name}.weight"] = u
        if alpha:
            sd[f"{prefix}{m}.alpha"] = torch.tensor(alpha_of(gen))
    if diffs:
        for m in ["blocks.0.self_attn.q", "blocks.1.ffn.2", "text_embedding.0", "time_projection.1", "head.head"]:
            sd[f"{prefix}{m}.diff_b"] = 0.05 * torch.randn(base[m + ".bias"].shape, generator=gen)
        # Full weight deltas: a block Linear and the patch embedding (a Conv3d, 5-D).
        sd[f"{prefix}blocks.1.self_attn.o.diff"] = 0.02 * torch.randn(base["blocks.1.self_attn.o.weight"].shape,
                                                                       generator=gen)
        sd[f"{prefix}patch_embedding.diff"] = 0.02 * torch.randn(base["patch_embedding.weight"].shape, generator=gen)
        # Norm deltas as LightX2V ships them (zeros), and one that is not zero.
        for i in range(num_layers):
            sd[f"{prefix}blocks.{i}.norm3.diff"] = torch.zeros(base[f"blocks.{i}.norm3.weight"].shape)
            sd[f"{prefix}blocks.{i}.norm3.diff_b"] = torch.zeros(base[f"blocks.{i}.norm3.bias"].shape)
            sd[f"{prefix}blocks.{i}.self_attn.norm_q.diff"] = torch.zeros(base[f"blocks.{i}.self_attn.norm_q.weight"].shape)
        sd[f"{prefix}blocks.1.cross_attn.norm_k.diff"] = 0.1 * torch.randn(
            base["blocks.1.cross_attn.norm_k.weight"].shape, generator=gen)
        # The modulation of a block, Comfy-style (`<parameter>.diff`).
        sd[f"{prefix}blocks.0.modulation.diff"] = 0.05 * torch.randn(base["blocks.0.modulation"].shape, generator=gen)
    return sd


def kohya_lora(base, gen, block_ids, alpha=True, non_block=True):
    sd = {}
    targets = block_modules(block_ids) + (["text_embedding.2", "time_projection.1", "head.head"] if non_block else [])
    for m in targets:
        out, inn = shape_of(base, m)
        d, u = pair(gen, out, inn)
        k = "lora_unet_" + m.replace(".", "_")
        sd[k + ".lora_down.weight"] = d
        sd[k + ".lora_up.weight"] = u
        if alpha:
            sd[k + ".alpha"] = torch.tensor(alpha_of(gen))
    return sd


def diffusers_lora(base, gen, block_ids, prefix="transformer.", alpha=False, bias=True):
    """PEFT names as diffusers' Wan converter writes them (lora_A / lora_B, PEFT's lora_B.bias)."""
    sd = {}
    targets = [m for m in block_modules(block_ids) if ".cross_attn.o" not in m] + NON_BLOCK
    for m in targets:
        out, inn = shape_of(base, m)
        d, u = pair(gen, out, inn)
        dm = diffusers_name(m + ".weight")[: -len(".weight")]
        sd[f"{prefix}{dm}.lora_A.weight"] = d
        sd[f"{prefix}{dm}.lora_B.weight"] = u
        if alpha:
            sd[f"{prefix}{dm}.alpha"] = torch.tensor(alpha_of(gen))
    if bias:  # PEFT's lora_bias: every lora_B of an adapter has one
        for k in [k for k in sd if k.endswith(".lora_B.weight")]:
            sd[k[: -len(".weight")] + ".bias"] = 0.05 * torch.randn(sd[k].shape[0], generator=gen)
    return sd


def lightx2v_lora(base, gen, num_layers):
    """LightX2V's own full-delta keys: diff, diff_b, and diff_m (a block's modulation)."""
    sd = {}
    p = "diffusion_model."
    for i in range(num_layers):
        sd[f"{p}blocks.{i}.diff_m"] = 0.05 * torch.randn(base[f"blocks.{i}.modulation"].shape, generator=gen)
    for m in ["blocks.0.cross_attn.v", "blocks.1.ffn.0", "time_embedding.0"]:
        sd[f"{p}{m}.diff"] = 0.02 * torch.randn(base[m + ".weight"].shape, generator=gen)
        sd[f"{p}{m}.diff_b"] = 0.05 * torch.randn(base[m + ".bias"].shape, generator=gen)
    out, inn = shape_of(base, "blocks.0.self_attn.k")
    d, u = pair(gen, out, inn)
    sd[f"{p}blocks.0.self_attn.k.lora_down.weight"] = d
    sd[f"{p}blocks.0.self_attn.k.lora_up.weight"] = u
    sd[f"{p}blocks.0.self_attn.k.alpha"] = torch.tensor(8.0)
    return sd


def cast(sd, dtype, alpha_1d=False):
    out = {}
    for k, v in sd.items():
        v = v.to(dtype).contiguous()
        if k.endswith(".alpha") and alpha_1d:
            v = v.reshape(1)
        out[k] = v
    return out


# ---- ComfyUI semantics (comfy/lora.py, comfy/weight_adapter/lora.py), restated -------------
def comfy_key_map(model_keys):
    """model_lora_keys_unet for a model whose state dict is `diffusion_model.<canonical>`."""
    key_map = {}
    for k in model_keys:
        if k.endswith(".weight"):
            key_lora = k[len("diffusion_model."):-len(".weight")].replace(".", "_")
            key_map["lora_unet_{}".format(key_lora)] = k
            key_map["{}".format(k[:-len(".weight")])] = k  # generic format
        else:
            key_map["{}".format(k)] = k  # generic format for parameters without .weight
    return key_map


def comfy_load_lora(lora, to_load):
    patch_dict, loaded = {}, set()
    for x in to_load:
        alpha = None
        if f"{x}.alpha" in lora:
            alpha = lora[f"{x}.alpha"].item()
            loaded.add(f"{x}.alpha")
        A_name = None
        for up, down in [(f"{x}.lora_up.weight", f"{x}.lora_down.weight"), (f"{x}_lora.up.weight", f"{x}_lora.down.weight"),
                         (f"{x}.lora_B.weight", f"{x}.lora_A.weight"), (f"{x}.lora.up.weight", f"{x}.lora.down.weight")]:
            if up in lora:
                A_name, B_name = up, down
                break
        if A_name is not None:
            patch_dict[to_load[x]] = ("lora", (lora[A_name], lora[B_name], alpha))
            loaded.update([A_name, B_name])
        if f"{x}.diff" in lora:
            patch_dict[to_load[x]] = ("diff", (lora[f"{x}.diff"],))
            loaded.add(f"{x}.diff")
        if f"{x}.diff_b" in lora:
            patch_dict["{}.bias".format(to_load[x][: -len(".weight")])] = ("diff", (lora[f"{x}.diff_b"],))
            loaded.add(f"{x}.diff_b")
    not_loaded = [k for k in lora if k not in loaded]
    return patch_dict, not_loaded


def comfy_calculate_weight(patches, weight):
    for strength, (kind, v) in patches:
        if kind == "diff":
            weight += strength * v[0].to(weight.dtype)
        else:
            mat1, mat2 = v[0].to(torch.float32), v[1].to(torch.float32)
            alpha = v[2] / mat2.shape[0] if v[2] is not None else 1.0
            lora_diff = torch.mm(mat1.flatten(start_dim=1), mat2.flatten(start_dim=1)).reshape(weight.shape)
            weight += ((strength * alpha) * lora_diff).type(weight.dtype)
    return weight


def comfy_merge(base, loras):
    """base: canonical F32 dict; loras: [(state dict, strength)]. Returns the changed keys, merged."""
    model_keys = ["diffusion_model." + k for k in base]
    key_map = comfy_key_map(model_keys)
    patches = {}
    for sd, strength in loras:
        pd, not_loaded = comfy_load_lora(sd, key_map)
        not_loaded = [k for k in not_loaded if not (k.endswith((".diff", ".diff_b")) and "norm" in k)]
        assert not not_loaded, f"ComfyUI would not load: {not_loaded[:5]}"
        for k, p in pd.items():
            patches.setdefault(k, []).append((strength, p))
    out = {}
    for k, ps in patches.items():
        ck = k[len("diffusion_model."):]
        out[ck] = comfy_calculate_weight(ps, base[ck].clone().to(torch.float32))
    return out


# ---- LightX2V's LoRALoader (lightx2v/utils/lora_loader.py), restated --------------------------
def lightx2v_merge(base, sd, strength):
    """apply_lora(weight_dict, lora_weights, alpha=None, strength): pairs W += up@down * (alpha/rank or 1)
    * strength; `.diff` -> .weight, `.diff_b` -> .bias, `.diff_m` -> .modulation: W += diff * strength; prefixes
    `diffusion_model.` / `model.` / `unet.` removed."""
    def model_key(base_key, suffix):
        for p in ("diffusion_model.", "model.", "unet."):
            if base_key.startswith(p):
                base_key = base_key[len(p):]
                break
        return base_key + suffix
    w = {k: v.clone() for k, v in base.items()}
    changed = set()
    alphas = {k[:-6]: v.item() for k, v in sd.items() if k.endswith(".alpha")}
    for k in sd:
        if k.endswith(".lora_up.weight"):
            b = k[: -len(".lora_up.weight")]
            mk = model_key(b, ".weight")
            up, down = sd[k].float(), sd[b + ".lora_down.weight"].float()
            scale = alphas[b] / down.shape[0] if alphas.get(b) else 1
            w[mk] += torch.mm(up, down) * scale * float(strength)
            changed.add(mk)
    for k in sd:
        for check, add in ((".diff", ".weight"), (".diff_b", ".bias"), (".diff_m", ".modulation")):
            if k.endswith(check):
                mk = model_key(k[: -len(check)], add)
                w[mk] += sd[k].float() * float(strength)
                changed.add(mk)
                break
    return {k: w[k] for k in changed}


def lightx2v_upstream_merge(root, base, sd, strength):
    loguru = types.ModuleType("loguru")
    loguru.logger = types.SimpleNamespace(**{n: (lambda *a, **k: None) for n in ("debug", "info", "warning", "error")})
    sys.modules["loguru"] = loguru
    spec = importlib.util.spec_from_file_location("lightx2v_lora_loader", os.path.join(root, "lightx2v/utils/lora_loader.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    w = {k: v.clone() for k, v in base.items()}
    mod.LoRALoader().apply_lora(w, {k: v.clone() for k, v in sd.items()}, alpha=None, strength=strength)
    return w


# ---- diffusers + PEFT ---------------------------------------------------------------------------
def canonical_of(base):
    return {diffusers_name(k): k for k in base}


def load_transformer():
    return WanTransformer3DModel.from_pretrained(os.path.join(TINY, "diffusers"), torch_dtype=torch.float32)


def fused_canonical(tr, base):
    """The transformer's weights that the fuse changed, under canonical names."""
    to_canon = canonical_of(base)
    out = {}
    for k, v in tr.state_dict().items():
        if "lora_" in k:
            continue
        ck = to_canon[k.replace(".base_layer", "")]
        if not torch.equal(v, base[ck]):
            out[ck] = v.detach().clone()
    return out


def comfy_on_renamed(base, sd, strength):
    """ComfyUI's merge of a diffusers-named file, its module names renamed to the original ones
    (PEFT's lora_B.bias has no ComfyUI counterpart and is left out)."""
    to_canon = canonical_of(base)
    out = {}
    for k, v in sd.items():
        if k.endswith(".lora_B.bias"):
            continue
        name = k[len("transformer."):] if k.startswith("transformer.") else k
        for suffix in (".lora_A.weight", ".lora_B.weight", ".alpha"):
            if name.endswith(suffix):
                module = to_canon[name[: -len(suffix)] + ".weight"][: -len(".weight")]
                out["diffusion_model." + module + suffix] = v
    return comfy_merge(base, [(out, strength)])


def peft_merge_public(sd, strength, base):
    """diffusers' Wan loader: lora_state_dict (conversions included) -> load_lora_into_transformer -> fuse."""
    tr = load_transformer()
    state = WanPipeline.lora_state_dict(sd)
    WanPipeline.load_lora_into_transformer(state, transformer=tr, adapter_name="x")
    tr.fuse_lora(lora_scale=strength, adapter_names=["x"])
    return fused_canonical(tr, base)


def peft_merge_alpha(sd, strength, base):
    """A diffusers-named file with `<module>.alpha` keys: PEFT with those alphas as lora_alpha."""
    tr = load_transformer()
    strip = lambda k: k[len("transformer."):] if k.startswith("transformer.") else k  # noqa: E731
    modules = sorted({strip(k)[: -len(".lora_A.weight")] for k in sd if k.endswith(".lora_A.weight")})
    rank_pattern = {m: sd[("transformer." if "transformer." + m + ".lora_A.weight" in sd else "") + m + ".lora_A.weight"].shape[0]
                    for m in modules}
    alpha_pattern = {strip(k)[: -len(".alpha")]: v.item() for k, v in sd.items() if k.endswith(".alpha")}
    config = LoraConfig(r=RANK, lora_alpha=RANK, target_modules=modules, rank_pattern=rank_pattern,
                        alpha_pattern=alpha_pattern, lora_bias=any(k.endswith(".lora_B.bias") for k in sd))
    tr.add_adapter(config, adapter_name="x")
    weights = {strip(k): v.to(torch.float32) for k, v in sd.items() if not k.endswith(".alpha")}
    res = set_peft_model_state_dict(tr, weights, adapter_name="x")
    assert not res.unexpected_keys, res.unexpected_keys
    tr.fuse_lora(lora_scale=strength, adapter_names=["x"])
    return fused_canonical(tr, base)


def rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30))


def crosscheck(ref, other, base, what):
    """Max relative difference over the keys `other` changed; every such key must be one `ref` changed."""
    worst = 0.0
    for k, v in other.items():
        if torch.equal(v, base[k]):
            continue
        assert k in ref, f"{what}: {k} changed by the cross-check only"
        worst = max(worst, rel(v, ref[k]))
    assert worst < 1e-6, f"{what}: {worst}"
    return worst


# ---- end to end ------------------------------------------------------------------------------------
class DistillScheduler:
    """LightX2V's WanStepDistillScheduler (restated in gen_distill_goldens.Restated) behind the calls
    WanPipeline makes: set_timesteps, timesteps, sigmas, set_begin_index, step."""
    order = 1

    def __init__(self, steps, shift):
        self.r = Restated(steps, shift)
        self.config = types.SimpleNamespace(num_train_timesteps=1000)

    def set_timesteps(self, n, device=None):
        assert n == self.r.infer_steps
        self.r.set_denoising_timesteps()
        self.timesteps, self.sigmas, self.i = self.r.timesteps, self.r.sigmas, 0

    def set_begin_index(self, i):
        self.i = i

    def step(self, noise_pred, t, latents, return_dict=False):
        out = self.r.step_post(self.i, latents, noise_pred)
        self.i += 1
        return (out,)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "lora"))
    ap.add_argument("--lightx2v", help="a LightX2V checkout: also run its LoRALoader and compare")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    diffusers.utils.logging.set_verbosity_error()  # PEFT's zero lora_B biases of modules without diff_b
    base = load_file(os.path.join(TINY, "original.safetensors"))
    layers = 1 + max(int(k.split(".")[1]) for k in base if k.startswith("blocks."))
    gen = torch.Generator().manual_seed(SEED)
    prov = provenance.metadata(__file__, seed=f"{SEED} (LoRA tensors), {NOISE_SEED} (e2e noise)", libs=LIBS)

    # -- files: every block module in the main F32 files; the dtype / alpha variants
    # change one block and the modules outside the blocks (smaller goldens).
    every, one = list(range(layers)), [1]
    files = {}
    files["original"] = original_lora(base, gen, every, ("lora_down", "lora_up"))
    o = original_lora(base, gen, one, ("lora_down", "lora_up"))
    files["original_f16"] = cast(o, torch.float16, alpha_1d=True)
    files["original_bf16"] = cast({k.replace("lora_down", "lora_A").replace("lora_up", "lora_B"): v for k, v in o.items()},
                                  torch.bfloat16)
    files["original_noalpha"] = original_lora(base, gen, one, ("lora_A", "lora_B"), alpha=False)
    files["kohya"] = kohya_lora(base, gen, every)
    k = kohya_lora(base, gen, [0])  # diffusers' musubi converter counts blocks from 0
    files["kohya_f16"] = cast(k, torch.float16, alpha_1d=True)
    files["kohya_bf16"] = cast(k, torch.bfloat16)
    files["kohya_noalpha"] = kohya_lora(base, gen, [0], alpha=False)
    files["diffusers"] = diffusers_lora(base, gen, every)
    d = diffusers_lora(base, gen, one)
    files["diffusers_f16"] = cast({k[len("transformer."):]: v for k, v in d.items()}, torch.float16)
    files["diffusers_bf16"] = cast(d, torch.bfloat16)
    files["diffusers_alpha"] = diffusers_lora(base, gen, one, prefix="", alpha=True, bias=True)
    files["lightx2v"] = lightx2v_lora(base, gen, layers)
    for name, sd in files.items():
        save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(args.out, name + ".safetensors"),
                  metadata=prov)
    # A LoRA for a wider model (dim 64 instead of 48): shapes do not fit.
    wide = {}
    for m in ["blocks.0.self_attn.q", "blocks.0.self_attn.k"]:
        dd, uu = pair(gen, 64, 64)
        wide[f"diffusion_model.{m}.lora_down.weight"], wide[f"diffusion_model.{m}.lora_up.weight"] = dd, uu
    save_file(wide, os.path.join(args.out, "other_model.safetensors"), metadata=prov)

    # -- merged weights
    def fresh(name):  # diffusers' converters scale tensors in place: every use gets its own copy
        return {k: v.clone() for k, v in files[name].items()}

    def reference(name, strength):
        sd = fresh(name)
        if name.startswith("diffusers"):
            direct = peft_merge_alpha(fresh(name), strength, base)
            checks = {"comfyui_renamed": crosscheck(direct, comfy_on_renamed(base, fresh(name), strength), base, name)}
            if any(k.endswith(".alpha") for k in sd) or not all(k.startswith("transformer.") for k in sd):
                # diffusers' Wan loader reads neither alphas nor names without `transformer.`: PEFT itself.
                return "peft (LoraConfig alpha_pattern, lora_bias)", direct, checks
            public = peft_merge_public(fresh(name), strength, base)
            checks["peft_direct"] = crosscheck(public, direct, base, name)
            return "diffusers+peft (WanPipeline lora loader)", public, checks
        if name == "lightx2v":
            ref = lightx2v_merge(base, sd, strength)
            checks = {}
            if args.lightx2v:
                up = lightx2v_upstream_merge(args.lightx2v, base, sd, strength)
                checks["lightx2v_upstream"] = crosscheck(ref, {k: up[k] for k in base}, base, "lightx2v upstream")
            return "lightx2v LoRALoader (restated)", ref, checks
        ref = comfy_merge(base, [(sd, strength)])
        checks = {}
        if name.startswith("original"):
            # diffusers' converter reads alphas of block modules only (it raises on the others): the blocks.
            # Given in F32 (the exact stored values): the converter multiplies alpha into the
            # tensors in the file's dtype, which rounds F16/BF16 before the fp32 merge.
            blocks = {k: v.float().clone() for k, v in sd.items() if k.startswith("diffusion_model.blocks.")}
            checks["diffusers_converter+peft"] = crosscheck(ref, peft_merge_public(blocks, strength, base), base, name)
        elif name.startswith("kohya") and "noalpha" not in name:
            blocks_only = {k: v.float().clone() for k, v in sd.items() if k.startswith("lora_unet_blocks_")}
            checks["diffusers_musubi_converter+peft"] = crosscheck(ref, peft_merge_public(blocks_only, strength, base),
                                                                   base, name)
        return "comfyui (restated)", ref, checks

    cases = []
    merged = {}

    def add_case(case, loras, ref_name, ref, checks):
        for key, v in ref.items():
            merged[f"{case}/{key}"] = v.to(torch.float32).contiguous()
        cases.append({"name": case, "loras": [{"file": f + ".safetensors", "strength": s} for f, s in loras],
                      "reference": ref_name, "crosscheck_max_rel": checks, "changed_keys": len(ref)})

    for name in files:
        for s in [1.0]:  # strength 0.6 is checked end to end
            ref_name, ref, checks = reference(name, s)
            add_case(f"{name}@{s:g}", [(name, s)], ref_name, ref, checks)
    # Two LoRAs stacked (ComfyUI: both patch lists on one fp32 weight, in order).
    stack = [("original", 1.0), ("kohya_f16", 0.6)]
    add_case("stack", stack, "comfyui (restated)", comfy_merge(base, [(fresh(n), s) for n, s in stack]), {})
    save_file(merged, os.path.join(args.out, "merged.safetensors"), metadata=prov)

    # -- end to end on the tiny pipeline
    pipe = WanPipeline.from_pretrained(os.path.join(PIPE, "tiny_wan"), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    unipc = pipe.scheduler
    tr_base = {k: v.clone() for k, v in pipe.transformer.state_dict().items()}
    wan_base = {k: tr_base[diffusers_name(k)] for k in base}  # the tiny_wan transformer, canonical names
    noise = torch.randn((1, 16, (FRAMES - 1) // 4 + 1, HEIGHT // 8, WIDTH // 8),
                        generator=torch.Generator().manual_seed(NOISE_SEED))
    e2e = {"noise": noise.contiguous()}
    e2e_cases = []

    def render(case, loras, sampler):
        if loras and loras[0][0].startswith("diffusers"):
            assert len(loras) == 1
            ref = diffusers_on(wan_base, fresh(loras[0][0]), loras[0][1])
        else:
            ref = comfy_merge(wan_base, [(fresh(n), s) for n, s in loras])
        sd = dict(tr_base)
        for k, v in ref.items():
            sd[diffusers_name(k)] = v
        pipe.transformer.load_state_dict(sd)
        if sampler["sampler"] == "distill":
            object.__setattr__(pipe, "scheduler", DistillScheduler(sampler["timesteps"], sampler["shift"]))
            steps, cfg = len(sampler["timesteps"]), 1.0
        else:
            object.__setattr__(pipe, "scheduler", unipc)
            steps, cfg = sampler["steps"], sampler["cfg"]
        with torch.no_grad():
            frames = pipe(prompt=PROMPT, negative_prompt=NEGATIVE, height=HEIGHT, width=WIDTH, num_frames=FRAMES,
                          num_inference_steps=steps, guidance_scale=cfg, latents=noise.clone(), output_type="np",
                          max_sequence_length=512).frames[0]
        e2e[f"{case}.frames"] = torch.from_numpy(np.ascontiguousarray(frames)).float()
        e2e_cases.append({"name": case, "loras": [{"file": n + ".safetensors", "strength": s} for n, s in loras],
                          **sampler})

    def diffusers_on(wan_canonical, sd, strength):
        tr = WanTransformer3DModel.from_pretrained(os.path.join(PIPE, "tiny_wan", "transformer"), torch_dtype=torch.float32)
        if any(k.endswith(".alpha") for k in sd):
            raise ValueError("e2e uses the alpha-free diffusers file")
        state = WanPipeline.lora_state_dict(sd)
        WanPipeline.load_lora_into_transformer(state, transformer=tr, adapter_name="x")
        tr.fuse_lora(lora_scale=strength, adapter_names=["x"])
        return fused_canonical(tr, wan_canonical)

    lora_sampler = {"sampler": "unipc", "schedule": "diffusers", "steps": 4, "cfg": 5.0, "shift": 3.0}
    for conv in ("diffusers", "original", "kohya"):
        for s in (1.0, 0.6):
            render(f"{conv}@{s:g}", [(conv, s)], lora_sampler)
    render("stack", stack, lora_sampler)
    render("original_f16", [("original_f16", 1.0)], lora_sampler)
    render("kohya_bf16", [("kohya_bf16", 1.0)], lora_sampler)
    render("distill4", [("original", 1.0)], {"sampler": "distill", "timesteps": [1000, 750, 500, 250], "shift": 5.0})
    render("distill3", [], {"sampler": "distill", "timesteps": [1000, 667, 333], "shift": 3.0})
    save_file(e2e, os.path.join(args.out, "e2e.safetensors"), metadata=prov)

    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump({"provenance": provenance.json_field(__file__, seed=prov["seed"], libs=LIBS),
                   "rank": RANK, "merged": cases,
                   "e2e": {"prompt": PROMPT, "negative_prompt": NEGATIVE, "width": WIDTH, "height": HEIGHT,
                           "frames": FRAMES, "cases": e2e_cases},
                   "lightx2v_upstream_checked": bool(args.lightx2v)}, f, indent=1)
    for c in cases:
        print(f"{c['name']:<24} {c['changed_keys']:3d} keys  {c['reference']:<44} {c['crosscheck_max_rel']}")
    print("e2e cases:", [c["name"] for c in e2e_cases])


if __name__ == "__main__":
    main()
