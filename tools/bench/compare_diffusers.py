#!/usr/bin/env python3
"""t2v bench and diffusers side by side, same config, same shapes, same device.

Runs `t2v bench --json` for one Wan2.1 config, then diffusers' WanTransformer3DModel (one
CFG step: batch 2) and AutoencoderKLWan (decode) built from the same published config with
random weights, and prints both in one table with the ratio diffusers / t2v (> 1: t2v is
faster). FLOPs come from t2v's count of the config, so TFLOP/s are comparable.

  # on the GPU machine, the real shapes:
  python3 tools/bench/compare_diffusers.py --t2v build/app/t2v --device cuda
  python3 tools/bench/compare_diffusers.py --t2v build/app/t2v --device cuda --model wan2.1-t2v-14b --size 1280x720
  # a check of the script itself on a CPU (one block, small video):
  python3 tools/bench/compare_diffusers.py --t2v build/app/t2v --device cpu --layers 1 --size 128x128 --frames 5

diffusers runs in bf16 on CUDA (PyTorch SDPA, the best backend it picks: flash / cuDNN /
efficient) and fp32 on CPU, as t2v does. On the CPU it also prints the process CPU time
(all threads) of both sides' runs, the figure to compare on a shared machine.
--json FILE writes every figure.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

# The published transformer configs (diffusers Wan-AI/Wan2.1-T2V-*-Diffusers transformer/config.json).
CONFIGS = {
    "wan2.1-t2v-1.3b": dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30),
    "wan2.1-t2v-14b": dict(num_attention_heads=40, attention_head_dim=128, ffn_dim=13824, num_layers=40),
}
COMMON = dict(patch_size=(1, 2, 2), in_channels=16, out_channels=16, text_dim=4096, freq_dim=256,
              cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
TEXT_LEN = 512


def run_t2v(a):
    cmd = [a.t2v, "bench", "--json", "--model", a.model, "--size", a.size, "--frames", str(a.frames),
           "--device", a.device, "--repeat", str(a.repeat)]
    if a.layers:
        cmd += ["--layers", str(a.layers)]
    if a.no_vae:
        cmd += ["--no-vae"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"compare_diffusers: {' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout)


def sync(device):
    import torch
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeat, device):
    """Median wall and process CPU seconds (all threads) over `repeat` runs after a warm-up."""
    fn()  # warm-up (kernel selection, allocator)
    sync(device)
    times, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpu)


def run_diffusers(a, T, h, w):
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from diffusers.utils import logging
    logging.set_verbosity_error()
    dev = torch.device(a.device)
    dtype = torch.bfloat16 if a.device == "cuda" else torch.float32
    torch.manual_seed(0)
    cfg = dict(COMMON, **CONFIGS[a.model])
    if a.layers:
        cfg["num_layers"] = a.layers
    res = {"dtype": str(dtype).replace("torch.", ""), "torch": torch.__version__}
    if a.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        res["gpu"] = torch.cuda.get_device_name()
    with torch.device(dev):
        tr = WanTransformer3DModel(**cfg).to(dtype).eval()
    # As from_pretrained(torch_dtype=bf16) leaves them: norms, time embedder, RoPE in fp32.
    for name, mod in tr.named_modules():
        if any(k in name.split(".") for k in tr._keep_in_fp32_modules or []):
            mod.float()
    x = torch.randn(2, 16, T, h, w, device=dev, dtype=dtype)
    ctx = 0.1 * torch.randn(2, TEXT_LEN, 4096, device=dev, dtype=dtype)
    ts = torch.full((2,), 999.0, device=dev)
    with torch.inference_mode():
        s, c = timed(lambda: tr(hidden_states=x, timestep=ts, encoder_hidden_states=ctx, return_dict=False),
                     a.repeat, a.device)
    res["dit_ms"], res["dit_cpu_ms"] = s * 1e3, c * 1e3
    if a.device == "cuda":
        res["dit_peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
    del tr
    if not a.no_vae:
        if a.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        with torch.device(dev):
            vae = AutoencoderKLWan().to(dtype).eval()  # the Wan2.1 VAE config is the class default
        z = torch.randn(1, 16, T, h, w, device=dev, dtype=dtype)
        with torch.inference_mode():
            s, c = timed(lambda: vae.decode(z, return_dict=False), max(1, a.repeat // 2), a.device)
        res["vae_ms"], res["vae_cpu_ms"] = s * 1e3, c * 1e3
        if a.device == "cuda":
            res["vae_peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--t2v", required=True, help="the t2v program")
    ap.add_argument("--model", default="wan2.1-t2v-1.3b", choices=sorted(CONFIGS))
    ap.add_argument("--size", default="832x480")
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--layers", type=int, default=0, help="run only this many blocks (both sides)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-vae", action="store_true")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    W, H = (int(v) for v in a.size.lower().split("x"))
    if W % 16 or H % 16 or (a.frames - 1) % 4:
        sys.exit("compare_diffusers: --size must be multiples of 16 and --frames 4k+1")
    T, h, w = (a.frames - 1) // 4 + 1, H // 8, W // 8

    ours = run_t2v(a)
    theirs = run_diffusers(a, T, h, w)
    flops = ours["dit"]["flops"]  # for the blocks that ran
    rows = [("DiT step, CFG (batch 2)", ours["dit"]["median_ms"], theirs["dit_ms"], flops)]
    if not a.no_vae:
        rows.append(("VAE decode", ours["vae_decode"]["ms"], theirs["vae_ms"], None))
    # Process CPU time (all threads) of the same runs: on a shared CPU the wall time
    # depends on the other load, the CPU time much less.
    cpu_rows = [("DiT step, CFG (batch 2)", ours["dit"].get("median_cpu_ms"), theirs["dit_cpu_ms"])]
    if not a.no_vae:
        cpu_rows.append(("VAE decode", ours["vae_decode"].get("cpu_ms"), theirs["vae_cpu_ms"]))

    layers = ours["dit"]["layers_run"]
    print(f"{a.model} at {a.size}x{a.frames} ({ours['tokens']} tokens), {layers} DiT blocks, device {a.device}"
          + (f" ({theirs['gpu']})" if "gpu" in theirs else "") + f", diffusers {theirs['dtype']} torch {theirs['torch']}")
    print(f"{'stage':<26}{'t2v ms':>12}{'diffusers ms':>14}{'ratio':>8}{'t2v TFLOP/s':>13}{'diffusers TFLOP/s':>19}")
    for name, ms_ours, ms_theirs, fl in rows:
        tf = (lambda ms: f"{fl / (ms * 1e-3) / 1e12:.1f}") if fl else (lambda ms: "-")
        print(f"{name:<26}{ms_ours:>12.1f}{ms_theirs:>14.1f}{ms_theirs / ms_ours:>7.2f}x{tf(ms_ours):>13}{tf(ms_theirs):>19}")
    if a.device == "cpu":
        print(f"{'process CPU time':<26}{'t2v cpu-ms':>12}{'diffusers':>14}{'ratio':>8}")
        for name, c_ours, c_theirs in cpu_rows:
            if c_ours:
                print(f"{name:<26}{c_ours:>12.1f}{c_theirs:>14.1f}{c_theirs / c_ours:>7.2f}x")
    if "dit_peak_gb" in theirs:
        print(f"peak device memory: diffusers DiT {theirs['dit_peak_gb']:.2f} GB"
              + (f", VAE {theirs['vae_peak_gb']:.2f} GB" if "vae_peak_gb" in theirs else "")
              + f"; t2v {ours.get('peak_memory_gb', float('nan')):.2f} GB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "t2v": ours, "diffusers": theirs}, f, indent=1)


if __name__ == "__main__":
    main()
