// linear and matmul on OpenBLAS sgemm (row-major, fp32 accumulate inside BLAS).
// Test: tests/kernels/test_gemm.cpp (against a double loop; timing printout for
// a 4096x4096 linear).
#include <cblas.h>

#include <cstring>

#include "kernels/cpu/ops_cpu.h"

namespace t2v::ops::cpu {

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t K = x.size(-1), N = w.size(0), M = K == 0 ? 0 : x.numel() / K;
  std::vector<int64_t> out_dims = x.shape().vec();
  out_dims.back() = N;
  Tensor y = Tensor::empty(Shape(out_dims), DType::F32);
  float* yp = y.data<float>();
  if (M == 0 || N == 0) return y;
  float beta = 0.0f;
  if (bias.defined()) {
    // C = x·wᵀ + C with C pre-filled by the bias rows: one rounding, as addmm.
    const float* bp = bias.data<float>();
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; ++m) std::memcpy(yp + m * N, bp, sizeof(float) * N);
    beta = 1.0f;
  }
  if (K == 0) {
    if (!bias.defined()) std::memset(yp, 0, sizeof(float) * M * N);
    return y;
  }
  // [M, K] · [N, K]ᵀ: w is "K-major" (PyTorch Linear layout), hence CblasTrans.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, x.data<float>(), (int)K,
              w.data<float>(), (int)K, beta, yp, (int)N);
  return y;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  const int nd = a.dim();
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  std::vector<int64_t> out_dims = a.shape().vec();
  out_dims[nd - 1] = N;
  Tensor y = Tensor::zeros(Shape(out_dims), DType::F32);
  const int64_t batch = (M * N == 0) ? 0 : y.numel() / (M * N);
  if (K == 0) return y;
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* yp = y.data<float>();
  for (int64_t i = 0; i < batch; ++i) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, ap + i * M * K, (int)K,
                bp + i * K * N, (int)N, 0.0f, yp + i * M * N, (int)N);
  }
  return y;
}

}  // namespace t2v::ops::cpu
