// The one place the app reads a model's files: the three configs (checked to fit
// together), the tokenizer and the weights of the text encoder, the transformer
// and the VAE decoder.
#pragma once

#include <memory>
#include <optional>

#include "app/model_paths.h"
#include "core/safetensors.h"
#include "core/tensor.h"
#include "diffusion/wan_dit.h"
#include "diffusion/wan_dit_config.h"
#include "image_encoder/clip_vision.h"
#include "text_encoder/tokenizer.h"
#include "text_encoder/umt5.h"
#include "vae/wan_vae.h"
#include "vae/wan_vae_config.h"

namespace t2v {

struct PipelineLoadOptions {
  Device device = Device::CPU;
  // The compute dtype of umT5, the DiT and the CLIP image encoder (their GEMM weights; each model keeps its own
  // fp32 islands): F32 on the CPU, BF16 or F32 on a device (compute_dtype_for).
  DType dtype = DType::F32;
  DType vae_dtype = DType::F32;    // the VAE decoder's compute dtype (vae_dtype_for)
  bool strict = false;             // unused weight keys and prompt truncation are errors
  bool keep_text_encoder = false;  // keep umT5 loaded between videos (batch); else freed before the DiT loads
  // --offload (off the CPU): the DiT's blocks stay in host memory and each is copied to the
  // device just before it runs (WanDiT::set_offload); the rest of the DiT is on the device.
  bool offload = false;
  uint64_t max_memory = 0;  // --max-memory: the admission limit in bytes; 0: what is available
};

struct ModelConfigs {
  WanDiTConfig dit;                     // the only transformer, or Wan2.2 A14B's high-noise expert
  std::optional<WanDiTConfig> dit_low;  // Wan2.2 A14B's low-noise expert
  UMT5Config t5;
  WanVAEConfig vae;
  std::optional<ClipVisionConfig> clip;  // image-to-video models only
  // Bytes of the tensors each load reads, from the file headers (0 when a file could not
  // be opened: its load reports why). Loading maps the files and reads those bytes, and
  // the pages read count in the process's resident set while the file stays mapped: the
  // DiT's for the whole run (its store stays open), the others' during their load.
  struct FileBytes {
    double t5 = 0, dit = 0, vae_decoder = 0, vae = 0, clip = 0;
  } file_bytes;
};

class ModelLoader {
 public:
  // Reads the configs (cheap: a mismatch is found in milliseconds, before any weights):
  // the VAE's (config.json, else read off its shapes: Wan2.1 or Wan2.2), the DiT's and the
  // low-noise expert's and umT5's (each from its config.json, else detected from the
  // weights' shapes) and, for a Wan2.1 image-to-video DiT, the CLIP image encoder's (Error
  // 66 when there is none). Error(65) when the text width, the latent channels (a Wan2.2
  // VAE with a Wan2.1 DiT, or the reverse), the image width (CLIP width vs the DiT's
  // image_dim) of the parts or the two experts differ.
  ModelLoader(ModelPaths paths, PipelineLoadOptions opts);

  const ModelConfigs& configs() const { return cfg_; }
  const ModelPaths& paths() const { return paths_; }
  const PipelineLoadOptions& options() const { return opts_; }
  const TensorStore& dit_store() const { return *dit_store_; }  // headers: dtypes of the DiT's tensors

  UMT5Tokenizer load_tokenizer() const;
  UMT5Encoder load_text_encoder() const;  // in opts.dtype
  // In opts.dtype; unused keys are errors with opts.strict; `delta` (LoRAs) merged in fp32 at load.
  WanDiT load_dit(std::shared_ptr<const WeightDelta> delta = nullptr) const;
  WanDiT load_dit_low() const;      // the low-noise expert (configs().dit_low must be set), no LoRA
  WanVAE load_vae_decoder() const;  // the decoder half only, in opts.vae_dtype
  WanVAE load_vae() const;          // encoder and decoder in opts.vae_dtype (image-to-video encodes its input)
  ClipVisionEncoder load_image_encoder() const;  // Wan2.1 image-to-video models only, in opts.dtype
  // Bytes of one expert's weights in opts.dtype (for the keep-one-expert decision).
  int64_t dit_weight_bytes() const;

 private:
  ModelPaths paths_;
  PipelineLoadOptions opts_;
  ModelConfigs cfg_;
  std::optional<TensorStore> dit_store_;  // opened for the config, kept for the weights
  std::optional<TensorStore> dit_low_store_;
};

}  // namespace t2v
