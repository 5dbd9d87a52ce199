#include "text_encoder/probe.h"

#include "core/error.h"
#include "core/safetensors.h"
#include "text_encoder/umt5.h"

namespace t2v {

void probe_text_encoder(const std::string& weights, const std::string& config, const std::string& inputs,
                        const std::string& out, Device dev) {
  // "auto" reads the sizes off the weights; anything else as UMT5Config::resolve.
  UMT5Config cfg = config == "auto" ? UMT5Config::from_weights(TensorStore::open(weights))
                                    : UMT5Config::resolve(config, weights);
  SafetensorsFile in(inputs);
  auto read_ids = [&](const char* name, bool required) -> Tensor {
    const TensorInfo* info = in.find(name);
    if (!info) {
      if (required)
        throw Error(kExitDataErr, fmt::format("probe inputs '{}' lack tensor '{}'", inputs, name),
                    "write input_ids (I64 [B, L]) and attention_mask (I64 [B, L])");
      return {};
    }
    if (info->shape.ndim() != 2)
      fail(kExitDataErr, "probe inputs '{}': '{}' is {}, expected [B, L]", inputs, name, info->shape.str());
    if (info->dtype != DType::I64 && info->dtype != DType::I32)
      fail(kExitDataErr, "probe inputs '{}': '{}' is {}, expected I64", inputs, name, dtype_name(info->dtype));
    return in.get(name).to(DType::I64);
  };
  Tensor ids = read_ids("input_ids", true);
  Tensor mask = read_ids("attention_mask", false);
  UMT5Encoder enc = UMT5Encoder::load(weights, cfg, dev);
  Tensor h = enc.forward(ids, mask).to(Device::CPU);
  save_safetensors(out, {{"last_hidden_state", h}});
}

}  // namespace t2v
