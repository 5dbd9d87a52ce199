// The image branch of the Wan2.1 image-to-video DiT (I2V-14B, FLF2V-14B;
// docs/wan.md §5.1): the image embedder that turns CLIP features into tokens of the
// model's width, and the second cross-attention over those tokens.
//
// Symbols: B batch, I image tokens (257, or 514 for FLF2V), N video tokens,
// NH heads, D head dim.
#pragma once

#include "core/tensor.h"
#include "diffusion/wan_dit_config.h"
#include "diffusion/wan_dit_weights.h"

namespace t2v {

// clip [B, I, image_dim] F32 (CLIP hidden states of the second-to-last block; FLF2V: the
// first frame's tokens then the last frame's) -> [B, I, dim] in the compute dtype `cd`
// (what the image key/value projections read): (+ emb_pos) -> LN -> Linear -> GELU (erf)
// -> Linear -> LN. The positions and the LayerNorms (eps 1e-5) in fp32, as the reference
// keeps them under autocast; the input of the Linears cast to `cd` once.
Tensor wan_image_embedding(const WanImageEmbedding& w, const Tensor& clip, const WanDiTConfig& cfg, DType cd);

// The image attention of one block: the text attention's queries q [B, N, NH, D] over
// keys RMSN_k_img(img·Wk_imgᵀ) and values img·Wv_imgᵀ of the embedded image tokens
// img [B, I, dim], unmasked, scale 1/sqrt(D). q, img and the result [B, N, NH, D] in the
// compute dtype; the result is added to the text attention before the output projection.
Tensor wan_image_attention(const WanAttention& a, const Tensor& q, const Tensor& img, const WanDiTConfig& cfg);

}  // namespace t2v
