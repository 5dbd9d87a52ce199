// Device helpers shared by the kernels: loads that widen F32/BF16/F16 to fp32,
// stores that narrow back (round to nearest even), warp/block reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/launch.h"

namespace t2v::ops::cuda {

template <class T> __device__ __forceinline__ float to_f32(T v);
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }

template <class T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }

// Element i of a float array whose code is only known at run time (side tensors).
__device__ __forceinline__ float load_elem(const void* p, Elem dt, int64_t i) {
  switch (dt) {
    case Elem::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case Elem::F16: return __half2float(static_cast<const __half*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets
// the result. `scratch` holds 32 floats; the trailing barrier lets callers reuse it.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nwarps ? scratch[lane] : 0.0f;
  t = warp_sum(t);
  __syncthreads();
  return t;
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nwarps ? scratch[lane] : -INFINITY;
  t = warp_max(t);
  __syncthreads();
  return t;
}

// Offset of flat output element `i` in a broadcast view (row-major output shape).
__device__ __forceinline__ int64_t bview_offset(const OutShape& sh, const int64_t* stride, int64_t i) {
  int64_t off = 0;
#pragma unroll
  for (int d = kMaxBroadcastDims - 1; d >= 0; --d) {
    if (d < sh.nd) {
      const int64_t sz = sh.size[d];
      const int64_t id = i % sz;
      i /= sz;
      off += id * stride[d];
    }
  }
  return off;
}

// Multi-index of flat output element `i` (row-major over sh; unused dims 0),
// computed once and shared by every operand of an elementwise op.
__device__ __forceinline__ void unflatten(const OutShape& sh, int64_t i, int64_t (&idx)[kMaxBroadcastDims]) {
#pragma unroll
  for (int d = kMaxBroadcastDims - 1; d >= 0; --d) {
    idx[d] = 0;
    if (d < sh.nd) {
      idx[d] = i % sh.size[d];
      i /= sh.size[d];
    }
  }
}
__device__ __forceinline__ int64_t dot_stride(const int64_t (&idx)[kMaxBroadcastDims], const int64_t* stride) {
  int64_t off = 0;
#pragma unroll
  for (int d = 0; d < kMaxBroadcastDims; ++d) off += idx[d] * stride[d];
  return off;
}

inline unsigned grid_1d(int64_t n, int threads, int64_t cap = 65535LL * 32) {
  int64_t g = (n + threads - 1) / threads;
  if (g < 1) g = 1;
  if (g > cap) g = cap;
  return static_cast<unsigned>(g);
}

}  // namespace t2v::ops::cuda
