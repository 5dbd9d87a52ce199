#include "video_io/frame_rate.h"

#include <cmath>
#include <cstdint>
#include <numeric>
#include <string_view>

#include <fmt/format.h>

#include "core/error.h"

namespace t2v {
namespace {

constexpr const char* kFpsHint = "use an integer (16), a decimal (29.97) or a fraction (30000/1001)";

// Parses 1-9 ASCII digits; anything else (signs, spaces, exponents, "nan") is refused.
bool parse_digits(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 9) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

Rational reduced(int64_t num, int64_t den) {
  int64_t g = std::gcd(num, den);
  return Rational{static_cast<int>(num / g), static_cast<int>(den / g)};
}

[[noreturn]] void not_a_number(const std::string& text) {
  throw Error(kExitUsage, fmt::format("fps '{}' is not a number", text), kFpsHint);
}

}  // namespace

void check_fps(Rational fps) {
  if (fps.num <= 0 || fps.den <= 0)
    throw Error(kExitUsage, fmt::format("fps {}/{} must be greater than 0", fps.num, fps.den), kFpsHint);
  double v = fps.value();
  if (!(v >= kMinFps && v <= kMaxFps))
    throw Error(kExitUsage, fmt::format("fps {}/{} is out of range", fps.num, fps.den),
                fmt::format("use a value between {} and {}", kMinFps, kMaxFps));
}

Rational parse_fps(const std::string& text) {
  std::string_view s = text;
  if (!s.empty() && s[0] == '-')
    throw Error(kExitUsage, fmt::format("fps '{}' must be greater than 0", text), kFpsHint);
  Rational r;
  if (size_t slash = s.find('/'); slash != std::string_view::npos) {
    int64_t num = 0, den = 0;
    if (!parse_digits(s.substr(0, slash), num) || !parse_digits(s.substr(slash + 1), den)) not_a_number(text);
    if (num == 0 || den == 0)
      throw Error(kExitUsage, fmt::format("fps '{}' must be a fraction of two numbers greater than 0", text), kFpsHint);
    r = reduced(num, den);
  } else if (size_t dot = s.find('.'); dot != std::string_view::npos) {
    int64_t whole = 0, frac = 0;
    std::string_view frac_text = s.substr(dot + 1);
    if (!parse_digits(s.substr(0, dot), whole) || frac_text.size() > 6 || !parse_digits(frac_text, frac))
      not_a_number(text);
    if (whole > static_cast<int64_t>(kMaxFps))
      throw Error(kExitUsage, fmt::format("fps '{}' is out of range", text),
                  fmt::format("use a value between {} and {}", kMinFps, kMaxFps));
    int64_t scale = 1;
    for (size_t i = 0; i < frac_text.size(); ++i) scale *= 10;
    int64_t scaled = whole * scale + frac;  // value * scale, exact
    if (scaled == 0) throw Error(kExitUsage, fmt::format("fps '{}' must be greater than 0", text), kFpsHint);
    // NTSC rates are N*1000/1001 written rounded ("29.97", "23.976"): when the text is
    // exactly that rounding for the nearest integer N, it means the exact NTSC rate.
    int64_t n = std::llround(static_cast<double>(scaled) * 1001.0 / (1000.0 * static_cast<double>(scale)));
    int64_t ntsc_scaled = (2 * n * 1000 * scale + 1001) / (2 * 1001);  // round(N*1000/1001 * scale)
    if (frac != 0 && n > 0 && ntsc_scaled == scaled) {
      r = reduced(n * 1000, 1001);
    } else {
      r = reduced(scaled, scale);
    }
  } else {
    int64_t num = 0;
    if (!parse_digits(s, num)) not_a_number(text);
    if (num == 0) throw Error(kExitUsage, fmt::format("fps '{}' must be greater than 0", text), kFpsHint);
    r = Rational{static_cast<int>(num), 1};
  }
  double v = r.value();
  if (!(v >= kMinFps && v <= kMaxFps))
    throw Error(kExitUsage, fmt::format("fps '{}' is out of range", text),
                fmt::format("use a value between {} and {}", kMinFps, kMaxFps));
  return r;
}

std::string format_fps(Rational fps) {
  if (fps.den == 1) return fmt::format("{}", fps.num);
  return fmt::format("{}/{}", fps.num, fps.den);
}

}  // namespace t2v
