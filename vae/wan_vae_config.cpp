#include "vae/wan_vae_config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kernels/ops.h"

namespace t2v {

namespace {

// docs/wan.md §3.2: the 16 latent channel statistics of the Wan2.1 VAE (also
// diffusers' AutoencoderKLWan defaults).
const std::vector<float> kWan21LatentsMean = {-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,
                                              -0.1517f, 1.5508f,  0.4134f,  -0.0715f, 0.5517f,  -0.3632f,
                                              -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
const std::vector<float> kWan21LatentsStd = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
                                             3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f};

[[noreturn]] void config_error(const std::string& origin, const std::string& what, const std::string& hint) {
  throw Error(kExitConfig, origin + ": " + what, hint);
}

template <class T>
T field(const nlohmann::json& j, const char* name, const T& fallback, const std::string& origin) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    config_error(origin, fmt::format("field '{}' has the wrong type ({})", name, it->dump()),
                 "compare with diffusers' AutoencoderKLWan config.json");
  }
}

int count_true(const std::vector<bool>& v) {
  int n = 0;
  for (bool b : v) n += b ? 1 : 0;
  return n;
}

}  // namespace

WanVAEConfig WanVAEConfig::preset(const std::string& name) {
  if (name == "wan2.1-vae" || name == "wan2.1") {
    WanVAEConfig c;
    c.latents_mean = kWan21LatentsMean;
    c.latents_std = kWan21LatentsStd;
    return c;
  }
  throw Error(kExitUsage, fmt::format("unknown VAE preset '{}'", name),
              "use wan2.1-vae or the path of a diffusers vae/config.json");
}

WanVAEConfig WanVAEConfig::from_json_text(const std::string& text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    config_error(origin, fmt::format("not valid JSON ({})", e.what()), "pass a diffusers vae/config.json");
  }
  if (!j.is_object()) config_error(origin, "not a JSON object", "pass a diffusers vae/config.json");
  const std::string cls = field<std::string>(j, "_class_name", "AutoencoderKLWan", origin);
  if (cls != "AutoencoderKLWan")
    config_error(origin, fmt::format("_class_name is '{}', not AutoencoderKLWan", cls),
                 "pass the config.json of the pipeline's vae/ folder");
  if (field<bool>(j, "is_residual", false, origin))
    config_error(origin, "is_residual is true (the Wan2.2 VAE)", "only the Wan2.1 VAE is supported");
  if (field<int>(j, "patch_size", 1, origin) != 1)
    config_error(origin, "patch_size is set (the Wan2.2 VAE)", "only the Wan2.1 VAE is supported");

  WanVAEConfig c = preset("wan2.1-vae");
  c.base_dim = field<int>(j, "base_dim", c.base_dim, origin);
  c.decoder_base_dim = field<int>(j, "decoder_base_dim", c.base_dim, origin);
  c.z_dim = field<int>(j, "z_dim", c.z_dim, origin);
  c.dim_mult = field<std::vector<int>>(j, "dim_mult", c.dim_mult, origin);
  c.num_res_blocks = field<int>(j, "num_res_blocks", c.num_res_blocks, origin);
  c.attn_scales = field<std::vector<double>>(j, "attn_scales", c.attn_scales, origin);
  c.temperal_downsample = field<std::vector<bool>>(j, "temperal_downsample", c.temperal_downsample, origin);
  c.in_channels = field<int>(j, "in_channels", c.in_channels, origin);
  c.out_channels = field<int>(j, "out_channels", c.out_channels, origin);
  c.latents_mean = field<std::vector<float>>(j, "latents_mean", c.latents_mean, origin);
  c.latents_std = field<std::vector<float>>(j, "latents_std", c.latents_std, origin);
  const double dropout = field<double>(j, "dropout", 0.0, origin);
  (void)dropout;  // inference: dropout is the identity whatever its rate
  c.validate(origin);
  return c;
}

WanVAEConfig WanVAEConfig::from_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f)
    throw Error(kExitNoInput, fmt::format("cannot read VAE config '{}'", path), "check the path");
  std::stringstream ss;
  ss << f.rdbuf();
  return from_json_text(ss.str(), path);
}

WanVAEConfig WanVAEConfig::load(const std::string& file_or_preset) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(file_or_preset, ec)) return from_json_file((fs::path(file_or_preset) / "config.json").string());
  if (fs::exists(file_or_preset, ec)) return from_json_file(file_or_preset);
  return preset(file_or_preset);
}

void WanVAEConfig::validate(const std::string& origin) const {
  const std::string hint = "compare with the Wan2.1 VAE: base_dim 96, z_dim 16, dim_mult [1,2,4,4]";
  if (base_dim <= 0 || decoder_base_dim <= 0 || base_dim > 4096 || decoder_base_dim > 4096)
    config_error(origin, fmt::format("base_dim {} / decoder_base_dim {} out of range", base_dim, decoder_base_dim),
                 hint);
  if (z_dim <= 0 || z_dim > 1024) config_error(origin, fmt::format("z_dim {} out of range", z_dim), hint);
  if (dim_mult.size() < 2 || dim_mult.size() > 8)
    config_error(origin, fmt::format("dim_mult has {} entries", dim_mult.size()), hint);
  for (int m : dim_mult)
    if (m <= 0 || m > 64) config_error(origin, fmt::format("dim_mult entry {} out of range", m), hint);
  // The decoder's upsample convs halve the channels and the next stage takes that half in.
  for (size_t i = 0; i + 1 < dim_mult.size(); ++i)
    if ((decoder_base_dim * dim_mult[i + 1]) % 2 != 0)
      config_error(origin, "decoder stage widths must be even (upsampling halves them)", hint);
  if (num_res_blocks <= 0 || num_res_blocks > 16)
    config_error(origin, fmt::format("num_res_blocks {} out of range", num_res_blocks), hint);
  if (!attn_scales.empty())
    config_error(origin, "attn_scales is not empty",
                 "the Wan2.1 VAE has attention only in the middle blocks; set attn_scales to []");
  if (temperal_downsample.size() != dim_mult.size() - 1)
    config_error(origin,
                 fmt::format("temperal_downsample has {} entries, dim_mult needs {}", temperal_downsample.size(),
                             dim_mult.size() - 1),
                 hint);
  // The chunked encoder reads 1 + 4k frames (diffusers and the reference hard-code chunks of 4).
  if (count_true(temperal_downsample) != 2)
    config_error(origin, "temperal_downsample must have exactly two true entries (time x4)", hint);
  if (in_channels <= 0 || out_channels <= 0 || in_channels > 64 || out_channels > 64)
    config_error(origin, "in_channels / out_channels out of range", hint);
  if (latents_mean.size() != static_cast<size_t>(z_dim) || latents_std.size() != static_cast<size_t>(z_dim))
    config_error(origin,
                 fmt::format("latents_mean/latents_std have {}/{} entries, z_dim is {}", latents_mean.size(),
                             latents_std.size(), z_dim),
                 hint);
  for (float s : latents_std)
    if (!(s > 0.0f)) config_error(origin, fmt::format("latents_std entry {} is not positive", s), hint);
}

int WanVAEConfig::temporal_factor() const { return 1 << count_true(temperal_downsample); }
int WanVAEConfig::spatial_factor() const { return 1 << static_cast<int>(dim_mult.size() - 1); }

namespace {

// [1, C, 1, 1, 1] on the device of `like`, for per-channel broadcasting over [B, C, T, h, w].
Tensor channel_vector(const std::vector<float>& v, const Tensor& like) {
  Tensor t = Tensor::from_floats(v, Shape{1, static_cast<int64_t>(v.size()), 1, 1, 1});
  return t.to(like.dtype()).to(like.device());
}

void check_latent(const Tensor& z, const WanVAEConfig& cfg, const char* what) {
  if (z.dim() != 5 || z.size(1) != cfg.z_dim)
    throw Error(kExitDataErr, fmt::format("{}: latent is {}, expected [B, {}, T, h, w]", what, z.shape().str(), cfg.z_dim),
                "pass a 5-D latent with the VAE's z_dim channels");
}

}  // namespace

Tensor wan_vae_denormalize_latents(const Tensor& z, const WanVAEConfig& cfg) {
  check_latent(z, cfg, "denormalize");
  return ops::add(ops::mul(z, channel_vector(cfg.latents_std, z)), channel_vector(cfg.latents_mean, z));
}

Tensor wan_vae_normalize_latents(const Tensor& mu, const WanVAEConfig& cfg) {
  check_latent(mu, cfg, "normalize");
  std::vector<float> inv_std(cfg.latents_std.size());
  for (size_t i = 0; i < inv_std.size(); ++i) inv_std[i] = 1.0f / cfg.latents_std[i];
  return ops::mul(ops::sub(mu, channel_vector(cfg.latents_mean, mu)), channel_vector(inv_std, mu));
}

}  // namespace t2v
