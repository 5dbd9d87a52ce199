// Option parsing and validation: every bad value is refused with exit code 64/65
// and a message naming it, before anything is loaded (docs/bad_inputs.md #25-35).
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "app/choices.h"
#include "app/options.h"
#include "core/error.h"

namespace t2v {
namespace {

int code_of(GenerateOptions o) {
  try {
    validate_generate_options(o);
  } catch (const Error& e) {
    return e.code();
  }
  return 0;
}

std::string message_of(GenerateOptions o) {
  try {
    validate_generate_options(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

GenerateOptions valid() {
  GenerateOptions o;
  o.prompt = "a red ball rolling to the left";
  return o;
}

TEST(Options, DefaultsAreValid) { EXPECT_EQ(code_of(valid()), 0); }

TEST(Options, SizeParsing) {
  int w = 0, h = 0;
  parse_size("832x480", &w, &h);
  EXPECT_EQ(w, 832);
  EXPECT_EQ(h, 480);
  parse_size("1280*720", &w, &h);
  EXPECT_EQ(w, 1280);
  EXPECT_EQ(h, 720);
  for (const char* bad : {"", "832", "832x", "x480", "-832x480", "832x480x3", "8.5x480", "huge"}) {
    try {
      parse_size(bad, &w, &h);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitUsage) << bad;
    }
  }
}

TEST(Options, SizeMustBeMultipleOf16) {
  GenerateOptions o = valid();
  o.width = 833;
  EXPECT_EQ(code_of(o), kExitUsage);
  std::string m = message_of(o);
  EXPECT_NE(m.find("832"), std::string::npos) << m;
  o.width = 840;
  EXPECT_EQ(code_of(o), kExitUsage);
  o.width = 0;
  EXPECT_EQ(code_of(o), kExitUsage);
  o.width = 70000;
  EXPECT_EQ(code_of(o), kExitUsage);
}

TEST(Options, FramesMustBe4kPlus1) {
  GenerateOptions o = valid();
  o.frames = 80;
  EXPECT_EQ(code_of(o), kExitUsage);
  std::string m = message_of(o);
  EXPECT_NE(m.find("77 or 81"), std::string::npos) << m;
  o.frames = 0;
  EXPECT_EQ(code_of(o), kExitUsage);
  o.frames = -3;
  EXPECT_EQ(code_of(o), kExitUsage);
  o.frames = 1;
  EXPECT_EQ(code_of(o), 0);
  o.frames = 10001;  // 4k+1 but far beyond memory
  EXPECT_EQ(code_of(o), kExitUsage);
}

TEST(Options, BadNumbers) {
  GenerateOptions o = valid();
  o.steps = 0;
  EXPECT_EQ(code_of(o), kExitUsage);
  o = valid();
  o.cfg = -1;
  EXPECT_EQ(code_of(o), kExitUsage);
  o = valid();
  o.shift = 0;
  EXPECT_EQ(code_of(o), kExitUsage);
  for (const char* bad : {"nan", "inf", "-inf", "", "5x", "1e999"}) {
    try {
      parse_finite("--cfg", bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitUsage) << bad;
    }
  }
  EXPECT_DOUBLE_EQ(parse_finite("--cfg", "5.5"), 5.5);
}

TEST(Options, Seeds) {
  EXPECT_EQ(parse_seed("0"), 0u);
  EXPECT_EQ(parse_seed("18446744073709551615"), UINT64_MAX);
  for (const char* bad : {"-1", "18446744073709551616", "1.5", "", "abc", " 1"}) {
    try {
      parse_seed(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitUsage) << bad;
    }
  }
}

TEST(Options, PromptText) {
  GenerateOptions o = valid();
  o.prompt = "";
  EXPECT_EQ(code_of(o), kExitDataErr);
  o.prompt = "  \t \n ";
  EXPECT_EQ(code_of(o), kExitDataErr);
  o.allow_empty_prompt = true;
  EXPECT_EQ(code_of(o), 0);
  o = valid();
  o.prompt = "bad \xff byte";
  EXPECT_EQ(code_of(o), kExitDataErr);
  EXPECT_NE(message_of(o).find("byte 4"), std::string::npos) << message_of(o);
  o.prompt = "bell \x07 char";
  EXPECT_EQ(code_of(o), kExitDataErr);
  // Bidi overrides are stripped with a warning, not refused.
  o.prompt = "abc\u202Edef";
  auto warnings = validate_generate_options(o);
  EXPECT_EQ(o.prompt, "abcdef");
  ASSERT_EQ(warnings.size(), 1u);
}

// The named choices are parsed once, where the text arrives; an unknown value is a usage
// error naming the option and the value, with the accepted names as the hint.
void expect_unknown(const std::function<void(const std::string&)>& parse, const std::string& option, const std::string& value, const std::string& accepted) {
  try {
    parse(value);
    ADD_FAILURE() << option << " accepted '" << value << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitUsage) << e.what();
    const std::string m = e.what();
    EXPECT_EQ(m.rfind(option + " '" + value + "' is unknown", 0), 0u) << m;
    EXPECT_NE(m.find(accepted), std::string::npos) << m;
  }
}

TEST(Choices, SamplerNamesRoundTripAndUnknownOnesAreRefused) {
  EXPECT_EQ(parse_sampler("unipc"), Sampler::kUniPC);
  EXPECT_EQ(parse_sampler("dpm++"), Sampler::kDPMSolver);
  EXPECT_EQ(parse_sampler("euler"), Sampler::kEuler);
  EXPECT_EQ(parse_sampler("distill"), Sampler::kDistill);
  for (Sampler s : {Sampler::kUniPC, Sampler::kDPMSolver, Sampler::kEuler, Sampler::kDistill})
    EXPECT_EQ(parse_sampler(sampler_option_name(s)), s);
  // The scheduler also reads "dpmpp"; the command line never did.
  for (const char* bad : {"ddim", "", "UniPC", "dpmpp", "euler ", "Distill"})
    expect_unknown([](const std::string& v) { parse_sampler(v); }, "--sampler", bad, "unipc, dpm++, euler or distill");
  // Where the value came from is named: a list line's field, not the option.
  expect_unknown([](const std::string& v) { parse_sampler(v, "\"sampler\""); }, "\"sampler\"", "lms",
                 "unipc, dpm++, euler or distill");
}

TEST(Choices, ScheduleNamesRoundTripAndUnknownOnesAreRefused) {
  EXPECT_EQ(parse_schedule("reference"), ScheduleKind::kWan);
  EXPECT_EQ(parse_schedule("diffusers"), ScheduleKind::kDiffusers);
  // The MP4 settings and the manifest store the command line's names, not the scheduler's.
  EXPECT_STREQ(schedule_option_name(ScheduleKind::kWan), "reference");
  EXPECT_STREQ(schedule_option_name(ScheduleKind::kDiffusers), "diffusers");
  for (const char* bad : {"wan", "karras", "", "Reference"})
    expect_unknown([](const std::string& v) { parse_schedule(v); }, "--schedule", bad, "reference or diffusers");
}

TEST(Choices, DeviceNamesRoundTripAndUnknownOnesAreRefused) {
  EXPECT_EQ(parse_device("cpu"), Device::CPU);
  EXPECT_EQ(parse_device("cuda"), Device::CUDA);
  for (Device d : {Device::CPU, Device::CUDA, Device::Test}) EXPECT_EQ(parse_device(device_option_name(d)), d);
  for (const char* bad : {"tpu", "gpu", "", "CUDA", "cuda:0"})
    expect_unknown([](const std::string& v) { parse_device(v); }, "--device", bad, "cpu, cuda or test");
}

TEST(Choices, DtypeNamesRoundTripAndUnknownOnesAreRefused) {
  EXPECT_EQ(parse_dtype("auto"), DTypeChoice::kAuto);
  EXPECT_EQ(parse_dtype("f32"), DTypeChoice::kF32);
  EXPECT_EQ(parse_dtype("bf16"), DTypeChoice::kBF16);
  EXPECT_EQ(parse_dtype("fp8"), DTypeChoice::kFP8);
  for (DTypeChoice d : {DTypeChoice::kAuto, DTypeChoice::kF32, DTypeChoice::kBF16, DTypeChoice::kFP8})
    EXPECT_EQ(parse_dtype(dtype_option_name(d)), d);
  for (const char* bad : {"fp16", "float32", "", "BF16"})
    expect_unknown([](const std::string& v) { parse_dtype(v); }, "--dtype", bad, "auto, f32, bf16 or fp8");
}

int dtype_error(DTypeChoice d, Device dev) {
  try {
    compute_dtype_for(d, dev);
  } catch (const Error& e) {
    return e.code();
  }
  return 0;
}

TEST(Choices, DtypeResolvesPerDevice) {
  EXPECT_EQ(compute_dtype_for(DTypeChoice::kAuto, Device::CPU), DType::F32);
  EXPECT_EQ(compute_dtype_for(DTypeChoice::kAuto, Device::CUDA), DType::BF16);
  EXPECT_EQ(compute_dtype_for(DTypeChoice::kF32, Device::CPU), DType::F32);
  EXPECT_EQ(compute_dtype_for(DTypeChoice::kF32, Device::CUDA), DType::F32);
  EXPECT_EQ(compute_dtype_for(DTypeChoice::kBF16, Device::CUDA), DType::BF16);
  EXPECT_EQ(dtype_error(DTypeChoice::kBF16, Device::CPU), kExitUsage);  // the CPU backend computes in f32
  EXPECT_EQ(dtype_error(DTypeChoice::kFP8, Device::CPU), kExitUsage);   // no fp8 GEMMs yet
  EXPECT_EQ(dtype_error(DTypeChoice::kFP8, Device::CUDA), kExitUsage);
}

}  // namespace
}  // namespace t2v
