// linear on a packed weight: tiles of W's rows are dequantized to fp32 (the
// exact values core/quant.h gives) and multiplied on OpenBLAS sgemm, writing
// straight into the output columns of the tile. Each output element is one
// sgemm dot product over the full K, as in cpu::linear on the dequantized
// matrix. Test: tests/kernels/test_linear_packed.cpp.
#include <cblas.h>

#include <algorithm>

#include "core/quant.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/cpu/quant_gemm.h"

namespace t2v::ops::cpu {

namespace {

// Rows of W dequantized per tile: about 4 MB of fp32, at least one row.
constexpr int64_t kTileFloats = int64_t{1} << 20;

}  // namespace

Tensor linear_packed(const Tensor& x, const PackedWeight& w, const Tensor& bias) {
  const int64_t K = x.size(-1), N = w.shape[0];
  LinearOutput out = linear_output(x, N, bias);
  const int64_t M = out.rows;
  if (M == 0 || N == 0 || K == 0) return out.y;
  float* yp = out.y.data<float>();
  const float beta = out.beta;
  const int64_t tile = std::clamp<int64_t>(kTileFloats / K, 1, N);
  const int64_t row_bytes = w.row_bytes();
  const auto* blocks = w.data.data<uint8_t>();
  Tensor buf = Tensor::empty(Shape{tile, K}, DType::F32);
  float* wt = buf.data<float>();
  for (int64_t n0 = 0; n0 < N; n0 += tile) {
    const int64_t nt = std::min(tile, N - n0);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < nt; ++r) dequantize(w.type, blocks + (n0 + r) * row_bytes, wt + r * K, K);
    // [M, K] · [nt, K]ᵀ into columns n0.. of y (leading dimension N).
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)nt, (int)K, 1.0f, x.data<float>(), (int)K, wt,
                (int)K, beta, yp + n0, (int)N);
  }
  return out.y;
}

}  // namespace t2v::ops::cpu
