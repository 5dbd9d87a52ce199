// The Wan2.1 diffusion transformer (WanModel / diffusers WanTransformer3DModel),
// docs/wan.md §2: patch embedding, [cos, sin] timestep embedding, text MLP on 512
// zero-padded context rows, blocks (modulated self-attention with q/k RMSNorm and
// 3D RoPE, cross-attention, modulated FFN), modulated head, unpatchify.
//
// Symbols: B batch, C latent channels, T latent frames, H/W latent height/width,
// N video tokens, L context rows (text_len = 512 after padding), NH heads, D head dim.
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <string>

#include "core/tensor.h"
#include "diffusion/wan_dit_config.h"
#include "diffusion/wan_dit_weights.h"

namespace t2v {

// With offloading (WanDiT::set_offload), the blocks on the device at once: the one
// running and the next, copied ahead.
inline constexpr int kOffloadWindow = 2;

// Receives named intermediates during a forward ("patch_embedding",
// "time_embedding", "time_projection", "text_embedding",
// "blocks.{i}.self_attn.out", "blocks.{i}.cross_attn.out", "blocks.{i}.ffn.out",
// "blocks.{i}.out", "head.out", "sample"; image-to-video adds "image_embedding");
// tensors are on the model's device.
using DumpHook = std::function<void(const std::string& name, const Tensor& t)>;

// A forward's inputs embedded, as the blocks and the head read them. The step cache
// (diffusion/step_cache.h) runs the forward in these three parts to skip blocks.
struct WanDiTEmbedded {
  Tensor h;         // [B, N, dim] F32: the patch embedding (the residual stream's start)
  // With a per-token timestep (Wan2.2 TI2V) e and e0 have one entry per token group:
  // [B, G, dim] and [B, G, 6, dim] (diffusion/wan_dit_timestep.h).
  Tensor e;         // [B, dim] F32: the time embedding (the head's modulation)
  Tensor e0;        // [B, 6, dim] F32: the time projection (the blocks' modulation)
  int64_t groups = 0;  // token groups G of a per-token timestep; 0: one timestep per sample
  Tensor ctx;       // [B, L (+1), dim] compute dtype: the text embedding
  Tensor img;       // [B, I, dim] compute dtype: the image tokens (image-to-video), else undefined
  Tensor pad_bias;  // [1, 1, 1, L + 1] F32 when L < text_len (see WanDiT::forward), else undefined
  Tensor rope;      // [N, D/2, 2] F32
  std::array<int64_t, 3> grid{};  // token grid Tp, Hp, Wp

  // Batch entry b alone (h, e, e0, ctx narrowed to row b; the rest shared).
  WanDiTEmbedded row(int64_t b) const;
};

class WanDiT {
 public:
  WanDiT(WanDiTConfig cfg, WanDiTWeights weights);

  // x [B, C, T, H, W] F32; timestep [B] (any float dtype, any device; the
  // scheduler's timestep values, e.g. 999) or [B, N], one per video token in
  // (frame, row, column) order (Wan2.2 TI2V, docs/wan.md §8.2); context [B, L, text_dim] with
  // L <= text_len, zero-padded to text_len rows here before the text MLP
  // (docs/wan.md §1.5). Returns the velocity [B, out_dim, T, H, W] F32. Runs on
  // x's device, which must be the weights'; precision policy in wan_dit.cpp.
  Tensor forward(const Tensor& x, const Tensor& timestep, const Tensor& context, const DumpHook& dump = {}) const;
  // Image-to-video (docs/wan.md §5.1): x carries the conditioning channels too
  // ([noise 16, mask 4, image latents 16] = in_dim 36), and image_features [B, I,
  // image_dim] are the CLIP features of the input image (I = 257) or of the first and
  // last frames one after the other (FLF2V, I = 514). Required exactly when the
  // config is image-to-video (Error 65 otherwise).
  Tensor forward(const Tensor& x, const Tensor& timestep, const Tensor& context, const Tensor& image_features,
                 const DumpHook& dump = {}) const;

  // forward == head(in, run_blocks(in, in.h, 0, num_layers)) with in = embed(...).
  // embed checks the inputs as forward does.
  WanDiTEmbedded embed(const Tensor& x, const Tensor& timestep, const Tensor& context,
                       const Tensor& image_features = {}, const DumpHook& dump = {}) const;
  // Blocks [first, last) on the residual stream h [B, N, dim] F32 (B = in's batch).
  Tensor run_blocks(const WanDiTEmbedded& in, Tensor h, int64_t first, int64_t last, const DumpHook& dump = {}) const;
  // The modulated head and unpatchify: h [B, N, dim] -> [B, out_dim, T, H, W] F32.
  Tensor head(const WanDiTEmbedded& in, const Tensor& h, const DumpHook& dump = {}) const;

  // Weight offloading (--offload): the weights outside the blocks move to `device`; the
  // blocks' stay in host memory and run_blocks copies each to `device` just before it runs,
  // the next one ahead of use (Tensor::to_ahead: on a second stream where the backend has
  // one), and frees it after, so the device holds kOffloadWindow blocks at most. The
  // weights must be on the CPU and dense (no packed GGUF blocks); the results are the same
  // bits as with every weight on `device`.
  void set_offload(Device device);
  bool offloaded() const { return offload_device_.has_value(); }

  const WanDiTConfig& config() const { return cfg_; }
  const WanDiTWeights& weights() const { return w_; }

 private:
  WanDiTConfig cfg_;
  WanDiTWeights w_;
  std::optional<Device> offload_device_;
};

// Sinusoidal timestep features [B, freq_dim] (CPU, F32): [cos(t·ω_k), sin(t·ω_k)],
// ω_k = 10000^(-k/half), in the precision `mode` selects (docs/wan.md §2.4).
Tensor wan_timestep_sinusoid(const std::vector<float>& timesteps, int64_t freq_dim, TimestepSinusoid mode);

}  // namespace t2v
