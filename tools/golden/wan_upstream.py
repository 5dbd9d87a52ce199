"""Imports the official Wan2.1 code (github.com/Wan-Video/Wan2.1) from a local
checkout for the golden generators, so goldens come from the reference itself.
Nothing of it is copied into this repository: pass the checkout with --wan21 PATH
(or WAN21_REPO); the commit is recorded in each golden's provenance.

The reference targets CUDA; on the CPU three things are replaced, and only these:
  - flash_attention (wan/modules/attention.py asserts CUDA and casts to bf16) by
    torch's scaled_dot_product_attention in fp32 with the same key lengths;
  - torchvision, when it is not installed, by the four definitions the code uses
    (Normalize, ToTensor/to_tensor, Resize placeholder, Compose), each the
    documented torchvision formula;
  - easydict, when it is not installed, by a dict with attribute access;
  - torch.cuda.current_device while wan/modules/t5.py is imported (a default
    argument calls it).
The package __init__ files of `wan` and `wan.modules` are skipped (they import the
VACE and distributed code, which needs GPU-only packages); the modules used are
imported one by one under their real names, so their relative imports work.
"""
import importlib
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F


def _sdpa_flash_attention(q, k, v, q_lens=None, k_lens=None, dropout_p=0.0, softmax_scale=None, q_scale=None,
                          causal=False, window_size=(-1, -1), deterministic=False, dtype=torch.bfloat16,
                          version=None):
    """flash_attention's contract ([B, L, N, C] in and out, optional key lengths), in fp32."""
    assert not causal and tuple(window_size) == (-1, -1) and q_lens is None and q_scale is None
    out_dtype = q.dtype
    qt, kt, vt = (t.float().transpose(1, 2) for t in (q, k, v))  # [B, N, L, C]
    mask = None
    if k_lens is not None:
        lk = k.size(1)
        mask = (torch.arange(lk)[None, :] < k_lens.to(torch.long).cpu()[:, None])[:, None, None, :]
    x = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask, scale=softmax_scale)
    return x.transpose(1, 2).to(out_dtype)


def _stub_torchvision():
    try:
        import torchvision  # noqa: F401
        return "installed"
    except ImportError:
        pass

    class Normalize:  # torchvision.transforms.Normalize: (x - mean) / std per channel
        def __init__(self, mean, std):
            self.mean, self.std = mean, std

        def __call__(self, x):
            mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
            std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
            return x.sub_(mean).div_(std)

    class Compose:
        def __init__(self, transforms):
            self.transforms = transforms

    class Placeholder:  # Resize / ToTensor objects are built but never called by the code used
        def __init__(self, *a, **k):
            pass

        def __call__(self, *a, **k):
            raise NotImplementedError("not used by the Wan code paths the goldens run")

    def to_tensor(pic):  # TF.to_tensor for a PIL RGB image: HWC uint8 -> CHW float32 / 255
        a = torch.from_numpy(np.array(pic, copy=True))
        return a.permute(2, 0, 1).contiguous().to(torch.float32).div(255)

    def center_crop(*a, **k):
        raise NotImplementedError("first and last frames of different sizes are refused")

    tv = types.ModuleType("torchvision")
    tr = types.ModuleType("torchvision.transforms")
    fn = types.ModuleType("torchvision.transforms.functional")
    tr.Normalize, tr.Compose, tr.Resize, tr.ToTensor = Normalize, Compose, Placeholder, Placeholder
    tr.InterpolationMode = types.SimpleNamespace(BICUBIC="bicubic")
    tr.functional = fn
    fn.to_tensor, fn.center_crop = to_tensor, center_crop
    tv.transforms = tr
    for m in (tv, tr, fn):  # a spec, so importlib.util.find_spec (transformers' probes) accepts them
        m.__spec__ = importlib.machinery.ModuleSpec(m.__name__, None)
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tr, "torchvision.transforms.functional": fn})
    return "stub"


def _stub_easydict():
    try:
        import easydict  # noqa: F401
        return
    except ImportError:
        pass

    class EasyDict(dict):
        def __getattr__(self, k):
            try:
                return self[k]
            except KeyError as e:
                raise AttributeError(k) from e

        def __setattr__(self, k, v):
            self[k] = v

    m = types.ModuleType("easydict")
    m.EasyDict = EasyDict
    sys.modules["easydict"] = m


def _package(name, path):
    m = types.ModuleType(name)
    m.__path__ = [path]
    sys.modules[name] = m
    return m


def _module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    sys.modules[name] = m
    spec.loader.exec_module(m)
    return m


def commit_of(repo):
    try:
        return subprocess.check_output(["git", "-C", repo, "rev-parse", "HEAD"], text=True).strip()
    except Exception:  # an exported tree: the commit is in WAN21_COMMIT or unknown
        return os.environ.get("WAN21_COMMIT", "unknown")


def load(repo):
    """The reference modules as a namespace: clip, model, vae, t5, tokenizers,
    image2video, first_last_frame2video, fm_solvers, fm_solvers_unipc, configs."""
    wan = os.path.join(os.path.abspath(repo), "wan")
    if not os.path.isfile(os.path.join(wan, "modules", "clip.py")):
        raise SystemExit(f"{repo}: not a Wan2.1 checkout (no wan/modules/clip.py); pass --wan21 PATH")
    _stub_easydict()
    tv = _stub_torchvision()
    for pkg in ("wan", "wan.modules", "wan.utils", "wan.distributed", "wan.configs"):
        _package(pkg, os.path.join(wan, *pkg.split(".")[1:]))
    ns = types.SimpleNamespace(torchvision=tv)
    ns.attention = _module("wan.modules.attention", os.path.join(wan, "modules", "attention.py"))
    ns.attention.flash_attention = _sdpa_flash_attention
    # t5.py evaluates torch.cuda.current_device() in a default argument at import time.
    current_device = torch.cuda.current_device
    torch.cuda.current_device = lambda: "cpu"
    try:
        for name in ("tokenizers", "xlm_roberta", "clip", "model", "t5", "vae"):
            setattr(ns, name, _module(f"wan.modules.{name}", os.path.join(wan, "modules", f"{name}.py")))
    finally:
        torch.cuda.current_device = current_device
    ns.clip.flash_attention = _sdpa_flash_attention
    ns.model.flash_attention = _sdpa_flash_attention
    _module("wan.distributed.fsdp", os.path.join(wan, "distributed", "fsdp.py"))
    for name in ("fm_solvers", "fm_solvers_unipc"):
        setattr(ns, name, _module(f"wan.utils.{name}", os.path.join(wan, "utils", f"{name}.py")))
    ns.shared_config = _module("wan.configs.shared_config", os.path.join(wan, "configs", "shared_config.py"))
    ns.i2v_config = _module("wan.configs.wan_i2v_14B", os.path.join(wan, "configs", "wan_i2v_14B.py"))
    ns.configs = _module("wan.configs", os.path.join(wan, "configs", "__init__.py"))
    ns.image2video = _module("wan.image2video", os.path.join(wan, "image2video.py"))
    ns.first_last_frame2video = _module("wan.first_last_frame2video", os.path.join(wan, "first_last_frame2video.py"))
    ns.commit = commit_of(repo)
    return ns


def add_argument(ap):
    ap.add_argument("--wan21", default=os.environ.get("WAN21_REPO", ""),
                    help="a checkout of github.com/Wan-Video/Wan2.1 (the reference code)")
