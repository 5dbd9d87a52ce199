// linear_packed (kernels/packed_ops.h) on random blocks of every format against
// ops::linear on the dequantized matrix. Each output element is one OpenBLAS
// sgemm dot product over the full K in both. When W fits one tile (N <= 2^20 / K
// rows: every test model's weight) the packed op makes the very sgemm call the
// dense one makes: bit for bit. Across tiles OpenBLAS may sum a column in
// another order than inside one wide call (its edge kernels and thread split
// depend on N), so there the two are compared by the scale of a dot product's
// rounding, sum_k |x_k| |w_k|: within 1e-6 of it (fp32 summation bounds the
// difference by ~2K·2^-24 of it; 1.4e-7 measured on the Q4_K case below). The
// double-loop reference bounds both at fp32 GEMM accuracy (1e-5, as the dense
// linear test).
#include <cstring>

#include "core/dtype.h"
#include "core/quant.h"
#include "kernel_test_util.h"
#include "kernels/ops.h"
#include "kernels/packed_ops.h"

namespace t2v {
namespace {

using test::expect_close;
using test::random_tensor;

// Byte offsets of the fp16 scale fields of each block format (ggml-common.h).
std::vector<int> scale_fields(QuantType t) {
  switch (t) {
    case QuantType::Q4_1:
    case QuantType::Q5_1:
    case QuantType::Q4_K:
    case QuantType::Q5_K: return {0, 2};
    case QuantType::Q2_K: return {80, 82};
    case QuantType::Q3_K: return {108};
    case QuantType::Q6_K: return {208};
    default: return {0};
  }
}

// Random blocks with scales as quantizers write them (both signs, 1e-3..0.1).
PackedWeight random_packed(QuantType t, int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> mag(1e-3f, 0.1f);
  PackedWeight w{t, Shape{n, k}, Tensor()};
  w.data = Tensor::empty(Shape{n * w.row_bytes()}, DType::U8);
  uint8_t* p = w.data.data<uint8_t>();
  for (int64_t i = 0; i < w.data.numel(); ++i) p[i] = static_cast<uint8_t>(byte(gen));
  const QuantTraits& q = quant_traits(t);
  for (int64_t b = 0; b < n * k / q.block_elems; ++b)
    for (int off : scale_fields(t)) {
      const uint16_t h = f32_to_f16(byte(gen) < 128 ? mag(gen) : -mag(gen));
      std::memcpy(p + b * q.block_bytes + off, &h, 2);
    }
  return w;
}

Tensor dequantized(const PackedWeight& w) {
  Tensor d = Tensor::empty(w.shape, DType::F32);
  dequantize(w.type, w.data.raw(), d.data<float>(), d.numel());
  return d;
}

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

void expect_same_bits(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  int64_t diff = 0, first = -1;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (std::memcmp(a.data<float>() + i, b.data<float>() + i, 4) != 0) {
      if (first < 0) first = i;
      ++diff;
    }
  EXPECT_EQ(diff, 0) << what << ": " << diff << " of " << a.numel() << " values differ; first at " << first << ": "
                     << (first >= 0 ? a.data<float>()[first] : 0.0f) << " vs "
                     << (first >= 0 ? b.data<float>()[first] : 0.0f);
}

// |got - want| <= rtol * sum_k |x_mk| |w_nk| for every output element.
void expect_within_dot_rounding(const Tensor& got, const Tensor& want, const Tensor& x, const Tensor& w, double rtol,
                                const std::string& what) {
  const int64_t K = x.size(-1), M = x.numel() / K, N = w.size(0);
  const float *g = got.data<float>(), *r = want.data<float>(), *xp = x.data<float>(), *wp = w.data<float>();
  double worst = 0;
  int64_t bad = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double scale = 0;
      for (int64_t k = 0; k < K; ++k) scale += std::fabs((double)xp[m * K + k] * wp[n * K + k]);
      const double rel = std::fabs((double)g[m * N + n] - r[m * N + n]) / scale;
      worst = std::max(worst, rel);
      bad += rel <= rtol ? 0 : 1;
    }
  std::printf("  [%s] max |diff| / sum|x||w| %.2e (tol %.0e)\n", what.c_str(), worst, rtol);
  EXPECT_EQ(bad, 0) << what;
}

struct Case {
  Shape x;  // [..., K]
  int64_t n;
  bool bias;
};

}  // namespace

TEST(LinearPacked, EqualsLinearOnTheDequantizedWeightForEveryFormat) {
  uint32_t seed = 11;
  for (int ti = 0; ti < kNumQuantTypes; ++ti) {
    const auto t = static_cast<QuantType>(ti);
    const int64_t blk = quant_traits(t).block_elems;
    // Odd M and N, a single row, leading dims, 1 and several blocks per row.
    const Case cases[] = {
        {{1, blk}, 1, true}, {{3, 2 * blk}, 5, false}, {{2, 3, 3 * blk}, 67, true}, {{17, blk}, 130, true}};
    for (const Case& c : cases) {
      const int64_t K = c.x[c.x.ndim() - 1];
      const PackedWeight w = random_packed(t, c.n, K, seed++);
      const Tensor x = random_tensor(c.x, seed++);
      const Tensor b = c.bias ? random_tensor(Shape{c.n}, seed++) : Tensor();
      const std::string what = fmt::format("{} x{} n={}", quant_name(t), c.x.str(), c.n);
      const Tensor dense = dequantized(w);
      const Tensor got = ops::linear_packed(x, w, b);
      expect_same_bits(got, ops::linear(x, dense, b), what);
      // fp32 GEMM accuracy against double sums (K <= 768): rtol 1e-5, as the dense linear test.
      expect_close(got, linear_ref(x, dense, b), 1e-5, what);
    }
  }
}

TEST(LinearPacked, SeveralTilesOfRows) {
  // Tiles hold 2^20 / K rows: N = 4200 at K = 256 spans two tiles (4096 + 104).
  const PackedWeight w = random_packed(QuantType::Q4_K, 4200, 256, 3);
  const Tensor x = random_tensor(Shape{5, 256}, 4);
  const Tensor b = random_tensor(Shape{4200}, 5);
  const Tensor dense = dequantized(w);
  const Tensor got = ops::linear_packed(x, w, b);
  expect_within_dot_rounding(got, ops::linear(x, dense, b), x, dense, 1e-6, "Q4_K 4200 rows vs dense");
  expect_close(got, linear_ref(x, dense, b), 1e-5, "Q4_K 4200 rows vs double");
  // The first tile is the same call as a dense linear on its rows.
  const PackedWeight first{w.type, Shape{4096, 256}, w.data.narrow0(0, 4096 * w.row_bytes())};
  expect_same_bits(ops::linear_packed(x, first), ops::linear(x, dense.narrow0(0, 4096)), "Q4_K first tile");
  const PackedWeight w8 = random_packed(QuantType::Q8_0, 9000, 128, 6);  // 8192 + 808 rows
  const Tensor x8 = random_tensor(Shape{3, 128}, 7);
  const Tensor dense8 = dequantized(w8);
  expect_within_dot_rounding(ops::linear_packed(x8, w8), ops::linear(x8, dense8), x8, dense8, 1e-6,
                             "Q8_0 9000 rows vs dense");
}

TEST(LinearPacked, ArgumentErrorsAre70) {
  const PackedWeight w = random_packed(QuantType::Q8_0, 4, 64, 1);
  auto code = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.code();
    }
    return 0;
  };
  EXPECT_EQ(code([&] { ops::linear_packed(random_tensor(Shape{2, 32}, 1), w); }), 70);  // K mismatch
  EXPECT_EQ(code([&] {
              ops::linear_packed(random_tensor(Shape{2, 64}, 1), w, Tensor::zeros({3}, DType::F32));
            }),
            70);                                                                                        // bias size
  EXPECT_EQ(code([&] { ops::linear_packed(random_tensor(Shape{2, 64}, 1).to(DType::BF16), w); }), 70);  // dtype
  PackedWeight no_data{QuantType::Q8_0, Shape{4, 64}, Tensor()};
  EXPECT_EQ(code([&] { ops::linear_packed(random_tensor(Shape{2, 64}, 1), no_data); }), 70);
  PackedWeight odd{QuantType::Q4_K, Shape{4, 64}, Tensor::zeros({4 * 36}, DType::U8)};
  EXPECT_EQ(code([&] { ops::linear_packed(random_tensor(Shape{2, 64}, 1), odd); }), 70);  // K not whole blocks
}

}  // namespace t2v
