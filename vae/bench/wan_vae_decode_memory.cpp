// Peak resident memory of the streamed Wan VAE decode as a function of the
// number of latent frames. Each measurement runs in a forked child, so every
// VmHWM (the kernel's high-water mark of resident memory) starts fresh.
//
//   wan_vae_decode_memory [--config wan2.1-vae|wan2.2-vae|config.json] [--latent 8x8] [--frames 3,21] [--batch 1]
//
// Weights are random (decoder only; core/weights.h RandomSource): memory and
// time do not depend on their values. Frames go to a
// sink that only reduces them, as the MP4 writer consumes them one chunk at a time.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/ops.h"
#include "vae/wan_vae.h"

namespace {

// VmRSS / VmHWM from /proc/self/status, in MiB.
double proc_status_mib(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(field);
  while (std::getline(f, line))
    if (line.compare(0, n, field) == 0) return std::stod(line.substr(n + 1)) / 1024.0;  // "kB"
  return -1;
}

t2v::WanVAE random_decoder(const t2v::WanVAEConfig& cfg, int64_t* params) {
  t2v::RandomSource weights(1234);
  const t2v::WanVAEParts parts{/*encoder=*/false, /*decoder=*/true};
  *params = 0;
  for (const t2v::WanVAEKeyEntry& e : t2v::wan_vae_key_table(cfg, parts)) *params += e.shape.numel();
  return t2v::WanVAE::bind(t2v::WeightScope(weights), cfg, parts);
}

void measure(const t2v::WanVAEConfig& cfg, int64_t batch, int64_t T, int64_t h, int64_t w) {
  int64_t params = 0;
  const t2v::WanVAE vae = random_decoder(cfg, &params);
  std::mt19937_64 rng(99);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  t2v::Tensor z = t2v::Tensor::empty(t2v::Shape{batch, cfg.z_dim, T, h, w}, t2v::DType::F32);
  for (int64_t i = 0; i < z.numel(); ++i) z.data<float>()[i] = normal(rng);
  const double rss_before = proc_status_mib("VmRSS:");

  t2v::WanVAEDecodeStream stream(vae);
  int64_t frames = 0;
  double sum = 0;
  size_t cache = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t t = 0; t < T; ++t) {
    const t2v::Tensor f = stream.push(t2v::ops::slice(z, 2, t, t + 1));
    frames += f.size(2);
    for (int64_t i = 0; i < f.numel(); ++i) sum += f.data<float>()[i];
    cache = stream.cache_bytes();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "latent %lldx%lld T=%-3lld -> %lld frames %lldx%lld | decoder params %.1fM | RSS before decode %.1f MiB | "
      "peak RSS (VmHWM) %.1f MiB | cache %.2f MiB | %.2f s (%.3f s/frame) | checksum %.3g\n",
      (long long)h, (long long)w, (long long)T, (long long)frames, (long long)(cfg.spatial_factor() * h), (long long)(cfg.spatial_factor() * w),
      params / 1e6, rss_before, proc_status_mib("VmHWM:"), cache / 1048576.0, secs, secs / frames, sum);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config = "wan2.1-vae";
  int64_t h = 8, w = 8, batch = 1;
  std::vector<int64_t> frame_counts{3, 21};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--config") {
      config = v;
    } else if (a == "--latent") {
      std::sscanf(v.c_str(), "%ldx%ld", &h, &w);
    } else if (a == "--batch") {
      batch = std::stol(v);
    } else if (a == "--frames") {
      frame_counts.clear();
      std::stringstream ss(v);
      for (std::string t; std::getline(ss, t, ',');) frame_counts.push_back(std::stol(t));
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 64;
    }
  }
  try {
    const t2v::WanVAEConfig cfg = t2v::WanVAEConfig::resolve(config, "");
    for (int64_t T : frame_counts) {
      const pid_t pid = fork();
      if (pid == 0) {
        measure(cfg, batch, T, h, w);
        std::_Exit(0);
      }
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 70;
    }
  } catch (const t2v::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return e.code();
  }
  return 0;
}
