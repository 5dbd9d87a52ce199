// Frame rates as exact rationals: 30000/1001 is not 29.97, and MP4 time bases are integers.
#pragma once

#include <string>

namespace t2v {

struct Rational {
  int num = 16;  // Wan's native rate is 16 fps
  int den = 1;
  double value() const { return static_cast<double>(num) / den; }
  bool operator==(const Rational&) const = default;
};

// Accepts "16", "30000/1001", and decimals; the NTSC decimals ("23.976", "23.98", "29.97",
// "59.94", ...) mean N*1000/1001, any other decimal is taken exactly ("12.5" -> 25/2).
// Result is reduced and lies in [kMinFps, kMaxFps]. Anything else (0, negative, NaN, "1e3",
// "29,97", "30/0") -> Error(64).
Rational parse_fps(const std::string& text);

// Error(64) unless 0 < num, 0 < den and the value lies in [kMinFps, kMaxFps].
void check_fps(Rational fps);

// "16" for 16/1, "30000/1001" otherwise.
std::string format_fps(Rational fps);

inline constexpr double kMinFps = 0.1;
inline constexpr double kMaxFps = 1000.0;

}  // namespace t2v
