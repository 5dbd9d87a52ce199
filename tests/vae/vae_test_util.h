// Shared helpers for the VAE tests: golden paths, error measures, temp folders.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "core/safetensors.h"
#include "vae/wan_vae.h"

namespace t2v::vae_test {

inline std::string data_dir() { return std::string(T2V_TEST_DATA_DIR) + "/vae"; }
inline std::string original_file() { return data_dir() + "/wan_vae_original.safetensors"; }
inline std::string diffusers_dir() { return data_dir() + "/diffusers"; }
inline std::string goldens_file() { return data_dir() + "/goldens.safetensors"; }

// The golden model's config (tools/gen_vae_goldens.py), read from the diffusers folder.
inline WanVAEConfig golden_config() { return WanVAEConfig::from_json(diffusers_dir() + "/config.json"); }

// The header-only check: the loader's dry run (every problem in one Error(65)).
inline WeightReport check_weights(const TensorStore& store, const WanVAEConfig& cfg, WanVAEParts parts = {}) {
  WeightReport report;
  WanVAELoadOptions o;
  o.dry_run = true;
  o.parts = parts;
  o.report = &report;
  WanVAE::load(store, cfg, o);
  return report;
}

inline const TensorStore& goldens() {
  static const TensorStore store = TensorStore::open(goldens_file());
  return store;
}
inline Tensor golden(const std::string& name) { return goldens().get(name).to(DType::F32).clone(); }

// max |a - b| / max |b|: the "relative error" of the acceptance rule.
inline double rel_err(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  double diff = 0, ref = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(pa[i] - pb[i])));
    ref = std::max(ref, static_cast<double>(std::fabs(pb[i])));
    if (std::isnan(pa[i])) return INFINITY;
  }
  return diff / std::max(ref, 1e-30);
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  double d = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    d = std::max(d, static_cast<double>(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
  return d;
}

// A fresh folder under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "t2v_vae_test_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace t2v::vae_test
