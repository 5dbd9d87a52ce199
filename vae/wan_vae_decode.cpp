// Streamed Wan VAE decode: one latent frame per step through the causal cache
// (docs/wan.md §3.6), optionally over overlapping spatial tiles blended linearly.
//
// Memory between steps is the cache only: 2 frames per temporal conv at its
// level (32 slots for Wan2.1). Within a step the peak is one chunk's
// activations (4 frames at the two finest levels). Neither grows with T.
//
// Tiling follows diffusers' AutoencoderKLWan.tiled_decode: latent tiles of
// tile_h x tile_w at stride stride_h x stride_w, each decoded with its own cache;
// in output pixels, a tile's first (tile - stride) * 8 rows/columns are blended
// with the tile above/left by a linear ramp, then each tile contributes its first
// stride * 8 rows/columns. Tiles see zero padding where the full frame had
// neighbours, so tiled output differs from untiled (measured in docs/perf_vae.md).
#include <algorithm>

#include "kernels/ops.h"
#include "vae/wan_vae.h"

namespace t2v {

WanVAEDecodeStream::WanVAEDecodeStream(const WanVAE& vae, const WanVAETiling& tiling) : vae_(vae), tiling_(tiling) {
  if (!vae.parts.decoder)
    throw Error(kExitUsage, "VAE decode: the decoder was not loaded", "load the VAE with parts.decoder = true");
  if (tiling.enabled && (tiling.tile_h <= 0 || tiling.tile_w <= 0 || tiling.stride_h <= 0 || tiling.stride_w <= 0 ||
                         tiling.stride_h > tiling.tile_h || tiling.stride_w > tiling.tile_w))
    throw Error(kExitUsage,
                fmt::format("VAE tiling: tile {}x{} with stride {}x{} (latent pixels) is invalid", tiling.tile_h,
                            tiling.tile_w, tiling.stride_h, tiling.stride_w),
                "use 0 < stride <= tile, e.g. tile 32 and stride 24");
}

size_t WanVAEDecodeStream::cache_bytes() const {
  size_t n = 0;
  for (const Tile& t : tiles_) n += t.cache.bytes();
  return n;
}

Tensor WanVAEDecodeStream::decode_tile(const Tensor& mu_frame, Tile& tile) const {
  Tensor z = mu_frame;
  if (tiled_) z = ops::slice(ops::slice(z, 3, tile.y0, tile.y0 + tile.h), 4, tile.x0, tile.x0 + tile.w);
  z = vae_.conv2.forward(z, nullptr);  // post-quant 1x1x1 conv: per frame, no cache
  tile.cache.rewind();
  return vae_.decoder.forward(z, &tile.cache);  // [B, 3, f, 8*tile.h, 8*tile.w], unclamped
}

Tensor WanVAEDecodeStream::push(const Tensor& mu_frame) {
  const WanVAEConfig& cfg = vae_.config;
  if (mu_frame.dim() != 5 || mu_frame.size(1) != cfg.z_dim || mu_frame.size(2) != 1)
    throw Error(kExitDataErr,
                fmt::format("VAE decode: latent frame is {}, expected [B, {}, 1, h, w]", mu_frame.shape().str(),
                            cfg.z_dim),
                "push one latent frame at a time");
  const int64_t h = mu_frame.size(3), w = mu_frame.size(4);
  if (h_ < 0) {
    h_ = h;
    w_ = w;
    tiled_ = tiling_.enabled && (h > tiling_.tile_h || w > tiling_.tile_w);
    if (!tiled_) {
      tiles_.push_back(Tile{0, 0, h, w, {}});
    } else {
      rows_ = cols_ = 0;
      for (int64_t y = 0; y < h; y += tiling_.stride_h) ++rows_;
      for (int64_t x = 0; x < w; x += tiling_.stride_w) ++cols_;
      for (int64_t y = 0; y < h; y += tiling_.stride_h)
        for (int64_t x = 0; x < w; x += tiling_.stride_w)
          tiles_.push_back(Tile{y, x, std::min<int64_t>(tiling_.tile_h, h - y), std::min<int64_t>(tiling_.tile_w, w - x), {}});
    }
  } else if (h != h_ || w != w_) {
    throw Error(kExitDataErr,
                fmt::format("VAE decode: latent frame is {}x{}, earlier frames were {}x{}", h, w, h_, w_),
                "all frames of one video must have the same size");
  }

  if (!tiled_) return vae_.finish_decode(decode_tile(vae_.to_compute(mu_frame), tiles_[0]));
  std::vector<Tensor> decoded;
  decoded.reserve(tiles_.size());
  const Tensor z = vae_.to_compute(mu_frame);
  for (Tile& t : tiles_) decoded.push_back(decode_tile(z, t));
  // Tiles are blended before the Wan2.2 unpatchify, in the decoder's output grid, as diffusers does.
  const int64_t s = cfg.decoder_scale();
  return vae_.finish_decode(blend_tiles(decoded, rows_, cols_, s * h, s * w));
}

namespace {

// Linear ramp r[i] = i / n along dimension `dim` of a 5-D tensor (size n there, 1 elsewhere).
Tensor ramp(int64_t n, int dim, const Tensor& like) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(static_cast<double>(i) / n);
  std::vector<int64_t> shape(5, 1);
  shape[static_cast<size_t>(dim)] = n;
  return Tensor::from_floats(v, Shape(shape)).to(like.dtype()).to(like.device());
}

// b with its first `extent` entries along `dim` replaced by
// a[end - extent + i] * (1 - i/extent) + b[i] * (i/extent).
Tensor blend(const Tensor& a, const Tensor& b, int64_t extent, int dim) {
  extent = std::min({a.size(dim), b.size(dim), extent});
  if (extent <= 0) return b;
  const Tensor r = ramp(extent, dim, b);
  const Tensor one_minus_r = ops::add_scalar(ops::scale(r, -1.0f), 1.0f);
  Tensor mixed = ops::add(ops::mul(ops::slice(a, dim, a.size(dim) - extent, a.size(dim)), one_minus_r),
                          ops::mul(ops::slice(b, dim, 0, extent), r));
  if (extent == b.size(dim)) return mixed;
  return ops::concat({mixed, ops::slice(b, dim, extent, b.size(dim))}, dim);
}

}  // namespace

Tensor WanVAEDecodeStream::blend_tiles(std::vector<Tensor>& decoded, int64_t rows, int64_t cols, int64_t out_h,
                                       int64_t out_w) const {
  const int64_t s = vae_.config.decoder_scale();
  const int64_t blend_h = (tiling_.tile_h - tiling_.stride_h) * s, blend_w = (tiling_.tile_w - tiling_.stride_w) * s;
  const int64_t keep_h = tiling_.stride_h * s, keep_w = tiling_.stride_w * s;
  std::vector<Tensor> row_strips;
  for (int64_t i = 0; i < rows; ++i) {
    std::vector<Tensor> parts;
    for (int64_t j = 0; j < cols; ++j) {
      Tensor& tile = decoded[static_cast<size_t>(i * cols + j)];
      // The neighbours above and to the left were already blended (diffusers blends in place).
      if (i > 0) tile = blend(decoded[static_cast<size_t>((i - 1) * cols + j)], tile, blend_h, 3);
      if (j > 0) tile = blend(decoded[static_cast<size_t>(i * cols + j - 1)], tile, blend_w, 4);
      Tensor part = ops::slice(tile, 3, 0, std::min(keep_h, tile.size(3)));
      parts.push_back(ops::slice(part, 4, 0, std::min(keep_w, part.size(4))));
    }
    row_strips.push_back(parts.size() == 1 ? parts[0] : ops::concat(parts, 4));
  }
  Tensor frame = row_strips.size() == 1 ? row_strips[0] : ops::concat(row_strips, 3);
  return ops::slice(ops::slice(frame, 3, 0, out_h), 4, 0, out_w);
}

// ---- WanVAE streaming entry points ---------------------------------------------------------

void WanVAE::decode_stream(const Tensor& mu, const WanVAEFrameSink& sink, const WanVAETiling& tiling) const {
  check_decode_input(mu);
  const Tensor z = to_compute(mu);
  WanVAEDecodeStream stream(*this, tiling);
  for (int64_t t = 0; t < z.size(2); ++t) sink(stream.push(ops::slice(z, 2, t, t + 1)));
}

Tensor WanVAE::decode(const Tensor& mu, const WanVAETiling& tiling) const {
  std::vector<Tensor> frames;
  decode_stream(mu, [&](const Tensor& f) { frames.push_back(f); }, tiling);
  return frames.size() == 1 ? frames[0] : ops::concat(frames, 2);
}

}  // namespace t2v
