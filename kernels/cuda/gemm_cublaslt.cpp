// linear, linear_gelu_tanh and matmul through cuBLASLt: bf16 (or fp32/fp16)
// operands of one dtype, fp32 accumulation (CUBLAS_COMPUTE_32F: no TF32 for
// fp32 inputs, so the fp32 path matches the CPU reference to rounding), bias
// fused as the BIAS epilogue, GELU (tanh) as the GELU epilogue. x and w must
// share a dtype (kernels/ops.h): a weight is never converted per call.
//
// Layout: cuBLASLt is column-major, our tensors row-major. A row-major [R, C]
// matrix is a column-major [C, R] one with the same leading dimension, so
//   linear: y[M,N] = x[M,K]·w[N,K]ᵀ  is  yᶜ[N,M] = (wᶜ[K,N])ᵀ · xᶜ[K,M]
//   matmul: c[M,N] = a[M,K]·b[K,N]   is  cᶜ[N,M] = bᶜ[N,K] · aᶜ[K,M]
// (superscript c: the column-major view of the same memory).
// Test: tests/cuda/test_backend_ops.cpp (Linear*, Matmul*).
#include <cublasLt.h>

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/tensor_util.h"

namespace t2v::ops::cuda {

namespace {

cudaDataType_t cuda_type(DType dt) {
  switch (dt) {
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    default: return CUDA_R_32F;
  }
}

// Largest power of two (<= 256) dividing the address and every batch stride:
// cuBLASLt kernels may assume the alignment the preference declares.
uint32_t alignment_of(const void* p, int64_t stride_bytes) {
  uint64_t a = reinterpret_cast<uintptr_t>(p) | 256u;
  if (stride_bytes > 0) a |= static_cast<uint64_t>(stride_bytes);
  return static_cast<uint32_t>(a & (~a + 1));
}

// RAII holders so descriptors are destroyed on every path (including throws).
struct MatmulDesc {
  cublasLtMatmulDesc_t d = nullptr;
  ~MatmulDesc() { if (d) cublasLtMatmulDescDestroy(d); }
};
struct Layout {
  cublasLtMatrixLayout_t l = nullptr;
  ~Layout() { if (l) cublasLtMatrixLayoutDestroy(l); }
};
struct Preference {
  cublasLtMatmulPreference_t p = nullptr;
  ~Preference() { if (p) cublasLtMatmulPreferenceDestroy(p); }
};

struct GemmProblem {
  // Column-major problem D[m, n] = op(A)[m, k] · B[k, n] (+ bias[m]), batched.
  uint64_t m = 0, n = 0, k = 0;
  bool trans_a = false;
  const void* A = nullptr;
  int64_t lda = 0, stride_a = 0;
  const void* B = nullptr;
  int64_t ldb = 0, stride_b = 0;
  void* D = nullptr;
  int64_t ldd = 0, stride_d = 0;
  int batch = 1;
  const void* bias = nullptr;  // [m], in D's type
  bool gelu = false;           // GELU epilogue (after the bias)
  DType dt = DType::BF16;
};

void set_batch(cublasLtMatrixLayout_t l, int batch, int64_t stride) {
  if (batch <= 1) return;
  T2V_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof(batch)));
  T2V_CUBLAS_CHECK(
      cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
}

void run_gemm(const GemmProblem& g) {
  Context& c = context();
  const cudaDataType_t t = cuda_type(g.dt);
  const size_t es = dtype_size(g.dt);

  MatmulDesc op;
  T2V_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op.d, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = CUBLAS_OP_N;
  T2V_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op.d, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  T2V_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op.d, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  if (g.bias || g.gelu) {
    const cublasLtEpilogue_t epi = g.gelu ? (g.bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                                          : CUBLASLT_EPILOGUE_BIAS;
    T2V_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op.d, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    if (g.bias)
      T2V_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(op.d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
  }

  // Stored shapes (rows x cols, column-major): A is k x m when transposed, else m x k.
  Layout la, lb, ld;
  T2V_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la.l, t, g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, g.lda));
  T2V_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb.l, t, g.k, g.n, g.ldb));
  T2V_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ld.l, t, g.m, g.n, g.ldd));
  set_batch(la.l, g.batch, g.stride_a);
  set_batch(lb.l, g.batch, g.stride_b);
  set_batch(ld.l, g.batch, g.stride_d);

  Preference pref;
  T2V_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref.p));
  T2V_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                        &c.gemm_workspace_bytes, sizeof(c.gemm_workspace_bytes)));
  const uint32_t al_a = alignment_of(g.A, g.batch > 1 ? g.stride_a * static_cast<int64_t>(es) : 0);
  const uint32_t al_b = alignment_of(g.B, g.batch > 1 ? g.stride_b * static_cast<int64_t>(es) : 0);
  const uint32_t al_d = alignment_of(g.D, g.batch > 1 ? g.stride_d * static_cast<int64_t>(es) : 0);
  T2V_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof(al_a)));
  T2V_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof(al_b)));
  T2V_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_d, sizeof(al_d)));
  T2V_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d, sizeof(al_d)));

  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  T2V_CUBLAS_CHECK(
      cublasLtMatmulAlgoGetHeuristic(c.cublaslt, op.d, la.l, lb.l, ld.l, ld.l, pref.p, 1, &heur, &found));
  if (found == 0)
    throw Error(kExitSoftware,
                fmt::format("cuBLASLt has no algorithm for a {} GEMM m={} n={} k={} batch={} (alignments {}/{}/{})",
                            dtype_name(g.dt), g.m, g.n, g.k, g.batch, al_a, al_b, al_d));
  const float alpha = 1.0f, beta = 0.0f;
  T2V_CUBLAS_CHECK(cublasLtMatmul(c.cublaslt, op.d, &alpha, g.A, la.l, g.B, lb.l, &beta, g.D, ld.l, g.D, ld.l,
                                  &heur.algo, c.gemm_workspace, c.gemm_workspace_bytes, c.stream));
}

// y = bias broadcast over rows (or zeros): the K = 0 case, which cuBLASLt refuses.
Tensor empty_k_result(const Shape& out, DType dt, const Tensor& bias) {
  Tensor y = Tensor::zeros(out, dt, Device::CUDA);
  return bias.defined() ? ops::add(y, bias) : y;
}

// x and w (a and b) of one dtype: the cuBLASLt problem has one operand type.
void require_same_dtype(const char* op, const Tensor& x, const char* xn, const Tensor& w, const char* wn) {
  if (x.dtype() != w.dtype())
    fail(kExitSoftware, "{}: '{}' is {} but '{}' is {}; activation and weight dtypes must match", op, xn, x.str(), wn,
         w.str());
}

Tensor linear_impl(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias_in, bool gelu) {
  require_cuda(x, op, "x");
  require_cuda(w, op, "w");
  float_elem(x, op, "x");
  float_elem(w, op, "w");
  require_same_dtype(op, x, "x", w, "w");
  if (x.dim() < 1 || w.dim() != 2 || w.size(1) != x.size(-1))
    fail(kExitSoftware, "{}: x {} must be [..., K] and w {} [N, K]", op, x.str(), w.str());
  const int64_t K = x.size(-1), N = w.size(0);
  int64_t M = 1;  // rows: the product of x's leading dims (also when K = 0)
  for (int i = 0; i + 1 < x.dim(); ++i) M *= x.size(i);
  std::vector<int64_t> out = x.shape().vec();
  out.back() = N;
  Tensor bias;
  if (bias_in.defined()) {
    require_cuda(bias_in, op, "bias");
    float_elem(bias_in, op, "bias");
    if (bias_in.numel() != N) fail(kExitSoftware, "{}: bias {} must have N = {} elements", op, bias_in.str(), N);
    // The epilogue reads the bias in the output type; an F32 bias of a bf16
    // GEMM is converted here ([N] elements, not the weight).
    bias = cast_to(bias_in, x.dtype());
  }
  if (K == 0) {
    const Tensor y0 = empty_k_result(Shape(out), x.dtype(), bias);
    return gelu ? ops::gelu_tanh(y0) : y0;
  }
  Tensor y = Tensor::empty(Shape(out), x.dtype(), Device::CUDA);
  if (M == 0 || N == 0) return y;
  GemmProblem g;
  g.dt = x.dtype();
  g.m = static_cast<uint64_t>(N);
  g.n = static_cast<uint64_t>(M);
  g.k = static_cast<uint64_t>(K);
  g.trans_a = true;  // wᶜ is [K, N]
  g.A = w.raw();
  g.lda = K;
  g.B = x.raw();
  g.ldb = K;
  g.D = y.raw();
  g.ldd = N;
  g.bias = bias.defined() ? bias.raw() : nullptr;
  g.gelu = gelu;
  run_gemm(g);
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) { return linear_impl("linear", x, w, bias, false); }

Tensor linear_gelu_tanh(const Tensor& x, const Tensor& w, const Tensor& bias) {
  return linear_impl("linear_gelu_tanh", x, w, bias, true);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  const char* op = "matmul";
  require_cuda(a, op, "a");
  require_cuda(b, op, "b");
  float_elem(a, op, "a");
  float_elem(b, op, "b");
  require_same_dtype(op, a, "a", b, "b");
  if (a.dim() < 2 || a.dim() != b.dim())
    fail(kExitSoftware, "matmul: a {} and b {} must be [..., M, K] and [..., K, N] with the same leading dims",
         a.str(), b.str());
  const int nd = a.dim();
  int64_t batch = 1;
  for (int i = 0; i < nd - 2; ++i) {
    if (a.size(i) != b.size(i))
      fail(kExitSoftware, "matmul: leading dims of a {} and b {} differ", a.str(), b.str());
    batch *= a.size(i);
  }
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  if (b.size(-2) != K) fail(kExitSoftware, "matmul: a {} and b {} disagree on K", a.str(), b.str());
  std::vector<int64_t> out = a.shape().vec();
  out.back() = N;
  if (K == 0) return empty_k_result(Shape(out), a.dtype(), Tensor());
  Tensor c = Tensor::empty(Shape(out), a.dtype(), Device::CUDA);
  if (batch == 0 || M == 0 || N == 0) return c;
  if (batch > INT32_MAX) fail(kExitSoftware, "matmul: batch {} too large", batch);
  GemmProblem g;
  g.dt = a.dtype();
  g.m = static_cast<uint64_t>(N);
  g.n = static_cast<uint64_t>(M);
  g.k = static_cast<uint64_t>(K);
  g.trans_a = false;  // bᶜ is [N, K]
  g.A = b.raw();
  g.lda = N;
  g.stride_a = K * N;
  g.B = a.raw();
  g.ldb = K;
  g.stride_b = M * K;
  g.D = c.raw();
  g.ldd = N;
  g.stride_d = M * N;
  g.batch = static_cast<int>(batch);
  run_gemm(g);
  return c;
}

}  // namespace

void register_gemm(Backend& b) {
  b.linear = linear;
  b.linear_gelu_tanh = linear_gelu_tanh;
  b.matmul = matmul;
}

}  // namespace t2v::ops::cuda
