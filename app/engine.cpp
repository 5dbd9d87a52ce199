#include "app/engine.h"

#include "app/device.h"

namespace t2v {

EngineOptions engine_options(const GenerateOptions& o) {
  EngineOptions e;
  e.device = o.device;
  e.dtype = o.dtype;
  e.strict = o.strict;
  e.offload = o.offload;
  e.max_memory = o.max_memory;
  return e;
}

Engine::Engine(const EngineOptions& o) {
  load_.device = open_device(device_option_name(o.device));
  load_.dtype = compute_dtype_for(o.dtype, load_.device);
  load_.vae_dtype = vae_dtype_for(o.dtype, load_.device);
  load_.strict = o.strict;
  load_.keep_text_encoder = o.keep_text_encoder;
  load_.offload = o.offload;
  load_.max_memory = o.max_memory;
}

Engine::~Engine() = default;

const ModelPaths& Engine::resolve_model(const GenerateOptions& o) {
  paths_ = resolve_model_paths(o);
  return paths_;
}

Pipeline& Engine::pipeline() {
  if (!pipeline_) pipeline_ = std::make_unique<Pipeline>(paths_, load_);
  return *pipeline_;
}

}  // namespace t2v
