"""Loads files of the official Wan2.2 code (Wan-Video/Wan2.2, a checkout given by path)
for the golden generators, with the few stubs it needs on a CPU:
  - the `wan` package's __init__ is not run (it builds CUDA defaults at import); modules
    are loaded as members of a stand-in package `wan22ref` so relative imports work;
  - flash_attention (CUDA-only) is replaced by torch's scaled_dot_product_attention in
    fp32 with the same key-length masking.
Nothing of the checkout is copied into the repository.
"""
import importlib
import os
import sys
import types

import torch
import torch.nn.functional as F


def _package(wan22):
    """The checkout's wan/modules as package `wan22ref.modules` (and wan/utils as `wan22ref.utils`)."""
    if "wan22ref" in sys.modules:
        return
    root = types.ModuleType("wan22ref")
    root.__path__ = [os.path.join(os.path.abspath(wan22), "wan")]
    sys.modules["wan22ref"] = root
    for sub in ("modules", "utils", "distributed"):
        m = types.ModuleType(f"wan22ref.{sub}")
        m.__path__ = [os.path.join(os.path.abspath(wan22), "wan", sub)]
        sys.modules[f"wan22ref.{sub}"] = m


def sdpa_flash_attention(q, k, v, q_lens=None, k_lens=None, dropout_p=0.0, softmax_scale=None, q_scale=None,
                         causal=False, window_size=(-1, -1), deterministic=False, dtype=None, version=None):
    """flash_attention's contract ([B, L, N, D] in and out, keys past k_lens masked) in fp32."""
    b, lq, lk = q.size(0), q.size(1), k.size(1)
    mask = None
    if k_lens is not None:
        mask = torch.arange(lk)[None, :] < k_lens.view(-1, 1).cpu()
        mask = mask.view(b, 1, 1, lk)
    if q_scale is not None:
        q = q * q_scale
    out = F.scaled_dot_product_attention(q.transpose(1, 2).float(), k.transpose(1, 2).float(), v.transpose(1, 2).float(),
                                         attn_mask=mask, is_causal=causal, scale=softmax_scale)
    return out.transpose(1, 2).contiguous().type_as(q)


def module(wan22, name):
    """wan/<name>.py of the checkout (e.g. "modules.model"), with flash_attention stubbed."""
    _package(wan22)
    m = importlib.import_module(f"wan22ref.{name}")
    if hasattr(m, "flash_attention"):
        m.flash_attention = sdpa_flash_attention
    return m


def commit(wan22):
    """The checkout's commit: `git rev-parse HEAD`, else a COMMIT file beside wan/ (an exported tree)."""
    import subprocess
    try:
        return subprocess.check_output(["git", "-C", wan22, "rev-parse", "HEAD"], text=True,
                                       stderr=subprocess.DEVNULL).strip()
    except Exception:
        path = os.path.join(wan22, "COMMIT")
        return open(path).read().strip() if os.path.exists(path) else "unknown"
