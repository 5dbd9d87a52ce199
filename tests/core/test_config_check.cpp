// ConfigCheck: ranges and overflow-checked products name the file and key in Error(78).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "core/config_check.h"

using namespace t2v;

namespace {

template <class F>
std::string error_of(F&& f, int code = kExitConfig) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

}  // namespace

TEST(ConfigCheck, RangesNameFileKeyAndValue) {
  const ConfigCheck c("vae/config.json", "use the model's config.json");
  EXPECT_NO_THROW(c.range("num_layers", 1, 1, 1024));
  EXPECT_NO_THROW(c.range("num_layers", 1024, 1, 1024));
  EXPECT_EQ(error_of([&] { c.range("num_layers", 1000000000, 1, 1024); }),
            "vae/config.json: num_layers = 1000000000 is outside [1, 1024]; hint: use the model's config.json");
  EXPECT_NE(error_of([&] { c.range("d_model", -4, 1, 65536); }).find("d_model = -4"), std::string::npos);
  EXPECT_NO_THROW(c.open_range("eps", 1e-6, 0.0, 1.0));
  for (double bad : {0.0, 1.0, -1e-6, std::nan("")})
    EXPECT_NE(error_of([&] { c.open_range("eps", bad, 0.0, 1.0); }).find("vae/config.json: eps = "),
              std::string::npos);
}

TEST(ConfigCheck, ProductsAreOverflowChecked) {
  const ConfigCheck c("config.json", "", kExitDataErr);
  EXPECT_EQ(c.product("heads x head_dim", {40, 128}), 5120);
  const int64_t big = int64_t{1} << 32;
  const std::string m = error_of([&] { c.product("heads x head_dim", {big, big}); }, kExitDataErr);
  EXPECT_NE(m.find("config.json: heads x head_dim = 4294967296 x 4294967296 is too large (overflows 64 bits)"),
            std::string::npos)
      << m;
  EXPECT_NE(error_of([&] { c.product("dim", {40, 4096}, 65536); }, kExitDataErr).find("over the limit of 65536"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.product("dim", {-1, 4}); }, kExitDataErr).find("dim = -1 x 4"), std::string::npos);
  EXPECT_EQ(c.product("max", {std::numeric_limits<int64_t>::max(), 1}), std::numeric_limits<int64_t>::max());
}
