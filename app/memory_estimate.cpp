#include "app/memory_estimate.h"

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "app/options.h"
#include "core/error.h"
#include "diffusion/wan_dit.h"
#include "diffusion/wan_dit_weights.h"

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

// Bytes of the DiT's weights as loaded: the GEMM weights in the compute dtype, the fp32
// islands (norms, modulation, biases of fp32 modules) in fp32; the blocks' share.
struct DiTBytes {
  double total = 0, blocks = 0, block = 0;
};
DiTBytes dit_bytes(const WanDiTConfig& cfg, DType dtype) {
  DiTBytes b;
  for (const WeightRequest& w : wan_dit_weight_list(cfg)) {
    const double bytes = static_cast<double>(w.shape.numel()) *
                         static_cast<double>(w.precision == WeightPrecision::F32 ? 4 : dtype_size(dtype));
    b.total += bytes;
    if (w.key.rfind("blocks.", 0) == 0) b.blocks += bytes;
  }
  b.block = cfg.num_layers > 0 ? b.blocks / static_cast<double>(cfg.num_layers) : 0.0;
  return b;
}

std::string gb(double bytes) { return fmt::format("{:.2f} GB", bytes / kGB); }
std::string gb3(double bytes) { return fmt::format("{:.3f} GB", bytes / kGB); }

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

uint64_t MemoryEstimate::host_peak() const { return std::max({encode.host, denoise.host, decode.host}); }
uint64_t MemoryEstimate::device_peak() const { return std::max({encode.device, denoise.device, decode.device}); }
uint64_t MemoryEstimate::peak() const { return on_device ? device_peak() : host_peak(); }

MemoryEstimate estimate_render_memory(const ModelConfigs& c, const PipelineLoadOptions& o, const RenderRequest& r) {
  const bool cuda = o.device == Device::CUDA;
  const double e = cuda ? static_cast<double>(dtype_size(o.dtype)) : 4.0;  // activation element
  const double e_vae = cuda ? static_cast<double>(dtype_size(o.vae_dtype)) : 4.0;  // the VAE's own compute dtype
  const Grid g = grid_of(c, r.width, r.height, r.frames);
  const double N = static_cast<double>(g.tokens);
  const double B = r.cfg != 1.0 ? 2.0 : 1.0;
  const double dim = static_cast<double>(c.dit.dim), ffn = static_cast<double>(c.dit.ffn_dim);

  const double w_t5 = umt5_params(c.t5) * e;
  const DiTBytes dit = dit_bytes(c.dit, o.dtype);
  // Wan2.2 A14B: both experts resident on a GPU unless --low-memory; on the host the
  // pipeline keeps one when two do not fit, so one is what must fit.
  const double experts = c.dit_low && cuda && !r.low_memory ? 2.0 : 1.0;
  // --offload: the blocks stay on the host; the device holds the rest (of each resident
  // expert) and a window of blocks (the running one and the next, copied ahead).
  const bool offload = o.offload && o.device != Device::CPU;
  const double window = std::min<double>(kOffloadWindow, static_cast<double>(c.dit.num_layers));
  const double w_dit = offload ? experts * (dit.total - dit.blocks) + window * dit.block : experts * dit.total;
  const double host_blocks = offload ? experts * dit.blocks : 0.0;
  const double vae_width = c.vae.decoder_base_dim / 96.0;
  const double w_vae = 72.5e6 * vae_width * vae_width * e_vae;
  const double kept_t5 = o.keep_text_encoder ? w_t5 : 0.0;

  const double latents = 8.0 * static_cast<double>(c.dit.in_dim) * g.T * g.h * g.w * 4.0;
  const double step = B * N * (10.0 * dim + 2.0 * ffn) * e;
  const double scores = cuda ? 0.0 : static_cast<double>(std::max(1, omp_get_max_threads())) * 256.0 * N * 4.0;
  // Each block projects the context rows' keys and values for its cross-attention and drops
  // them after: one block's at a time, for at most text_len rows.
  const double cross_kv = B * c.dit.text_len * dim * 2.0 * e;

  const double P = static_cast<double>(g.h) * g.w;
  const double level = vae_width * std::pow(c.vae.spatial_factor() / 8.0, 2.0);  // the top level's size vs Wan2.1's
  const double convs = (2.0 * (c.vae.num_res_blocks + 1) + 1.0) / 7.0;            // its temporal convs vs Wan2.1's 7
  const double chunk_frames = g.T > 1 ? c.vae.temporal_factor() : 1.0;           // the first chunk is one frame
  const double vae_run =
      (151328.0 * convs + 110592.0 * chunk_frames / 4.0) * P * e_vae * level;
  const double im2col = cuda ? 0.0 : 32.0 * (1 << 20);  // the CPU convs' column buffer
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
    condition = w_i2v + w_vae + kept_t5 + video + vae_run;  // (+ im2col on the CPU, below)
  }
  if (c.clip)  // one block's, as for the text
    image_kv = B * static_cast<double>(c.clip->num_tokens()) * dim * 2.0 * e;

  // What the computing device holds in each stage (on the CPU: the host).
  const double encode = std::max(w_t5, condition);
  // (The CPU kernels' scratch, the attention scores and im2col columns, is host memory on
  // the test device too: it counts on the host only.)
  const double denoise =
      w_dit + kept_t5 + w_i2v + w_vae * (encodes ? 1.0 : 0.0) + latents + step + cross_kv + image_kv;
  const double decode_run = vae_run + frames_kept;
  const double decode = w_dit + kept_t5 + w_i2v + w_vae + latents + decode_run;
  // On the host besides: what the process holds already (libraries, BLAS buffers, the
  // tokenizer); the pages of the weight files read (ModelConfigs::file_bytes): the DiT's
  // from its load on, the others' while they load (the VAE's load and its decode are not
  // at once); the offloaded blocks. The test device's memory is host memory too.
  const ModelConfigs::FileBytes& f = c.file_bytes;
  const double base = proc_kb("/proc/self/status", "VmRSS").value_or(0.0);
  const double encode_files = encodes ? f.t5 + f.clip + f.vae : f.t5;
  const double vae_file = encodes ? 0.0 : f.vae_decoder;  // image-to-video loaded the whole VAE to encode
  MemoryEstimate m;
  m.tokens = g.tokens;
  m.on_device = cuda;
  auto stage = [&](double on_device, double host) {
    StageMemory s;
    s.host = static_cast<uint64_t>(base + host + (cuda ? 0.0 : on_device));
    s.device = o.device == Device::CPU ? 0 : static_cast<uint64_t>(on_device);
    return s;
  };
  m.encode = stage(encode, encode_files + (encodes ? im2col : 0.0));
  m.denoise = stage(denoise, f.dit + host_blocks + scores);
  if (cuda) {
    m.decode = stage(decode, f.dit + host_blocks + vae_file);
  } else {
    // The VAE's file pages while it loads, or its decode's working set after.
    m.decode = stage(decode - decode_run, f.dit + host_blocks + std::max(vae_file, decode_run + im2col));
    if (o.device == Device::Test) m.decode.device = static_cast<uint64_t>(decode);
  }
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

// A suggested size or frame count keeps 15% to spare: the estimate is within 15% of the
// measured peaks (docs/memory.md), and a suggestion that fails when run helps nobody.
constexpr double kSuggestSpare = 1.15;

RenderPlan plan_render(const ModelConfigs& c, const PipelineLoadOptions& o, const RenderRequest& r) {
  RenderPlan p;
  p.estimate = estimate_render_memory(c, o, r);
  if (o.max_memory > 0) {
    p.limit = o.max_memory;
    p.limit_source = "--max-memory";
  } else {
    p.limit = available_memory_bytes(o.device, &p.limit_source);
  }
  p.fits = p.limit == 0 || p.estimate.peak() <= p.limit;
  if (p.fits) return p;
  const int sf = c.vae.spatial_factor();
  // A suggested size must pass both the model's alignment and the CLI's (multiples of 16).
  const int align = std::lcm(kSizeMultiple, sf * static_cast<int>(std::max(c.dit.patch_size[1], c.dit.patch_size[2])));
  auto fits = [&](int w, int h, int frames) {
    RenderRequest q = r;
    q.width = w;
    q.height = h;
    q.frames = frames;
    const MemoryEstimate m = estimate_render_memory(c, o, q);
    return m.tokens <= kMaxTransformerTokens && m.peak() * kSuggestSpare <= p.limit;
  };
  // The largest size of the same aspect ratio (multiples of `align`) that fits: a bisection
  // on the scale, sizes being monotonic in it.
  auto size_at = [&](double k) {
    return std::pair<int, int>{std::max(align, static_cast<int>(r.width * k / align) * align),
                               std::max(align, static_cast<int>(r.height * k / align) * align)};
  };
  double lo = 0, hi = 1;
  for (int i = 0; i < 40; ++i) {
    const double mid = (lo + hi) / 2;
    auto [w, h] = size_at(mid);
    (fits(w, h, r.frames) ? lo : hi) = mid;
  }
  if (auto [w, h] = size_at(lo); fits(w, h, r.frames)) p.largest_size = fmt::format("{}x{}", w, h);
  // The largest frame count 4k + 1 at this size that fits (bisection on k).
  const int tf = c.vae.temporal_factor();
  int k_lo = -1, k_hi = (r.frames - 1) / tf;  // fits(k_lo) (or none), !fits(k_hi)
  while (k_hi - k_lo > 1) {
    const int mid = (k_lo + k_hi) / 2;
    (fits(r.width, r.height, mid * tf + 1) ? k_lo : k_hi) = mid;
  }
  p.largest_frames = k_lo >= 0 ? k_lo * tf + 1 : 0;
  const MemoryEstimate& m = p.estimate;
  const char* what = m.on_device ? "device memory" : "memory";
  p.refusal = fmt::format("{} frames at {}x{} need about {} of {} (encode {}, denoise {}, decode {}), more than the "
                          "{} of {}",
                          r.frames, r.width, r.height, gb(m.peak()), what,
                          gb(m.on_device ? m.encode.device : m.encode.host),
                          gb(m.on_device ? m.denoise.device : m.denoise.host),
                          gb(m.on_device ? m.decode.device : m.decode.host), gb(p.limit), p.limit_source);
  if (p.largest_size.empty() && p.largest_frames == 0) {
    p.hint = "the model alone does not fit here; free memory or use a machine with more";
  } else {
    std::vector<std::string> ways;
    if (p.largest_frames > 0) ways.push_back(fmt::format("--frames {} at this size", p.largest_frames));
    if (!p.largest_size.empty())
      ways.push_back(fmt::format("--size {} at {} frame{}", p.largest_size, r.frames, r.frames == 1 ? "" : "s"));
    p.hint = fmt::format("use at most {}{}", fmt::join(ways, " or "),
                         o.device == Device::CPU || o.offload ? "" : ", or --offload");
  }
  return p;
}

nlohmann::json render_plan_json(const RenderPlan& p, const RenderRequest& r, const std::string& model, Device dev) {
  const MemoryEstimate& m = p.estimate;
  auto stage = [](const StageMemory& s) { return nlohmann::json{{"host_bytes", s.host}, {"device_bytes", s.device}}; };
  nlohmann::json j = {{"model", model},
                      {"device", device_name(dev)},
                      {"width", r.width},
                      {"height", r.height},
                      {"frames", r.frames},
                      {"batch", r.cfg != 1.0 ? 2 : 1},
                      {"tokens", m.tokens},
                      {"stages", {{"encode", stage(m.encode)}, {"denoise", stage(m.denoise)}, {"decode", stage(m.decode)}}},
                      {"peak_host_bytes", m.host_peak()},
                      {"peak_device_bytes", m.device_peak()},
                      {"checked", m.on_device ? "device" : "host"},
                      {"limit_bytes", p.limit},
                      {"limit_source", p.limit_source},
                      {"fits", p.fits}};
  if (!p.fits) {
    j["largest_frames"] = p.largest_frames;
    j["largest_size"] = p.largest_size;
  }
  return j;
}

std::string format_render_plan(const RenderPlan& p, const RenderRequest& r, const std::string& model, Device dev) {
  const MemoryEstimate& m = p.estimate;
  const bool device_col = dev != Device::CPU;
  auto cell = [](uint64_t b) { return fmt::format("{:>10}", gb3(static_cast<double>(b))); };
  std::string out = fmt::format("plan: {} frames at {}x{}, model {}, device {}, batch {} ({}); {} transformer tokens\n",
                                r.frames, r.width, r.height, model, device_name(dev), r.cfg != 1.0 ? 2 : 1,
                                r.cfg != 1.0 ? "with CFG" : "cfg 1", m.tokens);
  out += fmt::format("  {:<8}{:>10}{}\n", "stage", "host", device_col ? fmt::format("{:>10}", "device") : "");
  for (const auto& [name, s] : {std::pair{"encode", m.encode}, {"denoise", m.denoise}, {"decode", m.decode}})
    out += fmt::format("  {:<8}{}{}\n", name, cell(s.host), device_col ? cell(s.device) : "");
  out += fmt::format("  {:<8}{}{}\n", "peak", cell(m.host_peak()), device_col ? cell(m.device_peak()) : "");
  const std::string limit =
      p.limit > 0 ? fmt::format("{} ({})", gb3(static_cast<double>(p.limit)), p.limit_source) : "unknown (not checked)";
  out += fmt::format("  limit {} of {} memory: {}\n", limit, m.on_device ? "device" : "host",
                     p.fits ? "fits" : "does not fit");
  return out;
}

void check_render_fits(const ModelConfigs& c, const PipelineLoadOptions& o, const RenderRequest& r) {
  const int sf = c.vae.spatial_factor();
  const MemoryEstimate m = estimate_render_memory(c, o, r);
  spdlog::debug("memory estimate for {} frames at {}x{}: encode {:.3f} GB, denoise {:.3f} GB, decode {:.3f} GB "
                "(host); {:.3f} / {:.3f} / {:.3f} GB (device)",
                r.frames, r.width, r.height, m.encode.host / kGB, m.denoise.host / kGB, m.decode.host / kGB,
                m.encode.device / kGB, m.denoise.device / kGB, m.decode.device / kGB);
  if (m.tokens > kMaxTransformerTokens) {
    const int align =
        std::lcm(kSizeMultiple, sf * static_cast<int>(std::max(c.dit.patch_size[1], c.dit.patch_size[2])));
    // The largest size of the same aspect ratio within the token limit.
    std::string fit;
    for (double k = 1.0; k > 0.0 && fit.empty(); k -= 1.0 / 256) {
      const int w = static_cast<int>(r.width * k / align) * align, h = static_cast<int>(r.height * k / align) * align;
      if (w < align || h < align) break;
      if (grid_of(c, w, h, r.frames).tokens <= kMaxTransformerTokens) fit = fmt::format("{}x{}", w, h);
    }
    const std::string comp = fmt::format("{}x{} pixels per token ({}x VAE x {}x{} patch)", sf * c.dit.patch_size[2],
                                         sf * c.dit.patch_size[1], sf, c.dit.patch_size[2], c.dit.patch_size[1]);
    throw Error(kExitUsage,
                fmt::format("{} frames at {}x{} is {} transformer tokens for this model ({}), above the limit of {}",
                            r.frames, r.width, r.height, m.tokens, comp, kMaxTransformerTokens),
                fit.empty() ? "use fewer frames" : fmt::format("use fewer frames or at most --size {}", fit));
  }
  const RenderPlan p = plan_render(c, o, r);
  if (!p.fits) throw Error(kExitUnavailable, p.refusal, p.hint);
}

}  // namespace t2v
