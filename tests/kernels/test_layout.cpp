// concat, slice, permute, contiguous_copy, embedding and cast, checked element
// by element against index arithmetic.
#include <algorithm>
#include <numeric>

#include "kernel_test_util.h"
#include "kernels/ops.h"

namespace t2v {
namespace {

using test::random_tensor;

// Row-major flat index of `idx` in `s`.
int64_t flat(const Shape& s, const std::vector<int64_t>& idx) {
  int64_t f = 0;
  for (int i = 0; i < s.ndim(); ++i) f = f * s[i] + idx[i];
  return f;
}

std::vector<int64_t> unflat(const Shape& s, int64_t f) {
  std::vector<int64_t> idx(s.ndim());
  for (int i = s.ndim() - 1; i >= 0; --i) {
    idx[i] = f % s[i];
    f /= s[i];
  }
  return idx;
}

TEST(Concat, AlongEachDim) {
  const Shape base{2, 3, 4, 5};
  uint32_t seed = 1;
  for (int dim : {0, 1, 2, 3, -1, -3}) {
    const int d = dim < 0 ? dim + 4 : dim;
    std::vector<Tensor> xs;
    for (int64_t len : {1, 3, 2}) {
      std::vector<int64_t> s = base.vec();
      s[d] = len;
      xs.push_back(random_tensor(Shape(s), seed++));
    }
    const Tensor y = ops::concat(xs, dim);
    std::vector<int64_t> want = base.vec();
    want[d] = 6;
    ASSERT_EQ(y.shape(), Shape(want));
    const std::vector<float> yv = y.to_vector();
    for (int64_t f = 0; f < y.numel(); ++f) {
      std::vector<int64_t> idx = unflat(y.shape(), f);
      size_t part = 0;
      while (idx[d] >= xs[part].size(d)) idx[d] -= xs[part++].size(d);
      ASSERT_EQ(yv[f], xs[part].item(flat(xs[part].shape(), idx))) << "dim " << dim << " at " << f;
    }
  }
}

TEST(Slice, RangesAlongEachDim) {
  const Tensor x = random_tensor(Shape{3, 7, 5}, 10);
  for (int d = 0; d < 3; ++d)
    for (auto [s, e] : {std::pair<int64_t, int64_t>{0, 1}, {1, 3}, {0, x.size(d)}, {2, 2}}) {
      const Tensor y = ops::slice(x, d, s, e);
      ASSERT_EQ(y.size(d), e - s);
      for (int64_t f = 0; f < y.numel(); ++f) {
        std::vector<int64_t> idx = unflat(y.shape(), f);
        idx[d] += s;
        ASSERT_EQ(y.item(f), x.item(flat(x.shape(), idx)));
      }
    }
  EXPECT_EQ(ops::slice(x, -1, 1, 4).shape(), (Shape{3, 7, 3}));
}

TEST(Permute, EveryPermutationUpToRank5) {
  uint32_t seed = 20;
  for (int nd = 1; nd <= 5; ++nd) {
    std::vector<int64_t> dims = {2, 3, 4, 5, 3};
    dims.resize(nd);
    const Tensor x = random_tensor(Shape(dims), seed++);
    std::vector<int> perm(nd);
    std::iota(perm.begin(), perm.end(), 0);
    int count = 0;
    do {
      const Tensor y = ops::permute(x, perm);
      const std::vector<float> yv = y.to_vector();
      for (int i = 0; i < nd; ++i) ASSERT_EQ(y.size(i), x.size(perm[i]));
      for (int64_t f = 0; f < y.numel(); ++f) {
        const std::vector<int64_t> oi = unflat(y.shape(), f);
        std::vector<int64_t> ii(nd);
        for (int i = 0; i < nd; ++i) ii[perm[i]] = oi[i];
        ASSERT_EQ(yv[f], x.item(flat(x.shape(), ii)));
      }
      ++count;
    } while (std::next_permutation(perm.begin(), perm.end()));
    const int factorial[] = {1, 2, 6, 24, 120};
    EXPECT_EQ(count, factorial[nd - 1]);
  }
  // Integer tensors move too (element size from the dtype).
  const Tensor ids = ops::cast(random_tensor(Shape{3, 4}, 7, 0.0f, 100.0f), DType::I64);
  const Tensor t = ops::permute(ids, {1, 0});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) ASSERT_EQ(t.data<int64_t>()[j * 3 + i], ids.data<int64_t>()[i * 4 + j]);
}

TEST(ContiguousCopy, IsAFreshCopy) {
  const Tensor x = random_tensor(Shape{113, 3}, 30);
  const Tensor y = ops::contiguous_copy(x);
  EXPECT_NE(y.raw(), x.raw());
  test::expect_equal(y, x, "contiguous_copy");
}

TEST(Embedding, GathersRowsAndRejectsBadIds) {
  const Tensor table = random_tensor(Shape{11, 7}, 40);
  for (DType dt : {DType::I64, DType::I32}) {
    const Tensor ids = ops::cast(Tensor::from_floats({3, 0, 10, 3, 5, 1}, Shape{2, 3}), dt);
    const Tensor y = ops::embedding(table, ids);
    ASSERT_EQ(y.shape(), (Shape{2, 3, 7}));
    const int64_t want[] = {3, 0, 10, 3, 5, 1};
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t c = 0; c < 7; ++c) ASSERT_EQ(y.item(i * 7 + c), table.item(want[i] * 7 + c));
  }
  for (float bad : {11.0f, -1.0f}) {
    const Tensor ids = ops::cast(Tensor::from_floats({1, bad}, Shape{2}), DType::I64);
    try {
      ops::embedding(table, ids);
      FAIL() << "id " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitDataErr);
      EXPECT_NE(std::string(e.what()).find(std::to_string((int)bad)), std::string::npos) << e.what();
    }
  }
}

TEST(Cast, RoundTripsThroughBf16) {
  const Tensor x = random_tensor(Shape{5, 7}, 50);
  const Tensor b = ops::cast(x, DType::BF16);
  EXPECT_EQ(b.dtype(), DType::BF16);
  const Tensor back = ops::cast(b, DType::F32);
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(back.item(i), bf16_to_f32(f32_to_bf16(x.item(i))));
  EXPECT_NE(ops::cast(x, DType::F32).raw(), x.raw());  // same dtype: still a fresh tensor
}

}  // namespace
}  // namespace t2v
