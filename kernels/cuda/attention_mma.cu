// Tensor-core flash attention for bf16 q/k/v with D = Dv in {64, 128} (Wan: 128,
// umT5: 64): the lab's v3 (kernels/dev/attention_lab.cu) promoted with the key
// mask, the additive bias and fully masked rows.
//
// FlashAttention-2 structure: a block of 4 warps owns 64 query rows (16 per
// warp) of one (batch, head); it walks the keys in tiles of 64. S = Q·Kᵀ and
// O += P·V run on mma.sync m16n8k16 (bf16 operands, fp32 accumulators); the S
// accumulator fragment is re-packed in registers as the A operand of P·V. The
// online softmax runs in base 2 (logits pre-multiplied by log2 e). P is rounded
// to bf16 for the second product (as every bf16 flash kernel does); m, l and O
// stay fp32. V is stored transposed in shared memory so each B-fragment
// register holds two consecutive bf16; rows are padded by 8 elements so the
// fragment loads of a warp hit 32 distinct banks.
//
// Fragment layout of mma.m16n8k16 (PTX ISA, "Matrix fragments for mma.m16n8k16"),
// g = lane / 4, t = lane % 4:  A regs {(g, 2t), (g+8, 2t), (g, 2t+8), (g+8, 2t+8)};
// B regs {(k 2t, n g), (k 2t+8, n g)}; C {(g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1)}.
// Test: tests/cuda/test_backend_ops_compute.cpp (Attention*, both kernels).
#include "kernels/cuda/check.h"
#include "kernels/cuda/common.cuh"

namespace t2v::ops::cuda {
namespace {

constexpr int kRows = 64, kKeys = 64, kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (low half, lower address) = lo
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t lds32(const __nv_bfloat16* p) { return *reinterpret_cast<const uint32_t*>(p); }

template <int D>
__global__ void __launch_bounds__(kThreads) attention_mma_kernel(AttentionArgs a) {
  constexpr int kQStride = D + 8, kVStride = kKeys + 8, kChunks = D / 8;  // 16-byte chunks per row
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* Qs = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [kRows][kQStride]
  __nv_bfloat16* Ks = Qs + kRows * kQStride;                        // [kKeys][kQStride]
  __nv_bfloat16* Vt = Ks + kKeys * kQStride;                        // [D][kVStride], d-major
  const __nv_bfloat16* q = static_cast<const __nv_bfloat16*>(a.q);
  const __nv_bfloat16* k = static_cast<const __nv_bfloat16*>(a.k);
  const __nv_bfloat16* v = static_cast<const __nv_bfloat16*>(a.v);
  __nv_bfloat16* o = static_cast<__nv_bfloat16*>(a.o);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t b = blockIdx.z, h = blockIdx.y, q0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int64_t row_stride = a.NH * D;  // elements between consecutive tokens
  const float scale2 = a.scale * kLog2e;

  for (int i = tid; i < kRows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (q0 + r < a.Nq) val = *reinterpret_cast<const uint4*>(q + (b * a.Nq + q0 + r) * row_stride + h * D + c);
    *reinterpret_cast<uint4*>(Qs + r * kQStride + c) = val;
  }

  float acc[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;  // rows g and g + 8 of the warp
  const __nv_bfloat16* Qw = Qs + warp * 16 * kQStride;
  const int64_t qr0 = q0 + warp * 16 + g, qr1 = qr0 + 8;

  for (int64_t k0 = 0; k0 < a.Nk; k0 += kKeys) {
    __syncthreads();  // the previous tile is consumed (first pass: Qs is written)
    for (int i = tid; i < kKeys * kChunks; i += kThreads) {
      const int r = i / kChunks, c = (i % kChunks) * 8;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (k0 + r < a.Nk) {
        const int64_t off = (b * a.Nk + k0 + r) * row_stride + h * D + c;
        kv = *reinterpret_cast<const uint4*>(k + off);
        vv = *reinterpret_cast<const uint4*>(v + off);
      }
      *reinterpret_cast<uint4*>(Ks + r * kQStride + c) = kv;
      const __nv_bfloat16* ve = reinterpret_cast<const __nv_bfloat16*>(&vv);
#pragma unroll
      for (int e = 0; e < 8; ++e) Vt[(c + e) * kVStride + r] = ve[e];
    }
    __syncthreads();

    float s[kKeys / 8][4];
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t af[4];
      af[0] = lds32(Qw + g * kQStride + kk * 16 + 2 * t);
      af[1] = lds32(Qw + (g + 8) * kQStride + kk * 16 + 2 * t);
      af[2] = lds32(Qw + g * kQStride + kk * 16 + 2 * t + 8);
      af[3] = lds32(Qw + (g + 8) * kQStride + kk * 16 + 2 * t + 8);
#pragma unroll
      for (int j = 0; j < kKeys / 8; ++j) {
        const __nv_bfloat16* kr = Ks + (j * 8 + g) * kQStride + kk * 16 + 2 * t;
        mma_16816(s[j], af, lds32(kr), lds32(kr + 8));
      }
    }

    // Logits in base 2: (scale·q·k + bias)·log2 e; masked and out-of-range keys -> -inf.
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t key = k0 + j * 8 + 2 * t + (e & 1);
        const int64_t qi = (e < 2) ? qr0 : qr1;
        const bool ok = key < a.Nk && (a.keep == nullptr || a.keep[b * a.Nk + key] != 0);
        float x = s[j][e] * scale2;
        if (ok && a.bias != nullptr && qi < a.Nq)
          x += kLog2e * load_elem(a.bias, a.bias_dt,
                                  b * a.bias_stride[0] + h * a.bias_stride[1] + qi * a.bias_stride[2] +
                                      key * a.bias_stride[3]);
        s[j][e] = ok ? x : -INFINITY;
      }
      mx0 = fmaxf(mx0, fmaxf(s[j][0], s[j][1]));
      mx1 = fmaxf(mx1, fmaxf(s[j][2], s[j][3]));
    }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    // A row with no visible key yet keeps m = -inf; subtract 0 instead so every
    // exp2 is exp2(-inf) = 0 rather than NaN.
    const float base0 = mn0 == -INFINITY ? 0.0f : mn0, base1 = mn1 == -INFINITY ? 0.0f : mn1;
    const float al0 = exp2f(m0 - base0), al1 = exp2f(m1 - base1);
    m0 = mn0;
    m1 = mn1;
    float ps0 = 0.0f, ps1 = 0.0f;
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
      s[j][0] = exp2f(s[j][0] - base0);
      s[j][1] = exp2f(s[j][1] - base0);
      s[j][2] = exp2f(s[j][2] - base1);
      s[j][3] = exp2f(s[j][3] - base1);
      ps0 += s[j][0] + s[j][1];
      ps1 += s[j][2] + s[j][3];
    }
    l0 = l0 * al0 + ps0;  // this thread's columns only; summed over the 4 threads of the row at the end
    l1 = l1 * al1 + ps1;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      acc[n][0] *= al0;
      acc[n][1] *= al0;
      acc[n][2] *= al1;
      acc[n][3] *= al1;
    }

#pragma unroll
    for (int c = 0; c < kKeys / 16; ++c) {
      uint32_t pf[4];
      pf[0] = pack_bf16(s[2 * c][0], s[2 * c][1]);
      pf[1] = pack_bf16(s[2 * c][2], s[2 * c][3]);
      pf[2] = pack_bf16(s[2 * c + 1][0], s[2 * c + 1][1]);
      pf[3] = pack_bf16(s[2 * c + 1][2], s[2 * c + 1][3]);
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        const __nv_bfloat16* vr = Vt + (n * 8 + g) * kVStride + c * 16 + 2 * t;
        mma_16816(acc[n], pf, lds32(vr), lds32(vr + 8));
      }
    }
  }

  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;  // masked rows -> 0
#pragma unroll
  for (int n = 0; n < D / 8; ++n) {
    const int d = n * 8 + 2 * t;
    if (qr0 < a.Nq)
      *reinterpret_cast<uint32_t*>(o + (b * a.Nq + qr0) * row_stride + h * D + d) =
          pack_bf16(acc[n][0] * inv0, acc[n][1] * inv0);
    if (qr1 < a.Nq)
      *reinterpret_cast<uint32_t*>(o + (b * a.Nq + qr1) * row_stride + h * D + d) =
          pack_bf16(acc[n][2] * inv1, acc[n][3] * inv1);
  }
}

template <int D>
void launch_d(const AttentionArgs& a, cudaStream_t s) {
  const size_t smem = sizeof(__nv_bfloat16) * (static_cast<size_t>(kRows + kKeys) * (D + 8) +
                                               static_cast<size_t>(D) * (kKeys + 8));
  T2V_CUDA_CHECK(
      cudaFuncSetAttribute(attention_mma_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((a.Nq + kRows - 1) / kRows), static_cast<unsigned>(a.NH),
                  static_cast<unsigned>(a.B));
  attention_mma_kernel<D><<<grid, kThreads, smem, s>>>(a);
  T2V_CUDA_LAUNCH_CHECK("attention_mma_kernel");
}

}  // namespace

bool attention_mma_supported(const AttentionArgs& a) {
  const auto aligned16 = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; };
  return a.dt == Elem::BF16 && a.D == a.Dv && (a.D == 64 || a.D == 128) && aligned16(a.q) && aligned16(a.k) &&
         aligned16(a.v) && aligned16(a.o);
}

void launch_attention_mma(const AttentionArgs& a, cudaStream_t s) {
  if (a.B * a.Nq * a.NH == 0) return;
  if (a.D == 64) launch_d<64>(a, s);
  else launch_d<128>(a, s);
}

}  // namespace t2v::ops::cuda
