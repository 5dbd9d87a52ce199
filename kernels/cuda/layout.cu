// Data-movement kernels: permute (general strided gather), embedding rows,
// nearest x2 upsampling, and the Wan 3D RoPE rotation (interleaved pairs).
// concat and slice need no kernel: they are 2-D strided copies
// (cudaMemcpy2DAsync, ops_layout.cpp).
// Test: tests/cuda/test_backend_ops.cpp (Permute, Embedding, Upsample, Rope3d).
#include "kernels/cuda/check.h"
#include "kernels/cuda/common.cuh"

namespace t2v::ops::cuda {
namespace {

constexpr int kThreads = 256;

// Elements moved as opaque words of their byte size.
template <int kBytes> struct Word;
template <> struct Word<1> { using T = uint8_t; };
template <> struct Word<2> { using T = uint16_t; };
template <> struct Word<4> { using T = uint32_t; };
template <> struct Word<8> { using T = uint64_t; };

struct Strides5 {
  int64_t s[kMaxBroadcastDims];
};

template <int kBytes>
__global__ void permute_kernel(void* __restrict__ out, const void* __restrict__ in, OutShape shape, Strides5 in_stride,
                               int64_t n) {
  using W = typename Word<kBytes>::T;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    static_cast<W*>(out)[i] = static_cast<const W*>(in)[bview_offset(shape, in_stride.s, i)];
}

template <int kBytes>
__global__ void embedding_kernel(void* __restrict__ out, const void* __restrict__ table, int64_t V, int64_t C,
                                 const void* __restrict__ ids, bool ids_i64, int64_t n, int* flag) {
  using W = typename Word<kBytes>::T;
  const int64_t total = n * C;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / C, c = i % C;
    const int64_t id = ids_i64 ? static_cast<const int64_t*>(ids)[r] : static_cast<const int32_t*>(ids)[r];
    if (id < 0 || id >= V) {
      // Report the first bad position (+1, so 0 means none); the host throws.
      if (c == 0) atomicCAS(flag, 0, static_cast<int>(r < 0x7ffffffe ? r + 1 : 0x7fffffff));
      static_cast<W*>(out)[i] = 0;
    } else {
      static_cast<W*>(out)[i] = static_cast<const W*>(table)[id * C + c];
    }
  }
}

template <int kBytes>
__global__ void upsample2x_kernel(void* __restrict__ out, const void* __restrict__ in, int64_t P, int64_t H,
                                  int64_t W) {
  using Wd = typename Word<kBytes>::T;
  const int64_t W2 = 2 * W, H2 = 2 * H, total = P * H2 * W2;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t x = i % W2, y = (i / W2) % H2, p = i / (W2 * H2);
    static_cast<Wd*>(out)[i] = static_cast<const Wd*>(in)[(p * H + y / 2) * W + x / 2];
  }
}

// One thread per pair (b, n, h, k): out[2k] = x0 cos - x1 sin, out[2k+1] = x0 sin + x1 cos.
template <class T>
__global__ void rope_3d_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t B, int64_t N, int64_t NH,
                               int64_t D, const void* __restrict__ table, Elem tdt) {
  const int64_t P = D / 2, total = B * N * NH * P;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t k = i % P;
    const int64_t n = (i / (P * NH)) % N;
    const float c = load_elem(table, tdt, (n * P + k) * 2);
    const float s = load_elem(table, tdt, (n * P + k) * 2 + 1);
    const float x0 = to_f32<T>(x[2 * i]), x1 = to_f32<T>(x[2 * i + 1]);
    y[2 * i] = from_f32<T>(x0 * c - x1 * s);
    y[2 * i + 1] = from_f32<T>(x0 * s + x1 * c);
  }
}

__global__ void mask_to_keep_kernel(uint8_t* __restrict__ keep, const void* __restrict__ mask, CastCode mc,
                                    int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    bool k = false;
    switch (mc) {
      case CastCode::I64: k = static_cast<const int64_t*>(mask)[i] != 0; break;
      case CastCode::I32: k = static_cast<const int32_t*>(mask)[i] != 0; break;
      case CastCode::U8: k = static_cast<const uint8_t*>(mask)[i] != 0; break;
      case CastCode::F32: k = static_cast<const float*>(mask)[i] != 0.0f; break;
      case CastCode::BF16: k = __bfloat162float(static_cast<const __nv_bfloat16*>(mask)[i]) != 0.0f; break;
      case CastCode::F16: k = __half2float(static_cast<const __half*>(mask)[i]) != 0.0f; break;
    }
    keep[i] = k ? 1 : 0;
  }
}

}  // namespace

void launch_permute(void* out, const void* in, int esize, const OutShape& out_shape,
                    const int64_t in_stride[kMaxBroadcastDims], cudaStream_t s) {
  int64_t n = 1;
  for (int d = 0; d < out_shape.nd; ++d) n *= out_shape.size[d];
  if (n == 0) return;
  Strides5 st;
  for (int d = 0; d < kMaxBroadcastDims; ++d) st.s[d] = in_stride[d];
  const unsigned g = grid_1d(n, kThreads);
  switch (esize) {
    case 1: permute_kernel<1><<<g, kThreads, 0, s>>>(out, in, out_shape, st, n); break;
    case 2: permute_kernel<2><<<g, kThreads, 0, s>>>(out, in, out_shape, st, n); break;
    case 4: permute_kernel<4><<<g, kThreads, 0, s>>>(out, in, out_shape, st, n); break;
    default: permute_kernel<8><<<g, kThreads, 0, s>>>(out, in, out_shape, st, n); break;
  }
  T2V_CUDA_LAUNCH_CHECK("permute_kernel");
}

void launch_embedding(void* out, const void* table, int esize, int64_t V, int64_t C, const void* ids, bool ids_i64,
                      int64_t n, int* flag, cudaStream_t s) {
  if (n * C == 0) return;
  const unsigned g = grid_1d(n * C, kThreads);
  switch (esize) {
    case 1: embedding_kernel<1><<<g, kThreads, 0, s>>>(out, table, V, C, ids, ids_i64, n, flag); break;
    case 2: embedding_kernel<2><<<g, kThreads, 0, s>>>(out, table, V, C, ids, ids_i64, n, flag); break;
    case 4: embedding_kernel<4><<<g, kThreads, 0, s>>>(out, table, V, C, ids, ids_i64, n, flag); break;
    default: embedding_kernel<8><<<g, kThreads, 0, s>>>(out, table, V, C, ids, ids_i64, n, flag); break;
  }
  T2V_CUDA_LAUNCH_CHECK("embedding_kernel");
}

void launch_upsample_nearest2x(void* out, const void* in, int esize, int64_t P, int64_t H, int64_t W,
                               cudaStream_t s) {
  const int64_t n = P * H * W * 4;
  if (n == 0) return;
  const unsigned g = grid_1d(n, kThreads);
  switch (esize) {
    case 1: upsample2x_kernel<1><<<g, kThreads, 0, s>>>(out, in, P, H, W); break;
    case 2: upsample2x_kernel<2><<<g, kThreads, 0, s>>>(out, in, P, H, W); break;
    case 4: upsample2x_kernel<4><<<g, kThreads, 0, s>>>(out, in, P, H, W); break;
    default: upsample2x_kernel<8><<<g, kThreads, 0, s>>>(out, in, P, H, W); break;
  }
  T2V_CUDA_LAUNCH_CHECK("upsample2x_kernel");
}

void launch_rope_3d(void* y, const void* x, Elem dt, int64_t B, int64_t N, int64_t NH, int64_t D,
                    const void* table, Elem tdt, cudaStream_t s) {
  const int64_t pairs = B * N * NH * (D / 2);
  if (pairs == 0) return;
  const unsigned g = grid_1d(pairs, kThreads);
  switch (dt) {
    case Elem::F32:
      rope_3d_kernel<float><<<g, kThreads, 0, s>>>(static_cast<float*>(y), static_cast<const float*>(x), B, N, NH, D,
                                                    table, tdt);
      break;
    case Elem::BF16:
      rope_3d_kernel<__nv_bfloat16><<<g, kThreads, 0, s>>>(static_cast<__nv_bfloat16*>(y),
                                                            static_cast<const __nv_bfloat16*>(x), B, N, NH, D, table, tdt);
      break;
    case Elem::F16:
      rope_3d_kernel<__half><<<g, kThreads, 0, s>>>(static_cast<__half*>(y), static_cast<const __half*>(x), B, N, NH, D,
                                                     table, tdt);
      break;
  }
  T2V_CUDA_LAUNCH_CHECK("rope_3d_kernel");
}

void launch_mask_to_keep(uint8_t* keep, const void* mask, CastCode mc, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  mask_to_keep_kernel<<<grid_1d(n, kThreads), kThreads, 0, s>>>(keep, mask, mc, n);
  T2V_CUDA_LAUNCH_CHECK("mask_to_keep_kernel");
}

}  // namespace t2v::ops::cuda
