#include "app/choices.h"

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "core/error.h"

namespace t2v {

namespace {

Error unknown(std::string_view option, std::string_view text, const char* accepted) {
  return Error(kExitUsage, fmt::format("{} '{}' is unknown", option, text), fmt::format("use {}", accepted));
}

}  // namespace

Sampler parse_sampler(std::string_view text, std::string_view option) {
  if (text == "unipc") return Sampler::kUniPC;
  if (text == "dpm++") return Sampler::kDPMSolver;
  if (text == "euler") return Sampler::kEuler;
  if (text == "distill") return Sampler::kDistill;
  throw unknown(option, text, "unipc, dpm++, euler or distill");
}

ScheduleKind parse_schedule(std::string_view text, std::string_view option) {
  if (text == "reference") return ScheduleKind::kWan;
  if (text == "diffusers") return ScheduleKind::kDiffusers;
  throw unknown(option, text, "reference or diffusers");
}

Device parse_device(std::string_view text, std::string_view option) {
  if (text == "cpu") return Device::CPU;
  if (text == "cuda") return Device::CUDA;
  if (text == "test") return Device::Test;
  throw unknown(option, text, "cpu, cuda or test");
}

DTypeChoice parse_dtype(std::string_view text, std::string_view option) {
  if (text == "auto") return DTypeChoice::kAuto;
  if (text == "f32") return DTypeChoice::kF32;
  if (text == "bf16") return DTypeChoice::kBF16;
  if (text == "fp8") return DTypeChoice::kFP8;
  throw unknown(option, text, "auto, f32, bf16 or fp8");
}

StepCacheSettings parse_cache(std::string_view text, std::string_view option) {
  const size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  StepCacheSettings c;
  if (kind == "none") c.kind = StepCacheKind::kNone;
  else if (kind == "teacache") c.kind = StepCacheKind::kTeaCache;
  else if (kind == "first-block") c.kind = StepCacheKind::kFirstBlock;
  else throw unknown(option, text, "none, teacache or first-block, optionally with :THRESHOLD (teacache:0.1)");
  c.threshold = default_cache_threshold(c.kind);
  if (colon == std::string_view::npos) return c;
  const std::string value(text.substr(colon + 1));
  if (c.kind == StepCacheKind::kNone)
    throw Error(kExitUsage, fmt::format("{} '{}': none takes no threshold", option, text), "use none");
  char* end = nullptr;
  const double v = value.empty() ? std::nan("") : std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || !std::isfinite(v) || v < 0)
    throw Error(kExitUsage, fmt::format("{} '{}': the threshold must be a finite number >= 0", option, text),
                fmt::format("e.g. {}:{}", kind, default_cache_threshold(c.kind)));
  c.threshold = v;
  return c;
}

std::string cache_option_text(const StepCacheSettings& c) {
  if (c.kind == StepCacheKind::kNone) return "none";
  return fmt::format("{}:{}", cache_kind_name(c.kind), c.threshold);
}

const char* cache_kind_name(StepCacheKind k) {
  switch (k) {
    case StepCacheKind::kNone: return "none";
    case StepCacheKind::kTeaCache: return "teacache";
    case StepCacheKind::kFirstBlock: return "first-block";
  }
  return "?";
}

const char* sampler_option_name(Sampler s) {
  switch (s) {
    case Sampler::kUniPC: return "unipc";
    case Sampler::kDPMSolver: return "dpm++";
    case Sampler::kEuler: return "euler";
    case Sampler::kDistill: return "distill";
  }
  return "?";
}

const char* schedule_option_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::kWan: return "reference";
    case ScheduleKind::kDiffusers: return "diffusers";
  }
  return "?";
}

const char* device_option_name(Device d) {
  switch (d) {
    case Device::CPU: return "cpu";
    case Device::CUDA: return "cuda";
    case Device::Test: return "test";
  }
  return "?";
}

const char* dtype_option_name(DTypeChoice d) {
  switch (d) {
    case DTypeChoice::kAuto: return "auto";
    case DTypeChoice::kF32: return "f32";
    case DTypeChoice::kBF16: return "bf16";
    case DTypeChoice::kFP8: return "fp8";
  }
  return "?";
}

DType compute_dtype_for(DTypeChoice dtype, Device device) {
  switch (dtype) {
    case DTypeChoice::kAuto: return device == Device::CUDA ? DType::BF16 : DType::F32;
    case DTypeChoice::kF32: return DType::F32;
    case DTypeChoice::kBF16:
      if (device == Device::CPU)
        throw Error(kExitUsage, "--dtype bf16: the CPU backend computes in f32",
                    "use --dtype f32 (or auto) with --device cpu");
      return DType::BF16;
    case DTypeChoice::kFP8:
      throw Error(kExitUsage, "--dtype fp8: fp8 GEMMs are not available yet",
                  "use --dtype bf16; fp8 checkpoints load and run dequantized in bf16 or f32");
  }
  throw Error(kExitSoftware, "unhandled --dtype choice");
}

DType vae_dtype_for(DTypeChoice, Device) { return DType::F32; }

}  // namespace t2v
