// Bounds on model config values. Every value a config.json (or a checkpoint's
// tensor shapes) sets is range-checked, and sizes derived from several values
// are multiplied with overflow checks, so a corrupt or hostile config fails with
// one Error naming the file and key instead of wrapping around or allocating
// gigabytes of bookkeeping before the first tensor is read.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace t2v {

class ConfigCheck {
 public:
  // origin: the file (or "x.safetensors (detected config)"); hint: the fix.
  ConfigCheck(std::string origin, std::string hint, int code = kExitConfig)
      : origin_(std::move(origin)), hint_(std::move(hint)), code_(code) {}

  // "{origin}: {key} = {value} is outside [lo, hi]" unless lo <= value <= hi.
  void range(std::string_view key, int64_t value, int64_t lo, int64_t hi) const;
  // For real values: lo < value < hi (NaN fails).
  void open_range(std::string_view key, double value, double lo, double hi) const;
  // The product of `factors`, named `what` ("num_attention_heads x attention_head_dim");
  // an error when it overflows int64 or exceeds `limit`.
  int64_t product(std::string_view what, std::initializer_list<int64_t> factors, int64_t limit = INT64_MAX) const;
  [[noreturn]] void fail(const std::string& what) const;

  const std::string& origin() const { return origin_; }

 private:
  std::string origin_, hint_;
  int code_;
};

}  // namespace t2v
