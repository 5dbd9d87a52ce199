#include "app/wan22_sampling.h"

#include <fstream>
#include <sstream>
#include <string>

#include "kernels/ops.h"

namespace t2v {

const char* model_kind_name(WanModelKind k) {
  switch (k) {
    case WanModelKind::T2V: return "text-to-video";
    case WanModelKind::TI2V: return "TI2V";
    case WanModelKind::I2VA14B: return "I2V-A14B";
    case WanModelKind::Wan21I2V: return "Wan2.1 I2V";
  }
  return "?";
}

WanModelKind model_kind(const ModelConfigs& c) {
  const int64_t z = c.vae.z_dim;
  if (c.dit.image_to_video()) return WanModelKind::Wan21I2V;
  if (c.dit.in_dim == 2 * z + 4) return WanModelKind::I2VA14B;
  if (c.dit.ti2v() || (c.vae.is_residual && c.dit.in_dim == z)) return WanModelKind::TI2V;
  return WanModelKind::T2V;
}

double expert_boundary(WanModelKind kind, std::optional<double> option, std::optional<double> model_index) {
  if (option) return *option;
  if (model_index) return *model_index;
  return kind == WanModelKind::I2VA14B ? 0.9 : 0.875;  // Wan2.2 wan/configs/wan_{i2v,t2v}_A14B.py
}

bool high_noise_step(double t, double boundary) { return t >= boundary * 1000.0; }

Tensor ti2v_token_timesteps(float t, int64_t batch, int64_t T, int64_t tokens_per_frame) {
  Tensor ts = Tensor::full(Shape{batch, T * tokens_per_frame}, t);
  float* p = ts.data<float>();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t n = 0; n < tokens_per_frame; ++n) p[b * T * tokens_per_frame + n] = 0.0f;  // the image's frame
  return ts;
}

Tensor with_first_frame(const Tensor& x, const Tensor& frame) {
  const int64_t T = x.size(2);
  return T == 1 ? frame : ops::concat({frame, ops::slice(x, 2, 1, T)}, 2);
}

int64_t available_host_memory() {
  std::ifstream f("/proc/meminfo");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream ss(line.substr(13));
    int64_t kb = 0;
    ss >> kb;
    return kb * 1024;
  }
  return 0;
}

}  // namespace t2v
