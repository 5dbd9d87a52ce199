#include "core/config_check.h"

#include <cmath>

#include <fmt/format.h>

namespace t2v {

void ConfigCheck::fail(const std::string& what) const { throw Error(code_, origin_ + ": " + what, hint_); }

void ConfigCheck::range(std::string_view key, int64_t value, int64_t lo, int64_t hi) const {
  if (value < lo || value > hi) fail(fmt::format("{} = {} is outside [{}, {}]", key, value, lo, hi));
}

void ConfigCheck::open_range(std::string_view key, double value, double lo, double hi) const {
  if (!(value > lo && value < hi)) fail(fmt::format("{} = {} is outside ({}, {})", key, value, lo, hi));
}

int64_t ConfigCheck::product(std::string_view what, std::initializer_list<int64_t> factors, int64_t limit) const {
  int64_t p = 1;
  std::string shown;
  for (int64_t f : factors) shown += fmt::format("{}{}", shown.empty() ? "" : " x ", f);
  for (int64_t f : factors) {
    if (f < 0 || __builtin_mul_overflow(p, f, &p) || p > limit)
      fail(fmt::format("{} = {} is {}", what, shown, p > limit ? fmt::format("over the limit of {}", limit)
                                                               : std::string("too large (overflows 64 bits)")));
  }
  return p;
}

}  // namespace t2v
