// Scaled-dot-product attention against a double loop: plain, with additive
// bias (several broadcast shapes), with a key mask (equal to attention over the
// kept keys only), fully masked rows (zeros); timing printout at N = 2048.
#include <chrono>
#include <cmath>

#include "kernel_test_util.h"
#include "kernels/ops.h"

namespace t2v {
namespace {

using test::expect_close;
using test::random_tensor;

// Double-precision attention; bias given as a full [B, NH, Nq, Nk] vector (or empty), keep as [B, Nk] (or empty).
std::vector<double> attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                                  const std::vector<double>& bias, const std::vector<int>& keep) {
  const int64_t B = q.size(0), Nq = q.size(1), NH = q.size(2), D = q.size(3), Nk = k.size(1), Dv = v.size(3);
  const std::vector<float> qv = q.to_vector(), kv = k.to_vector(), vv = v.to_vector();
  std::vector<double> out(B * Nq * NH * Dv, 0.0), logit(Nk);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t i = 0; i < Nq; ++i) {
        double mx = -INFINITY;
        for (int64_t j = 0; j < Nk; ++j) {
          if (!keep.empty() && !keep[b * Nk + j]) {
            logit[j] = -INFINITY;
            continue;
          }
          double s = 0;
          for (int64_t d = 0; d < D; ++d) s += (double)qv[((b * Nq + i) * NH + h) * D + d] * kv[((b * Nk + j) * NH + h) * D + d];
          s *= scale;
          if (!bias.empty()) s += bias[((b * NH + h) * Nq + i) * Nk + j];
          logit[j] = s;
          mx = std::max(mx, s);
        }
        if (mx == -INFINITY) continue;  // fully masked row: zeros
        double sum = 0;
        for (int64_t j = 0; j < Nk; ++j) sum += (logit[j] = std::exp(logit[j] - mx));
        for (int64_t j = 0; j < Nk; ++j)
          for (int64_t d = 0; d < Dv; ++d)
            out[((b * Nq + i) * NH + h) * Dv + d] += logit[j] / sum * vv[((b * Nk + j) * NH + h) * Dv + d];
      }
  return out;
}

// Expands a bias of shape `bs` (right-aligned, size-1 broadcast) to [B, NH, Nq, Nk].
std::vector<double> expand_bias(const Tensor& bias, int64_t B, int64_t NH, int64_t Nq, int64_t Nk) {
  int64_t d[4] = {1, 1, 1, 1};
  for (int i = 0; i < bias.dim(); ++i) d[4 - bias.dim() + i] = bias.size(i);
  const std::vector<float> bv = bias.to_vector();
  std::vector<double> out(B * NH * Nq * Nk);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t i = 0; i < Nq; ++i)
        for (int64_t j = 0; j < Nk; ++j) {
          const int64_t idx = (((d[0] == 1 ? 0 : b) * d[1] + (d[1] == 1 ? 0 : h)) * d[2] + (d[2] == 1 ? 0 : i)) * d[3] +
                              (d[3] == 1 ? 0 : j);
          out[((b * NH + h) * Nq + i) * Nk + j] = bv[idx];
        }
  return out;
}

ops::AttentionParams params(float scale, Tensor bias = {}, Tensor key_mask = {}) {
  ops::AttentionParams p;
  p.scale = scale;
  p.bias = std::move(bias);
  p.key_mask = std::move(key_mask);
  return p;
}

struct Dims {
  int64_t B, Nq, Nk, NH, D, Dv;
};

TEST(Attention, MatchesDoubleLoop) {
  // fp32 GEMMs + fp32 exp with double row sums: rtol 1e-5.
  const Dims cases[] = {{1, 1, 1, 1, 1, 1}, {2, 7, 3, 3, 8, 5}, {1, 300, 113, 2, 64, 64}, {1, 3, 1023, 1, 16, 7}};
  uint32_t seed = 1;
  for (const Dims& c : cases) {
    const Tensor q = random_tensor(Shape{c.B, c.Nq, c.NH, c.D}, seed++);
    const Tensor k = random_tensor(Shape{c.B, c.Nk, c.NH, c.D}, seed++);
    const Tensor v = random_tensor(Shape{c.B, c.Nk, c.NH, c.Dv}, seed++);
    const float scale = 1.0f / std::sqrt((float)c.D);
    const Tensor y = ops::attention(q, k, v, params(scale));
    ASSERT_EQ(y.shape(), (Shape{c.B, c.Nq, c.NH, c.Dv}));
    expect_close(y, attention_ref(q, k, v, scale, {}, {}), 1e-5, "attention q" + q.shape().str() + " k" + k.shape().str());
  }
}

TEST(Attention, AdditiveBiasBroadcasts) {
  // T5-style relative position bias; scale 1 like T5. rtol 1e-5.
  const int64_t B = 2, Nq = 9, Nk = 11, NH = 3, D = 16;
  const Tensor q = random_tensor(Shape{B, Nq, NH, D}, 10), k = random_tensor(Shape{B, Nk, NH, D}, 11);
  const Tensor v = random_tensor(Shape{B, Nk, NH, D}, 12);
  const Shape bias_shapes[] = {{B, NH, Nq, Nk}, {1, NH, Nq, Nk}, {B, 1, Nq, Nk}, {Nq, Nk}, {1, 1, 1, Nk}, {NH, 1, 1}};
  uint32_t seed = 20;
  for (const Shape& bs : bias_shapes) {
    const Tensor bias = random_tensor(bs, seed++, -3.0f, 3.0f);
    const Tensor y = ops::attention(q, k, v, params(1.0f, bias));
    expect_close(y, attention_ref(q, k, v, 1.0f, expand_bias(bias, B, NH, Nq, Nk), {}), 1e-5,
                 "attention bias " + bs.str());
  }
}

TEST(Attention, KeyMaskEqualsUnmaskedSubset) {
  // Masked keys must not contribute at all: the result equals attention over the kept keys only (rtol 1e-5).
  const int64_t Nq = 13, Nk = 29, NH = 2, D = 8;
  const Tensor q = random_tensor(Shape{1, Nq, NH, D}, 30), k = random_tensor(Shape{1, Nk, NH, D}, 31);
  const Tensor v = random_tensor(Shape{1, Nk, NH, D}, 32);
  std::vector<float> mask(Nk);
  std::vector<int64_t> kept;
  for (int64_t j = 0; j < Nk; ++j) {
    mask[j] = (j % 3 != 1) ? 1.0f : 0.0f;
    if (mask[j] != 0) kept.push_back(j);
  }
  const int64_t Nkept = (int64_t)kept.size();
  std::vector<float> ks, vs;
  const std::vector<float> kv = k.to_vector(), vv = v.to_vector();
  for (int64_t j : kept) {
    ks.insert(ks.end(), kv.begin() + j * NH * D, kv.begin() + (j + 1) * NH * D);
    vs.insert(vs.end(), vv.begin() + j * NH * D, vv.begin() + (j + 1) * NH * D);
  }
  const Tensor k_sub = Tensor::from_floats(ks, Shape{1, Nkept, NH, D}), v_sub = Tensor::from_floats(vs, Shape{1, Nkept, NH, D});
  const float scale = 0.35f;
  const Tensor sub = ops::attention(q, k_sub, v_sub, params(scale));
  for (DType dt : {DType::F32, DType::I64, DType::I32, DType::U8}) {
    const Tensor m = ops::cast(Tensor::from_floats(mask, Shape{1, Nk}), dt);
    const Tensor y = ops::attention(q, k, v, params(scale, {}, m));
    expect_close(y, test::to_doubles(sub), 1e-5, std::string("attention key_mask ") + dtype_name(dt));
  }
}

TEST(Attention, MaskAndBiasAcrossQueryBlocks) {
  // Nq = 600 spans three 256-row query blocks; per-batch masks plus a [1, NH, Nq, Nk] bias. rtol 1e-5.
  const int64_t B = 2, Nq = 600, Nk = 77, NH = 2, D = 32;
  const Tensor q = random_tensor(Shape{B, Nq, NH, D}, 60), k = random_tensor(Shape{B, Nk, NH, D}, 61);
  const Tensor v = random_tensor(Shape{B, Nk, NH, D}, 62);
  const Tensor bias = random_tensor(Shape{1, NH, Nq, Nk}, 63, -2.0f, 2.0f);
  std::vector<int> keep(B * Nk);
  for (int64_t j = 0; j < Nk; ++j) {
    keep[j] = j < 50;             // batch 0: a prefix (padded text)
    keep[Nk + j] = (j * 7) % 5 != 0;  // batch 1: scattered
  }
  std::vector<int32_t> ki(keep.begin(), keep.end());
  Tensor m = Tensor::empty(Shape{B, Nk}, DType::I32);
  std::copy(ki.begin(), ki.end(), m.data<int32_t>());
  const float scale = 1.0f / std::sqrt((float)D);
  const Tensor y = ops::attention(q, k, v, params(scale, bias, m));
  expect_close(y, attention_ref(q, k, v, scale, expand_bias(bias, B, NH, Nq, Nk), keep), 1e-5,
               "attention mask+bias Nq=600");
}

TEST(Attention, FullyMaskedRowIsZero) {
  // Batch 0 keeps some keys, batch 1 none: batch 1's output must be exactly zero, batch 0 as the reference.
  const int64_t Nq = 4, Nk = 6, NH = 2, D = 4;
  const Tensor q = random_tensor(Shape{2, Nq, NH, D}, 40), k = random_tensor(Shape{2, Nk, NH, D}, 41);
  const Tensor v = random_tensor(Shape{2, Nk, NH, D}, 42);
  std::vector<int> keep = {1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  std::vector<float> kf(keep.begin(), keep.end());
  const Tensor y = ops::attention(q, k, v, params(0.5f, {}, Tensor::from_floats(kf, Shape{2, Nk})));
  const std::vector<double> ref = attention_ref(q, k, v, 0.5f, {}, keep);
  expect_close(y, ref, 1e-5, "attention partially/fully masked");
  const std::vector<float> yv = y.to_vector();
  for (int64_t i = Nq * NH * D; i < 2 * Nq * NH * D; ++i) ASSERT_EQ(yv[i], 0.0f) << "masked batch at " << i;
  // The same through a -inf bias on every key.
  const Tensor ninf = Tensor::full(Shape{1, 1, 1, Nk}, -INFINITY);
  for (float x : ops::attention(q, k, v, params(0.5f, ninf)).to_vector()) ASSERT_EQ(x, 0.0f);
}

TEST(Attention, TimingPrintout) {
  // Information only: Wan-like head dim, N = 2048 tokens, 2 heads.
  const int64_t N = 2048, NH = 2, D = 128;
  const Tensor q = random_tensor(Shape{1, N, NH, D}, 50), k = random_tensor(Shape{1, N, NH, D}, 51);
  const Tensor v = random_tensor(Shape{1, N, NH, D}, 52);
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor y = ops::attention(q, k, v, params(1.0f / std::sqrt(128.0f)));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("  attention N=%ld NH=%ld D=%ld: %.1f ms, %.1f GFLOP/s (GEMM flops)\n", (long)N, (long)NH, (long)D, s * 1e3,
              4.0 * N * N * D * NH / s * 1e-9);
  EXPECT_EQ(y.shape(), q.shape());
}

}  // namespace
}  // namespace t2v
