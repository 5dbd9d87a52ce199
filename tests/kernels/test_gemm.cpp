// linear and matmul against double loops; exactness on small integers; a
// timing printout for a 4096x4096 linear (information only, not asserted).
#include <chrono>

#include "kernel_test_util.h"
#include "kernels/ops.h"

namespace t2v {
namespace {

using test::expect_close;
using test::random_tensor;

// y[m, n] = sum_k x[m, k] w[n, k] + b[n], in double.
std::vector<double> linear_ref(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t K = x.size(-1), M = x.numel() / K, N = w.size(0);
  const std::vector<float> xv = x.to_vector(), wv = w.to_vector();
  const std::vector<float> bv = b.defined() ? b.to_vector() : std::vector<float>();
  std::vector<double> y(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = bv.empty() ? 0.0 : bv[n];
      for (int64_t k = 0; k < K; ++k) s += (double)xv[m * K + k] * wv[n * K + k];
      y[m * N + n] = s;
    }
  return y;
}

struct LinearCase {
  Shape x;
  int64_t n;
  bool bias;
};

TEST(Linear, MatchesDoubleLoop) {
  // fp32 GEMM with K up to 1023 accumulates ~sqrt(K)·2^-24 relative error: rtol 1e-5.
  const LinearCase cases[] = {{{1, 1}, 1, true},      {{3, 7}, 5, false},       {{113, 203}, 67, true},
                              {{2, 3, 1023}, 3, true}, {{2, 1, 5, 64}, 33, false}, {{7}, 1023, true}};
  uint32_t seed = 1;
  for (const LinearCase& c : cases) {
    const Tensor x = random_tensor(c.x, seed++);
    const Tensor w = random_tensor(Shape{c.n, c.x[c.x.ndim() - 1]}, seed++);
    const Tensor b = c.bias ? random_tensor(Shape{c.n}, seed++) : Tensor();
    const Tensor y = ops::linear(x, w, b);
    std::vector<int64_t> want = c.x.vec();
    want.back() = c.n;
    EXPECT_EQ(y.shape(), Shape(want));
    expect_close(y, linear_ref(x, w, b), 1e-5, "linear x" + c.x.str() + " n=" + std::to_string(c.n));
  }
}

TEST(Linear, ExactOnSmallIntegers) {
  // Integer inputs with |sum| < 2^24: every partial sum is exact in fp32, so the result must be exact.
  std::mt19937 gen(7);
  std::uniform_int_distribution<int> d(-8, 8);
  std::vector<float> xv(37 * 129), wv(19 * 129), bv(19);
  for (float& v : xv) v = (float)d(gen);
  for (float& v : wv) v = (float)d(gen);
  for (float& v : bv) v = (float)d(gen);
  const Tensor x = Tensor::from_floats(xv, Shape{37, 129}), w = Tensor::from_floats(wv, Shape{19, 129});
  const Tensor b = Tensor::from_floats(bv, Shape{19});
  const std::vector<double> ref = linear_ref(x, w, b);
  const std::vector<float> y = ops::linear(x, w, b).to_vector();
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ((double)y[i], ref[i]) << "at " << i;
}

TEST(Matmul, BatchedMatchesDoubleLoop) {
  // rtol 1e-5 (fp32 GEMM, K <= 203).
  const std::vector<std::array<int64_t, 5>> cases = {{1, 1, 1, 1, 1}, {2, 3, 7, 5, 9}, {1, 2, 113, 203, 31}};
  uint32_t seed = 100;
  for (const auto& [B0, B1, M, K, N] : cases) {
    const Tensor a = random_tensor(Shape{B0, B1, M, K}, seed++), b = random_tensor(Shape{B0, B1, K, N}, seed++);
    const Tensor y = ops::matmul(a, b);
    ASSERT_EQ(y.shape(), (Shape{B0, B1, M, N}));
    const std::vector<float> av = a.to_vector(), bv = b.to_vector();
    std::vector<double> ref(B0 * B1 * M * N);
    for (int64_t z = 0; z < B0 * B1; ++z)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k) s += (double)av[(z * M + m) * K + k] * bv[(z * K + k) * N + n];
          ref[(z * M + m) * N + n] = s;
        }
    expect_close(y, ref, 1e-5, "matmul " + y.shape().str());
  }
  // 2-D operands too.
  const Tensor a = random_tensor(Shape{3, 4}, 1), b = random_tensor(Shape{4, 2}, 2);
  EXPECT_EQ(ops::matmul(a, b).shape(), (Shape{3, 2}));
}

// K = 0: an empty sum, so every row is the bias (or zeros), for any number of rows.
TEST(Linear, EmptyReductionGivesTheBias) {
  const Tensor x = Tensor::empty(Shape{2, 3, 0}, DType::F32), w = Tensor::empty(Shape{5, 0}, DType::F32);
  const Tensor b = random_tensor(Shape{5}, 14);
  const Tensor y = ops::linear(x, w, b), z = ops::linear(x, w);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 5}));
  const std::vector<float> yv = y.to_vector(), zv = z.to_vector(), bv = b.to_vector();
  for (size_t i = 0; i < yv.size(); ++i) {
    EXPECT_EQ(yv[i], bv[i % 5]) << i;
    EXPECT_EQ(zv[i], 0.0f) << i;
  }
}

TEST(Linear, TimingPrintout) {
  // Information only: CPU throughput of the GEMM path (x [256, 4096] · w[4096, 4096]ᵀ).
  const Tensor x = random_tensor(Shape{256, 4096}, 11), w = random_tensor(Shape{4096, 4096}, 12);
  ops::linear(random_tensor(Shape{4, 4096}, 13), w);  // warm-up: starts the BLAS thread pool
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor y = ops::linear(x, w);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("  linear [256, 4096] x [4096, 4096]^T: %.1f ms, %.1f GFLOP/s\n", s * 1e3,
              2.0 * 256 * 4096 * 4096 / s * 1e-9);
  EXPECT_EQ(y.shape(), (Shape{256, 4096}));
}

}  // namespace
}  // namespace t2v
