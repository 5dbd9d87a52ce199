// Image branch of the Wan image-to-video DiT. Follows the reference's MLPProj and
// WanI2VCrossAttention (Wan-Video/Wan2.1 wan/modules/model.py) and diffusers'
// WanImageEmbedding / WanAttnProcessor; docs/wan.md §5.1.
#include "diffusion/wan_dit_image.h"

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "kernels/ops.h"

namespace t2v {

namespace {

// torch.nn.LayerNorm's default epsilon: the image embedder's norms are plain
// nn.LayerNorm(dim) in the reference, not the blocks' 1e-6.
constexpr float kImageEmbedEps = 1e-5f;

Tensor linear(const Tensor& x, const Linear& l) { return ops::linear(x, l.weight, l.bias); }

Tensor in_dtype(const Tensor& x, DType dt) { return x.dtype() == dt ? x : ops::cast(x, dt); }

}  // namespace

Tensor wan_image_embedding(const WanImageEmbedding& w, const Tensor& clip, const WanDiTConfig& cfg, DType cd) {
  const int64_t B = clip.size(0), I = clip.size(1);
  Tensor x = clip;
  if (cfg.first_last_frame()) {
    if (I != cfg.image_pos_len)
      throw Error(kExitDataErr,
                  fmt::format("DiT image features have {} tokens; this first-last-frame model takes {} (two images)",
                              I, cfg.image_pos_len),
                  "pass the CLIP features of the first and the last frame");
    x = ops::add(x, w.emb_pos);  // [B, I, image_dim] + [1, I, image_dim]
  }
  x = in_dtype(ops::layer_norm(x, w.proj_0.weight, w.proj_0.bias, kImageEmbedEps), cd);
  x = in_dtype(linear(ops::gelu_erf(linear(x, w.proj_1)), w.proj_3), DType::F32);  // [B, I, dim]
  x = in_dtype(ops::layer_norm(x, w.proj_4.weight, w.proj_4.bias, kImageEmbedEps), cd);
  T2V_ASSERT(x.size(0) == B && x.size(2) == cfg.dim, "image embedding {}", x.str());
  return x;
}

Tensor wan_image_attention(const WanAttention& a, const Tensor& q, const Tensor& img, const WanDiTConfig& cfg) {
  const int64_t B = img.size(0), I = img.size(1), NH = cfg.num_heads, D = cfg.head_dim();
  Tensor k = linear(img, a.k_img);
  if (a.norm_k_img.defined()) k = ops::rms_norm(k, a.norm_k_img, cfg.eps);
  const Tensor v = linear(img, a.v_img).reshape(Shape{B, I, NH, D});
  ops::AttentionParams p;
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  return ops::attention(q, k.reshape(Shape{B, I, NH, D}), v, p);  // [B, N, NH, D]
}

}  // namespace t2v
