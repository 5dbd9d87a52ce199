// Scaled-dot-product attention on the CPU: per (batch, head) and per block of
// query rows, S = scale·Q·Kᵀ (sgemm) + bias, masked keys -> -inf, row softmax
// (fp32 exp, double sum), O = P·V (sgemm). The head slices are read in place
// through the BLAS leading dimension (rows of one head are NH·D apart), so
// nothing is gathered; memory is one [kQueryBlock, Nk] logit block, never Nq·Nk.
// Test: tests/kernels/test_attention.cpp (naive double loop, mask and bias cases,
// timing printout for N = 2048, D = 128).
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/ops_cpu.h"

namespace t2v::ops::cpu {
namespace {

constexpr int64_t kQueryBlock = 256;

// key_mask [B, Nk] of any accepted dtype -> keep flags.
std::vector<uint8_t> mask_keep_flags(const Tensor& m) {
  const int64_t n = m.numel();
  std::vector<uint8_t> keep(n);
  switch (m.dtype()) {
    case DType::I64: { const int64_t* p = m.data<int64_t>(); for (int64_t i = 0; i < n; ++i) keep[i] = p[i] != 0; break; }
    case DType::I32: { const int32_t* p = m.data<int32_t>(); for (int64_t i = 0; i < n; ++i) keep[i] = p[i] != 0; break; }
    case DType::U8: { const uint8_t* p = m.data<uint8_t>(); for (int64_t i = 0; i < n; ++i) keep[i] = p[i] != 0; break; }
    case DType::F32: { const float* p = m.data<float>(); for (int64_t i = 0; i < n; ++i) keep[i] = p[i] != 0.0f; break; }
    default: T2V_ASSERT(false, "attention: key_mask dtype {} not checked by ops.cpp", dtype_name(m.dtype()));
  }
  return keep;
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
  const int64_t B = q.size(0), Nq = q.size(1), NH = q.size(2), D = q.size(3);
  const int64_t Nk = k.size(1), Dv = v.size(3);
  Tensor out = Tensor::zeros(Shape{B, Nq, NH, Dv}, DType::F32);
  if (B * Nq * NH * Dv == 0 || Nk == 0) return out;  // no keys: zeros, as a fully masked row
  const float* qp = q.data<float>();
  const float* kp = k.data<float>();
  const float* vp = v.data<float>();
  float* op = out.data<float>();

  std::vector<uint8_t> keep;
  if (p.key_mask.defined()) keep = mask_keep_flags(p.key_mask);
  // Bias [Bb, Hb, Qb, Kb] (ops.cpp reshaped it to 4-D); size-1 dims broadcast via stride 0.
  const float* bp = p.bias.defined() ? p.bias.data<float>() : nullptr;
  int64_t bs[4] = {0, 0, 0, 0};
  if (bp) {
    int64_t st = 1;
    for (int i = 3; i >= 0; --i) {
      bs[i] = p.bias.size(i) == 1 ? 0 : st;
      st *= p.bias.size(i);
    }
  }

  std::vector<float> logits(std::min(kQueryBlock, Nq) * Nk);
  for (int64_t b = 0; b < B; ++b) {
    const uint8_t* kb = keep.empty() ? nullptr : keep.data() + b * Nk;
    for (int64_t h = 0; h < NH; ++h) {
      const float* qh = qp + (b * Nq * NH + h) * D;   // row n at qh + n·NH·D
      const float* kh = kp + (b * Nk * NH + h) * D;   // row n at kh + n·NH·D
      const float* vh = vp + (b * Nk * NH + h) * Dv;  // row n at vh + n·NH·Dv
      float* oh = op + (b * Nq * NH + h) * Dv;
      for (int64_t q0 = 0; q0 < Nq; q0 += kQueryBlock) {
        const int64_t nq = std::min(kQueryBlock, Nq - q0);
        float* S = logits.data();  // [nq, Nk]
        if (D > 0) {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)Nk, (int)D, p.scale, qh + q0 * NH * D,
                      (int)(NH * D), kh, (int)(NH * D), 0.0f, S, (int)Nk);
        } else {
          std::fill(S, S + nq * Nk, 0.0f);
        }
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < nq; ++i) {
          float* s = S + i * Nk;
          if (bp) {
            const float* br = bp + b * bs[0] + h * bs[1] + (q0 + i) * bs[2];
            for (int64_t j = 0; j < Nk; ++j) s[j] += br[j * bs[3]];
          }
          if (kb) {
            for (int64_t j = 0; j < Nk; ++j)
              if (!kb[j]) s[j] = -INFINITY;
          }
          float mx = -INFINITY;
          for (int64_t j = 0; j < Nk; ++j) mx = std::max(mx, s[j]);
          if (mx == -INFINITY) {  // every key masked: the row's output stays zero
            std::fill(s, s + Nk, 0.0f);
            continue;
          }
          double sum = 0.0;
          for (int64_t j = 0; j < Nk; ++j) {
            s[j] = std::exp(s[j] - mx);
            sum += s[j];
          }
          const float inv = (float)(1.0 / sum);
          for (int64_t j = 0; j < Nk; ++j) s[j] *= inv;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)Dv, (int)Nk, 1.0f, S, (int)Nk, vh,
                    (int)(NH * Dv), 0.0f, oh + q0 * NH * Dv, (int)(NH * Dv));
      }
    }
  }
  return out;
}

}  // namespace t2v::ops::cpu
