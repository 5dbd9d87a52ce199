// Wan2.1 DiT forward on the op set (kernels/ops.h). The order of operations
// follows the reference WanModel.forward (Wan-Video/Wan2.1 wan/modules/model.py)
// and diffusers' WanTransformer3DModel; docs/wan.md §2.
//
// Precision (docs/wan.md §2.10): one setting, the compute dtype of the weights
// (WanDiTWeights::dtype: F32 on the CPU; BF16 or F32 on a device). The large
// GEMMs (patch embedding, text MLP, q/k/v/o of both attentions, the FFN) run in
// it: their input is cast to it once per GEMM group and their output comes back
// in it. fp32 islands, where the reference runs fp32 under autocast: the time
// MLP and projection, the modulation (M + e0), the statistics of every norm,
// the residual stream x (from the patch embedding on: its bf16 output widens
// exactly), the head (modulation and Linear) and the output. Image-to-video: the
// image embedder's LayerNorms (and FLF2V's positions) are fp32, its two Linears and
// the image key/value projections run in the compute dtype (diffusion/wan_dit_image.h).
// With F32 weights every cast is a no-op and the forward is the fp32 reference.
#include "diffusion/wan_dit.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "core/error.h"
#include "diffusion/wan_dit_geometry.h"
#include "diffusion/wan_dit_image.h"
#include "diffusion/wan_dit_timestep.h"
#include "kernels/ops.h"
#include "kernels/packed_ops.h"

namespace t2v {

namespace {

Tensor linear(const Tensor& x, const Linear& l) {
  return l.packed ? ops::linear_packed(x, *l.packed, l.bias) : ops::linear(x, l.weight, l.bias);
}
// Packed (GGUF) weights have no fused epilogue: the GEMM, then the activation.
Tensor linear_gelu_tanh(const Tensor& x, const Linear& l) {
  return l.packed ? ops::gelu_tanh(ops::linear_packed(x, *l.packed, l.bias))
                  : ops::linear_gelu_tanh(x, l.weight, l.bias);
}

// x in dtype dt (no op when it already is): the one place activations change precision.
Tensor in_dtype(const Tensor& x, DType dt) { return x.dtype() == dt ? x : ops::cast(x, dt); }

// Modulation chunk i of E [B, K, dim] as [B, 1, dim] (broadcast over tokens); with
// per-token timesteps (groups > 0, docs/wan.md §8.2) of E [B, G, K, dim] as [B, G, 1, dim],
// broadcast over the tokens of each group.
Tensor chunk(const Tensor& e, int i, int64_t groups = 0) {
  return groups == 0 ? ops::slice(e, 1, i, i + 1) : ops::slice(e, 2, i, i + 1);
}

// x [B, N, dim] as the operand of a modulation: itself, or [B, G, N/G, dim] for groups.
Tensor grouped(const Tensor& x, int64_t groups) {
  return groups == 0 ? x : x.reshape(Shape{x.size(0), groups, x.size(1) / groups, x.size(2)});
}
Tensor ungrouped(const Tensor& x, int64_t groups) {
  return groups == 0 ? x : x.reshape(Shape{x.size(0), x.size(1) * x.size(2), x.size(3)});
}

// q/k RMSNorm over the whole dim (all heads jointly), before the head split.
Tensor qk_norm(const Tensor& x, const Tensor& weight, float eps) {
  return weight.defined() ? ops::rms_norm(x, weight, eps) : x;
}

// Self-attention with 3D RoPE on q and k. x [B, N, dim] and the result in the compute
// dtype; rope [N, D/2, 2] F32.
Tensor self_attention(const WanAttention& a, const Tensor& x, const Tensor& rope, const WanDiTConfig& cfg) {
  const int64_t B = x.size(0), N = x.size(1), NH = cfg.num_heads, D = cfg.head_dim();
  const Shape heads{B, N, NH, D};
  Tensor q = qk_norm(linear(x, a.q), a.norm_q, cfg.eps).reshape(heads);  // [B, N, NH, D]
  Tensor k = qk_norm(linear(x, a.k), a.norm_k, cfg.eps).reshape(heads);
  Tensor v = linear(x, a.v).reshape(heads);
  q = ops::rope_3d(q, rope);
  k = ops::rope_3d(k, rope);
  ops::AttentionParams p;
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  Tensor o = ops::attention(q, k, v, p).reshape(Shape{B, N, cfg.dim});  // [B, N, dim]
  return linear(o, a.o);
}

// Cross-attention on the text_len context rows (no mask, docs/wan.md §2.7), given as
// ctx [B, L, dim] and, when L < text_len, `pad_bias` [1, 1, 1, L] that weights the
// last row as the zero rows it stands for (see WanDiT::forward). Image-to-video: the
// same queries also attend to the image tokens img [B, I, dim] (unmasked, their own
// keys and values), and the two results are summed before `o` (docs/wan.md §5.1).
// x [B, N, dim] -> [B, N, dim]; x, ctx, img and the result in the compute dtype.
Tensor cross_attention(const WanAttention& a, const Tensor& x, const Tensor& ctx, const Tensor& pad_bias,
                       const Tensor& img, const WanDiTConfig& cfg) {
  const int64_t B = x.size(0), N = x.size(1), L = ctx.size(1), NH = cfg.num_heads, D = cfg.head_dim();
  Tensor q = qk_norm(linear(x, a.q), a.norm_q, cfg.eps).reshape(Shape{B, N, NH, D});
  Tensor k = qk_norm(linear(ctx, a.k), a.norm_k, cfg.eps).reshape(Shape{B, L, NH, D});
  Tensor v = linear(ctx, a.v).reshape(Shape{B, L, NH, D});
  ops::AttentionParams p;
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  p.bias = pad_bias;
  Tensor o = ops::attention(q, k, v, p);  // [B, N, NH, D]
  if (img.defined()) o = ops::add(o, wan_image_attention(a, q, img, cfg));
  return linear(o.reshape(Shape{B, N, cfg.dim}), a.o);
}

// For dumps: the text embedding as text_len rows, the last (padding) row repeated.
Tensor expand_padding(const Tensor& ctx, int64_t text_len) {
  const Tensor c = ctx.to(Device::CPU);
  const int64_t B = c.size(0), L = c.size(1), dim = c.size(2);
  Tensor out = Tensor::empty(Shape{B, text_len, dim}, DType::F32);
  const std::vector<float> src = c.to_vector();
  float* dst = out.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t r = 0; r < text_len; ++r)
      std::copy_n(src.data() + (b * L + std::min(r, L - 1)) * dim, dim, dst + (b * text_len + r) * dim);
  return out;
}

// One transformer block (docs/wan.md §2.6). x [B, N, dim] F32 (the residual stream),
// e0 [B, 6, dim] F32 (or per token group [B, G, 6, dim], groups = G), ctx in the compute dtype `cd`.
Tensor block_forward(const WanDiTBlock& blk, int index, Tensor x, const Tensor& e0, int64_t groups, const Tensor& ctx,
                     const Tensor& pad_bias, const Tensor& img, const Tensor& rope, const WanDiTConfig& cfg, DType cd,
                     const DumpHook& dump) {
  const std::string name = fmt::format("blocks.{}.", index);
  const int64_t G = groups;
  // [B, 6, dim] (or [B, G, 6, dim]) F32: shift, scale, gate (self-attn), same (FFN)
  const Tensor e = ops::add(G == 0 ? blk.modulation : blk.modulation.reshape(Shape{1, 1, 6, cfg.dim}), e0);
  const Tensor none;
  // 1-3. modulated self-attention (LN and modulation in fp32, cast once for the GEMMs), gated residual
  Tensor a = in_dtype(
      ungrouped(ops::layer_norm_modulate(grouped(x, G), none, none, cfg.eps, chunk(e, 0, G), chunk(e, 1, G)), G), cd);
  Tensor y = self_attention(blk.self_attn, a, rope, cfg);
  if (dump) dump(name + "self_attn.out", y);
  x = ungrouped(ops::add_gated(grouped(x, G), grouped(y, G), chunk(e, 2, G)), G);
  // 4. cross-attention: affine LN (original norm3), no modulation, no gate
  Tensor xn = in_dtype(cfg.cross_attn_norm ? ops::layer_norm(x, blk.norm3.weight, blk.norm3.bias, cfg.eps) : x, cd);
  y = cross_attention(blk.cross_attn, xn, ctx, pad_bias, img, cfg);
  if (dump) dump(name + "cross_attn.out", y);
  x = ops::add(x, y);
  // 5-7. modulated tanh-GELU FFN, gated residual
  Tensor b = in_dtype(
      ungrouped(ops::layer_norm_modulate(grouped(x, G), none, none, cfg.eps, chunk(e, 3, G), chunk(e, 4, G)), G), cd);
  y = linear(linear_gelu_tanh(b, blk.ffn_0), blk.ffn_2);
  if (dump) dump(name + "ffn.out", y);
  x = ungrouped(ops::add_gated(grouped(x, G), grouped(y, G), chunk(e, 5, G)), G);
  if (dump) dump(name + "out", x);
  return x;
}

// A block's weights on `dev` (copied ahead: Tensor::to_ahead); the source must stay alive
// until wait_copies_ahead(dev) (the model's host copy does).
WanDiTBlock block_to(const WanDiTBlock& b, Device dev) {
  auto t = [&](const Tensor& x) {
    T2V_ASSERT(!x.defined() || x.device() == Device::CPU, "an offloaded block's weight is on {}",
               device_name(x.device()));
    return x.defined() ? x.to_ahead(dev) : Tensor();
  };
  auto l = [&](const Linear& x) {
    T2V_ASSERT(!x.packed, "offloading needs dense weights (a packed GGUF matrix cannot move)");
    Linear y;
    y.weight = t(x.weight);
    y.bias = t(x.bias);
    return y;
  };
  auto attn = [&](const WanAttention& a) {
    WanAttention y;
    y.q = l(a.q), y.k = l(a.k), y.v = l(a.v), y.o = l(a.o);
    y.norm_q = t(a.norm_q), y.norm_k = t(a.norm_k);
    y.k_img = l(a.k_img), y.v_img = l(a.v_img);
    y.norm_k_img = t(a.norm_k_img);
    return y;
  };
  WanDiTBlock y;
  y.modulation = t(b.modulation);
  y.self_attn = attn(b.self_attn);
  y.norm3.weight = t(b.norm3.weight);
  y.norm3.bias = t(b.norm3.bias);
  y.cross_attn = attn(b.cross_attn);
  y.ffn_0 = l(b.ffn_0);
  y.ffn_2 = l(b.ffn_2);
  return y;
}

}  // namespace

Tensor wan_timestep_sinusoid(const std::vector<float>& timesteps, int64_t freq_dim, TimestepSinusoid mode) {
  const int64_t B = static_cast<int64_t>(timesteps.size()), half = freq_dim / 2;
  Tensor out = Tensor::empty(Shape{B, freq_dim}, DType::F32);
  float* o = out.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t k = 0; k < half; ++k) {
      if (mode == TimestepSinusoid::Float64) {
        // Reference: float64 throughout, one rounding to fp32 at the end.
        const double omega = std::pow(10000.0, -static_cast<double>(k) / static_cast<double>(half));
        const double arg = static_cast<double>(timesteps[b]) * omega;
        o[b * freq_dim + k] = static_cast<float>(std::cos(arg));
        o[b * freq_dim + half + k] = static_cast<float>(std::sin(arg));
      } else {
        // diffusers get_timestep_embedding: every step rounded to fp32.
        const float exponent = (-static_cast<float>(std::log(10000.0)) * static_cast<float>(k)) /
                               static_cast<float>(half);
        const float omega = std::exp(exponent);
        const float arg = timesteps[b] * omega;
        o[b * freq_dim + k] = static_cast<float>(std::cos(static_cast<double>(arg)));
        o[b * freq_dim + half + k] = static_cast<float>(std::sin(static_cast<double>(arg)));
      }
    }
  }
  return out;
}

WanDiT::WanDiT(WanDiTConfig cfg, WanDiTWeights weights) : cfg_(std::move(cfg)), w_(std::move(weights)) {
  cfg_.validate("the Wan DiT config");
  T2V_ASSERT(static_cast<int64_t>(w_.blocks.size()) == cfg_.num_layers, "{} blocks bound for {} layers",
             w_.blocks.size(), cfg_.num_layers);
  T2V_ASSERT(!w_.patch_embedding.weight.defined() || w_.patch_embedding.weight.dtype() == w_.dtype,
             "GEMM weights are {}, the compute dtype {}", w_.patch_embedding.weight.str(), dtype_name(w_.dtype));
}

WanDiTEmbedded WanDiTEmbedded::row(int64_t b) const {
  WanDiTEmbedded r = *this;
  r.h = h.narrow0(b, 1);
  r.e = e.narrow0(b, 1);
  r.e0 = e0.narrow0(b, 1);
  r.ctx = ctx.narrow0(b, 1);
  if (img.defined()) r.img = img.narrow0(b, 1);
  return r;
}

Tensor WanDiT::forward(const Tensor& x, const Tensor& timestep, const Tensor& context, const DumpHook& dump) const {
  return forward(x, timestep, context, Tensor(), dump);
}

Tensor WanDiT::forward(const Tensor& x, const Tensor& timestep, const Tensor& context, const Tensor& image_features,
                       const DumpHook& dump) const {
  const WanDiTEmbedded in = embed(x, timestep, context, image_features, dump);
  return head(in, run_blocks(in, in.h, 0, cfg_.num_layers, dump), dump);
}

WanDiTEmbedded WanDiT::embed(const Tensor& x, const Tensor& timestep, const Tensor& context,
                             const Tensor& image_features, const DumpHook& dump) const {
  const WanDiTConfig& c = cfg_;
  const auto& p = c.patch_size;
  // ---- input checks (user-visible: the probe feeds arbitrary files) ----
  if (x.dim() != 5 || x.size(1) != c.in_dim)
    throw Error(kExitDataErr, fmt::format("DiT input hidden_states is {}, expected [B, {}, T, H, W]", x.str(), c.in_dim),
                "pass the latent with the model's channel count");
  const int64_t B = x.size(0), T = x.size(2), H = x.size(3), W = x.size(4);
  if (T % p[0] || H % p[1] || W % p[2] || T == 0 || H == 0 || W == 0)
    throw Error(kExitDataErr,
                fmt::format("DiT input hidden_states {}: T, H, W must be positive multiples of the patch {}x{}x{}",
                            x.shape().str(), p[0], p[1], p[2]),
                "video height and width must be multiples of 16");
  const int64_t Tp = T / p[0], Hp = H / p[1], Wp = W / p[2];
  if (std::max({Tp, Hp, Wp}) > c.rope_max_seq_len)
    throw Error(kExitDataErr,
                fmt::format("DiT token grid {}x{}x{} exceeds the RoPE table of {} positions per axis", Tp, Hp, Wp,
                            c.rope_max_seq_len),
                "use a smaller video size or frame count");
  if (context.dim() != 3 || context.size(0) != B || context.size(2) != c.text_dim || context.size(1) > c.text_len ||
      context.size(1) == 0)
    throw Error(kExitDataErr,
                fmt::format("DiT encoder_hidden_states is {}, expected [{}, L, {}] with 1 <= L <= {}", context.str(), B,
                            c.text_dim, c.text_len),
                "pass the text encoder's output rows for each prompt");
  if (c.image_to_video() != image_features.defined() ||
      (image_features.defined() && (image_features.dim() != 3 || image_features.size(0) != B ||
                                    image_features.size(2) != c.image_dim || image_features.size(1) == 0)))
    throw Error(kExitDataErr,
                c.image_to_video()
                    ? fmt::format("DiT image features are {}, this {} model takes [{}, I, {}] CLIP features",
                                  image_features.defined() ? image_features.str() : std::string("missing"),
                                  c.model_type(), B, c.image_dim)
                    : std::string("DiT image features given to a text-to-video model"),
                c.image_to_video() ? "pass the image encoder's features of the input image(s)"
                                   : "image features are for image-to-video checkpoints only");
  const Device dev = x.device();
  const DType cd = w_.dtype;

  // ---- patch embedding: a Linear over gathered 1x2x2 patches (== the Conv3d) ----
  // Its output starts the fp32 residual stream (a compute-dtype value widens exactly).
  Tensor h = in_dtype(linear(in_dtype(patchify_3d(x, p), cd), w_.patch_embedding), DType::F32);  // [B, N, dim]
  if (dump) dump("patch_embedding", h);

  // ---- time embedding: e [B, dim] (head), e0 [B, 6, dim] (blocks), fp32; per token
  //      group with a per-token timestep (wan_dit_timestep.h) ----
  const int64_t N = Tp * Hp * Wp;
  const WanTimeConditioning tc = wan_time_conditioning(w_, c, timestep, B, N, Hp * Wp, dev);
  const Tensor& e = tc.e;
  if (dump) dump("time_embedding", tc.groups == 0 ? e : wan_time_per_token(e, tc.groups, N));
  if (dump)
    dump("time_projection", tc.groups == 0 ? tc.e0.reshape(Shape{B, 6 * c.dim})
                                           : wan_time_per_token(tc.e0, tc.groups, N).reshape(Shape{B, N, 6 * c.dim}));

  // ---- text embedding: the given rows, then exact zeros up to text_len (docs/wan.md §1.5) ----
  // The zero rows all embed to the same row, so in every cross-attention they share one
  // key and one value: a single zero row stands for the text_len - L of them, its logit
  // raised by log(text_len - L) (softmax over n equal logits == one logit + log n). The
  // same attention, with L + 1 keys instead of text_len: for a 12-token prompt the
  // cross-attention and text embedding cost 2.5% of the padded ones.
  Tensor ctx = in_dtype(context.to(dev), cd);  // the text MLP's input, in the compute dtype
  const int64_t L = ctx.size(1);
  Tensor pad_bias;  // [1, 1, 1, L + 1]: 0 for the given rows, log(text_len - L) for the stand-in
  if (L < c.text_len) {
    ctx = ops::concat({ctx, Tensor::zeros(Shape{B, 1, c.text_dim}, cd, dev)}, 1);
    pad_bias = Tensor::zeros(Shape{1, 1, 1, L + 1}, DType::F32);
    pad_bias.data<float>()[L] = static_cast<float>(std::log(static_cast<double>(c.text_len - L)));
    pad_bias = pad_bias.to(dev);
  }
  ctx = linear(linear_gelu_tanh(ctx, w_.text_embedding_0), w_.text_embedding_2);  // [B, L (+1), dim]
  if (dump) dump("text_embedding", L < c.text_len ? expand_padding(ctx, c.text_len) : ctx);

  // ---- image tokens (image-to-video): attended to beside the text in every block ----
  Tensor img;  // [B, I, dim]
  if (image_features.defined()) {
    Tensor f = image_features.to(dev);
    if (f.dtype() != DType::F32) f = ops::cast(f, DType::F32);
    img = wan_image_embedding(w_.img_emb, f, c, cd);
    if (dump) dump("image_embedding", img);
  }

  WanDiTEmbedded in;
  in.h = std::move(h);
  in.e = tc.e;
  in.e0 = tc.e0;
  in.groups = tc.groups;
  in.ctx = std::move(ctx);
  in.img = std::move(img);
  in.pad_bias = std::move(pad_bias);
  in.rope = rope_3d_table(Tp, Hp, Wp, c.head_dim(), c.rope_theta).to(dev);  // [N, D/2, 2]
  in.grid = {Tp, Hp, Wp};
  return in;
}

Tensor WanDiT::run_blocks(const WanDiTEmbedded& in, Tensor h, int64_t first, int64_t last,
                          const DumpHook& dump) const {
  T2V_ASSERT(0 <= first && first <= last && last <= cfg_.num_layers, "blocks [{}, {}) of {}", first, last,
             cfg_.num_layers);
  if (!offload_device_) {
    for (int64_t i = first; i < last; ++i)
      h = block_forward(w_.blocks[static_cast<size_t>(i)], static_cast<int>(i), std::move(h), in.e0, in.groups,
                        in.ctx, in.pad_bias, in.img, in.rope, cfg_, w_.dtype, dump);
    return h;
  }
  // Offloaded: block i runs while block i + 1 is copied; block i is freed after it ran.
  const Device dev = *offload_device_;
  std::optional<WanDiTBlock> next;
  if (first < last) next = block_to(w_.blocks[static_cast<size_t>(first)], dev);
  for (int64_t i = first; i < last; ++i) {
    const WanDiTBlock current = std::move(*next);
    next.reset();
    wait_copies_ahead(dev);  // `current` is there before its work is queued (the next copy is not waited for)
    if (i + 1 < last) next = block_to(w_.blocks[static_cast<size_t>(i + 1)], dev);
    h = block_forward(current, static_cast<int>(i), std::move(h), in.e0, in.groups, in.ctx, in.pad_bias, in.img,
                      in.rope, cfg_, w_.dtype, dump);
  }
  return h;
}

void WanDiT::set_offload(Device device) {
  T2V_ASSERT(device != Device::CPU, "offloading to the CPU");
  auto move = [&](Tensor& t) {
    if (t.defined()) t = t.to(device);
  };
  auto move_linear = [&](Linear& l) {
    T2V_ASSERT(!l.packed, "offloading needs dense weights");
    move(l.weight);
    move(l.bias);
  };
  for (Linear* l : {&w_.patch_embedding, &w_.text_embedding_0, &w_.text_embedding_2, &w_.time_embedding_0,
                    &w_.time_embedding_2, &w_.time_projection_1, &w_.head.head, &w_.img_emb.proj_1,
                    &w_.img_emb.proj_3})
    move_linear(*l);
  for (Tensor* t : {&w_.head.modulation, &w_.img_emb.proj_0.weight, &w_.img_emb.proj_0.bias,
                    &w_.img_emb.proj_4.weight, &w_.img_emb.proj_4.bias, &w_.img_emb.emb_pos})
    move(*t);
  for (const WanDiTBlock& b : w_.blocks) block_to(b, Device::CPU);  // checks: on the host, dense
  offload_device_ = device;
}

Tensor WanDiT::head(const WanDiTEmbedded& in, const Tensor& h, const DumpHook& dump) const {
  // (shift, scale) = head.modulation + e, LN, Linear, all fp32
  const WanDiTConfig& c = cfg_;
  const int64_t B = h.size(0);
  const int64_t G = in.groups;
  const Tensor hm = G == 0 ? ops::add(w_.head.modulation, in.e.reshape(Shape{B, 1, c.dim}))  // [B, 2, dim]
                           : ops::add(w_.head.modulation.reshape(Shape{1, 1, 2, c.dim}),
                                      in.e.reshape(Shape{B, G, 1, c.dim}));  // [B, G, 2, dim]
  const Tensor none;
  Tensor out =
      ungrouped(ops::layer_norm_modulate(grouped(h, G), none, none, c.eps, chunk(hm, 0, G), chunk(hm, 1, G)), G);
  out = linear(out, w_.head.head);  // [B, N, pt*ph*pw*out_dim] F32
  if (dump) dump("head.out", out);
  Tensor sample = unpatchify_3d(out, in.grid, c.patch_size, c.out_dim);  // [B, out_dim, T, H, W]
  if (dump) dump("sample", sample);
  return sample;
}

}  // namespace t2v
