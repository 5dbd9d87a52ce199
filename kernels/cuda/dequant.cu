// ggml block dequantization, one thread per value (see dequant.h). Each thread
// reads its block's scales and its own bits; the layouts and the order of the
// fp32 operations are those of core/quant.cpp (ggml-common.h block_q4_0 ...
// block_q6_K). Test: tests/cuda/test_dequant_cuda.cpp.
#include <cuda_fp16.h>

#include "kernels/cuda/check.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/dequant.h"

namespace t2v::ops::cuda {
namespace {

constexpr int kThreads = 256;

// Codes of core/quant.h's QuantType.
enum Code : int { kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K };

__device__ __forceinline__ float half_at(const uint8_t* p) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(p[0] | (p[1] << 8))));
}

// Legacy formats: value j of 32; low nibbles hold 0..15, high nibbles 16..31.
__device__ __forceinline__ int nibble32(const uint8_t* qs, int j) { return j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4; }
__device__ __forceinline__ uint32_t u32_at(const uint8_t* p) {
  return p[0] | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

__device__ __forceinline__ void scale_min_k4(const uint8_t* s, int i, int* sc, int* m) {
  if (i < 4) {
    *sc = s[i] & 63;
    *m = s[i + 4] & 63;
  } else {
    *sc = (s[i + 4] & 0xF) | ((s[i - 4] >> 6) << 4);
    *m = (s[i + 4] >> 4) | ((s[i] >> 6) << 4);
  }
}

template <int kCode>
__device__ float value(const uint8_t* b, int j) {
  if constexpr (kCode == kQ4_0) {
    return __fmul_rn(half_at(b), float(nibble32(b + 2, j) - 8));
  } else if constexpr (kCode == kQ4_1) {
    return __fadd_rn(__fmul_rn(half_at(b), float(nibble32(b + 4, j))), half_at(b + 2));
  } else if constexpr (kCode == kQ5_0) {
    const int q = nibble32(b + 6, j) | int(((u32_at(b + 2) >> j) & 1u) << 4);
    return __fmul_rn(half_at(b), float(q - 16));
  } else if constexpr (kCode == kQ5_1) {
    const int q = nibble32(b + 8, j) | int(((u32_at(b + 4) >> j) & 1u) << 4);
    return __fadd_rn(__fmul_rn(half_at(b), float(q)), half_at(b + 2));
  } else if constexpr (kCode == kQ8_0) {
    return __fmul_rn(float(static_cast<int8_t>(b[2 + j])), half_at(b));
  } else if constexpr (kCode == kQ2_K) {
    const int q = (b[16 + (j / 128) * 32 + j % 32] >> (2 * ((j % 128) / 32))) & 3;
    const uint8_t s = b[j / 16];
    const float dl = __fmul_rn(half_at(b + 80), float(s & 0xF)), ml = __fmul_rn(half_at(b + 82), float(s >> 4));
    return __fsub_rn(__fmul_rn(dl, float(q)), ml);
  } else if constexpr (kCode == kQ3_K) {
    const uint8_t* sc = b + 96;
    const int i = j / 16;
    const int lo = i < 8 ? sc[i] & 0xF : sc[i - 8] >> 4;
    const int hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
    const float dl = __fmul_rn(half_at(b + 108), float(static_cast<int8_t>(lo | (hi << 4)) - 32));
    const int low = (b[32 + (j / 128) * 32 + j % 32] >> (2 * ((j % 128) / 32))) & 3;
    const int high = (b[j % 32] >> (j / 32)) & 1;
    return __fmul_rn(dl, float(low - (high ? 0 : 4)));
  } else if constexpr (kCode == kQ4_K || kCode == kQ5_K) {
    const int sb = j / 32, l = j % 32;
    int sc, m;
    scale_min_k4(b + 4, sb, &sc, &m);
    const float dl = __fmul_rn(half_at(b), float(sc)), ml = __fmul_rn(half_at(b + 2), float(m));
    int q;
    if constexpr (kCode == kQ4_K)
      q = (b[16 + (sb / 2) * 32 + l] >> (4 * (sb % 2))) & 0xF;
    else
      q = ((b[48 + (sb / 2) * 32 + l] >> (4 * (sb % 2))) & 0xF) | (((b[16 + l] >> sb) & 1) << 4);
    return __fsub_rn(__fmul_rn(dl, float(q)), ml);
  } else {  // Q6_K
    const int h = j / 128, r = j % 128;
    const int lo = (b[h * 64 + r % 64] >> (4 * (r / 64))) & 0xF;
    const int hi = (b[128 + h * 32 + r % 32] >> (2 * (r / 32))) & 3;
    const float dl = __fmul_rn(half_at(b + 208), float(static_cast<int8_t>(b[192 + j / 16])));
    return __fmul_rn(dl, float(static_cast<int8_t>(lo | (hi << 4)) - 32));
  }
}

template <int kCode, int kElems, int kBytes>
__global__ void dequantize_kernel(float* __restrict__ out, const uint8_t* __restrict__ blocks, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = value<kCode>(blocks + (i / kElems) * kBytes, static_cast<int>(i % kElems));
}

template <int kCode, int kElems, int kBytes>
void launch(const void* blocks, float* out, int64_t n, cudaStream_t s) {
  dequantize_kernel<kCode, kElems, kBytes>
      <<<grid_1d(n, kThreads), kThreads, 0, s>>>(out, static_cast<const uint8_t*>(blocks), n);
}

}  // namespace

void launch_dequantize(int code, const void* blocks, float* out, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  switch (code) {
    case kQ4_0: launch<kQ4_0, 32, 18>(blocks, out, n, s); break;
    case kQ4_1: launch<kQ4_1, 32, 20>(blocks, out, n, s); break;
    case kQ5_0: launch<kQ5_0, 32, 22>(blocks, out, n, s); break;
    case kQ5_1: launch<kQ5_1, 32, 24>(blocks, out, n, s); break;
    case kQ8_0: launch<kQ8_0, 32, 34>(blocks, out, n, s); break;
    case kQ2_K: launch<kQ2_K, 256, 84>(blocks, out, n, s); break;
    case kQ3_K: launch<kQ3_K, 256, 110>(blocks, out, n, s); break;
    case kQ4_K: launch<kQ4_K, 256, 144>(blocks, out, n, s); break;
    case kQ5_K: launch<kQ5_K, 256, 176>(blocks, out, n, s); break;
    default: launch<kQ6_K, 256, 210>(blocks, out, n, s); break;
  }
  T2V_CUDA_LAUNCH_CHECK("dequantize_kernel");
}

}  // namespace t2v::ops::cuda
