// Option parsing and validation: every bad value is refused with exit code 64/65
// and a message naming it, before anything is loaded (docs/bad_inputs.md #25-35).
#include <gtest/gtest.h>

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
  o = valid();
  o.sampler = "ddim";
  EXPECT_EQ(code_of(o), kExitUsage);
  o = valid();
  o.device = "tpu";
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

}  // namespace
}  // namespace t2v
