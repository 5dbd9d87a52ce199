#include "app/noise_input.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/finite.h"
#include "core/safetensors.h"

namespace t2v {

Tensor read_noise(const std::string& path, const Shape& shape) {
  SafetensorsFile f(path);  // the header only: validated, nothing read from the data yet
  const TensorInfo* ti = f.find("noise");
  if (!ti && f.tensors().size() == 1) ti = &f.tensors()[0];
  if (!ti)
    throw Error(kExitDataErr, fmt::format("--noise {}: no tensor named 'noise'", path),
                "save the starting latents under the key 'noise'");
  if (ti->dtype != DType::F32 && ti->dtype != DType::F16 && ti->dtype != DType::BF16)
    throw Error(kExitDataErr, fmt::format("--noise {}: tensor {} is {}, not a float tensor", path, ti->name,
                                          dtype_name(ti->dtype)),
                "save the noise as F32 (or F16/BF16)");
  const std::vector<int64_t> dims = shape.vec();
  const Shape unbatched(std::vector<int64_t>(dims.begin() + 1, dims.end()));
  if (ti->shape != shape && ti->shape != unbatched)
    throw Error(kExitDataErr,
                fmt::format("--noise {}: tensor {} is {}, this video needs {}", path, ti->name, ti->shape.str(),
                            shape.str()),
                "match --size and --frames to the noise tensor");
  Tensor t = f.get(ti->name).to(DType::F32);
  if (const int64_t bad = first_non_finite(t); bad >= 0)
    throw Error(kExitDataErr, fmt::format("--noise {}: tensor {} holds NaN or Inf (element {})", path, ti->name, bad),
                "regenerate the noise file");
  return t.reshape(shape).clone();
}

}  // namespace t2v
