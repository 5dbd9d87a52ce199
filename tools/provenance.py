"""Provenance of the files the tools/ scripts write under tests/data
(docs/conventions.md §4): the generator's path in the repository, the versions of
the libraries that computed the data, and the seed.

  safetensors  __metadata__ {"generator": "tools/...py", "versions": "<JSON object>", "seed": "..."}
               (metadata values must be strings, so the versions are a JSON string)
  JSON         a top-level "provenance" object with the same fields, versions as an object

Every generator imports this module (tools/ is put on sys.path by the scripts in
sub-folders) and passes its own __file__, so the recorded path is the script that ran.
tests/core/test_provenance.cpp checks every file under tests/data.
"""
import importlib
import json
import os
import platform
import struct

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def versions(*libs, extra=None):
    """{"python": ..., lib: lib.__version__, ...} for the libraries that computed the data;
    `extra` adds entries for code that is not an installed library (an upstream
    repository at a commit: {"Wan-Video/Wan2.1": "<commit>"})."""
    v = {"python": platform.python_version()}
    for name in libs:
        v[name] = importlib.import_module(name).__version__
    v.update(extra or {})
    return v


def generator_path(script):
    return os.path.relpath(os.path.abspath(script), ROOT).replace(os.sep, "/")


def metadata(script, seed, libs, extra=None):
    """safetensors __metadata__ entries (all strings)."""
    return {"generator": generator_path(script), "versions": json.dumps(versions(*libs, extra=extra), sort_keys=True),
            "seed": str(seed)}


def json_field(script, seed, libs, extra=None):
    """The "provenance" object of a JSON golden."""
    return {"generator": generator_path(script), "versions": versions(*libs, extra=extra), "seed": str(seed)}


def stamp_safetensors(path, meta):
    """Adds `meta` to a safetensors file's __metadata__ by rewriting only the header:
    tensor names, dtypes, shapes, offsets and data bytes stay as they are. Used where
    a file must not change (weights that committed tests or models depend on)."""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    old = header.pop("__metadata__", None) or {}
    merged = dict(old)
    merged.update(meta)
    out = {"__metadata__": merged}
    out.update(header)  # tensor entries keep their order
    h = json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # the safetensors writers align the data section to 8
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
    os.replace(path + ".tmp", path)


def read_safetensors_metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})
