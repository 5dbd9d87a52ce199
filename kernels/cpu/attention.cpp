// Scaled-dot-product attention on the CPU: per (batch, head) and per block of
// query rows, S = scale·Q·Kᵀ (sgemm) + bias, masked keys -> -inf, row softmax
// (exp in double rounded to fp32, double sum), O = P·V (sgemm). The head slices are read in place
// through the BLAS leading dimension (rows of one head are NH·D apart), so
// nothing is gathered; memory is one [kQueryBlock, Nk] logit block per thread,
// never Nq·Nk.
//
// Threading: with at least as many (batch, head, block) tasks as threads, the
// tasks run in an OpenMP loop, each with single-threaded GEMMs; otherwise the
// tasks run one after another with multi-threaded GEMMs and an OpenMP softmax.
// Alternating OpenBLAS's thread pool with OpenMP's on every block wastes the
// cores in spin-waits (measured: ~1.9x the CPU time of the task-parallel loop).
// Test: tests/kernels/test_attention.cpp (naive double loop, mask and bias cases,
// timing printout for N = 2048, D = 128).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/backend_cpu.h"
#include "kernels/cpu/vector_math.h"

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

// Everything one (batch, head, query block) task needs, resolved once.
struct AttentionProblem {
  int64_t B, Nq, NH, D, Nk, Dv;
  float scale;
  const float *q, *k, *v;
  float* out;
  const uint8_t* keep;  // [B, Nk] or nullptr
  const float* bias;    // [Bb, Hb, Qb, Kb] or nullptr, strides below (0 = broadcast)
  int64_t bias_stride[4];
};

// Masks, biases and normalises one logit row in place; a row without any finite
// logit (all keys masked) becomes zeros, so its output row is zero.
void softmax_row(float* s, int64_t Nk, const float* bias_row, int64_t bias_step, const uint8_t* keep) {
  if (bias_row)
    for (int64_t j = 0; j < Nk; ++j) s[j] += bias_row[j * bias_step];
  if (keep)
    for (int64_t j = 0; j < Nk; ++j)
      if (!keep[j]) s[j] = -INFINITY;
  float mx = -INFINITY;
  for (int64_t j = 0; j < Nk; ++j) mx = std::max(mx, s[j]);
  if (mx == -INFINITY) {
    std::fill(s, s + Nk, 0.0f);
    return;
  }
  exp_shifted_array(s, Nk, mx);  // fp32 of exp(s - mx) (vector_math.h)
  double sum = 0.0;
  for (int64_t j = 0; j < Nk; ++j) sum += s[j];
  const float inv = (float)(1.0 / sum);
  for (int64_t j = 0; j < Nk; ++j) s[j] *= inv;
}

// Runs task t = (b·NH + h)·blocks + block with the logit buffer S [kQueryBlock, Nk].
// parallel_softmax: spread the softmax rows over OpenMP threads (sequential mode).
void attention_task(const AttentionProblem& P, int64_t t, float* S, bool parallel_softmax) {
  const int64_t blocks = (P.Nq + kQueryBlock - 1) / kQueryBlock;
  const int64_t bh = t / blocks, b = bh / P.NH, h = bh % P.NH, q0 = (t % blocks) * kQueryBlock;
  const int64_t nq = std::min(kQueryBlock, P.Nq - q0);
  const float* qh = P.q + ((b * P.Nq + q0) * P.NH + h) * P.D;  // row n at qh + n·NH·D
  const float* kh = P.k + (b * P.Nk * P.NH + h) * P.D;          // row n at kh + n·NH·D
  const float* vh = P.v + (b * P.Nk * P.NH + h) * P.Dv;         // row n at vh + n·NH·Dv
  float* oh = P.out + ((b * P.Nq + q0) * P.NH + h) * P.Dv;
  if (P.D > 0) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)P.Nk, (int)P.D, P.scale, qh, (int)(P.NH * P.D),
                kh, (int)(P.NH * P.D), 0.0f, S, (int)P.Nk);
  } else {
    std::fill(S, S + nq * P.Nk, 0.0f);
  }
  const uint8_t* keep = P.keep ? P.keep + b * P.Nk : nullptr;
  const float* bias_bh = P.bias ? P.bias + b * P.bias_stride[0] + h * P.bias_stride[1] : nullptr;
#pragma omp parallel for schedule(static) if (parallel_softmax)
  for (int64_t i = 0; i < nq; ++i)
    softmax_row(S + i * P.Nk, P.Nk, bias_bh ? bias_bh + (q0 + i) * P.bias_stride[2] : nullptr, P.bias_stride[3], keep);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)P.Dv, (int)P.Nk, 1.0f, S, (int)P.Nk, vh,
              (int)(P.NH * P.Dv), 0.0f, oh, (int)(P.NH * P.Dv));
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
  AttentionProblem P{};
  P.B = q.size(0), P.Nq = q.size(1), P.NH = q.size(2), P.D = q.size(3), P.Nk = k.size(1), P.Dv = v.size(3);
  P.scale = p.scale;
  Tensor out = Tensor::zeros(Shape{P.B, P.Nq, P.NH, P.Dv}, DType::F32);
  if (P.B * P.Nq * P.NH * P.Dv == 0 || P.Nk == 0) return out;  // no keys: zeros, as a fully masked row
  P.q = q.data<float>(), P.k = k.data<float>(), P.v = v.data<float>(), P.out = out.data<float>();

  std::vector<uint8_t> keep;
  if (p.key_mask.defined()) keep = mask_keep_flags(p.key_mask);
  P.keep = keep.empty() ? nullptr : keep.data();
  // Bias [Bb, Hb, Qb, Kb] (ops.cpp reshaped it to 4-D); size-1 dims broadcast via stride 0.
  P.bias = p.bias.defined() ? p.bias.data<float>() : nullptr;
  if (P.bias) {
    int64_t st = 1;
    for (int i = 3; i >= 0; --i) {
      P.bias_stride[i] = p.bias.size(i) == 1 ? 0 : st;
      st *= p.bias.size(i);
    }
  }

  const int64_t tasks = P.B * P.NH * ((P.Nq + kQueryBlock - 1) / kQueryBlock);
  const int64_t block_floats = std::min(kQueryBlock, P.Nq) * P.Nk;
  const int threads = omp_get_max_threads();
  if (threads > 1 && tasks >= threads) {
    // Task-parallel: one OpenMP pool, single-threaded GEMMs inside (restored afterwards).
    const int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel
    {
      std::vector<float> S(block_floats);
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < tasks; ++t) attention_task(P, t, S.data(), /*parallel_softmax=*/false);
    }
    openblas_set_num_threads(blas_threads);
  } else {
    std::vector<float> S(block_floats);
    for (int64_t t = 0; t < tasks; ++t) attention_task(P, t, S.data(), /*parallel_softmax=*/true);
  }
  return out;
}

}  // namespace

void register_attention(Backend& b) {
  b.attention = attention;
}

}  // namespace t2v::ops::cpu
