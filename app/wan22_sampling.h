// What sampling does differently for the Wan2.2 models (docs/wan.md §8):
//   TI2V-5B    48 latent channels (the Wan2.2 VAE); with an image, latent frame 0 is the
//              image's encoding before the loop and after every step, and its tokens get
//              the timestep 0 (one timestep per token).
//   T2V-A14B   two experts: the high-noise one while t >= boundary x 1000 (t the integer
//              timestep the DiT receives), the low-noise one after; each with its guidance.
//   I2V-A14B   the same experts reading [noise 16, mask 4, image latent 16]: the mask is 1 on
//              latent frame 0, the image latent the Wan2.1 VAE encoding of [image, F-1 zero
//              frames] (app/i2v_conditioning, as Wan2.1 I2V); no image encoder.
#pragma once

#include <cstdint>
#include <optional>

#include "app/model_loader.h"
#include "core/tensor.h"

namespace t2v {

// Wan21I2V: Wan2.1 I2V-14B / FLF2V-14B (CLIP image embedder, app/i2v_conditioning).
enum class WanModelKind { T2V, TI2V, I2VA14B, Wan21I2V };
const char* model_kind_name(WanModelKind k);  // "text-to-video", "TI2V", "I2V-A14B", "Wan2.1 I2V"

// From the transformer: an image embedder -> Wan21I2V; in = 2 z + 4 without one -> I2VA14B;
// in = out = 48 (or z with the Wan2.2 VAE) -> TI2V; else T2V.
WanModelKind model_kind(const ModelConfigs& c);

// The switch ratio: --boundary, else model_index.json's boundary_ratio, else the official
// configs' (0.875 T2V-A14B, 0.9 I2V-A14B).
double expert_boundary(WanModelKind kind, std::optional<double> option, std::optional<double> model_index);

// True while the high-noise expert runs: t >= boundary x 1000 (inclusive).
bool high_noise_step(double t, double boundary);

// TI2V with an image: [batch, N] timesteps in (frame, row, column) token order, 0 on the
// tokens of latent frame 0 and t elsewhere. N = T * tokens_per_frame.
Tensor ti2v_token_timesteps(float t, int64_t batch, int64_t T, int64_t tokens_per_frame);

// x [1, C, T, h, w] with latent frame 0 replaced by frame [1, C, 1, h, w] (exact: no arithmetic).
Tensor with_first_frame(const Tensor& x, const Tensor& frame);

// MemAvailable of /proc/meminfo in bytes (0 when unknown).
int64_t available_host_memory();

}  // namespace t2v
