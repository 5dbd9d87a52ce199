// What every command that runs a model shares, opened once per process: the device
// (the CUDA backend started here), the weight dtype chosen for it and, for generate and
// batch, the model's files and the pipeline built from their configs.
//
// Opening is ordered so that the cheapest refusals come first: the device and the dtype
// (Error 69 / 64) before any model file is looked at, the paths (Error 66) before any is
// read, the configs and tokenizer on the first pipeline() call, the weights on the first
// render.
#pragma once

#include <memory>

#include "app/choices.h"
#include "app/model_loader.h"
#include "app/model_paths.h"
#include "app/options.h"
#include "app/pipeline.h"

namespace t2v {

struct EngineOptions {
  Device device = Device::CPU;
  DTypeChoice dtype = DTypeChoice::kAuto;
  bool strict = false;             // unused weight keys and prompt truncation are errors
  bool keep_text_encoder = false;  // keep umT5 loaded between videos (batch)
  bool offload = false;            // --offload (PipelineLoadOptions::offload)
  uint64_t max_memory = 0;         // --max-memory in bytes, 0: the available memory
};

// The engine options of generate/batch settings.
EngineOptions engine_options(const GenerateOptions& o);

class Engine {
 public:
  // Starts the device (open_device: Error 69 when this build or machine has none) and
  // chooses the compute dtypes for it (compute_dtype_for: Error 64; vae_dtype_for).
  // Reads no model file.
  explicit Engine(const EngineOptions& o);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Device device() const { return load_.device; }
  DType dtype() const { return load_.dtype; }          // umT5 and the DiT
  DType vae_dtype() const { return load_.vae_dtype; }  // the VAE

  // Finds the model's parts from --model/--dit/--t5/--vae/--tokenizer, or the default
  // model when none is given (resolve_model_paths: Error 66 naming a missing part). The
  // result has any() false when there is no model at all; the caller says so.
  const ModelPaths& resolve_model(const GenerateOptions& o);
  const ModelPaths& model() const { return paths_; }

  // The pipeline of the resolved model, made on the first call (configs and tokenizer;
  // the weights load on its first render). A failed call leaves none, so the next
  // call tries again.
  Pipeline& pipeline();

 private:
  PipelineLoadOptions load_;
  ModelPaths paths_;
  std::unique_ptr<Pipeline> pipeline_;
};

}  // namespace t2v
