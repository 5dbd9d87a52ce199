#include "app/model_loader.h"

#include <functional>

#include <fmt/format.h>

#include "core/error.h"
#include "diffusion/wan_dit_weights.h"

namespace t2v {

namespace {

// The bytes of a store's tensors (those whose key `take` accepts); 0 when it cannot be opened.
double tensor_bytes(const std::string& path, const std::function<bool(const std::string&)>& take = {}) {
  if (path.empty()) return 0.0;
  try {
    const TensorStore s = TensorStore::open(path);
    double bytes = 0;
    for (const std::string& name : s.names())
      if (!take || take(name)) bytes += static_cast<double>(s.info(name).end - s.info(name).begin);
    return bytes;
  } catch (const Error&) {
    return 0.0;
  }
}

}  // namespace

ModelLoader::ModelLoader(ModelPaths paths, PipelineLoadOptions opts) : paths_(std::move(paths)), opts_(opts) {
  // Without a config.json the VAE's structure is read off its tensors (Wan2.1 or Wan2.2).
  cfg_.vae = WanVAEConfig::resolve(paths_.vae_config, paths_.vae);
  dit_store_.emplace(TensorStore::open(paths_.dit));
  // The config.json given or beside the weights (the official checkpoint folders keep
  // one), else the sizes read off the tensor shapes.
  cfg_.dit = WanDiTConfig::resolve(paths_.dit_config, paths_.dit, &*dit_store_);
  if (!paths_.dit_low.empty()) {
    dit_low_store_.emplace(TensorStore::open(paths_.dit_low));
    cfg_.dit_low = WanDiTConfig::resolve(paths_.dit_low_config, paths_.dit_low, &*dit_low_store_);
    const WanDiTConfig& a = cfg_.dit;
    const WanDiTConfig& b = *cfg_.dit_low;
    if (a.summary() != b.summary())
      throw Error(kExitDataErr,
                  fmt::format("the low-noise expert {} ({}) does not match the high-noise expert {} ({})",
                              paths_.dit_low, b.summary(), paths_.dit, a.summary()),
                  "pass the two experts of one Wan2.2 A14B model (--dit high-noise, --dit-low low-noise)");
  }
  cfg_.t5 = UMT5Config::resolve(paths_.t5_config, paths_.t5);
  if (cfg_.t5.d_model != cfg_.dit.text_dim)
    throw Error(kExitDataErr,
                fmt::format("text encoder width {} does not match the transformer's text_dim {}", cfg_.t5.d_model,
                            cfg_.dit.text_dim),
                "use the text encoder that belongs to this model");
  // The DiT writes z channels and reads z (t2v, ti2v) or [noise z, mask 4, image latent z]
  // (Wan2.1 I2V/FLF2V, Wan2.2 I2V-A14B) (docs/wan.md §5.1, §8).
  const int64_t z = cfg_.vae.z_dim;
  if (cfg_.dit.out_dim != z || (cfg_.dit.in_dim != z && cfg_.dit.in_dim != 2 * z + 4))
    throw Error(kExitDataErr,
                fmt::format("VAE {} has {} latent channels, the transformer {} reads {} and writes {}", paths_.vae, z,
                            paths_.dit, cfg_.dit.in_dim, cfg_.dit.out_dim),
                "use the VAE that belongs to this model: Wan2.2 TI2V-5B (48 channels) needs the Wan2.2 VAE, Wan2.1 "
                "and Wan2.2 A14B (16 channels) the Wan2.1 VAE");
  ModelConfigs::FileBytes& fb = cfg_.file_bytes;
  fb.t5 = tensor_bytes(paths_.t5);
  fb.dit = tensor_bytes(paths_.dit);
  fb.vae = tensor_bytes(paths_.vae);
  fb.vae_decoder = tensor_bytes(paths_.vae, [](const std::string& k) {
    return k.find("decoder.") != std::string::npos || k.find("post_quant_conv") != std::string::npos;
  });
  if (cfg_.dit.image_to_video()) {  // docs/wan.md §5.1
    if (paths_.clip.empty())
      throw Error(kExitNoInput,
                  fmt::format("the transformer is a Wan2.1 {} model and needs the CLIP image encoder, but none was "
                              "found",
                              cfg_.dit.model_type()),
                  "pass --clip clip_vision_h.safetensors (or use a diffusers folder with image_encoder/)");
    cfg_.clip = ClipVisionConfig::resolve(paths_.clip_config, paths_.clip);
    fb.clip = tensor_bytes(paths_.clip);
    if (cfg_.clip->hidden != cfg_.dit.image_dim)
      throw Error(kExitDataErr,
                  fmt::format("image encoder {} is {} wide, but the transformer's image embedder takes {}-wide CLIP "
                              "features",
                              paths_.clip, cfg_.clip->hidden, cfg_.dit.image_dim),
                  "use the image encoder that belongs to this model (Wan2.1 I2V/FLF2V: CLIP ViT-H/14, "
                  "clip_vision_h.safetensors)");
    if (cfg_.dit.in_dim != 2 * z + 4)
      throw Error(kExitDataErr,
                  fmt::format("the image-to-video transformer takes {} input channels; noise {} + mask 4 + image "
                              "latents {} would be {}",
                              cfg_.dit.in_dim, cfg_.dit.out_dim, z, cfg_.dit.out_dim + 4 + z),
                  "use the VAE and transformer of one Wan2.1 image-to-video model");
  }
}

UMT5Tokenizer ModelLoader::load_tokenizer() const { return UMT5Tokenizer::from_path(paths_.tokenizer); }

UMT5Encoder ModelLoader::load_text_encoder() const {
  UMT5LoadOptions to;
  to.device = opts_.device;
  to.dtype = opts_.dtype;
  return UMT5Encoder::load(paths_.t5, cfg_.t5, to);
}

namespace {

// One transformer (the only one, or an A14B expert) with the load options; with --offload on
// a device it loads into host memory, dense, and all but its blocks move to the device.
WanDiT load_one_dit(const TensorStore& store, const WanDiTConfig& cfg, const PipelineLoadOptions& o,
                    std::shared_ptr<const WeightDelta> delta) {
  WanDiTLoadOptions lo;
  lo.device = o.device;
  lo.dtype = o.dtype;
  lo.strict = o.strict;
  lo.delta = std::move(delta);
  if (o.offload && o.device != Device::CPU) {
    lo.device = Device::CPU;
    lo.keep_packed = false;
    WanDiT dit(cfg, load_wan_dit(store, cfg, lo));
    dit.set_offload(o.device);
    return dit;
  }
  return WanDiT(cfg, load_wan_dit(store, cfg, lo));
}

}  // namespace

WanDiT ModelLoader::load_dit(std::shared_ptr<const WeightDelta> delta) const {
  return load_one_dit(*dit_store_, cfg_.dit, opts_, std::move(delta));
}

WanDiT ModelLoader::load_dit_low() const {
  T2V_ASSERT(cfg_.dit_low && dit_low_store_, "no low-noise expert");
  return load_one_dit(*dit_low_store_, *cfg_.dit_low, opts_, nullptr);
}

WanVAE ModelLoader::load_vae() const {
  WanVAELoadOptions vo;
  vo.device = opts_.device;
  vo.dtype = opts_.vae_dtype;
  return WanVAE::load(paths_.vae, cfg_.vae, vo);
}

ClipVisionEncoder ModelLoader::load_image_encoder() const {
  T2V_ASSERT(cfg_.clip.has_value(), "no image encoder for a text-to-video model");
  ClipVisionLoadOptions co;
  co.device = opts_.device;
  co.dtype = opts_.dtype;
  co.strict = opts_.strict;
  return ClipVisionEncoder::load(paths_.clip, *cfg_.clip, co);
}

WanVAE ModelLoader::load_vae_decoder() const {
  WanVAELoadOptions vo;
  vo.device = opts_.device;
  vo.dtype = opts_.vae_dtype;
  vo.parts.encoder = false;
  return WanVAE::load(paths_.vae, cfg_.vae, vo);
}

int64_t ModelLoader::dit_weight_bytes() const {
  int64_t bytes = 0;
  for (const auto& r : wan_dit_weight_list(cfg_.dit))
    bytes += r.shape.numel() * static_cast<int64_t>(dtype_size(r.precision == WeightPrecision::F32 ? DType::F32 : opts_.dtype));
  return bytes;
}

}  // namespace t2v
