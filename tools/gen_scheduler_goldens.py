#!/usr/bin/env python3
"""Writes the scheduler goldens: every sigma, timestep and sample of the three
samplers (unipc, dpm++, euler) on both schedule kinds (wan, diffusers), run
with the upstream schedulers from diffusers on a fixed synthetic model.

    python3 tools/gen_scheduler_goldens.py [--out tests/data/scheduler]

Outputs tests/data/scheduler/{unipc,dpmpp,euler}.safetensors. Each holds, per
case `<schedule>.n<steps>` (schedule: wan | diffusers):
  <case>.sigmas     F32 [N+1]   the scheduler's sigmas (last one 0)
  <case>.timesteps  I64 [N]     what the DiT sees (int64 truncation of sigma*1000)
  <case>.samples    F32 [N+1, 16, 2, 2, 3]  samples[0] = the start noise,
                                samples[i+1] = the sample after step i
and metadata `<case>.shift` (the shift, as text), `<case>.steps`.

The model is v = tanh(x) * sigma_i + 0.1 * x in float32, sigma_i = sigmas[i].

Schedule kinds. "diffusers" is each diffusers scheduler configured as the
diffusers Wan pipelines do (flow sigmas, flow_prediction, flow_shift = shift):
  unipc : UniPCMultistepScheduler(use_flow_sigmas=True, flow_shift=shift)
  dpm++ : DPMSolverMultistepScheduler(use_flow_sigmas=True, flow_shift=shift)
  euler : FlowMatchEulerDiscreteScheduler(shift=shift); its timesteps are float
          sigma*1000 (float32), recorded here truncated to int64.
"wan" is the schedule the official Wan2.1 code (wan/text2video.py with
wan/utils/fm_solvers_unipc.py, fm_solvers.py) builds. Those files are not
pip-installable, so the diffusers schedulers are driven with the official
sigmas instead; the update equations of FlowUniPCMultistepScheduler and
FlowDPMSolverMultistepScheduler are the diffusers ones with flow sigmas:
  unipc : FlowUniPCMultistepScheduler(shift=1).set_timesteps(N, shift=shift):
          s = linspace(float32(0.999), 0, N+1)[:-1] in float64, shifted once.
          -> UniPCMultistepScheduler(use_flow_sigmas=True, flow_shift=1)
             .set_timesteps(sigmas=s_shifted); flow_shift 1 is an exact identity.
             Where s_shifted[0] is within 1e-6 of 1 (huge shifts), diffusers would
             nudge it and the official code does not: the official arrays are set.
  dpm++ : get_sampling_sigmas(N, shift) = shift(linspace(1, 0, N+1)[:N]) passed
          as explicit sigmas to FlowDPMSolverMultistepScheduler(shift=1).
          -> DPMSolverMultistepScheduler(use_flow_sigmas=True, flow_shift=1),
             whose set_timesteps takes no sigmas: its .sigmas/.timesteps are
             replaced by the official ones (float32 sigmas + 0, int64 timesteps).
  euler : the official code has no Euler sampler; t2v uses get_sampling_sigmas
          (sigma starts at exactly 1, which Euler handles without a log).
          -> FlowMatchEulerDiscreteScheduler(shift=1).set_timesteps(sigmas=...).
The official schedules are also computed here directly (wan_official_*) and
checked against what the configured diffusers schedulers hold.
"""
import argparse
import json
import os
import struct

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler
from safetensors.torch import load_file

import provenance

SHAPE = (16, 2, 2, 3)
# (steps, shift): 1 and 2 steps exercise warm-up and the sigma = 0 final step at once.
CASES = [(1, 5.0), (2, 7.5), (10, 8.0), (25, 3.0), (50, 5.0)]
# Wan schedule only: a shift so large that float32 sigma_0 rounds to exactly 1
# (lambda = -inf) for every sampler; the diffusers schedules refuse it (their
# sigmas stop decreasing), so the engine does too.
WAN_ONLY_CASES = [(12, 1e5)]
NUM_TRAIN = 1000


def shift_sigmas(s, shift):
    return shift * s / (1 + (shift - 1) * s)


def wan_official_unipc(steps, shift):
    """FlowUniPCMultistepScheduler(shift=1).set_timesteps(steps, shift=shift), restated."""
    alphas = np.linspace(1, 1 / NUM_TRAIN, NUM_TRAIN)[::-1].copy()
    table = torch.from_numpy(1.0 - alphas).to(torch.float32)
    table = 1 * table / (1 + (1 - 1) * table)  # the constructor's shift=1
    sigma_max, sigma_min = table[0].item(), table[-1].item()
    s = np.linspace(sigma_max, sigma_min, steps + 1).copy()[:-1]
    s = shift_sigmas(s, shift)
    timesteps = torch.from_numpy(s * NUM_TRAIN).to(torch.int64)
    sigmas = torch.from_numpy(np.concatenate([s, [0]]).astype(np.float32))
    return s, sigmas, timesteps


def wan_official_sampling_sigmas(steps, shift):
    """get_sampling_sigmas(steps, shift) passed to FlowDPMSolverMultistepScheduler(shift=1)."""
    s = np.linspace(1, 0, steps + 1)[:steps]
    s = shift_sigmas(s, shift)
    s = 1.0 * s / (1 + (1.0 - 1) * s)  # the scheduler's own shift=1 in set_timesteps
    timesteps = torch.from_numpy(s * NUM_TRAIN).to(torch.int64)
    sigmas = torch.from_numpy(np.concatenate([s, [0]]).astype(np.float32))
    return s, sigmas, timesteps


def make_scheduler(sampler, schedule, steps, shift):
    """Returns (scheduler, sigmas F32 [N+1], timesteps I64 [N])."""
    if sampler == "unipc":
        if schedule == "diffusers":
            sch = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift)
            sch.set_timesteps(steps)
        else:
            s, sig, ts = wan_official_unipc(steps, shift)
            sch = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=1.0)
            sch.set_timesteps(sigmas=s.copy())
            if abs(s[0] - 1) < 1e-6:
                # diffusers nudges such a sigma_0 to 1 - 1e-6; the official code does not.
                sch.sigmas, sch.timesteps = sig.clone(), ts.clone()
            assert torch.equal(sch.sigmas, sig) and torch.equal(sch.timesteps, ts), "unipc wan mapping"
        return sch, sch.sigmas.clone(), sch.timesteps.clone()
    if sampler == "dpmpp":
        if schedule == "diffusers":
            sch = DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                              flow_shift=shift, algorithm_type="dpmsolver++", solver_order=2,
                                              solver_type="midpoint", lower_order_final=True,
                                              final_sigmas_type="zero")
            sch.set_timesteps(steps)
        else:
            _, sig, ts = wan_official_sampling_sigmas(steps, shift)
            sch = DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                              flow_shift=1.0, algorithm_type="dpmsolver++", solver_order=2,
                                              solver_type="midpoint", lower_order_final=True,
                                              final_sigmas_type="zero")
            sch.set_timesteps(steps)
            sch.sigmas = sig.clone()
            sch.timesteps = ts.clone()
        return sch, sch.sigmas.clone(), sch.timesteps.clone()
    if sampler == "euler":
        if schedule == "diffusers":
            sch = FlowMatchEulerDiscreteScheduler(shift=shift)
            sch.set_timesteps(steps)
        else:
            s, sig, _ = wan_official_sampling_sigmas(steps, shift)
            sch = FlowMatchEulerDiscreteScheduler(shift=1.0)
            sch.set_timesteps(sigmas=s.copy())
            assert torch.equal(sch.sigmas, sig), "euler wan mapping"
        # Euler's timesteps are float sigma*1000; the DiT input is their truncation.
        return sch, sch.sigmas.clone(), sch.timesteps.to(torch.int64)
    raise ValueError(sampler)


def model(x, sigma):
    return torch.tanh(x) * sigma + 0.1 * x


def run(sampler, schedule, steps, shift, x_init):
    sch, sigmas, timesteps = make_scheduler(sampler, schedule, steps, shift)
    assert sigmas.dtype == torch.float32 and sigmas.shape == (steps + 1,) and sigmas[-1].item() == 0.0
    assert timesteps.dtype == torch.int64 and timesteps.shape == (steps,)
    sch.set_begin_index(0)  # walk the schedule by index, as the engine does
    x = x_init.clone()
    samples = [x.clone()]
    for i in range(steps):
        v = model(x, sch.sigmas[i])
        x = sch.step(v, sch.timesteps[i], x, return_dict=False)[0]
        assert x.dtype == torch.float32 and torch.isfinite(x).all(), (sampler, schedule, steps, i)
        samples.append(x.clone())
    return sigmas, timesteps, torch.stack(samples)


def check_spec_values():
    """docs/wan.md §4.3 / §4.6 reference values (N=50, shift 5)."""
    _, sig, ts = wan_official_unipc(50, 5.0)
    assert ts[:5].tolist() == [999, 995, 991, 987, 982], ts[:5]
    assert ts[-3:].tolist() == [241, 172, 92], ts[-3:]
    assert abs(sig[0].item() - 0.999799848) < 1e-8 and abs(sig[-2].item() - 0.092506856) < 1e-8
    assert ts.unique().numel() == 50
    for shift, tail in ((3.0, [160, 111, 57]), (8.0, [337, 249, 140])):
        assert wan_official_unipc(50, shift)[2][-3:].tolist() == tail, shift
    _, _, ts_dpm = wan_official_sampling_sigmas(50, 5.0)
    assert ts_dpm[0].item() == 1000
    d = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0)
    d.set_timesteps(50)
    assert d.timesteps[:3].tolist() == [999, 995, 991] and d.timesteps[-3:].tolist() == [244, 175, 96], d.timesteps


def save_sorted(tensors, path, metadata):
    """safetensors with the header in sorted key order, so reruns give identical bytes
    (safetensors' own writer orders the metadata map arbitrarily)."""
    names = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {"__metadata__": dict(sorted(metadata.items()))}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        data = t.numpy().tobytes()  # little-endian on every platform we generate on
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))
    back = load_file(path)  # round trip through the reference reader
    assert all(torch.equal(back[k], tensors[k]) for k in tensors)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "scheduler"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    check_spec_values()

    g = torch.Generator().manual_seed(20240601)
    x_init = torch.randn(SHAPE, generator=g, dtype=torch.float32)
    for sampler in ("unipc", "dpmpp", "euler"):
        tensors, meta = {}, {"sampler": sampler, "model": "v = tanh(x) * sigma + 0.1 * x",
                             **provenance.metadata(__file__, seed=20240601, libs=("torch", "diffusers", "numpy"))}
        for schedule in ("wan", "diffusers"):
            for steps, shift in CASES + (WAN_ONLY_CASES if schedule == "wan" else []):
                sigmas, timesteps, samples = run(sampler, schedule, steps, shift, x_init)
                case = f"{schedule}.n{steps}"
                tensors[f"{case}.sigmas"] = sigmas.contiguous()
                tensors[f"{case}.timesteps"] = timesteps.contiguous()
                tensors[f"{case}.samples"] = samples.contiguous()
                meta[f"{case}.shift"] = repr(float(shift))
                meta[f"{case}.steps"] = str(steps)
        path = os.path.join(args.out, f"{sampler}.safetensors")
        save_sorted(tensors, path, meta)
        print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
