#include "vae/wan_vae_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/config_check.h"
#include "core/file_read.h"
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

// Bounds of every value (generous: the Wan2.1 VAE has base_dim 96, z_dim 16).
constexpr int kMaxBaseDim = 4096;
constexpr int kMaxZDim = 1024;
constexpr int kMaxMult = 64;
constexpr int kMaxStages = 8;
constexpr int kMaxResBlocks = 16;
constexpr int kMaxChannels = 64;

// The 48 latent channel statistics of Wan2.2_VAE (Wan-Video/Wan2.2 wan/modules/vae2_2.py;
// also the diffusers Wan2.2 conversion's latents_mean / latents_std), docs/wan.md §8.1.
const std::vector<float> kWan22LatentsMean = {
    -0.2289f, -0.0052f, -0.1323f, -0.2339f, -0.2799f, 0.0174f,  0.1838f,  0.1557f,  -0.1382f, 0.0542f,
    0.2813f,  0.0891f,  0.1570f,  -0.0098f, 0.0375f,  -0.1825f, -0.2246f, -0.1207f, -0.0698f, 0.5109f,
    0.2665f,  -0.2108f, -0.2158f, 0.2502f,  -0.2055f, -0.0322f, 0.1109f,  0.1567f,  -0.0729f, 0.0899f,
    -0.2799f, -0.1230f, -0.0313f, -0.1649f, 0.0117f,  0.0723f,  -0.2839f, -0.2083f, -0.0520f, 0.3748f,
    0.0152f,  0.1957f,  0.1433f,  -0.2944f, 0.3573f,  -0.0548f, -0.1681f, -0.0667f};
const std::vector<float> kWan22LatentsStd = {
    0.4765f, 1.0364f, 0.4514f, 1.1677f, 0.5313f, 0.4990f, 0.4818f, 0.5013f, 0.8158f, 1.0344f, 0.5894f, 1.0901f,
    0.6885f, 0.6165f, 0.8454f, 0.4978f, 0.5759f, 0.3523f, 0.7135f, 0.6804f, 0.5833f, 1.4146f, 0.8986f, 0.5659f,
    0.7069f, 0.5338f, 0.4889f, 0.4917f, 0.4069f, 0.4999f, 0.6866f, 0.4093f, 0.5709f, 0.6065f, 0.6415f, 0.4944f,
    0.5726f, 1.2042f, 0.5458f, 1.6887f, 0.3971f, 1.0600f, 0.3943f, 0.5537f, 0.5444f, 0.4089f, 0.7468f, 0.7744f};

const char* kJsonHint = "compare with diffusers' AutoencoderKLWan config.json";

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
    config_error(origin, fmt::format("field '{}' has the wrong type ({})", name, it->dump()), kJsonHint);
  }
}

// An integer field read as 64 bits and range-checked before it narrows to int.
int int_field(const nlohmann::json& j, const char* name, int fallback, const std::string& origin, int lo, int hi) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number_integer())
    config_error(origin, fmt::format("field '{}' has the wrong type ({})", name, it->dump()), kJsonHint);
  const ConfigCheck check(origin, kJsonHint);
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(hi))
    check.fail(fmt::format("{} = {} is outside [{}, {}]", name, it->dump(), lo, hi));
  check.range(name, it->get<int64_t>(), lo, hi);
  return static_cast<int>(it->get<int64_t>());
}

std::vector<int> int_list_field(const nlohmann::json& j, const char* name, const std::vector<int>& fallback,
                                const std::string& origin, int lo, int hi) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_array() || it->size() > static_cast<size_t>(kMaxStages))
    config_error(origin, fmt::format("field '{}' must be a list of at most {} integers ({})", name, kMaxStages,
                                     it->dump()),
                 kJsonHint);
  std::vector<int> out;
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json entry = {{fmt::format("{}[{}]", name, i), (*it)[i]}};
    out.push_back(int_field(entry, fmt::format("{}[{}]", name, i).c_str(), 0, origin, lo, hi));
  }
  return out;
}

int count_true(const std::vector<bool>& v) {
  int n = 0;
  for (bool b : v) n += b ? 1 : 0;
  return n;
}

// Regular files only, size-capped (docs/bad_inputs.md #68).
std::string read_text(const std::string& path) {
  return read_input_file(path, "VAE config", kMaxConfigBytes, kExitConfig);
}

}  // namespace

std::vector<std::string> WanVAEConfig::preset_names() { return {"wan2.1-vae", "wan2.2-vae"}; }

WanVAEConfig WanVAEConfig::preset(const std::string& name) {
  if (name == "wan2.1-vae" || name == "wan2.1") {
    WanVAEConfig c;
    c.latents_mean = kWan21LatentsMean;
    c.latents_std = kWan21LatentsStd;
    return c;
  }
  if (name == "wan2.2-vae" || name == "wan2.2") {
    WanVAEConfig c;
    c.base_dim = 160;
    c.decoder_base_dim = 256;
    c.z_dim = 48;
    c.is_residual = true;
    c.patch_size = 2;
    c.in_channels = c.out_channels = 12;
    c.latents_mean = kWan22LatentsMean;
    c.latents_std = kWan22LatentsStd;
    return c;
  }
  throw Error(kExitUsage, fmt::format("unknown VAE preset '{}'", name),
              fmt::format("use {} or the path of a diffusers vae/config.json", fmt::join(preset_names(), ", ")));
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
  const bool residual = field<bool>(j, "is_residual", false, origin);
  // Defaults: the Wan2.1 preset, or Wan2.2's statistics for a residual config without them.
  WanVAEConfig c = preset("wan2.1-vae");
  c.is_residual = residual;
  if (residual) {
    c.latents_mean = kWan22LatentsMean;
    c.latents_std = kWan22LatentsStd;
  }
  c.patch_size = int_field(j, "patch_size", 1, origin, 1, 8);
  c.base_dim = int_field(j, "base_dim", c.base_dim, origin, 1, kMaxBaseDim);
  c.decoder_base_dim = int_field(j, "decoder_base_dim", c.base_dim, origin, 1, kMaxBaseDim);
  c.z_dim = int_field(j, "z_dim", c.z_dim, origin, 1, kMaxZDim);
  c.dim_mult = int_list_field(j, "dim_mult", c.dim_mult, origin, 1, kMaxMult);
  c.num_res_blocks = int_field(j, "num_res_blocks", c.num_res_blocks, origin, 1, kMaxResBlocks);
  c.attn_scales = field<std::vector<double>>(j, "attn_scales", c.attn_scales, origin);
  c.temperal_downsample = field<std::vector<bool>>(j, "temperal_downsample", c.temperal_downsample, origin);
  c.in_channels = int_field(j, "in_channels", c.in_channels, origin, 1, kMaxChannels);
  c.out_channels = int_field(j, "out_channels", c.out_channels, origin, 1, kMaxChannels);
  c.latents_mean = field<std::vector<float>>(j, "latents_mean", c.latents_mean, origin);
  c.latents_std = field<std::vector<float>>(j, "latents_std", c.latents_std, origin);
  const double dropout = field<double>(j, "dropout", 0.0, origin);
  (void)dropout;  // inference: dropout is the identity whatever its rate
  // "clip_output" (a stale key of the Wan2.2 conversion) is ignored: decode always clamps.
  c.validate(origin);
  // diffusers reads the compression from these fields; they must agree with the structure.
  const int sf = int_field(j, "scale_factor_spatial", c.spatial_factor(), origin, 1, 1024);
  const int tf = int_field(j, "scale_factor_temporal", c.temporal_factor(), origin, 1, 1024);
  if (sf != c.spatial_factor() || tf != c.temporal_factor())
    config_error(origin,
                 fmt::format("scale_factor_spatial {} / scale_factor_temporal {} contradict the structure ({} / {})",
                             sf, tf, c.spatial_factor(), c.temporal_factor()),
                 kJsonHint);
  return c;
}

WanVAEConfig WanVAEConfig::from_json(const std::string& path) { return from_json_text(read_text(path), path); }

WanVAEConfig WanVAEConfig::resolve(const std::string& config_arg, const std::string& weights_path,
                                   const TensorStore* store) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!config_arg.empty()) {
    if (config_arg == "wan2.1-vae" || config_arg == "wan2.1" || config_arg == "wan2.2-vae" || config_arg == "wan2.2")
      return preset(config_arg);
    if (fs::is_directory(config_arg, ec)) return from_json((fs::path(config_arg) / "config.json").string());
    if (fs::exists(config_arg, ec)) return from_json(config_arg);
    return preset(config_arg);  // Error(64) naming the presets
  }
  // A diffusers vae/ folder (or a file inside one) carries its config.json.
  const fs::path p(weights_path);
  const fs::path cfg = (fs::is_directory(p, ec) ? p : p.parent_path()) / "config.json";
  if (!weights_path.empty() && fs::exists(cfg, ec)) {
    const std::string text = read_text(cfg.string());
    if (text.find("\"AutoencoderKLWan\"") != std::string::npos) return from_json_text(text, cfg.string());
  }
  if (store) return from_weights(*store);
  return from_weights(TensorStore::open(weights_path));
}

void WanVAEConfig::validate(const std::string& origin) const {
  const std::string hint = "compare with the Wan2.1 VAE: base_dim 96, z_dim 16, dim_mult [1,2,4,4]";
  const ConfigCheck c(origin, hint);
  c.range("base_dim", base_dim, 1, kMaxBaseDim);
  c.range("decoder_base_dim", decoder_base_dim, 1, kMaxBaseDim);
  c.range("z_dim", z_dim, 1, kMaxZDim);
  if (dim_mult.size() < 2 || dim_mult.size() > static_cast<size_t>(kMaxStages))
    config_error(origin, fmt::format("dim_mult has {} entries (2 to {})", dim_mult.size(), kMaxStages), hint);
  for (int m : dim_mult) c.range("dim_mult entry", m, 1, kMaxMult);
  // The decoder's upsample convs halve the channels and the next stage takes that half in.
  for (size_t i = 0; i + 1 < dim_mult.size() && !is_residual; ++i)
    if ((decoder_base_dim * dim_mult[i + 1]) % 2 != 0)
      config_error(origin, "decoder stage widths must be even (upsampling halves them)", hint);
  c.range("num_res_blocks", num_res_blocks, 1, kMaxResBlocks);
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
  c.range("in_channels", in_channels, 1, kMaxChannels);
  c.range("out_channels", out_channels, 1, kMaxChannels);
  c.range("patch_size", patch_size, 1, 8);
  if (in_channels % (patch_size * patch_size) != 0 || out_channels != in_channels)
    config_error(origin,
                 fmt::format("in_channels {} / out_channels {} do not fit patch_size {} (3 x p x p each)", in_channels,
                             out_channels, patch_size),
                 hint);
  if (is_residual) {
    // The parameter-free shortcuts regroup channels: AvgDown3D averages in*f/out channels,
    // DupUp3D repeats out*f/in times (f = the stage's space-time factor).
    const size_t n = dim_mult.size();
    const std::vector<bool> up = temperal_upsample();
    for (size_t i = 0; i < n; ++i) {
      const int e_in = base_dim * (i == 0 ? 1 : dim_mult[i - 1]), e_out = base_dim * dim_mult[i];
      const int f_down = (i + 1 < n ? 4 : 1) * (i + 1 < n && temperal_downsample[i] ? 2 : 1);
      if ((e_in * f_down) % e_out != 0)
        config_error(origin, fmt::format("encoder stage {}: {} -> {} channels cannot be averaged by factor {}", i,
                                         e_in, e_out, f_down),
                     hint);
      const int d_in = decoder_base_dim * (i == 0 ? dim_mult.back() : dim_mult[n - i]);
      const int d_out = decoder_base_dim * dim_mult[n - 1 - i];
      const int f_up = i + 1 < n ? 4 * (up[i] ? 2 : 1) : 0;
      if (f_up > 0 && (d_out * f_up) % d_in != 0)
        config_error(origin, fmt::format("decoder stage {}: {} -> {} channels cannot be repeated by factor {}", i,
                                         d_in, d_out, f_up),
                     hint);
    }
  }
  if (latents_mean.size() != static_cast<size_t>(z_dim) || latents_std.size() != static_cast<size_t>(z_dim))
    config_error(origin,
                 fmt::format("latents_mean/latents_std have {}/{} entries, z_dim is {}", latents_mean.size(),
                             latents_std.size(), z_dim),
                 hint);
  for (float m : latents_mean)
    if (!std::isfinite(m)) config_error(origin, fmt::format("latents_mean entry {} is not finite", m), hint);
  for (float s : latents_std)
    if (!(s > 0.0f) || !std::isfinite(s))
      config_error(origin, fmt::format("latents_std entry {} is not a positive finite number", s), hint);
}

std::string WanVAEConfig::summary() const {
  return fmt::format("base_dim {}, decoder_base_dim {}, z_dim {}, dim_mult [{}], num_res_blocks {}{}", base_dim,
                     decoder_base_dim, z_dim, fmt::join(dim_mult, ", "), num_res_blocks,
                     is_residual ? fmt::format(", residual, patch_size {}", patch_size) : std::string());
}

int WanVAEConfig::temporal_factor() const { return 1 << count_true(temperal_downsample); }
int WanVAEConfig::spatial_factor() const { return (1 << static_cast<int>(dim_mult.size() - 1)) * patch_size; }

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
