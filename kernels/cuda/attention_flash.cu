// Tiled flash attention (the fallback and reference path of ops::attention):
// O = softmax(scale·Q·Kᵀ + bias, masked keys -inf)·V per (batch, head), without
// materialising the Nq x Nk logits. Online softmax (running max m, running sum
// l, rescale of the accumulator by exp(m_old - m_new)), all in fp32; q/k/v are
// loaded as F32/BF16/F16 and widened to fp32 in shared memory.
//
// Tiling: a block of 4 warps owns kRowsPerWarp query rows per warp (32 rows);
// it walks the keys in tiles of 32 (one key per lane). For a tile, lane j
// computes the logits of key j against the warp's rows, the warp reduces the
// row max/sum with shuffles, and each lane then accumulates output columns
// d = lane + 32·t (t < ceil(Dv/32)) with the probabilities broadcast by shuffle.
// K rows in shared memory are padded to an odd stride so lanes reading
// K[lane][d] hit distinct banks. D, Dv <= 128 (Wan: 128, umT5: 64).
//
// This is SIMT fp32 arithmetic: correct for every shape, not the fast path on
// Hopper (cuDNN SDPA / a wgmma kernel are; see kernels/dev and docs/perf_cuda.md).
// Test: tests/cuda/test_backend_ops.cpp (Attention*); lab: kernels/dev/attention_lab.cu.
#include "kernels/cuda/check.h"
#include "kernels/cuda/common.cuh"

namespace t2v::ops::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 8;
constexpr int kBlockRows = kWarps * kRowsPerWarp;  // query rows per block
constexpr int kBlockKeys = 32;                      // keys per tile (one per lane)

template <class T, int kDC>  // kDC = ceil(Dv / 32) output columns per lane
__global__ void __launch_bounds__(kWarps * 32)
    attention_flash_kernel(AttentionArgs a, int d_stride_k) {
  extern __shared__ float smem[];
  const int D = static_cast<int>(a.D), Dv = static_cast<int>(a.Dv);
  float* Qs = smem;                              // [kBlockRows][D]
  float* Ks = Qs + kBlockRows * D;               // [kBlockKeys][d_stride_k]
  float* Vs = Ks + kBlockKeys * d_stride_k;      // [kBlockKeys][Dv]

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t b = blockIdx.z, h = blockIdx.y, q0 = static_cast<int64_t>(blockIdx.x) * kBlockRows;
  const int64_t NH = a.NH;
  const T* q = static_cast<const T*>(a.q);
  const T* k = static_cast<const T*>(a.k);
  const T* v = static_cast<const T*>(a.v);
  T* o = static_cast<T*>(a.o);

  // Query tile -> shared (rows past Nq are zeros and never written back).
  for (int i = tid; i < kBlockRows * D; i += blockDim.x) {
    const int r = i / D, d = i % D;
    const int64_t qi = q0 + r;
    Qs[i] = qi < a.Nq ? to_f32<T>(q[((b * a.Nq + qi) * NH + h) * D + d]) : 0.0f;
  }

  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kDC];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int t = 0; t < kDC; ++t) acc[r][t] = 0.0f;
  }
  const float* Qw = Qs + warp * kRowsPerWarp * D;  // this warp's rows

  for (int64_t k0 = 0; k0 < a.Nk; k0 += kBlockKeys) {
    __syncthreads();  // previous tile fully consumed (and, first time, Qs written)
    for (int i = tid; i < kBlockKeys * D; i += blockDim.x) {
      const int j = i / D, d = i % D;
      const int64_t kj = k0 + j;
      Ks[j * d_stride_k + d] = kj < a.Nk ? to_f32<T>(k[((b * a.Nk + kj) * NH + h) * D + d]) : 0.0f;
    }
    for (int i = tid; i < kBlockKeys * Dv; i += blockDim.x) {
      const int j = i / Dv, d = i % Dv;
      const int64_t kj = k0 + j;
      Vs[i] = kj < a.Nk ? to_f32<T>(v[((b * a.Nk + kj) * NH + h) * Dv + d]) : 0.0f;
    }
    __syncthreads();

    // Logits of key (k0 + lane) against the warp's rows.
    float s[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[r] = 0.0f;
    const float* Kl = Ks + lane * d_stride_k;
    for (int d = 0; d < D; ++d) {
      const float kd = Kl[d];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) s[r] = fmaf(Qw[r * D + d], kd, s[r]);
    }
    const int64_t kj = k0 + lane;
    const bool key_ok = kj < a.Nk && (a.keep == nullptr || a.keep[b * a.Nk + kj] != 0);
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int64_t qi = q0 + warp * kRowsPerWarp + r;
      float x = s[r] * a.scale;
      if (a.bias != nullptr && key_ok && qi < a.Nq)
        x += load_elem(a.bias, a.bias_dt,
                       b * a.bias_stride[0] + h * a.bias_stride[1] + qi * a.bias_stride[2] + kj * a.bias_stride[3]);
      s[r] = key_ok ? x : -INFINITY;
    }

    // Online softmax update, then P·V.
    float p[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const float m_new = fmaxf(m[r], warp_max(s[r]));
      if (m_new == -INFINITY) {  // nothing visible yet in this row: keep zeros
        p[r] = 0.0f;
        continue;
      }
      const float alpha = expf(m[r] - m_new);  // m[r] = -inf -> 0
      p[r] = expf(s[r] - m_new);               // s = -inf -> 0
      l[r] = l[r] * alpha + warp_sum(p[r]);
      m[r] = m_new;
#pragma unroll
      for (int t = 0; t < kDC; ++t) acc[r][t] *= alpha;
    }
    for (int j = 0; j < kBlockKeys; ++j) {
      float vj[kDC];
#pragma unroll
      for (int t = 0; t < kDC; ++t) {
        const int d = lane + 32 * t;
        vj[t] = d < Dv ? Vs[j * Dv + d] : 0.0f;
      }
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const float pj = __shfl_sync(0xffffffffu, p[r], j);
#pragma unroll
        for (int t = 0; t < kDC; ++t) acc[r][t] = fmaf(pj, vj[t], acc[r][t]);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t qi = q0 + warp * kRowsPerWarp + r;
    if (qi >= a.Nq) continue;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;  // fully masked row -> zeros
#pragma unroll
    for (int t = 0; t < kDC; ++t) {
      const int d = lane + 32 * t;
      if (d < Dv) o[((b * a.Nq + qi) * NH + h) * Dv + d] = from_f32<T>(acc[r][t] * inv);
    }
  }
}

template <class T, int kDC>
void launch_typed(const AttentionArgs& a, cudaStream_t s) {
  const int D = static_cast<int>(a.D), Dv = static_cast<int>(a.Dv);
  const int d_stride_k = (D % 2 == 0) ? D + 1 : D;  // odd stride: conflict-free K[lane][d]
  const size_t smem = sizeof(float) * (static_cast<size_t>(kBlockRows) * D + static_cast<size_t>(kBlockKeys) * d_stride_k +
                                       static_cast<size_t>(kBlockKeys) * Dv);
  auto kernel = attention_flash_kernel<T, kDC>;
  // Above 48 KiB a block must opt in to the larger dynamic shared memory.
  T2V_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((a.Nq + kBlockRows - 1) / kBlockRows), static_cast<unsigned>(a.NH),
                  static_cast<unsigned>(a.B));
  kernel<<<grid, kWarps * 32, smem, s>>>(a, d_stride_k);
  T2V_CUDA_LAUNCH_CHECK("attention_flash_kernel");
}

template <class T>
void launch_dc(const AttentionArgs& a, cudaStream_t s) {
  const int64_t dc = (a.Dv + 31) / 32;
  if (dc <= 1) launch_typed<T, 1>(a, s);
  else if (dc == 2) launch_typed<T, 2>(a, s);
  else if (dc == 3) launch_typed<T, 3>(a, s);
  else launch_typed<T, 4>(a, s);
}

}  // namespace

void launch_attention_flash(const AttentionArgs& a, cudaStream_t s) {
  if (a.B * a.Nq * a.NH * a.Dv == 0) return;
  switch (a.dt) {
    case Elem::F32: launch_dc<float>(a, s); break;
    case Elem::BF16: launch_dc<__nv_bfloat16>(a, s); break;
    case Elem::F16: launch_dc<__half>(a, s); break;
  }
}

}  // namespace t2v::ops::cuda
