#!/usr/bin/env python3
"""Writes the step-distilled sampler golden: LightX2V's WanStepDistillScheduler
(lightx2v/models/schedulers/wan/step_distill/scheduler.py, ModelTC/LightX2V) on
several timestep lists and shifts, and its updates on a synthetic model.

    python3 tools/golden/gen_distill_goldens.py [--out tests/data/scheduler]
                                                [--lightx2v PATH/TO/LightX2V]

LightX2V is not pip-installable here (it pulls its own platform package and
GPU kernels), so this script restates the two methods t2v follows, line for
line in the same torch float32 operations:
  set_denoising_timesteps: sigmas = linspace(1, 0, 1001)[:-1]  (float32, CPU)
                           sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
                           timesteps = sigmas * 1000
                           pick index 1000 - t for every t of denoising_step_list
  step_post:               x = x.float() - sigma_i * v;  x = x + v * sigma_{i+1}
                           (the second term only before the last step)
With --lightx2v, the upstream file itself is imported (its two imports stubbed:
the WanScheduler base and the device name) and every array is checked to be
identical to the restatement.

Output: distill.safetensors, per case `<name>`:
  <name>.sigmas     F32 [N+1]  the picked sigmas, then 0 (the last step's target)
  <name>.timesteps  F32 [N]    what the DiT sees: 1000 * sigma, float32
  <name>.samples    F32 [N+1, 16, 2, 2, 3]  samples[0] = the start noise,
                               samples[i+1] = the sample after step i
                               (not for the `all` list, 1000..1: the whole table)
metadata `<name>.list` ("1000,750,500,250") and `<name>.shift`, and tools/provenance.py's
generator / versions / seed; the model is v = tanh(x) * sigma_i + 0.1 * x in float32 (as for
the other sampler goldens).
"""
import argparse
import importlib.util
import os
import sys
import types

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import provenance  # noqa: E402  (tools/provenance.py)

SHAPE = (16, 2, 2, 3)
LISTS = {"s4": [1000, 750, 500, 250], "s3": [1000, 667, 333], "s2": [999, 1], "s8": [1000, 875, 750, 625, 500, 375, 250, 125],
         "all": list(range(1000, 0, -1))}  # every entry of the table (no samples: only sigmas and timesteps)
SHIFTS = [1.0, 3.0, 5.0, 8.0, 12.5, 0.7]
SEED = 11


class Restated:
    """WanStepDistillScheduler.set_denoising_timesteps / step_post, restated."""

    def __init__(self, steps, shift):
        self.denoising_step_list = steps
        self.infer_steps = len(steps)
        self.sample_shift = shift
        self.num_train_timesteps = 1000
        self.sigma_max, self.sigma_min = 1.0, 0.0

    def set_denoising_timesteps(self):
        sigma_start = self.sigma_min + (self.sigma_max - self.sigma_min)
        sigmas = torch.linspace(sigma_start, self.sigma_min, self.num_train_timesteps + 1)[:-1]
        sigmas = self.sample_shift * sigmas / (1 + (self.sample_shift - 1) * sigmas)
        timesteps = sigmas * self.num_train_timesteps
        index = [self.num_train_timesteps - x for x in self.denoising_step_list]
        self.timesteps = timesteps[index]
        self.sigmas = sigmas[index]

    def step_post(self, step_index, latents, noise_pred):
        flow_pred = noise_pred.to(torch.float32)
        sigma = self.sigmas[step_index].item()
        x = latents.to(torch.float32) - sigma * flow_pred
        if step_index < self.infer_steps - 1:
            sigma_n = self.sigmas[step_index + 1].item()
            x = x + flow_pred * sigma_n
        return x.to(latents.dtype)


def upstream_class(root):
    """The upstream WanStepDistillScheduler with its two imports stubbed."""
    base = types.ModuleType("lightx2v.models.schedulers.wan.scheduler")

    class WanScheduler:  # only what the subclass's __init__ and methods touch
        def __init__(self, config):
            self.config = config

    base.WanScheduler = WanScheduler
    glob = types.ModuleType("lightx2v_platform.base.global_var")
    glob.AI_DEVICE = "cpu"
    for name in ["lightx2v", "lightx2v.models", "lightx2v.models.schedulers", "lightx2v.models.schedulers.wan",
                 "lightx2v_platform", "lightx2v_platform.base"]:
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["lightx2v.models.schedulers.wan.scheduler"] = base
    sys.modules["lightx2v_platform.base.global_var"] = glob
    path = os.path.join(root, "lightx2v/models/schedulers/wan/step_distill/scheduler.py")
    spec = importlib.util.spec_from_file_location("step_distill_scheduler", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.WanStepDistillScheduler


def velocity(x, sigma):
    return torch.tanh(x) * sigma + 0.1 * x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "scheduler"))
    ap.add_argument("--lightx2v", help="a LightX2V checkout: also run the upstream class and compare")
    args = ap.parse_args()
    upstream = upstream_class(args.lightx2v) if args.lightx2v else None
    tensors, meta = {}, {}
    gen = torch.Generator().manual_seed(SEED)
    for list_name, steps in LISTS.items():
        for shift in SHIFTS:
            name = f"{list_name}.shift{shift:g}"
            s = Restated(steps, shift)
            s.set_denoising_timesteps()
            if upstream is not None:
                u = upstream({"denoising_step_list": steps, "sample_shift": shift})
                u.set_denoising_timesteps(device="cpu")
                assert torch.equal(u.sigmas, s.sigmas) and torch.equal(u.timesteps, s.timesteps), name
            x = torch.randn((1,) + SHAPE, generator=gen)
            samples = [x.clone()]
            for i in range(len(steps) if list_name != "all" else 0):
                v = velocity(x, float(s.sigmas[i]))
                nxt = s.step_post(i, x, v)
                if upstream is not None:
                    u.latents, u.noise_pred, u.step_index = x.clone(), v.clone(), i
                    u.step_post()
                    assert torch.equal(u.latents, nxt), (name, i)
                x = nxt
                samples.append(x.clone())
            tensors[f"{name}.sigmas"] = torch.cat([s.sigmas, torch.zeros(1)]).contiguous()
            tensors[f"{name}.timesteps"] = s.timesteps.contiguous()
            if list_name != "all":
                tensors[f"{name}.samples"] = torch.cat(samples, 0).contiguous()
            meta[f"{name}.list"] = ",".join(str(t) for t in steps)
            meta[f"{name}.shift"] = repr(float(shift))
            if name == "s4.shift5":
                print(name, "DiT timesteps", s.timesteps.tolist(), "sigmas", s.sigmas.tolist())
    meta.update(provenance.metadata(__file__, seed=SEED, libs=("torch",)))
    meta["upstream_checked"] = "yes" if upstream is not None else "no"
    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, "distill.safetensors"), metadata=meta)
    print(f"wrote {len(LISTS) * len(SHIFTS)} cases to {os.path.join(args.out, 'distill.safetensors')}"
          f"{' (checked against the upstream class)' if upstream is not None else ''}")


if __name__ == "__main__":
    main()
