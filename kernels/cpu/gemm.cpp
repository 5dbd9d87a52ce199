// linear, linear_gelu_tanh and matmul on OpenBLAS sgemm (row-major, fp32
// accumulate inside BLAS). linear_gelu_tanh applies the GELU to the GEMM output
// in place: the composition's numbers without its second tensor.
// Test: tests/kernels/test_gemm.cpp (against a double loop; timing printout for
// a 4096x4096 linear; the fused op against the composition).
#include <cblas.h>

#include <cstring>
#include <vector>

#include "kernels/cpu/backend_cpu.h"
#include "kernels/cpu/vector_math.h"

namespace t2v::ops::cpu {

LinearOutput linear_output(const Tensor& x, int64_t n, const Tensor& bias) {
  LinearOutput out;
  out.rows = 1;  // also when K = 0: y is then the bias or zeros
  for (int i = 0; i + 1 < x.dim(); ++i) out.rows *= x.size(i);
  std::vector<int64_t> out_dims = x.shape().vec();
  out_dims.back() = n;
  out.y = Tensor::empty(Shape(out_dims), DType::F32);
  const int64_t M = out.rows;
  if (M == 0 || n == 0) return out;
  float* yp = out.y.data<float>();
  if (bias.defined()) {
    const float* bp = bias.data<float>();
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; ++m) std::memcpy(yp + m * n, bp, sizeof(float) * n);
    out.beta = 1.0f;
  } else if (x.size(-1) == 0) {
    std::memset(yp, 0, sizeof(float) * M * n);
  }
  return out;
}

namespace {

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t K = x.size(-1), N = w.size(0);
  LinearOutput out = linear_output(x, N, bias);
  const int64_t M = out.rows;
  if (M == 0 || N == 0 || K == 0) return out.y;
  float* yp = out.y.data<float>();
  const float beta = out.beta;
  // [M, K] · [N, K]ᵀ: w is "K-major" (PyTorch Linear layout), hence CblasTrans.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, x.data<float>(), (int)K,
              w.data<float>(), (int)K, beta, yp, (int)N);
  return out.y;
}

Tensor linear_gelu_tanh(const Tensor& x, const Tensor& w, const Tensor& bias) {
  Tensor y = linear(x, w, bias);
  float* yp = y.data<float>();
  // The same function as gelu_tanh, so the fused op equals the composition bit for bit.
  apply_in_blocks(gelu_tanh_array, yp, yp, y.numel());
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

}  // namespace

void register_gemm(Backend& b) {
  b.linear = linear;
  b.linear_gelu_tanh = linear_gelu_tanh;
  b.matmul = matmul;
}

}  // namespace t2v::ops::cpu
