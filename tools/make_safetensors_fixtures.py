#!/usr/bin/env python3
"""Writes the safetensors test fixtures of tests/core (and seeds for the fuzzer):

  tests/data/core/python_fixture.safetensors  written by Python's `safetensors`
      (every dtype t2v reads, a 0-size and a 0-d tensor, metadata)
  tests/data/core/python_fixture.json         what it holds: name -> dtype, shape,
      values (as torch decodes them to float), plus the metadata
  tests/data/core/corrupt/*.safetensors       one small file per validation rule
  tests/data/core/corrupt/EXPECTED.tsv        file <TAB> substring its error must contain
  tests/fuzz/corpus/safetensors/*             the valid fixture and a few corrupt ones

Usage: python3 tools/make_safetensors_fixtures.py   (from the repository root)
"""
import json
import os
import shutil
import struct

import torch
from safetensors.torch import save_file

import provenance

DATA = "tests/data/core"
CORRUPT = os.path.join(DATA, "corrupt")
CORPUS = "tests/fuzz/corpus/safetensors"
LIBS = ("torch", "safetensors")


def python_fixture():
    g = torch.Generator().manual_seed(7)
    tensors = {
        "blocks.0.attn.q.weight": torch.randn(3, 4, generator=g),
        "blocks.0.attn.q.bias": (torch.randn(5, generator=g) * 3).to(torch.float16),
        "blocks.0.norm.weight": (torch.randn(2, 3, generator=g) * 100).to(torch.bfloat16),
        "fp8.e4m3": (torch.randn(2, 4, generator=g) * 50).to(torch.float8_e4m3fn),
        "fp8.e5m2": (torch.randn(7, generator=g) * 1000).to(torch.float8_e5m2),
        "ids.i64": torch.tensor([0, -1, 2 ** 40, -(2 ** 40)], dtype=torch.int64),
        "ids.i32": torch.tensor([[1, -2], [2 ** 30, 7]], dtype=torch.int32),
        "bytes.u8": torch.arange(0, 250, 50, dtype=torch.uint8),
        "scaled_fp8": torch.empty(0, dtype=torch.float8_e4m3fn),
        "empty.f32": torch.empty(0, 3),
        "scalar": torch.tensor(2.5),
        "vol5d": torch.arange(2 * 1 * 3 * 1 * 2, dtype=torch.float32).reshape(2, 1, 3, 1, 2),
    }
    meta = {"format": "pt", "note": "t2v test fixture", "unicode": "vidéo ✓",
            **provenance.metadata(__file__, seed=7, libs=LIBS)}
    path = os.path.join(DATA, "python_fixture.safetensors")
    save_file(tensors, path, metadata=meta)
    names = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F8_E4M3": torch.float8_e4m3fn,
             "F8_E5M2": torch.float8_e5m2, "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8}
    back = {v: k for k, v in names.items()}
    desc = {"provenance": provenance.json_field(__file__, seed=7, libs=LIBS), "metadata": meta, "tensors": {}}
    for k, v in tensors.items():
        vals = v.to(torch.float64).reshape(-1).tolist() if v.dtype.is_floating_point else v.reshape(-1).tolist()
        desc["tensors"][k] = {"dtype": back[v.dtype], "shape": list(v.shape), "values": vals}
    with open(os.path.join(DATA, "python_fixture.json"), "w") as f:
        json.dump(desc, f, indent=1, ensure_ascii=False)
    return path


def raw(header, data=b"", length=None, pad=True):
    """A safetensors file from a header (str or bytes) and data bytes."""
    h = header.encode("utf-8") if isinstance(header, str) else header
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    n = len(h) if length is None else length
    return struct.pack("<Q", n) + h + data


def entry(name, dtype, shape, b, e):
    shape = shape if isinstance(shape, str) else json.dumps(shape)  # a string is written verbatim
    return f'"{name}":{{"dtype":"{dtype}","shape":{shape},"data_offsets":[{b},{e}]}}'


def obj(*entries):
    return "{" + ",".join(entries) + "}"


def corrupt_fixtures():
    w = "blocks.29.ffn.2.weight"
    ok = entry("a", "F32", [2], 0, 8)
    cases = [
        # (file, bytes, distinctive substring of the error)
        ("empty", b"", "0 bytes, not a safetensors file"),
        ("three_bytes", b"abc", "3 bytes, not a safetensors file"),
        ("header_beyond_file", raw(obj(ok), b"\0" * 8, length=40000000),
         "header claims 40.0 MB but file has 72 bytes: truncated download?"),
        ("header_over_cap", raw(obj(ok), b"\0" * 8, length=2 ** 63), "exceeds the limit"),
        ("not_utf8", raw(b'{"a\xff":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', b"\0" * 8),
         "not valid UTF-8 at byte 3"),
        ("not_json", raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}', b"\0" * 8),
         "not valid JSON at byte"),
        ("not_object", raw("[1, 2]"), "not a JSON object"),
        ("trailing_garbage", raw(obj(ok) + "xyz", b"\0" * 8), "trailing data after the closing brace"),
        ("truncated", raw(obj(entry(w, "F32", [4], 0, 16)), b"\0" * 8),
         f"tensor {w} ends at data byte 16, file has 8 data bytes: truncated"),
        ("overlap", raw(obj(entry("a", "F32", [4], 0, 16), entry("b", "F32", [4], 8, 24)), b"\0" * 24),
         "tensor b (bytes 8..24) overlaps tensor a"),
        ("gap", raw(obj(entry("a", "F32", [2], 0, 8), entry("b", "F32", [2], 16, 24)), b"\0" * 24),
         "gap of 8 bytes before tensor b"),
        ("trailing_bytes", raw(obj(ok), b"\0" * 12), "4 trailing bytes after the last tensor a"),
        ("size_mismatch", raw(obj(entry("x", "I32", [2, 2], 0, 4)), b"\0" * 4),
         "tensor x: 4 bytes for shape [2, 2] I32 (needs 16)"),
        ("unknown_dtype", raw(obj(entry("q", "Q4_K", [2], 0, 8)), b"\0" * 8),
         'tensor q: unsupported dtype "Q4_K"; supported: F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, U8'),
        ("fnuz_dtype", raw(obj(entry("q", "F8_E4M3FNUZ", [2], 0, 2)), b"\0" * 2), "FNUZ fp8"),
        ("duplicate_name", raw(obj(entry("a", "F32", [2], 0, 8), entry("a", "F32", [2], 8, 16)), b"\0" * 16),
         'duplicate key "a"'),
        ("negative_shape", raw(obj(entry("n", "F32", [2, -1], 0, 8)), b"\0" * 8),
         "shape[1] = -1 is not a non-negative integer"),
        ("fractional_shape", raw(obj(entry("n", "F32", [2.5], 0, 8)), b"\0" * 8),
         "shape[0] = 2.5 is not a non-negative integer"),
        ("shape_over_u64", raw(obj(entry("n", "U8", [18446744073709551616], 0, 8)), b"\0" * 8),
         "shape[0] = 1.8446744073709552e+19 is not a non-negative integer"),
        ("number_overflow", raw(obj(entry("n", "F32", "[2, 1e400]", 0, 8)), b"\0" * 8),
         "not valid JSON: number overflow parsing '1e400'"),
        ("huge_shape", raw(obj(entry("n", "F32", [2, 4611686018427387904], 0, 8)), b"\0" * 8),
         "element count overflows"),
        ("huge_dim", raw(obj(entry("n", "F32", [2, 18446744073709551614], 0, 8)), b"\0" * 8),
         "shape[1] = 18446744073709551614 is too large"),
        ("zero_dim_overflow", raw(obj(entry("n", "F32", [0, 4294967296, 4294967296], 0, 0)), b""),
         "element count overflows"),
        ("byte_overflow", raw(obj(entry("n", "F32", [4611686018427387905], 0, 8)), b"\0" * 8),
         "byte count overflows"),
        ("negative_offset", raw(obj(entry("n", "F32", [2], -8, 0)), b"\0" * 8),
         "data_offsets[0] = -8 is not a non-negative integer"),
        ("offsets_reversed", raw(obj(entry("n", "F32", [2], 8, 0)), b"\0" * 8), "end before they begin"),
        ("bad_metadata", raw('{"__metadata__":{"epoch":1},' + ok + "}", b"\0" * 8),
         '__metadata__ value for "epoch" is 1, not a string'),
        ("metadata_not_object", raw('{"__metadata__":["x"],' + ok + "}", b"\0" * 8),
         "__metadata__ is not a JSON object"),
        ("control_char_name", raw(obj(entry("a\\u0001b", "F32", [2], 0, 8)), b"\0" * 8),
         'tensor name "a\\x01b" contains a control character'),
        ("dotdot_name", raw(obj(entry("x/../y", "F32", [2], 0, 8)), b"\0" * 8), 'contains a ".." path component'),
        ("extra_field", raw(obj('"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"crc":1}'), b"\0" * 8),
         'tensor a: unknown field "crc"'),
        ("missing_field", raw(obj('"a":{"dtype":"F32","shape":[2]}'), b"\0" * 8),
         'tensor a: missing field "data_offsets"'),
        ("too_many_dims", raw(obj(entry("a", "F32", [1, 1, 1, 1, 1, 2], 0, 8)), b"\0" * 8),
         "shape has 6 dimensions"),
        ("deep_nesting", raw('{"a":{"dtype":"F32","shape":[[[[2]]]],"data_offsets":[0,8]}}', b"\0" * 8),
         "nests deeper than 3 levels"),
        ("pickle_zip", b"PK\x03\x04" + b"\0" * 60, "PyTorch zip checkpoint"),
        ("pickle_proto2", b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01u.", "Python pickle"),
    ]
    if os.path.isdir(CORRUPT):
        shutil.rmtree(CORRUPT)
    os.makedirs(CORRUPT)
    lines = []
    for name, data, expect in cases:
        fn = name + ".safetensors"
        with open(os.path.join(CORRUPT, fn), "wb") as f:
            f.write(data)
        lines.append(f"{fn}\t{expect}")
    with open(os.path.join(CORRUPT, "EXPECTED.tsv"), "w") as f:
        f.write("# file\tsubstring of the one-line Error(65) message (written by tools/make_safetensors_fixtures.py)\n")
        f.write("\n".join(lines) + "\n")
    return [c[0] for c in cases]


def corpus(fixture):
    # crash_* files are inputs the fuzzer once crashed on: kept as regression seeds.
    os.makedirs(CORPUS, exist_ok=True)
    for name in os.listdir(CORPUS):
        if not name.startswith("crash_"):
            os.remove(os.path.join(CORPUS, name))
    shutil.copy(fixture, os.path.join(CORPUS, "python_fixture"))
    # Small valid files: one tensor, metadata only, zero-size tensors.
    with open(os.path.join(CORPUS, "one_tensor"), "wb") as f:
        f.write(raw(obj(entry("a", "F32", [2], 0, 8)), b"\0\0\x80\x3f\0\0\0\x40"))
    with open(os.path.join(CORPUS, "metadata_only"), "wb") as f:
        f.write(raw('{"__metadata__":{"format":"pt"}}'))
    with open(os.path.join(CORPUS, "zero_size"), "wb") as f:
        f.write(raw(obj(entry("z", "BF16", [0, 4], 0, 0), entry("s", "F8_E4M3", [], 0, 1)), b"\x38"))
    for name in ["overlap", "gap", "duplicate_name", "negative_shape", "huge_shape", "bad_metadata", "truncated",
                 "number_overflow", "zero_dim_overflow"]:
        shutil.copy(os.path.join(CORRUPT, name + ".safetensors"), os.path.join(CORPUS, name))


def main():
    fixture = python_fixture()
    names = corrupt_fixtures()
    corpus(fixture)
    print(f"wrote {fixture}, {len(names)} corrupt fixtures in {CORRUPT}, seed corpus in {CORPUS}")


if __name__ == "__main__":
    main()
