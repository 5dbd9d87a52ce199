#!/usr/bin/env python3
"""Writes tiny Wan DiT and umT5 GGUFs the way ComfyUI-GGUF ships them, for the
end-to-end GGUF tests (tests/diffusion/test_dit_gguf.cpp, tests/app/gguf_test.cpp).

ComfyUI-GGUF's convention (city96/ComfyUI-GGUF tools/convert.py, fix_5d_tensors.py
and the patched llama-quantize of tools/lcpp.patch), reproduced here:
  - general.architecture "wan", no hyper-parameters; original Wan tensor names;
    ne stored reversed (ggml order), as the gguf package writes them.
  - convert.py: F16 (BF16 for a bf16 source), but F32 for every 1-D tensor, every
    tensor of <= 1024 values and `*.modulation` (3-D [1, 6, dim]); the 5-D
    patch_embedding.weight is set aside and fix_5d_tensors.py adds it back as a
    5-D F32 tensor right after patch_embedding.bias.
  - llama-quantize: only 2-D `*.weight` tensors outside modulation, patch_embedding,
    text_embedding, time_embedding, time_projection, img_emb and head are
    quantized; mixes: Q4_K_M puts `.v.weight` and `ffn.2` in Q6_K, Q4_0 puts ffn.2
    in Q4_1, Q5_0 ffn.2 in Q5_1; a row that is not whole blocks falls back to F16.

Files (tests/data/diffusion/gguf/, tests/data/text_encoder/gguf/):
  wan_tiny48_f16.gguf, wan_tiny48_q8_0.gguf
      the tiny test DiT (tests/data/diffusion/tiny_dit/original.safetensors, dim 48)
      converted to F16, and quantized to Q8_0 (only ffn.2 has whole 32-value rows;
      the rest falls back to F16 as llama-quantize does)
  wan_tiny256_mixed.gguf
      a random DiT with dim 256 (heads = dim / 128 = 2), ffn 256, text_dim 32,
      2 layers, so every K-quant fits: block 0 is the Q4_K_M mix (Q4_K, v and ffn.2
      in Q6_K); block 1 holds Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, F16
      and BF16; text_embedding in BF16 (a bf16 source), time and head in F16
  umt5_tiny_q8_0.gguf
      the pipeline test's umT5 (tests/data/pipeline/tiny_wan/text_encoder) with
      llama.cpp's T5 names (`enc.blk.N.attn_q.weight`, `token_embd.weight`),
      architecture "t5encoder", Q8_0 where rows are whole blocks (else F16), the
      norms and relative-position tables F32
Each <file>.json holds the provenance and, per tensor, its type, shape (the
umT5's also its transformers name, `source_name`) and the sha256 of what gguf.quants.dequantize (ggml's reference, the `gguf` package)
makes of it as float32 little-endian bytes: the tests rebuild the dequantized
safetensors from t2v's dequantization and check it against these hashes, so
the repository does not carry fp32 copies. The package cannot quantize the
K-quants; their blocks are random bytes with sane fp16 scales, sized so the
weights have the spread of N(0, 1/fan_in).

Usage: /work/venv/bin/python tools/golden/gen_gguf_models.py   (from the repository root)
"""
import hashlib
import importlib.metadata
import json
import os
import sys

import gguf
import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import provenance  # noqa: E402  (tools/provenance.py)

Q = gguf.GGMLQuantizationType
SEED = 1234
DIT_OUT = "tests/data/diffusion/gguf"
T5_OUT = "tests/data/text_encoder/gguf"
TINY_DIT = "tests/data/diffusion/tiny_dit/original.safetensors"
TINY_T5 = "tests/data/pipeline/tiny_wan/text_encoder/model.safetensors"

# docs/conventions.md §4: the GGUF metadata keys provenance.generator,
# provenance.versions (a JSON object, as a string) and provenance.seed; the JSON
# files a top-level "provenance" object. The gguf package has no __version__.
VERSIONS = dict(provenance.versions("numpy"), gguf=importlib.metadata.version("gguf"))
PROVENANCE = {
    "provenance.generator": provenance.generator_path(__file__),
    "provenance.versions": json.dumps(VERSIONS, sort_keys=True),
    "provenance.seed": str(SEED),
}
PROVENANCE_JSON = {"generator": provenance.generator_path(__file__), "versions": VERSIONS, "seed": str(SEED)}

KEEP_UNQUANTIZED = ("modulation", "patch_embedding.", "text_embedding.", "time_projection.", "time_embedding.",
                    "img_emb.", "head.")


# ---- ComfyUI-GGUF convert.py + fix_5d_tensors.py -------------------------------------------

def convert_type(key, arr, source_bf16=False):
    """The type convert.py gives a tensor of an fp32/bf16 source."""
    if arr.ndim == 1 or arr.size <= 1024 or ".modulation" in key or key == "modulation":
        return Q.F32
    return Q.BF16 if source_bf16 else Q.F16


def quantized_type(key, arr, ftype):
    """llama-quantize with lcpp.patch on top of convert.py's output; None keeps the type."""
    if not key.endswith(".weight") or arr.ndim != 2 or any(s in key for s in KEEP_UNQUANTIZED):
        return None
    t = ftype
    if ".v.weight" in key and ftype == "Q4_K_M":
        t = Q.Q6_K
    elif ".ffn.2.weight" in key:
        t = {"Q4_K_M": Q.Q6_K, "Q4_0": Q.Q4_1, "Q5_0": Q.Q5_1}.get(ftype, t)
    if isinstance(t, str):
        t = {"Q4_K_M": Q.Q4_K}[t]
    block, _ = gguf.GGML_QUANT_SIZES[t]
    return t if arr.shape[-1] % block == 0 else Q.F16  # lcpp.patch's fallback


# ---- encoding ----------------------------------------------------------------------------

K_SCALES = {  # fp16 field offsets, and the scale that gives values of spread ~1
    Q.Q2_K: ([80, 82], 1 / 10), Q.Q3_K: ([108], 1 / 32), Q.Q4_K: ([0, 2], 1 / 240), Q.Q5_K: ([0, 2], 1 / 480),
    Q.Q6_K: ([208], 1 / 1000),
}


def encode(rng, arr, qtype):
    """(stored array for GGUFWriter.add_tensor, raw_dtype) of `arr` in `qtype`."""
    if qtype == Q.F32:
        return arr.astype(np.float32), None
    if qtype == Q.F16:
        return arr.astype(np.float16), None
    if qtype in K_SCALES:
        # Random blocks with sane scales (the package only dequantizes K-quants).
        offsets, unit = K_SCALES[qtype]
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        rows, k = arr.shape
        n_blocks = rows * k // block
        blocks = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
        std = float(arr.std())
        for off in offsets:
            d = (rng.uniform(0.5, 1.5, n_blocks) * std * unit).astype(np.float16)
            blocks[:, off:off + 2] = d.view(np.uint8).reshape(n_blocks, 2)
        return blocks.reshape(rows, k // block * size), qtype
    return gguf.quants.quantize(arr.astype(np.float32), qtype), qtype


def dequantized(stored, raw_dtype):
    if raw_dtype is None:
        return stored.astype(np.float32)
    return gguf.quants.dequantize(stored, raw_dtype).astype(np.float32)


class Writer:
    def __init__(self, path, arch):
        self.path = path
        self.w = gguf.GGUFWriter(path, arch=arch)
        self.w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for k, v in PROVENANCE.items():
            self.w.add_string(k, v)
        self.listing = {}

    def add(self, name, stored, raw_dtype, shape, source_name=None):
        if raw_dtype is None:
            self.w.add_tensor(name, stored)
            qname = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}[stored.dtype]
        else:
            self.w.add_tensor(name, stored, raw_dtype=raw_dtype)
            qname = raw_dtype.name
        deq = dequantized(stored, raw_dtype).reshape(shape)
        self.listing[name] = {"type": qname, "shape": list(shape),
                              "sha256": hashlib.sha256(np.ascontiguousarray(deq, dtype="<f4").tobytes()).hexdigest()}
        if source_name:
            self.listing[name]["source_name"] = source_name

    def close(self, source):
        self.w.write_header_to_file()
        self.w.write_kv_data_to_file()
        self.w.write_tensors_to_file()
        self.w.close()
        with open(self.path.replace(".gguf", ".json"), "w") as f:
            json.dump({"provenance": PROVENANCE_JSON, "source": source, "tensors": self.listing}, f, indent=1)
            f.write("\n")


def write_dit(path, sd, types, source):
    """sd: name -> fp32 array (original Wan names); types: name -> ggml type."""
    rng = np.random.default_rng(SEED + 7)
    w = Writer(path, "wan")
    five_d = {k: v for k, v in sd.items() if v.ndim > 4}
    for key, arr in sd.items():
        if arr.ndim > 4:
            continue  # convert.py sets it aside
        stored, raw = encode(rng, arr, types[key])
        w.add(key, stored, raw, arr.shape)
        k5 = key.replace(".bias", ".weight")
        if k5 in five_d:  # fix_5d_tensors.py: back in, after its bias, as 5-D F32
            w.add(k5, five_d.pop(k5).astype(np.float32), None, sd[k5].shape)
    assert not five_d
    w.close(source)


def tiny48():
    sd = load_file(TINY_DIT)
    base = {k: convert_type(k, v) for k, v in sd.items()}
    write_dit(os.path.join(DIT_OUT, "wan_tiny48_f16.gguf"), sd, base, TINY_DIT + " (convert.py: F16)")
    q8 = {k: quantized_type(k, v, Q.Q8_0) or base[k] for k, v in sd.items()}
    assert sum(t == Q.Q8_0 for t in q8.values()) == 2, "ffn.2 of both blocks"
    write_dit(os.path.join(DIT_OUT, "wan_tiny48_q8_0.gguf"), sd, q8, TINY_DIT + " (llama-quantize Q8_0)")


def tiny256():
    rng = np.random.default_rng(SEED)
    dim, ffn, text_dim, freq, c, layers = 256, 256, 32, 256, 16, 2
    sd = {}

    def mat(name, out, inp):
        sd[name + ".weight"] = (rng.standard_normal((out, inp)) / np.sqrt(inp)).astype(np.float32)
        sd[name + ".bias"] = (0.02 * rng.standard_normal(out)).astype(np.float32)

    sd["patch_embedding.weight"] = (rng.standard_normal((dim, c, 1, 2, 2)) / 8).astype(np.float32)
    sd["patch_embedding.bias"] = (0.02 * rng.standard_normal(dim)).astype(np.float32)
    mat("text_embedding.0", dim, text_dim)
    mat("text_embedding.2", dim, dim)
    mat("time_embedding.0", dim, freq)
    mat("time_embedding.2", dim, dim)
    mat("time_projection.1", 6 * dim, dim)
    for i in range(layers):
        b = f"blocks.{i}."
        sd[b + "modulation"] = (rng.standard_normal((1, 6, dim)) / 16).astype(np.float32)
        for a in ("self_attn", "cross_attn"):
            for p in ("q", "k", "v", "o"):
                mat(b + f"{a}.{p}", dim, dim)
            sd[b + f"{a}.norm_q.weight"] = (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32)
            sd[b + f"{a}.norm_k.weight"] = (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32)
        sd[b + "norm3.weight"] = (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32)
        sd[b + "norm3.bias"] = (0.02 * rng.standard_normal(dim)).astype(np.float32)
        mat(b + "ffn.0", ffn, dim)
        mat(b + "ffn.2", dim, ffn)
    sd["head.modulation"] = (rng.standard_normal((1, 2, dim)) / 16).astype(np.float32)
    mat("head.head", c * 4, dim)

    types = {k: convert_type(k, v, source_bf16=k.startswith("text_embedding")) for k, v in sd.items()}
    # Block 0: the Q4_K_M mix.
    for k, v in sd.items():
        if k.startswith("blocks.0."):
            types[k] = quantized_type(k, v, "Q4_K_M") or types[k]
    # Block 1: every other type once.
    mix = {"self_attn.q": Q.Q8_0, "self_attn.k": Q.Q4_0, "self_attn.v": Q.Q4_1, "self_attn.o": Q.Q5_0,
           "cross_attn.q": Q.Q5_1, "cross_attn.k": Q.Q2_K, "cross_attn.v": Q.Q3_K, "cross_attn.o": Q.Q5_K,
           "ffn.0": Q.F16, "ffn.2": Q.BF16}
    for p, t in mix.items():
        types[f"blocks.1.{p}.weight"] = t
    counts = {}
    for t in types.values():
        counts[t.name] = counts.get(t.name, 0) + 1
    assert all(counts.get(n, 0) > 0 for n in ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                                              "Q6_K", "F16", "BF16", "F32")), counts
    write_dit(os.path.join(DIT_OUT, "wan_tiny256_mixed.gguf"), sd, types,
              "random DiT dim 256, ffn 256, text_dim 32, 2 layers (block 0 Q4_K_M, block 1 mixed)")


# llama.cpp's T5 names (convert_hf_to_gguf.py T5EncoderModel; ComfyUI-GGUF's T5_SD_MAP reverses them).
T5_NAMES = [
    ("layer.0.layer_norm.weight", "attn_norm.weight"), ("layer.0.SelfAttention.q.weight", "attn_q.weight"),
    ("layer.0.SelfAttention.k.weight", "attn_k.weight"), ("layer.0.SelfAttention.v.weight", "attn_v.weight"),
    ("layer.0.SelfAttention.o.weight", "attn_o.weight"),
    ("layer.0.SelfAttention.relative_attention_bias.weight", "attn_rel_b.weight"),
    ("layer.1.layer_norm.weight", "ffn_norm.weight"), ("layer.1.DenseReluDense.wi_0.weight", "ffn_gate.weight"),
    ("layer.1.DenseReluDense.wi_1.weight", "ffn_up.weight"), ("layer.1.DenseReluDense.wo.weight", "ffn_down.weight"),
]


def t5_name(hf):
    if hf == "shared.weight":
        return "token_embd.weight"
    if hf == "encoder.final_layer_norm.weight":
        return "enc.output_norm.weight"
    _, _, i, rest = hf.split(".", 3)
    return f"enc.blk.{i}." + dict(T5_NAMES)[rest]


def tiny_t5():
    sd = load_file(TINY_T5)
    rng = np.random.default_rng(SEED + 3)
    w = Writer(os.path.join(T5_OUT, "umt5_tiny_q8_0.gguf"), "t5encoder")
    w.w.add_uint32("t5encoder.embedding_length", int(sd["shared.weight"].shape[1]))
    w.w.add_uint32("t5encoder.block_count", 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("encoder.block.")))
    for hf in sorted(sd, key=lambda k: (k != "shared.weight", k)):
        arr = sd[hf]
        name = t5_name(hf)
        if arr.ndim == 1 or "attn_rel_b" in name:
            t = Q.F32
        else:
            t = Q.Q8_0 if arr.shape[-1] % 32 == 0 else Q.F16
        stored, raw = encode(rng, arr, t)
        w.add(name, stored, raw, arr.shape, source_name=hf)
    w.close(TINY_T5 + " (llama.cpp T5 names, Q8_0)")


def main():
    os.makedirs(DIT_OUT, exist_ok=True)
    os.makedirs(T5_OUT, exist_ok=True)
    tiny48()
    tiny256()
    tiny_t5()
    for d in (DIT_OUT, T5_OUT):
        for f in sorted(os.listdir(d)):
            if f.endswith(".gguf"):
                r = gguf.GGUFReader(os.path.join(d, f))
                types = {}
                for t in r.tensors:
                    types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
                print(f"{d}/{f}: {os.path.getsize(os.path.join(d, f))} bytes, {types}")


if __name__ == "__main__":
    main()
