#include "diffusion/wan_dit_timestep.h"

#include <algorithm>
#include <map>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "diffusion/wan_dit.h"
#include "kernels/ops.h"

namespace t2v {

namespace {

Tensor linear(const Tensor& x, const Linear& l) { return ops::linear(x, l.weight, l.bias); }

// e = time_embedding(sinusoid(t)), e0 = time_projection(e) for the rows of `values`:
// [U, dim] and [U, 6*dim].
std::pair<Tensor, Tensor> time_mlp(const WanDiTWeights& w, const WanDiTConfig& c, const std::vector<float>& values,
                                   Device dev) {
  const Tensor sinus = wan_timestep_sinusoid(values, c.freq_dim, c.sinusoid).to(dev);  // [U, freq_dim]
  Tensor e = linear(ops::silu(linear(sinus, w.time_embedding_0)), w.time_embedding_2);  // [U, dim]
  Tensor e0 = linear(ops::silu(e), w.time_projection_1);                                  // [U, 6*dim]
  return {e, e0};
}

}  // namespace

WanTimeConditioning wan_time_conditioning(const WanDiTWeights& w, const WanDiTConfig& c, const Tensor& timestep,
                                          int64_t B, int64_t N, int64_t tokens_per_frame, Device dev) {
  const bool per_token = timestep.dim() == 2;
  if (!(timestep.dim() == 1 && timestep.size(0) == B) && !(per_token && timestep.size(0) == B && timestep.size(1) == N))
    throw Error(kExitDataErr, fmt::format("DiT timestep is {}, expected [{}] or [{}, {}] (one per token)",
                                          timestep.str(), B, B, N),
                "pass one timestep per batch entry, or one per video token");
  const std::vector<float> ts = timestep.to(Device::CPU).to(DType::F32).to_vector();
  WanTimeConditioning out;
  // Per sample when every sample's tokens share one value (TI2V text-to-video).
  bool uniform = true;
  for (int64_t b = 0; per_token && b < B && uniform; ++b)
    for (int64_t n = 1; n < N && uniform; ++n) uniform = ts[b * N + n] == ts[b * N];
  if (!per_token || uniform) {
    std::vector<float> per_sample(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) per_sample[static_cast<size_t>(b)] = ts[per_token ? b * N : b];
    auto [e, e0] = time_mlp(w, c, per_sample, dev);
    out.e = e;                                    // [B, dim]
    out.e0 = e0.reshape(Shape{B, 6, c.dim});      // [B, 6, dim]
    return out;
  }
  // Groups: latent frames when each frame has one value, else single tokens.
  int64_t G = N / tokens_per_frame;
  bool per_frame = tokens_per_frame > 0 && N % tokens_per_frame == 0;
  for (int64_t b = 0; b < B && per_frame; ++b)
    for (int64_t n = 0; n < N && per_frame; ++n) per_frame = ts[b * N + n] == ts[b * N + n - n % tokens_per_frame];
  if (!per_frame) G = N;
  const int64_t run = N / G;
  // The MLPs run once per distinct value; each group gathers its row.
  std::map<float, int64_t> index;
  std::vector<float> distinct;
  std::vector<int64_t> ids(static_cast<size_t>(B * G));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < G; ++g) {
      const float v = ts[b * N + g * run];
      auto [it, fresh] = index.emplace(v, static_cast<int64_t>(distinct.size()));
      if (fresh) distinct.push_back(v);
      ids[static_cast<size_t>(b * G + g)] = it->second;
    }
  auto [e, e0] = time_mlp(w, c, distinct, dev);  // [U, dim], [U, 6*dim]
  Tensor id_t = Tensor::empty(Shape{B, G}, DType::I64);
  std::copy(ids.begin(), ids.end(), id_t.data<int64_t>());
  id_t = id_t.to(dev);
  out.groups = G;
  out.e = ops::embedding(e, id_t);                                     // [B, G, dim]
  out.e0 = ops::embedding(e0, id_t).reshape(Shape{B, G, 6, c.dim});    // [B, G, 6, dim]
  return out;
}

Tensor wan_time_per_token(const Tensor& t_in, int64_t groups, int64_t N) {
  const Tensor t = t_in.to(Device::CPU).to(DType::F32);
  const int64_t B = t.size(0);
  const int64_t G = groups == 0 ? 1 : groups;
  const int64_t row = t.numel() / (B * G);  // dim or 6*dim
  std::vector<int64_t> shape{B, N};
  for (int d = groups == 0 ? 1 : 2; d < t.dim(); ++d) shape.push_back(t.size(d));
  Tensor out = Tensor::empty(Shape(shape), DType::F32);
  const float* src = t.data<float>();
  float* dst = out.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n)
      std::copy_n(src + (b * G + n / (N / G)) * row, row, dst + (b * N + n) * row);
  return out;
}

}  // namespace t2v
