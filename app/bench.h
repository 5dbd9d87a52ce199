// `t2v bench`: real-size model shapes with random weights made on the device (no
// files needed). Prints per stage the median time, the FLOPs counted from the
// config, the achieved TFLOP/s and the peak memory; --dry-run prints the FLOP
// counts and the time floor only.
#pragma once

#include <string>

#include "app/choices.h"
#include "core/tensor.h"

namespace t2v {

struct BenchOptions {
  std::string model = "wan2.1-t2v-1.3b";  // DiT preset
  std::string size = "832x480";
  int frames = 81;
  int steps = 50;              // for the whole-video projection
  Device device = Device::CPU;
  DTypeChoice dtype = DTypeChoice::kAuto;  // compute dtype, as for generate (auto: BF16 on CUDA, F32 elsewhere)
  int layers = 0;              // > 0: run only this many DiT blocks (CPU runs of real widths)
  int repeat = 3;              // timed runs per stage (median reported)
  bool dry_run = false;
  bool json = false;
  bool vae = true;             // also time the VAE decode
  bool text_encoder = true;    // also time the umT5 text encoder
  StepCacheSettings cache;     // --cache: also time the step cache's steps and its check
  double peak_tflops = 798.0;  // device ceiling for the floor (H100 dense bf16, measured)
};

int run_bench(const BenchOptions& o);

}  // namespace t2v
