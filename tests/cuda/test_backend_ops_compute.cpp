// Backend-ops test, part 2: GEMM (cuBLASLt), attention (flash kernel) and
// convolutions (implicit GEMM) on the GPU against the CPU reference, F32 and
// BF16 storage, odd and real Wan shapes. Rule and helpers:
// tests/backend_ops/backend_ops_util.h, tests/cuda/backend_ops_cuda.h.
#ifdef T2V_HAVE_CUDA
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "kernels/cuda/runtime.h"
#include "kernels/ops.h"
#include "tests/cuda/backend_ops_cuda.h"

namespace t2v::test_cuda {
namespace {

using ops::AttentionParams;
using ops::Conv2dParams;
using ops::Conv3dParams;
using ops::cuda::ConvKernel;

class BackendOpsCompute : public ::testing::TestWithParam<DType> {};

TEST_P(BackendOpsCompute, Linear) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  struct Case { int64_t M, K, N; bool bias; };
  std::vector<Case> cases = {{1, 1, 1, true},        {113, 203, 77, true},  {1023, 64, 33, false},
                             {7, 1536, 1536, true},  {512, 1536, 8960, true}, {257, 4096, 1536, true}};
  if (large_cases()) {
    cases.push_back({32760, 1536, 1536, true});  // Wan 1.3B q/k/v/o projections at 832x480x81
    cases.push_back({4096, 5120, 13824, true});  // Wan 14B FFN up, a slab of the 75600 rows
  }
  Rng rng;
  for (const Case& c : cases) {
    const Tensor x = rng.normal(Shape{c.M, c.K}), w = rng.normal(Shape{c.N, c.K}, 0.05f),
                 b = c.bias ? rng.uniform(Shape{c.N}) : Tensor();
    const Tensor ref = ops::linear(rounded(x, dt), rounded(w, dt), c.bias ? rounded(b, dt) : Tensor());
    const Tensor got = ops::linear(to_gpu(x, dt), to_gpu(w, dt), c.bias ? to_gpu(b, DType::F32) : Tensor());
    expect_close(got, ref, fmt::format("linear M{} K{} N{}{}", c.M, c.K, c.N, c.bias ? " +bias" : ""));
  }
  // [B, N, C] input: leading dims fold into M.
  const Tensor x3 = rng.normal(Shape{2, 113, 96}), w3 = rng.normal(Shape{40, 96}, 0.1f);
  expect_close(ops::linear(to_gpu(x3, dt), to_gpu(w3, dt)), ops::linear(rounded(x3, dt), rounded(w3, dt)),
               "linear [2,113,96] x [40,96]");
}

// GEMM wrappers are exact on small-integer inputs: every product and partial sum
// is an integer below 2^24, so any summation order gives the same fp32 value,
// and the result (|y| <= 4*4*K) fits bf16's 8 bits only when small; compare in F32 storage.
TEST_P(BackendOpsCompute, LinearExactOnSmallIntegers) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  Rng rng;
  const Tensor x = rng.small_ints(Shape{67, 96}, -4, 4), w = rng.small_ints(Shape{45, 96}, -4, 4),
               b = rng.small_ints(Shape{45}, -8, 8);
  const Tensor ref = ops::linear(x, w, b);
  const Tensor got = ops::cast(ops::linear(to_gpu(x, dt), to_gpu(w, dt), to_gpu(b, dt)), DType::F32);
  if (dt == DType::F32) {
    expect_exact(got, ref, "linear small integers");
  } else {
    // BF16 output holds integers up to 256 exactly; larger ones round once.
    expect_exact(got, ref.to(dt).to(DType::F32), "linear small integers (bf16-rounded output)");
  }
}

// The fused FFN input layer: cuBLASLt's GELU epilogue must be the tanh form
// (docs/wan.md §2.6: the DiT FFN uses GELU(approximate="tanh")).
TEST_P(BackendOpsCompute, LinearGeluTanhFused) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  Rng rng;
  for (const auto& [M, K, N] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 1, 1}, {113, 203, 77}, {257, 1536, 8960}}) {
    const Tensor x = rng.normal(Shape{M, K}), w = rng.normal(Shape{N, K}, 1.5f / std::sqrt(static_cast<float>(K))),
                 b = rng.uniform(Shape{N});
    const Tensor ref = ops::gelu_tanh(ops::linear(rounded(x, dt), rounded(w, dt), rounded(b, dt)));
    expect_close(ops::linear_gelu_tanh(to_gpu(x, dt), to_gpu(w, dt), to_gpu(b, dt)), ref,
                 fmt::format("linear_gelu_tanh M{} K{} N{}", M, K, N));
  }
}

TEST_P(BackendOpsCompute, Matmul) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  struct Case { Shape a, b; };
  const std::vector<Case> cases = {{Shape{1, 1}, Shape{1, 1}},
                                   {Shape{113, 203}, Shape{203, 7}},
                                   {Shape{2, 3, 33, 65}, Shape{2, 3, 65, 17}},
                                   {Shape{12, 256, 128}, Shape{12, 128, 256}}};
  Rng rng;
  for (const Case& c : cases) {
    const Tensor a = rng.normal(c.a), b = rng.normal(c.b);
    expect_close(ops::matmul(to_gpu(a, dt), to_gpu(b, dt)), ops::matmul(rounded(a, dt), rounded(b, dt)),
                 "matmul " + c.a.str() + " x " + c.b.str());
  }
}

struct AttnCase {
  int64_t B, Nq, Nk, NH, D, Dv;
  bool bias, mask;
};

// The naive bf16 attention of the FlashAttention test rule, emulated on the CPU:
// logits rounded to bf16 (a bf16 GEMM output), softmax in fp32, probabilities
// rounded to bf16, P·V accumulated in fp32, output rounded. Inputs: the
// bf16-rounded q/k/v as F32 [B, N, NH, D]; bias broadcast as ops.h says.
std::vector<float> naive_bf16_attention(const AttnCase& c, const Tensor& q, const Tensor& k, const Tensor& v,
                                        const AttentionParams& p) {
  const auto r16 = [](float x) { return bf16_to_f32(f32_to_bf16(x)); };
  const float* qp = q.data<float>();
  const float* kp = k.data<float>();
  const float* vp = v.data<float>();
  std::vector<float> out(c.B * c.Nq * c.NH * c.Dv, 0.0f);
  int64_t bs[4] = {0, 0, 0, 0};
  if (p.bias.defined()) {
    int64_t st = 1;
    for (int i = 3; i >= 0; --i) {
      const int bi = i - (4 - p.bias.dim());
      const int64_t d = bi >= 0 ? p.bias.size(bi) : 1;
      bs[i] = d == 1 ? 0 : st;
      st *= d;
    }
  }
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t i = 0; i < c.Nq; ++i) {
      std::vector<float> s(c.Nk);
      for (int64_t h = 0; h < c.NH; ++h) {
        float mx = -INFINITY;
        for (int64_t j = 0; j < c.Nk; ++j) {
          const bool keep = !p.key_mask.defined() || p.key_mask.data<int64_t>()[b * c.Nk + j] != 0;
          float acc = 0.0f;
          for (int64_t d = 0; d < c.D; ++d)
            acc += qp[((b * c.Nq + i) * c.NH + h) * c.D + d] * kp[((b * c.Nk + j) * c.NH + h) * c.D + d];
          float x = r16(acc * p.scale);
          if (p.bias.defined()) x = r16(x + p.bias.data<float>()[b * bs[0] + h * bs[1] + i * bs[2] + j * bs[3]]);
          s[j] = keep ? x : -INFINITY;
          mx = std::max(mx, s[j]);
        }
        if (mx == -INFINITY) continue;
        double sum = 0.0;
        for (int64_t j = 0; j < c.Nk; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (int64_t j = 0; j < c.Nk; ++j) s[j] = r16(static_cast<float>(s[j] / sum));
        for (int64_t d = 0; d < c.Dv; ++d) {
          float acc = 0.0f;
          for (int64_t j = 0; j < c.Nk; ++j) acc += s[j] * vp[((b * c.Nk + j) * c.NH + h) * c.Dv + d];
          out[((b * c.Nq + i) * c.NH + h) * c.Dv + d] = r16(acc);
        }
      }
    }
  return out;
}

// The emulation is a plain loop; cases above ~1e10 multiply-adds compare
// against one output rounding instead (SIMT kernel only, see below).
bool naive_affordable(const AttnCase& c) {
  return static_cast<double>(c.B) * c.Nq * c.Nk * c.NH * (c.D + c.Dv) < 1e10;
}

void run_attention(const AttnCase& c, DType dt, Rng& rng, const char* kernel) {
  const Tensor q = rng.normal(Shape{c.B, c.Nq, c.NH, c.D}), k = rng.normal(Shape{c.B, c.Nk, c.NH, c.D}),
               v = rng.normal(Shape{c.B, c.Nk, c.NH, c.Dv});
  AttentionParams p, pg;
  p.scale = pg.scale = 1.0f / std::sqrt(static_cast<float>(c.D));
  if (c.bias) {
    // T5-style relative bias [1, NH, Nq, Nk], broadcast over the batch; F32.
    p.bias = rng.normal(Shape{1, c.NH, c.Nq, c.Nk});
    pg.bias = p.bias.to(Device::CUDA);
  }
  if (c.mask) {
    // Padding mask: batch b keeps its first keys; the last batch keeps none
    // (fully masked rows must come out as zeros, not NaN).
    Tensor m = Tensor::zeros(Shape{c.B, c.Nk}, DType::I64);
    for (int64_t b = 0; b < c.B; ++b) {
      const int64_t keep = (b == c.B - 1 && c.B > 1) ? 0 : std::max<int64_t>(1, c.Nk - 3 * b - 1);
      for (int64_t j = 0; j < keep; ++j) m.data<int64_t>()[b * c.Nk + j] = 1;
    }
    p.key_mask = m;
    pg.key_mask = m.to(Device::CUDA);
  }
  const Tensor ref = ops::attention(rounded(q, dt), rounded(k, dt), rounded(v, dt), p);
  const Tensor got = ops::attention(to_gpu(q, dt), to_gpu(k, dt), to_gpu(v, dt), pg);
  // The rule's baseline for bf16: naive bf16 attention vs the fp32 reference
  // (emulated where it is cheap on the CPU; else one output rounding).
  double naive = -1.0;
  if (dt == DType::BF16 && naive_affordable(c))
    naive = compare(naive_bf16_attention(c, rounded(q, dt), rounded(k, dt), rounded(v, dt), p), ref.to_vector()).nmse;
  expect_close(got, ref,
               fmt::format("attention[{}] B{} Nq{} Nk{} NH{} D{} Dv{}{}{}", kernel, c.B, c.Nq, c.Nk, c.NH, c.D,
                           c.Dv, c.bias ? " +bias" : "", c.mask ? " +mask" : ""),
               naive);
}

// The emulated baseline itself, on the CPU: close to the fp32 reference by about
// bf16 precision (neither zero, which would make the rule impossible, nor large,
// which would make it vacuous); fully masked rows stay zero.
TEST(BackendOpsRule, NaiveBf16AttentionBaselineIsSane) {
  Rng rng;
  const AttnCase c{3, 33, 65, 2, 64, 64, true, true};
  const Tensor q = rounded(rng.normal(Shape{c.B, c.Nq, c.NH, c.D}), DType::BF16),
               k = rounded(rng.normal(Shape{c.B, c.Nk, c.NH, c.D}), DType::BF16),
               v = rounded(rng.normal(Shape{c.B, c.Nk, c.NH, c.Dv}), DType::BF16);
  AttentionParams p;
  p.scale = 0.125f;
  p.bias = rng.normal(Shape{1, c.NH, c.Nq, c.Nk});
  Tensor m = Tensor::zeros(Shape{c.B, c.Nk}, DType::I64);
  for (int64_t j = 0; j < 40; ++j) m.data<int64_t>()[j] = 1;           // batch 0 keeps 40 keys
  for (int64_t j = 0; j < c.Nk; ++j) m.data<int64_t>()[c.Nk + j] = 1;  // batch 1 keeps all, batch 2 none
  p.key_mask = m;
  const std::vector<float> ref = ops::attention(q, k, v, p).to_vector();
  const std::vector<float> naive = naive_bf16_attention(c, q, k, v, p);
  const double e = compare(naive, ref).nmse;
  std::printf("[backend-ops] naive bf16 attention vs fp32 reference: nmse %.3e\n", e);
  EXPECT_GT(e, 1e-7);
  EXPECT_LT(e, 1e-3);
  for (int64_t i = 2 * c.Nq * c.NH * c.Dv; i < static_cast<int64_t>(naive.size()); ++i) ASSERT_EQ(naive[i], 0.0f);
}

TEST_P(BackendOpsCompute, Attention) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  std::vector<AttnCase> cases = {
      {1, 1, 1, 1, 1, 1, false, false},          // smallest
      {2, 113, 203, 3, 64, 64, true, true},      // umT5-like (D 64, bias, padding mask)
      {1, 1023, 77, 12, 128, 128, false, true},  // cross-attention to a short prompt
      {3, 33, 65, 2, 40, 24, false, true},       // Dv != D, odd sizes, a fully masked batch
      {1, 257, 512, 2, 128, 128, false, false},  // Wan cross-attention (512 text tokens)
      {2, 64, 64, 2, 96, 96, true, false},       // 3 lanes' worth of columns (kDC = 3)
      {1, 1536, 1536, 12, 128, 128, false, false},
      {2, 77, 300, 4, 128, 128, true, true},     // tensor-core path with bias, mask, partial tiles
      {1, 130, 129, 2, 64, 64, true, true}};
  if (large_cases()) {
    cases.push_back({1, 32760, 512, 12, 128, 128, false, false});  // Wan 1.3B cross-attention
    cases.push_back({1, 8190, 8190, 12, 128, 128, false, false});  // self-attention, a quarter of the tokens
  }
  Rng rng;
  // Both kernels: the fp32 SIMT flash kernel for every case, and for bf16 the
  // tensor-core kernel on the cases it takes whose naive-bf16 baseline is
  // emulated (it rounds P to bf16, so one output rounding is too tight a baseline).
  using ops::cuda::AttentionKernel;
  ops::cuda::set_attention_kernel(AttentionKernel::Simt);
  for (const AttnCase& c : cases) run_attention(c, dt, rng, "simt");
  if (dt == DType::BF16) {
    ops::cuda::set_attention_kernel(AttentionKernel::Mma);
    for (const AttnCase& c : cases)
      if (c.D == c.Dv && (c.D == 64 || c.D == 128) && naive_affordable(c)) run_attention(c, dt, rng, "mma");
    ops::cuda::set_attention_kernel(AttentionKernel::Simt);
  }
}

TEST_P(BackendOpsCompute, Conv3d) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  struct Case { Shape x, w; Conv3dParams p; bool bias; };
  Conv3dParams causal;  // Wan VAE CausalConv3d 3x3x3: time padded in front only
  causal.pad_t_front = 2;
  causal.pad_h = causal.pad_w = 1;
  Conv3dParams down;  // spatial downsample (stride 2, no padding)
  down.stride = {1, 2, 2};
  Conv3dParams time_down;  // time downsample conv (3x1x1, stride 2 in time)
  time_down.stride = {2, 1, 1};
  std::vector<Case> cases = {{Shape{1, 1, 1, 1, 1}, Shape{1, 1, 1, 1, 1}, Conv3dParams{}, true},
                             {Shape{1, 5, 4, 13, 11}, Shape{7, 5, 3, 3, 3}, causal, true},
                             {Shape{2, 3, 2, 17, 19}, Shape{4, 3, 1, 3, 3}, down, false},
                             {Shape{1, 8, 5, 6, 7}, Shape{8, 8, 3, 1, 1}, time_down, true},
                             {Shape{1, 96, 3, 30, 52}, Shape{96, 96, 3, 3, 3}, causal, true},
                             {Shape{1, 16, 2, 9, 10}, Shape{384, 16, 3, 3, 3}, causal, true}};
  if (large_cases()) cases.push_back({Shape{1, 384, 3, 60, 104}, Shape{384, 384, 3, 3, 3}, causal, true});
  Rng rng;
  for (const ConvKernel kernel : {ConvKernel::ImplicitGemm, ConvKernel::Cudnn}) {
    ops::cuda::set_conv_kernel(kernel);
    const std::string kname = kernel == ConvKernel::Cudnn ? "cudnn" : "igemm";
    for (const Case& c : cases) {
      const Tensor x = rng.normal(c.x), w = rng.normal(c.w, 0.1f), b = c.bias ? rng.uniform(Shape{c.w[0]}) : Tensor();
      const Tensor ref = ops::conv3d(rounded(x, dt), rounded(w, dt), c.bias ? b : Tensor(), c.p);
      const Tensor got = ops::conv3d(to_gpu(x, dt), to_gpu(w, dt), c.bias ? to_gpu(b, DType::F32) : Tensor(), c.p);
      expect_close(got, ref, "conv3d[" + kname + "] x" + c.x.str() + " w" + c.w.str());
    }
  }
  ops::cuda::set_conv_kernel(ConvKernel::ImplicitGemm);
}

TEST_P(BackendOpsCompute, Conv2d) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  Conv2dParams asym;  // the VAE's downsample pads right/bottom only: ZeroPad2d((0, 1, 0, 1))
  asym.stride = {2, 2};
  asym.pad_bottom = asym.pad_right = 1;
  Conv2dParams same;
  same.pad_top = same.pad_bottom = same.pad_left = same.pad_right = 1;
  Rng rng;
  for (const ConvKernel kernel : {ConvKernel::ImplicitGemm, ConvKernel::Cudnn}) {
    ops::cuda::set_conv_kernel(kernel);
    const std::string kname = kernel == ConvKernel::Cudnn ? "cudnn" : "igemm";
    for (const auto& [sx, sw, p] : std::vector<std::tuple<Shape, Shape, Conv2dParams>>{
             {Shape{2, 3, 17, 19}, Shape{4, 3, 3, 3}, asym},
             {Shape{1, 1, 1, 1}, Shape{1, 1, 1, 1}, Conv2dParams{}},
             {Shape{1, 96, 30, 52}, Shape{96, 96, 3, 3}, same}}) {
      const Tensor x = rng.normal(sx), w = rng.normal(sw, 0.1f), b = rng.uniform(Shape{sw[0]});
      expect_close(ops::conv2d(to_gpu(x, dt), to_gpu(w, dt), to_gpu(b, dt), p),
                   ops::conv2d(rounded(x, dt), rounded(w, dt), rounded(b, dt), p),
                   "conv2d[" + kname + "] x" + sx.str() + " w" + sw.str());
    }
  }
  ops::cuda::set_conv_kernel(ConvKernel::ImplicitGemm);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, BackendOpsCompute, ::testing::Values(DType::F32, DType::BF16),
                         [](const ::testing::TestParamInfo<DType>& i) { return std::string(dtype_name(i.param)); });

}  // namespace
}  // namespace t2v::test_cuda
#endif  // T2V_HAVE_CUDA
