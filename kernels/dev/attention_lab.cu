// Attention lab: numbered variants of non-causal attention on the layout of
// ops::attention (q [B, Nq, NH, D], k/v [B, Nk, NH, D], o [B, Nq, NH, D]).
//   v1  naive: one thread per query row, online softmax over all keys, the
//       accumulator in a per-thread array (local memory). The readable baseline.
//   v2  tiled flash (kernels/cuda/attention_flash.cu, the production fallback):
//       4 warps x 8 rows per block, 32-key tiles in shared memory, shuffles.
// Every variant is first checked against a CPU double loop on a small problem
// (fresh random bf16 inputs; NMSE printed), then timed with CUDA events on the
// bench shape (median of --reps after --warmup), reporting TFLOP/s from
// 4·B·NH·Nq·Nk·D FLOP.
//
//   attention_lab                      # Wan 1.3B self-attention: B1 N32760 NH12 D128, v2 only
//   attention_lab --variants 1,2 --n 4096
//   attention_lab --b 2 --nq 32760 --nk 512 --nh 12 --d 128   # cross-attention
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"

using t2v::ops::cuda::AttentionArgs;
using t2v::ops::cuda::Elem;

namespace {

struct Problem {
  int64_t B = 1, Nq = 32760, Nk = 32760, NH = 12, D = 128;
  double flop() const { return 4.0 * B * NH * Nq * Nk * D; }
};

// ---- v1: naive ----------------------------------------------------------------------
__global__ void attention_v1_kernel(__nv_bfloat16* o, const __nv_bfloat16* q, const __nv_bfloat16* k,
                                    const __nv_bfloat16* v, int64_t B, int64_t Nq, int64_t Nk, int64_t NH, int D,
                                    float scale) {
  const int64_t row = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;  // (b, qi, h) flattened like q
  if (row >= B * Nq * NH) return;
  const int64_t h = row % NH, b = row / (NH * Nq);
  const __nv_bfloat16* qr = q + row * D;
  float acc[128];
  for (int d = 0; d < D; ++d) acc[d] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = 0; j < Nk; ++j) {
    const __nv_bfloat16* kr = k + ((b * Nk + j) * NH + h) * D;
    float s = 0.0f;
    for (int d = 0; d < D; ++d) s += __bfloat162float(qr[d]) * __bfloat162float(kr[d]);
    s *= scale;
    const float m_new = fmaxf(m, s);
    const float alpha = expf(m - m_new), p = expf(s - m_new);
    l = l * alpha + p;
    const __nv_bfloat16* vr = v + ((b * Nk + j) * NH + h) * D;
    for (int d = 0; d < D; ++d) acc[d] = acc[d] * alpha + p * __bfloat162float(vr[d]);
    m = m_new;
  }
  for (int d = 0; d < D; ++d) o[row * D + d] = __float2bfloat16_rn(acc[d] / l);
}

void run_v1(const Problem& p, __nv_bfloat16* o, const __nv_bfloat16* q, const __nv_bfloat16* k,
            const __nv_bfloat16* v, cudaStream_t s) {
  const int64_t rows = p.B * p.Nq * p.NH;
  attention_v1_kernel<<<(unsigned)((rows + 127) / 128), 128, 0, s>>>(o, q, k, v, p.B, p.Nq, p.Nk, p.NH, (int)p.D,
                                                                      1.0f / std::sqrt((float)p.D));
  T2V_CUDA_LAUNCH_CHECK("attention_v1_kernel");
}

// ---- v2: tiled flash (production) ------------------------------------------------------
void run_v2(const Problem& p, __nv_bfloat16* o, const __nv_bfloat16* q, const __nv_bfloat16* k,
            const __nv_bfloat16* v, cudaStream_t s) {
  AttentionArgs a;
  a.q = q;
  a.k = k;
  a.v = v;
  a.o = o;
  a.dt = Elem::BF16;
  a.B = p.B;
  a.Nq = p.Nq;
  a.Nk = p.Nk;
  a.NH = p.NH;
  a.D = p.D;
  a.Dv = p.D;
  a.scale = 1.0f / std::sqrt((float)p.D);
  t2v::ops::cuda::launch_attention_flash(a, s);
}

using Runner = void (*)(const Problem&, __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                        const __nv_bfloat16*, cudaStream_t);
const Runner kVariants[] = {nullptr, run_v1, run_v2};
constexpr int kNumVariants = 2;

// ---- host side ----------------------------------------------------------------------------
struct DeviceBuffers {
  __nv_bfloat16 *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr;
  std::vector<__nv_bfloat16> hq, hk, hv;
  DeviceBuffers(const Problem& p, std::mt19937& g) {
    const size_t nq = p.B * p.Nq * p.NH * p.D, nk = p.B * p.Nk * p.NH * p.D;
    std::normal_distribution<float> d(0.0f, 1.0f);
    hq.resize(nq);
    hk.resize(nk);
    hv.resize(nk);
    for (auto& x : hq) x = __float2bfloat16_rn(d(g));
    for (auto& x : hk) x = __float2bfloat16_rn(d(g));
    for (auto& x : hv) x = __float2bfloat16_rn(d(g));
    T2V_CUDA_CHECK(cudaMalloc(&q, nq * 2));
    T2V_CUDA_CHECK(cudaMalloc(&k, nk * 2));
    T2V_CUDA_CHECK(cudaMalloc(&v, nk * 2));
    T2V_CUDA_CHECK(cudaMalloc(&o, nq * 2));
    T2V_CUDA_CHECK(cudaMemcpy(q, hq.data(), nq * 2, cudaMemcpyHostToDevice));
    T2V_CUDA_CHECK(cudaMemcpy(k, hk.data(), nk * 2, cudaMemcpyHostToDevice));
    T2V_CUDA_CHECK(cudaMemcpy(v, hv.data(), nk * 2, cudaMemcpyHostToDevice));
  }
  ~DeviceBuffers() {
    cudaFree(q);
    cudaFree(k);
    cudaFree(v);
    cudaFree(o);
  }
};

// CPU double reference on the same bf16 inputs.
std::vector<double> cpu_reference(const Problem& p, const DeviceBuffers& d) {
  std::vector<double> out(p.B * p.Nq * p.NH * p.D);
  const double scale = 1.0 / std::sqrt((double)p.D);
  std::vector<double> s(p.Nk);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t i = 0; i < p.Nq; ++i)
      for (int64_t h = 0; h < p.NH; ++h) {
        const __nv_bfloat16* qr = &d.hq[((b * p.Nq + i) * p.NH + h) * p.D];
        double mx = -INFINITY;
        for (int64_t j = 0; j < p.Nk; ++j) {
          const __nv_bfloat16* kr = &d.hk[((b * p.Nk + j) * p.NH + h) * p.D];
          double acc = 0.0;
          for (int64_t e = 0; e < p.D; ++e) acc += (double)__bfloat162float(qr[e]) * __bfloat162float(kr[e]);
          s[j] = acc * scale;
          mx = std::max(mx, s[j]);
        }
        double l = 0.0;
        for (int64_t j = 0; j < p.Nk; ++j) l += (s[j] = std::exp(s[j] - mx));
        double* orow = &out[((b * p.Nq + i) * p.NH + h) * p.D];
        for (int64_t e = 0; e < p.D; ++e) {
          double acc = 0.0;
          for (int64_t j = 0; j < p.Nk; ++j) acc += s[j] * __bfloat162float(d.hv[((b * p.Nk + j) * p.NH + h) * p.D + e]);
          orow[e] = acc / l;
        }
      }
  return out;
}

double nmse_vs(const std::vector<double>& ref, const __nv_bfloat16* dev, size_t n) {
  std::vector<__nv_bfloat16> h(n);
  T2V_CUDA_CHECK(cudaMemcpy(h.data(), dev, n * 2, cudaMemcpyDeviceToHost));
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double g = __bfloat162float(h[i]);
    if (!std::isfinite(g)) return INFINITY;
    num += (g - ref[i]) * (g - ref[i]);
    den += ref[i] * ref[i];
  }
  return num / den;
}

int64_t arg_int(int argc, char** argv, const char* name, int64_t def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoll(argv[i + 1]);
  return def;
}
std::string arg_str(int argc, char** argv, const char* name, const char* def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
      std::printf("attention_lab: no CUDA device\n");
      return 69;
    }
    Problem bench;
    const int64_t n = arg_int(argc, argv, "--n", 0);
    bench.B = arg_int(argc, argv, "--b", 1);
    bench.Nq = arg_int(argc, argv, "--nq", n ? n : 32760);
    bench.Nk = arg_int(argc, argv, "--nk", n ? n : 32760);
    bench.NH = arg_int(argc, argv, "--nh", 12);
    bench.D = arg_int(argc, argv, "--d", 128);
    const int warmup = (int)arg_int(argc, argv, "--warmup", 1), reps = (int)arg_int(argc, argv, "--reps", 5);
    const std::string vs = arg_str(argc, argv, "--variants", "2");
    std::vector<int> variants;
    for (size_t i = 0; i < vs.size(); ++i)
      if (vs[i] >= '1' && vs[i] <= '0' + kNumVariants) variants.push_back(vs[i] - '0');
    if (bench.D > 128) {
      std::printf("attention_lab: D <= 128\n");
      return 64;
    }
    cudaDeviceProp prop{};
    T2V_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("attention_lab on %s: bench B%lld Nq%lld Nk%lld NH%lld D%lld (%.3g FLOP)\n", prop.name,
                (long long)bench.B, (long long)bench.Nq, (long long)bench.Nk, (long long)bench.NH, (long long)bench.D,
                bench.flop());
    cudaStream_t s;
    T2V_CUDA_CHECK(cudaStreamCreate(&s));
    std::mt19937 g((unsigned)std::random_device{}());

    // Correctness on a small odd-sized problem, every variant.
    Problem small{2, 131, 197, 3, bench.D};
    DeviceBuffers ds(small, g);
    const std::vector<double> ref = cpu_reference(small, ds);
    for (int vi = 1; vi <= kNumVariants; ++vi) {
      T2V_CUDA_CHECK(cudaMemset(ds.o, 0xFF, ref.size() * 2));  // poison: NaN
      kVariants[vi](small, ds.o, ds.q, ds.k, ds.v, s);
      T2V_CUDA_CHECK(cudaStreamSynchronize(s));
      const double e = nmse_vs(ref, ds.o, ref.size());
      std::printf("  check v%d: NMSE %.3e vs CPU double on B2 Nq131 Nk197 NH3 %s\n", vi, e,
                  e < 1e-4 ? "ok" : "FAILED");
      if (!(e < 1e-4)) return 1;
    }

    DeviceBuffers db(bench, g);
    cudaEvent_t e0, e1;
    T2V_CUDA_CHECK(cudaEventCreate(&e0));
    T2V_CUDA_CHECK(cudaEventCreate(&e1));
    for (int vi : variants) {
      for (int i = 0; i < warmup; ++i) kVariants[vi](bench, db.o, db.q, db.k, db.v, s);
      std::vector<float> ms;
      for (int i = 0; i < reps; ++i) {
        T2V_CUDA_CHECK(cudaEventRecord(e0, s));
        kVariants[vi](bench, db.o, db.q, db.k, db.v, s);
        T2V_CUDA_CHECK(cudaEventRecord(e1, s));
        T2V_CUDA_CHECK(cudaEventSynchronize(e1));
        float t = 0.0f;
        T2V_CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
        ms.push_back(t);
      }
      std::sort(ms.begin(), ms.end());
      const float med = ms[ms.size() / 2];
      std::printf("  v%d: median %.3f ms (min %.3f, max %.3f, %d reps)  %.1f TFLOP/s\n", vi, med, ms.front(),
                  ms.back(), reps, bench.flop() / (med * 1e-3) / 1e12);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaStreamDestroy(s);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention_lab: %s\n", e.what());
    return 70;
  }
}
