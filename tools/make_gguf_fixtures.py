#!/usr/bin/env python3
"""Writes the GGUF test fixtures of tests/core (and seeds for the fuzzer):

  tests/data/core/gguf/quant_goldens.gguf   for every type t2v reads (F32, F16, BF16,
      Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) a few tensors
      `<type>.<n>` and beside each `<type>.<n>.golden`: what gguf.quants.dequantize
      (the `gguf` package, ggml's reference) makes of it, F32. Types the package
      can quantize are quantized from random data; for the K-quants (the package
      only dequantizes them) the blocks are random bytes with sane fp16 scales.
  tests/data/core/gguf/metadata.gguf        one key/value of every GGUF value type
      (arrays too), a custom alignment, a 5-D F32 tensor (ComfyUI-GGUF's
      fix_5d_tensors convention) and a tensor with comfy.gguf.orig_shape;
      metadata.json holds the values the reader must return
  tests/data/core/gguf/empty_array.gguf     a zero-length array (the package refuses
      to write one; written by hand here)
  tests/data/core/gguf/version2.gguf        a valid file with version 2 (same layout)
  tests/data/core/gguf/arch_flux.gguf       Wan DiT names under general.architecture "flux"
  tests/data/core/gguf_corrupt/*.gguf       one small file per validation rule,
      written by hand (byte level) from a valid layout
  tests/data/core/gguf_corrupt/EXPECTED.tsv file <TAB> substring its Error(65) must contain
  tests/fuzz/corpus/gguf/*                  small valid and corrupt seeds

Every valid GGUF written here carries its provenance in metadata (provenance.generator,
provenance.versions, provenance.seed; docs/conventions.md §4), the JSON files in a
"provenance" object; the corrupt files are listed in tests/data/PROVENANCE.tsv.

Usage: /work/venv/bin/python tools/make_gguf_fixtures.py   (from the repository root)
"""
import importlib.metadata
import json
import os
import shutil
import struct

import gguf
import numpy as np

import provenance

DATA = "tests/data/core/gguf"
CORRUPT = "tests/data/core/gguf_corrupt"
CORPUS = "tests/fuzz/corpus/gguf"
SEED = 20240611
Q = gguf.GGMLQuantizationType

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


def add_provenance(w):
    for k, v in PROVENANCE.items():
        w.add_string(k, v)


# ---- quantization goldens ---------------------------------------------------------------

# (type, shapes [rows, K]); odd row counts and the smallest rows on purpose.
GOLDEN_TYPES = [
    (Q.F32, [(3, 7), (1, 1)]),
    (Q.F16, [(3, 7), (2, 33)]),
    (Q.BF16, [(3, 7), (2, 33)]),
    (Q.Q8_0, [(5, 96), (1, 32), (3, 256)]),
    (Q.Q4_0, [(5, 96), (1, 32), (3, 256)]),
    (Q.Q4_1, [(5, 96), (1, 32), (3, 256)]),
    (Q.Q5_0, [(5, 96), (1, 32), (3, 256)]),
    (Q.Q5_1, [(5, 96), (1, 32), (3, 256)]),
    (Q.Q2_K, [(3, 256), (1, 512)]),
    (Q.Q3_K, [(3, 256), (1, 512)]),
    (Q.Q4_K, [(3, 256), (1, 512)]),
    (Q.Q5_K, [(3, 256), (1, 512)]),
    (Q.Q6_K, [(3, 256), (1, 512)]),
]

# Byte offsets of the fp16 scale fields in a K-quant block (ggml-common.h).
K_SCALE_FIELDS = {Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}


def sane_f16(rng, n):
    """fp16 scales as quantizers produce them: both signs, 1e-4..1e-1, a zero and a subnormal."""
    v = rng.uniform(1e-4, 1e-1, n) * rng.choice([-1.0, 1.0], n)
    if n > 2:
        v[0] = 0.0
        v[1] = 3e-6  # fp16 subnormal
    return v.astype(np.float16)


def random_k_blocks(rng, qtype, rows, k):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * k // block
    blocks = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in K_SCALE_FIELDS[qtype]:
        blocks[:, off:off + 2] = sane_f16(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(rows, k // block * size)


def quant_goldens():
    rng = np.random.default_rng(SEED)
    w = gguf.GGUFWriter(os.path.join(DATA, "quant_goldens.gguf"), arch="t2v-test")
    add_provenance(w)
    listing = []
    for qtype, shapes in GOLDEN_TYPES:
        for i, (rows, k) in enumerate(shapes):
            name = f"{qtype.name.lower()}.{i}"
            if qtype in K_SCALE_FIELDS:
                data = random_k_blocks(rng, qtype, rows, k)
            else:
                # Normal values with a few outliers, so block maxima differ.
                x = rng.standard_normal((rows, k)).astype(np.float32)
                x[rng.random((rows, k)) < 0.02] *= 20
                data = gguf.quants.quantize(x, qtype)
            golden = gguf.quants.dequantize(data, qtype).astype(np.float32).reshape(rows, k)
            if qtype == Q.F32:
                w.add_tensor(name, data)
            elif qtype == Q.F16:
                w.add_tensor(name, data)
            else:
                w.add_tensor(name, data, raw_dtype=qtype)
            w.add_tensor(name + ".golden", golden)
            listing.append({"name": name, "type": qtype.name, "shape": [rows, k]})
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(os.path.join(DATA, "quant_goldens.json"), "w") as f:
        json.dump({"provenance": PROVENANCE_JSON, "tensors": listing}, f, indent=1)
        f.write("\n")


# ---- metadata fixture --------------------------------------------------------------------

def metadata_fixture():
    path = os.path.join(DATA, "metadata.gguf")
    w = gguf.GGUFWriter(path, arch="wan")
    w.add_custom_alignment(64)
    add_provenance(w)
    V = gguf.GGUFValueType
    values = [
        ("t.u8", 200, V.UINT8), ("t.i8", -100, V.INT8), ("t.u16", 60000, V.UINT16), ("t.i16", -30000, V.INT16),
        ("t.u32", 4000000000, V.UINT32), ("t.i32", -2000000000, V.INT32), ("t.f32", 1.5, V.FLOAT32),
        ("t.bool", True, V.BOOL), ("t.string", "vidéo ✓", V.STRING), ("t.u64", 2 ** 63 + 5, V.UINT64),
        ("t.i64", -(2 ** 62), V.INT64), ("t.f64", -2.25e100, V.FLOAT64),
    ]
    for key, val, vt in values:
        w.add_key_value(key, val, vt)
    arrays = [
        ("a.u8", [1, 2, 255], V.UINT8), ("a.i16", [-1, 7], V.INT16), ("a.i32", [1, -2, 3], V.INT32),
        ("a.u64", [2 ** 40, 0], V.UINT64), ("a.f32", [0.5, -1.0], V.FLOAT32), ("a.bool", [True, False], V.BOOL),
        ("a.string", ["<pad>", "", "ünï"], V.STRING),
    ]
    for key, val, vt in arrays:
        w.add_key_value(key, val, V.ARRAY, sub_type=vt)
    # ComfyUI-GGUF: a tensor stored reshaped to [n / 256, 256] with its real shape in metadata.
    w.add_array("comfy.gguf.orig_shape.conv.weight", [4, 8, 2, 4])
    rng = np.random.default_rng(SEED + 1)
    conv = rng.standard_normal((4, 8, 2, 4)).astype(np.float32)
    w.add_tensor("conv.weight", conv.reshape(1, 256))
    # fix_5d_tensors: the Wan patch embedding written as a 5-D F32 tensor.
    pe = rng.standard_normal((3, 2, 1, 2, 2)).astype(np.float32)
    w.add_tensor("patch_embedding.weight", pe)
    w.add_tensor("blocks.0.modulation", rng.standard_normal((1, 6, 4)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # What the reader must return (the package's reading of the same file).
    r = gguf.GGUFReader(path)
    expect = {"provenance": PROVENANCE_JSON, "scalars": {}, "arrays": {}, "tensors": {}}
    for key, val, vt in values:
        expect["scalars"][key] = {"type": vt.name, "value": val if vt != V.UINT64 else str(val)}
    for key, val, vt in arrays:
        expect["arrays"][key] = {"type": vt.name, "value": val if vt != V.UINT64 else [str(v) for v in val]}
    expect["tensors"]["conv.weight"] = {"shape": [4, 8, 2, 4], "values": conv.reshape(-1).tolist()}
    expect["tensors"]["patch_embedding.weight"] = {"shape": list(pe.shape), "values": pe.reshape(-1).tolist()}
    expect["alignment"] = 64
    expect["architecture"] = "wan"
    assert r.fields["general.alignment"].parts[-1][0] == 64
    with open(os.path.join(DATA, "metadata.json"), "w") as f:
        json.dump(expect, f, indent=1, ensure_ascii=False)
        f.write("\n")


# ---- hand-written files (valid layouts the package cannot write, and corrupt ones) ----------

def gstr(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload


def kv_str(key, value):
    return kv(key, 8, gstr(value))


def kv_u32(key, value):
    return kv(key, 4, struct.pack("<I", value))


def tinfo(name, ne, ggml_type, offset):
    return gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) + \
        struct.pack("<I", ggml_type) + struct.pack("<Q", offset)


def gguf_file(kvs, infos, data=b"", version=3, alignment=32, magic=b"GGUF", n_tensors=None, n_kv=None,
              pad=True):
    head = magic + struct.pack("<I", version)
    head += struct.pack("<QQ", len(infos) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs) + b"".join(infos)
    if pad:
        head += b"\0" * ((-len(head)) % alignment)
    return head + data


def base_kvs():
    return [kv_str("general.architecture", "wan")] + [kv_str(k, v) for k, v in PROVENANCE.items()]


def f32_bytes(n, seed=0):
    return np.random.default_rng(SEED + seed).standard_normal(n).astype(np.float32).tobytes()


def valid_layout(**kw):
    """Two F32 tensors [2, 4] and [3]: the base the corrupt files change one thing of."""
    a = f32_bytes(8)
    b = f32_bytes(3, 1)
    data = a + b + b"\0" * ((-len(b)) % 32)
    infos = [tinfo("w", [4, 2], 0, 0), tinfo("b", [3], 0, 32)]
    return gguf_file(base_kvs(), infos, data, **kw)


def write(path, blob):
    with open(path, "wb") as f:
        f.write(blob)


def hand_written_valid():
    empty_array = kv("a.empty", 9, struct.pack("<IQ", 5, 0))
    write(os.path.join(DATA, "empty_array.gguf"),
          gguf_file(base_kvs() + [empty_array], [tinfo("w", [4, 2], 0, 0)], f32_bytes(8)))
    write(os.path.join(DATA, "version2.gguf"), valid_layout(version=2))
    # A GGUF of another family whose names look like a Wan DiT: refused by its architecture.
    names = ["blocks.0.self_attn.q.weight", "head.modulation", "patch_embedding.weight", "text_embedding.0.weight"]
    infos = [tinfo(n, [4, 2], 0, 32 * i) for i, n in enumerate(names)]
    write(os.path.join(DATA, "arch_flux.gguf"),
          gguf_file([kv_str("general.architecture", "flux")] + [kv_str(k, v) for k, v in PROVENANCE.items()], infos,
                    b"".join(f32_bytes(8, i) for i in range(len(names)))))
    for name in ("empty_array.gguf", "version2.gguf", "arch_flux.gguf"):
        gguf.GGUFReader(os.path.join(DATA, name))  # the package reads them


def corrupt_fixtures():
    cases = []

    def add(name, blob, expect):
        write(os.path.join(CORRUPT, name), blob)
        cases.append((name, expect))

    good = valid_layout()
    gguf.GGUFReader(_tmp(good))  # the base layout is valid for the package
    infos2 = [tinfo("w", [4, 2], 0, 0), tinfo("b", [3], 0, 32)]
    data2 = f32_bytes(8) + f32_bytes(3, 1) + b"\0" * 20

    add("empty.gguf", b"", "0 bytes, not a GGUF file")
    add("bad_magic.gguf", b"GGUX" + good[4:], "not a GGUF file: starts with \"GGUX\"")
    add("version1.gguf", valid_layout(version=1), "GGUF version 1 is not supported")
    add("version4.gguf", valid_layout(version=4), "GGUF version 4 is not supported")
    add("big_endian.gguf", b"GGUF" + struct.pack(">I", 3) + good[8:], "big-endian GGUF")
    add("truncated_header.gguf", good[:150], "runs past the end of the file")
    add("truncated_data.gguf", good[:-40], "ends past the end of the file")
    add("huge_tensor_count.gguf", gguf_file(base_kvs(), infos2, data2, n_tensors=2 ** 60),
        "header claims 1152921504606846976 tensors")
    add("huge_kv_count.gguf", gguf_file(base_kvs(), infos2, data2, n_kv=2 ** 61), "metadata entries, more than")
    add("huge_key_length.gguf", gguf_file([struct.pack("<Q", 2 ** 62) + b"k"], [], n_tensors=0),
        "more than the 4096 bytes t2v accepts")
    add("long_key.gguf", gguf_file(base_kvs() + [kv_u32("k" * 5000, 1)], infos2, data2),
        "more than the 4096 bytes t2v accepts")
    add("huge_string.gguf", gguf_file(base_kvs() + [kv("s", 8, struct.pack("<Q", 2 ** 62) + b"abc")], []),
        "runs past the end of the file")
    add("unknown_value_type.gguf", gguf_file(base_kvs() + [kv("x", 13, b"\0" * 8)], infos2, data2),
        "has unknown value type 13")
    add("nested_array.gguf", gguf_file(base_kvs() + [kv("x", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 4, 0))],
                                       infos2, data2), "array of arrays")
    add("huge_array.gguf", gguf_file(base_kvs() + [kv("x", 9, struct.pack("<IQ", 4, 2 ** 61))], infos2, data2),
        "claims 2305843009213693952 u32 values")
    add("huge_string_array.gguf", gguf_file(base_kvs() + [kv("x", 9, struct.pack("<IQ", 8, 2 ** 61))], infos2, data2),
        "claims 2305843009213693952 strings")
    add("bad_bool.gguf", gguf_file(base_kvs() + [kv("x", 7, b"\x02")], infos2, data2), "bool byte 2")
    add("duplicate_key.gguf", gguf_file(base_kvs() + [kv_u32("x", 1), kv_u32("x", 2)], infos2, data2),
        "duplicate metadata key \"x\"")
    add("invalid_utf8_key.gguf", gguf_file(base_kvs() + [kv_u32(b"bad\xff", 1)], infos2, data2),
        "is not valid UTF-8")
    add("control_char_key.gguf", gguf_file(base_kvs() + [kv_u32("a\x01b", 1)], infos2, data2),
        "contains a control character")
    add("duplicate_tensor.gguf", gguf_file(base_kvs(), [tinfo("w", [4, 2], 0, 0), tinfo("w", [3], 0, 32)], data2),
        "duplicate tensor name w")
    add("control_char_name.gguf", gguf_file(base_kvs(), [tinfo("w\x07", [4, 2], 0, 0)], data2),
        "contains a control character")
    add("nul_name.gguf", gguf_file(base_kvs(), [tinfo("w\x00x", [4, 2], 0, 0)], data2),
        "contains a control character")
    add("empty_name.gguf", gguf_file(base_kvs(), [tinfo("", [4, 2], 0, 0)], data2), "a tensor name is empty")
    add("zero_dims.gguf", gguf_file(base_kvs(), [tinfo("w", [], 0, 0)], data2), "has 0 dimensions")
    add("six_dims.gguf", gguf_file(base_kvs(), [tinfo("w", [1, 1, 1, 1, 1, 1], 0, 0)], data2), "has 6 dimensions")
    add("five_dims_quantized.gguf", gguf_file(base_kvs(), [tinfo("w", [32, 1, 1, 1, 1], 8, 0)], b"\0" * 64),
        "only unquantized tensors may exceed 4")
    add("huge_ne.gguf", gguf_file(base_kvs(), [tinfo("w", [2 ** 63], 0, 0)], data2), "is too large")
    add("numel_overflow.gguf", gguf_file(base_kvs(), [tinfo("w", [2 ** 32, 2 ** 32], 0, 0)], data2),
        "element count overflows")
    # A zero dimension does not excuse the others: their product must still fit.
    add("numel_overflow_zero_dim.gguf", gguf_file(base_kvs(), [tinfo("w", [2, 2 ** 33, 0, 2 ** 33], 0, 0)], data2),
        "element count overflows")
    add("unknown_type.gguf", gguf_file(base_kvs(), [tinfo("w", [4, 2], 99, 0)], data2), "unknown ggml type 99")
    add("unsupported_type.gguf", gguf_file(base_kvs(), [tinfo("w", [256], 23, 0)], data2),
        "has type IQ4_XS, which t2v does not read")
    add("row_not_multiple.gguf", gguf_file(base_kvs(), [tinfo("w", [48, 2], 2, 0)], b"\0" * 96),
        "rows of 48 values are not a multiple of the Q4_0 block size 32")
    add("kquant_row_not_multiple.gguf", gguf_file(base_kvs(), [tinfo("w", [128, 2], 12, 0)], b"\0" * 320),
        "rows of 128 values are not a multiple of the Q4_K block size 256")
    add("misaligned_offset.gguf", gguf_file(base_kvs(), [tinfo("w", [4, 2], 0, 0), tinfo("b", [3], 0, 16)], data2),
        "offset 16 is not a multiple of the alignment 32")
    add("offset_past_end.gguf", gguf_file(base_kvs(), [tinfo("w", [4, 2], 0, 4096)], data2),
        "ends past the end of the file")
    add("offset_overflow.gguf", gguf_file(base_kvs(), [tinfo("w", [4, 2], 0, 2 ** 64 - 32)], data2), "overflows")
    add("overlap.gguf", gguf_file(base_kvs(), [tinfo("w", [4, 2], 0, 0), tinfo("b", [16], 0, 0)],
                                  f32_bytes(16) + b"\0" * 32), "overlaps tensor")
    add("alignment_zero.gguf", gguf_file(base_kvs() + [kv_u32("general.alignment", 0)], infos2, data2),
        "general.alignment = 0 is not a power of two")
    add("alignment_three.gguf", gguf_file(base_kvs() + [kv_u32("general.alignment", 3)], infos2, data2),
        "general.alignment = 3 is not a power of two")
    add("alignment_type.gguf", gguf_file(base_kvs() + [kv_str("general.alignment", "32")], infos2, data2),
        "general.alignment is a string value, expected u32")
    add("architecture_type.gguf", gguf_file([kv_u32("general.architecture", 7)], infos2, data2),
        "general.architecture is a u32 value, expected a string")
    shape_kv = kv("comfy.gguf.orig_shape.w", 9, struct.pack("<IQ", 5, 2) + struct.pack("<ii", 7, 1))
    add("orig_shape_mismatch.gguf", gguf_file(base_kvs() + [shape_kv], infos2, data2),
        "gives 7 values, but the tensor holds 8")
    add("orig_shape_type.gguf", gguf_file(base_kvs() + [kv_str("comfy.gguf.orig_shape.w", "[4, 2]")], infos2, data2),
        "expected an array of 1 to 5 integers")
    with open(os.path.join(CORRUPT, "EXPECTED.tsv"), "w") as f:
        f.write("# file\tsubstring of the one-line Error(65) message (written by tools/make_gguf_fixtures.py)\n")
        for name, expect in cases:
            f.write(f"{name}\t{expect}\n")
    return cases


_TMP = "/tmp/t2v_gguf_fixture_check.gguf"


def _tmp(blob):
    write(_TMP, blob)
    return _TMP


def fuzz_seeds(cases):
    os.makedirs(CORPUS, exist_ok=True)
    for name in ("metadata.gguf", "empty_array.gguf", "version2.gguf"):
        shutil.copy(os.path.join(DATA, name), os.path.join(CORPUS, name.replace(".gguf", "")))
    # One small quantized tensor of each block format (a valid file each).
    for qtype in (Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.BF16, Q.F16):
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        k = max(block, 32)
        payload = np.random.default_rng(SEED + int(qtype)).integers(0, 256, k // block * size, dtype=np.uint8)
        payload[:] = np.where(payload > 0x7b, 0x10, payload)  # keeps the fp16 fields finite
        blob = gguf_file(base_kvs(), [tinfo(f"t.{qtype.name}", [k], int(qtype), 0)],
                         payload.tobytes() + b"\0" * ((-len(payload)) % 32))
        gguf.GGUFReader(_tmp(blob))
        write(os.path.join(CORPUS, f"one_{qtype.name.lower()}"), blob)
    for name, _ in cases:
        if name in ("truncated_header.gguf", "overlap.gguf", "misaligned_offset.gguf", "nested_array.gguf",
                    "orig_shape_mismatch.gguf", "huge_array.gguf", "duplicate_tensor.gguf",
                    "numel_overflow_zero_dim.gguf"):
            shutil.copy(os.path.join(CORRUPT, name), os.path.join(CORPUS, name.replace(".gguf", "")))


def main():
    os.makedirs(DATA, exist_ok=True)
    os.makedirs(CORRUPT, exist_ok=True)
    quant_goldens()
    metadata_fixture()
    hand_written_valid()
    cases = corrupt_fixtures()
    fuzz_seeds(cases)
    os.remove(_TMP)
    print(f"wrote {DATA}, {len(cases)} corrupt files in {CORRUPT}, seeds in {CORPUS}")


if __name__ == "__main__":
    main()
