#include "app/memory_estimate.h"

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <fstream>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/options.h"
#include "core/error.h"

#if T2V_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace t2v {

namespace {

constexpr double kGB = 1e9;

// umT5 parameters from its config: embeddings, per layer q/k/v/o, the gated FFN (wi_0,
// wi_1, wo), two norms and the per-layer position bias, then the final norm.
double umt5_params(const UMT5Config& c) {
  const double inner = static_cast<double>(c.num_heads) * c.d_kv;
  const double layer = 4.0 * c.d_model * inner + 3.0 * c.d_model * c.d_ff + 2.0 * c.d_model +
                       static_cast<double>(c.relative_attention_num_buckets) * c.num_heads;
  return static_cast<double>(c.vocab_size) * c.d_model + c.num_layers * layer + c.d_model;
}

// CLIP vision parameters from its config: patch embedding, class token and positions, per
// block q/k/v/o and the MLP (with biases) and two LayerNorms, the pre- and post-LayerNorms.
double clip_params(const ClipVisionConfig& c) {
  const double w = static_cast<double>(c.hidden), mlp = static_cast<double>(c.intermediate);
  const double block = 4.0 * (w * w + w) + 2.0 * w * mlp + mlp + w + 4.0 * w;
  return static_cast<double>(c.channels) * c.patch * c.patch * w + (c.num_tokens() + 1.0) * w + c.num_layers * block +
         4.0 * w;
}

struct Grid {
  int64_t T = 0, h = 0, w = 0, tokens = 0;
};

Grid grid_of(const ModelConfigs& c, int width, int height, int frames) {
  Grid g;
  const int64_t sf = c.vae.spatial_factor();
  g.T = (frames - 1) / c.vae.temporal_factor() + 1;
  g.h = height / sf;
  g.w = width / sf;
  g.tokens = ((g.T + c.dit.patch_size[0] - 1) / c.dit.patch_size[0]) * (g.h / c.dit.patch_size[1]) *
             (g.w / c.dit.patch_size[2]);
  return g;
}

std::string gb(double bytes) { return fmt::format("{:.1f} GB", bytes / kGB); }

// First number in a file such as /sys/fs/cgroup/memory.max; nullopt for "max" or no file.
std::optional<double> read_number(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  if (!(f >> s) || s == "max") return std::nullopt;
  try {
    return std::stod(s);
  } catch (...) {
    return std::nullopt;
  }
}

// A /proc/... "Key:   N kB" value in bytes.
std::optional<double> proc_kb(const std::string& path, const std::string& key) {
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) * 1024.0;
  return std::nullopt;
}

}  // namespace

uint64_t MemoryEstimate::peak() const { return std::max({encode, denoise, decode}); }

MemoryEstimate estimate_render_memory(const ModelConfigs& c, const PipelineLoadOptions& o, const RenderRequest& r) {
  const bool cuda = o.device == Device::CUDA;
  const double e = cuda ? static_cast<double>(dtype_size(o.dtype)) : 4.0;  // activation element
  const double e_vae = cuda ? static_cast<double>(dtype_size(o.vae_dtype)) : 4.0;  // the VAE's own compute dtype
  const Grid g = grid_of(c, r.width, r.height, r.frames);
  const double N = static_cast<double>(g.tokens);
  const double B = r.cfg != 1.0 ? 2.0 : 1.0;
  const double dim = static_cast<double>(c.dit.dim), ffn = static_cast<double>(c.dit.ffn_dim);

  const double w_t5 = umt5_params(c.t5) * e;
  // Wan2.2 A14B: both experts resident on a GPU unless --low-memory; on the host the
  // pipeline keeps one when two do not fit, so one is what must fit.
  const double experts = c.dit_low && cuda && !r.low_memory ? 2.0 : 1.0;
  const double w_dit =
      experts * static_cast<double>(wan_dit_param_count(c.dit)) * static_cast<double>(dtype_size(o.dtype));
  const double vae_width = c.vae.decoder_base_dim / 96.0;
  const double w_vae = 72.5e6 * vae_width * vae_width * e_vae;
  const double kept_t5 = o.keep_text_encoder ? w_t5 : 0.0;

  const double latents = 8.0 * static_cast<double>(c.dit.in_dim) * g.T * g.h * g.w * 4.0;
  const double step = B * N * (10.0 * dim + 2.0 * ffn) * e;
  const double scores = cuda ? 0.0 : static_cast<double>(std::max(1, omp_get_max_threads())) * 256.0 * N * 4.0;
  const double cross_kv = static_cast<double>(c.dit.num_layers) * B * c.dit.text_len * dim * 2.0 * e;

  const double P = static_cast<double>(g.h) * g.w;
  const double level = vae_width * std::pow(c.vae.spatial_factor() / 8.0, 2.0);  // the top level's size vs Wan2.1's
  const double convs = (2.0 * (c.vae.num_res_blocks + 1) + 1.0) / 7.0;            // its temporal convs vs Wan2.1's 7
  const double chunk_frames = g.T > 1 ? c.vae.temporal_factor() : 1.0;           // the first chunk is one frame
  const double vae_run =
      (151328.0 * convs + 110592.0 * chunk_frames / 4.0) * P * e_vae * level + (cuda ? 0.0 : 32.0 * (1 << 20));
  const double pixels = static_cast<double>(r.frames) * r.width * r.height;
  const double frames_kept = (r.preview ? pixels * 3.0 : 0.0) + (r.frames_dump.empty() ? 0.0 : pixels * 12.0);

  // Image-to-video: the CLIP encoder and the whole VAE (encoder too) load before the DiT and
  // stay loaded. Conditioning holds the [3, F, H, W] input video in fp32 and its compute
  // copy, and runs the encoder chunk by chunk at the video's size (its working set taken as
  // the decoder's), with the 257 CLIP tokens' keys/values in every DiT block's cross-attention.
  // Wan2.2 I2V-A14B and TI2V-5B with an image: the VAE encoder alone (no CLIP).
  double w_i2v = 0.0, condition = 0.0, image_kv = 0.0;
  const bool encodes = c.clip || !r.image.empty();
  if (encodes) {
    const double enc_width = c.vae.base_dim / 96.0;
    w_i2v = (c.clip ? clip_params(*c.clip) * e : 0.0) +
            54.5e6 * enc_width * enc_width * e_vae;  // Wan2.1: 127M VAE, 72.5M decoder
    const double video = pixels * 3.0 * (4.0 + e_vae);
    condition = w_i2v + w_vae + kept_t5 + video + vae_run;
  }
  if (c.clip)
    image_kv = static_cast<double>(c.dit.num_layers) * B * static_cast<double>(c.clip->num_tokens()) * dim * 2.0 * e;

  // On the host, what the process holds already (libraries, BLAS buffers, the tokenizer).
  const double base = cuda ? 0.0 : proc_kb("/proc/self/status", "VmRSS").value_or(0.0);
  MemoryEstimate m;
  m.tokens = g.tokens;
  m.encode = static_cast<uint64_t>(base + std::max(w_t5, condition));
  m.denoise = static_cast<uint64_t>(base + w_dit + kept_t5 + w_i2v + w_vae * (encodes ? 1.0 : 0.0) + latents + step +
                                    scores + cross_kv + image_kv);
  m.decode = static_cast<uint64_t>(base + w_dit + kept_t5 + w_i2v + w_vae + latents + vae_run + frames_kept);
  return m;
}

uint64_t available_memory_bytes(Device dev, std::string* source) {
  double best = 0;
  auto consider = [&](std::optional<double> v, const char* what) {
    if (!v || *v < 0) return;
    if (best == 0 || *v < best) {
      best = *v;
      if (source) *source = what;
    }
  };
#if T2V_HAVE_CUDA
  if (dev == Device::CUDA) {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) consider(static_cast<double>(free_b), "free GPU memory");
    return static_cast<uint64_t>(best);
  }
#else
  (void)dev;
#endif
  consider(proc_kb("/proc/meminfo", "MemAvailable"), "available memory (MemAvailable)");
  if (auto max = read_number("/sys/fs/cgroup/memory.max")) {
    const double cur = read_number("/sys/fs/cgroup/memory.current").value_or(0.0);
    consider(*max - cur, "the cgroup's memory.max");
  }
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    consider(static_cast<double>(rl.rlim_cur) - proc_kb("/proc/self/status", "VmSize").value_or(0.0),
             "the address-space limit (ulimit -v)");
  return static_cast<uint64_t>(std::max(0.0, best));
}

void check_render_fits(const ModelConfigs& c, const PipelineLoadOptions& o, const RenderRequest& r) {
  const int sf = c.vae.spatial_factor();
  // A suggested size must pass both the model's alignment and the CLI's (multiples of 16).
  const int align = std::lcm(kSizeMultiple, sf * static_cast<int>(std::max(c.dit.patch_size[1], c.dit.patch_size[2])));
  std::string source;
  const uint64_t avail = available_memory_bytes(o.device, &source);
  // A suggested size fits with kSuggestSpare to spare: the measured peak was up to 1.35x the
  // estimate (see the header), and a suggestion that fails when run helps nobody.
  constexpr double kSuggestSpare = 1.35;
  auto fits = [&](int w, int h) {
    RenderRequest q = r;
    q.width = w;
    q.height = h;
    const MemoryEstimate m = estimate_render_memory(c, o, q);
    return m.tokens <= kMaxTransformerTokens && (avail == 0 || m.peak() * kSuggestSpare <= avail);
  };
  // The largest size of the same aspect ratio (multiples of `align`) that fits: a bisection
  // on the scale, sizes being monotonic in it.
  auto largest_fit = [&]() -> std::string {
    auto size_at = [&](double k) {
      return std::pair<int, int>{std::max(align, static_cast<int>(r.width * k / align) * align),
                                 std::max(align, static_cast<int>(r.height * k / align) * align)};
    };
    double lo = 0, hi = 1;
    for (int i = 0; i < 40; ++i) {
      const double mid = (lo + hi) / 2;
      auto [w, h] = size_at(mid);
      (fits(w, h) ? lo : hi) = mid;
    }
    auto [w, h] = size_at(lo);
    if (!fits(w, h)) return "";
    return fmt::format("{}x{}", w, h);
  };

  const MemoryEstimate m = estimate_render_memory(c, o, r);
  spdlog::debug("memory estimate for {} frames at {}x{}: encode {:.3f} GB, denoise {:.3f} GB, decode {:.3f} GB; "
                "{:.3f} GB available ({})",
                r.frames, r.width, r.height, m.encode / kGB, m.denoise / kGB, m.decode / kGB, avail / kGB, source);
  const std::string comp = fmt::format("{}x{} pixels per token ({}x VAE x {}x{} patch)", sf * c.dit.patch_size[2],
                                       sf * c.dit.patch_size[1], sf, c.dit.patch_size[2], c.dit.patch_size[1]);
  if (m.tokens > kMaxTransformerTokens) {
    const std::string fit = largest_fit();
    throw Error(kExitUsage,
                fmt::format("{} frames at {}x{} is {} transformer tokens for this model ({}), above the limit of {}",
                            r.frames, r.width, r.height, m.tokens, comp, kMaxTransformerTokens),
                fit.empty() ? "use fewer frames" : fmt::format("use fewer frames or at most --size {}", fit));
  }
  if (avail > 0 && m.peak() > avail) {
    const std::string fit = largest_fit();
    throw Error(kExitUnavailable,
                fmt::format("{} frames at {}x{} need about {} of memory (encode {}, denoise {}, decode {}), more "
                            "than the {} free ({})",
                            r.frames, r.width, r.height, gb(m.peak()), gb(m.encode), gb(m.denoise), gb(m.decode),
                            gb(avail), source),
                fit.empty() ? "the model alone does not fit here; free memory or use a machine with more"
                            : fmt::format("use at most --size {} (or fewer frames), or free memory", fit));
  }
}

}  // namespace t2v
