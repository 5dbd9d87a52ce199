// parse_fps: integers, NTSC decimals, exact decimals and fractions; everything else is 64.
#include <gtest/gtest.h>

#include "core/error.h"
#include "video_io/frame_rate.h"

namespace t2v {
namespace {

TEST(FrameRate, AcceptedForms) {
  struct Case {
    const char* text;
    Rational want;
  };
  const Case cases[] = {
      {"16", {16, 1}},          {"24", {24, 1}},           {"1000", {1000, 1}},       {"29.97", {30000, 1001}},
      {"29.970", {30000, 1001}}, {"23.976", {24000, 1001}}, {"23.98", {24000, 1001}},  {"59.94", {60000, 1001}},
      {"119.88", {120000, 1001}}, {"14.985", {15000, 1001}}, {"30000/1001", {30000, 1001}},
      {"24000/1001", {24000, 1001}}, {"60/2", {30, 1}},    {"32/2", {16, 1}},         {"12.5", {25, 2}},
      {"25.0", {25, 1}},        {"0.5", {1, 2}},           {"0.1", {1, 10}},          {"7.25", {29, 4}},
      {"016", {16, 1}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    Rational r{0, 0};
    EXPECT_NO_THROW(r = parse_fps(c.text));
    EXPECT_EQ(r, c.want) << r.num << "/" << r.den;
  }
}

TEST(FrameRate, RefusedForms) {
  const char* bad[] = {"0",    "0.0",  "00",   "-16",  "-29.97", "nan", "NaN", "inf",   "",     "abc",
                       "29,97", "1e3", "30/0", "0/1",  "16 ",   " 16", "+16", "1.2.3", "16/",  "/16",
                       "1.1234567", "5000", "1000.5", "0.01", "1/1000", "16fps", "0x10", "1234567890", "16/1/1"};
  for (const char* text : bad) {
    SCOPED_TRACE(text);
    try {
      parse_fps(text);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitUsage);
      EXPECT_NE(std::string(e.what()).find("fps"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("hint:"), std::string::npos) << e.what();
    }
  }
}

TEST(FrameRate, CheckAndFormat) {
  EXPECT_NO_THROW(check_fps({16, 1}));
  EXPECT_THROW(check_fps({0, 1}), Error);
  EXPECT_THROW(check_fps({16, 0}), Error);
  EXPECT_THROW(check_fps({-16, 1}), Error);
  EXPECT_THROW(check_fps({2001, 2}), Error);
  EXPECT_EQ(format_fps({16, 1}), "16");
  EXPECT_EQ(format_fps({30000, 1001}), "30000/1001");
  EXPECT_EQ(parse_fps(format_fps({30000, 1001})), (Rational{30000, 1001}));
}

}  // namespace
}  // namespace t2v
