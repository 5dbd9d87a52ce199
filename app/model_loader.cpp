#include "app/model_loader.h"

#include <fmt/format.h>

#include "core/error.h"
#include "diffusion/wan_dit_weights.h"

namespace t2v {

ModelLoader::ModelLoader(ModelPaths paths, PipelineLoadOptions opts) : paths_(std::move(paths)), opts_(opts) {
  cfg_.vae = WanVAEConfig::resolve(paths_.vae_config.empty() ? "wan2.1-vae" : paths_.vae_config, paths_.vae);
  dit_store_.emplace(TensorStore::open(paths_.dit));
  cfg_.dit = paths_.dit_config.empty() ? WanDiTConfig::from_weights(*dit_store_)
                                       : WanDiTConfig::from_json(paths_.dit_config);
  cfg_.t5 = UMT5Config::resolve(paths_.t5_config.empty() ? "umt5-xxl" : paths_.t5_config, paths_.t5);
  if (cfg_.t5.d_model != cfg_.dit.text_dim)
    throw Error(kExitDataErr,
                fmt::format("text encoder width {} does not match the transformer's text_dim {}", cfg_.t5.d_model,
                            cfg_.dit.text_dim),
                "use the text encoder that belongs to this model");
  if (cfg_.vae.z_dim != cfg_.dit.in_dim || cfg_.vae.z_dim != cfg_.dit.out_dim)
    throw Error(kExitDataErr,
                fmt::format("VAE latent channels {} do not match the transformer's {} in / {} out", cfg_.vae.z_dim,
                            cfg_.dit.in_dim, cfg_.dit.out_dim),
                "use the VAE that belongs to this model (Wan2.1 VAE: 16 channels)");
}

UMT5Tokenizer ModelLoader::load_tokenizer() const { return UMT5Tokenizer::from_path(paths_.tokenizer); }

UMT5Encoder ModelLoader::load_text_encoder() const {
  UMT5LoadOptions to;
  to.device = opts_.device;
  to.dtype = opts_.dtype;
  return UMT5Encoder::load(paths_.t5, cfg_.t5, to);
}

WanDiT ModelLoader::load_dit(std::shared_ptr<const WeightDelta> delta) const {
  WanDiTLoadOptions lo;
  lo.device = opts_.device;
  lo.dtype = opts_.dtype;
  lo.strict = opts_.strict;
  lo.delta = std::move(delta);
  return WanDiT(cfg_.dit, load_wan_dit(*dit_store_, cfg_.dit, lo));
}

WanVAE ModelLoader::load_vae_decoder() const {
  WanVAELoadOptions vo;
  vo.device = opts_.device;
  vo.dtype = opts_.vae_dtype;
  vo.parts.encoder = false;
  return WanVAE::load(paths_.vae, cfg_.vae, vo);
}

}  // namespace t2v
