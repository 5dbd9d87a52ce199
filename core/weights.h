// Binds checkpoint tensors to model structs by name. Model code asks for each
// tensor by its canonical (original-layout) key and expected shape; the loader
// maps the key to the file's layout, checks shape, dequantizes (fp8 x
// scale_weight), converts to the compute dtype and moves it to the device.
// Problems are collected, so one error lists every missing/misshaped key.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace t2v {

struct WeightLoaderOptions {
  Device device = Device::CPU;
  DType dtype = DType::F32;          // compute dtype for get(); get_f32() always gives F32
  std::string layout = "original";   // detected layout, named in errors
  std::string strip_prefix;          // e.g. "model.diffusion_model." (Comfy)
  // canonical key -> key in the file (after the prefix); identity when empty.
  std::function<std::string(const std::string&)> rename;
  // Called for a shape mismatch to suggest the likely cause ("looks like the 14B model").
  std::function<std::string(const std::string& key, const Shape& found, const Shape& expected)> shape_hint;
};

class WeightLoader {
 public:
  WeightLoader(const TensorStore& store, WeightLoaderOptions opts);

  // Returns the tensor in the compute dtype on the device. On a problem it
  // records it and returns an undefined Tensor; call finish() to raise.
  Tensor get(const std::string& canonical_key, const Shape& expected);
  Tensor get_f32(const std::string& canonical_key, const Shape& expected);
  Tensor get_as(const std::string& canonical_key, const Shape& expected, DType dt);
  bool has(const std::string& canonical_key) const;

  // Throws Error(65) listing the first missing/misshaped keys with the layout.
  // Unused file keys (other than known markers like `scaled_fp8`, `*.scale_weight`)
  // are warned about, or raised when strict.
  void finish(bool strict = false);
  const std::vector<std::string>& unused_keys() const { return unused_; }

 private:
  std::string file_key(const std::string& canonical) const;
  const TensorStore& store_;
  WeightLoaderOptions opts_;
  std::set<std::string> used_;
  std::vector<std::string> problems_;
  std::vector<std::string> unused_;
};

}  // namespace t2v
