// The named choices of the command line (--sampler, --schedule, --device, --dtype) as
// enums. Names are read here and written here only; everything else compares enums.
#pragma once

#include <string>
#include <string_view>

#include "core/tensor.h"
#include "diffusion/step_cache.h"
#include "scheduler/schedule.h"

namespace t2v {

// --dtype: the storage of the large GEMM weights, or `auto` for the device's choice.
enum class DTypeChoice { kAuto, kF32, kBF16, kFP8 };

// Each parser throws Error(64) "<option> '<value>' is unknown" with the accepted names
// as the hint. `option` names where the value came from ("--sampler", "\"sampler\"").
Sampler parse_sampler(std::string_view text, std::string_view option = "--sampler");   // unipc, dpm++, euler, distill
ScheduleKind parse_schedule(std::string_view text, std::string_view option = "--schedule");  // reference, diffusers
Device parse_device(std::string_view text, std::string_view option = "--device");     // cpu, cuda
DTypeChoice parse_dtype(std::string_view text, std::string_view option = "--dtype");  // auto, f32, bf16, fp8

// --cache KIND[:THRESHOLD]: none (default), teacache, first-block; the kind's default
// threshold (default_cache_threshold) when none is given. Error(64) for an unknown kind,
// a threshold that is not a finite number >= 0, or a threshold after `none`. The
// result has no coefficients yet (the model's come with the pipeline).
StepCacheSettings parse_cache(std::string_view text, std::string_view option = "--cache");
// "none", "teacache:0.1", "first-block:0.05": what parse_cache reads back.
std::string cache_option_text(const StepCacheSettings& c);
const char* cache_kind_name(StepCacheKind k);  // none, teacache, first-block

// The names as the parsers accept them (and as the MP4 settings and the batch manifest
// store them): "unipc"/"dpm++"/"euler", "reference"/"diffusers", "cpu"/"cuda",
// "auto"/"f32"/"bf16"/"fp8".
const char* sampler_option_name(Sampler s);
const char* schedule_option_name(ScheduleKind k);
const char* device_option_name(Device d);
const char* dtype_option_name(DTypeChoice d);

// The weight dtype for --dtype on a device: auto -> F32 on CPU, BF16 on CUDA.
// Error(64) for combinations the backends do not run (bf16 on the CPU; fp8 until
// the fp8 GEMM path exists).
DType compute_dtype_for(DTypeChoice dtype, Device device);
// The VAE's compute dtype for --dtype on a device (docs/wan.md §3.1): F32 whatever
// --dtype says, as the reference decodes in fp32 (call compute_dtype_for first: it
// refuses the combinations no backend runs).
DType vae_dtype_for(DTypeChoice dtype, Device device);

}  // namespace t2v
