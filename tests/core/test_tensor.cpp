// Tensor basics: shapes, views (reshape, narrow0), dtype copies, errors.
#include <gtest/gtest.h>

#include "core/tensor.h"

using namespace t2v;

TEST(Tensor, ShapeBasics) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.ndim(), 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s.str(), "[2, 3, 4]");
  EXPECT_EQ(Shape{}.numel(), 1);
  EXPECT_EQ((Shape{0, 5}).numel(), 0);
  EXPECT_EQ(s, (Shape{2, 3, 4}));
  EXPECT_NE(s, (Shape{2, 3}));
  EXPECT_THROW(Shape({1, 1, 1, 1, 1, 1}), Error);
  EXPECT_THROW(Shape({2, -1}), Error);
  EXPECT_THROW((Shape{INT64_MAX, 2}).numel(), Error);
  // A zero anywhere makes the count 0, even after dimensions whose product overflows.
  EXPECT_EQ((Shape{int64_t{1} << 40, int64_t{1} << 40, 0}).numel(), 0);
  EXPECT_EQ((Shape{int64_t{1} << 23, int64_t{1} << 40, 0, int64_t{1} << 32, 2}).numel(), 0);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = Tensor::from_floats({0, 1, 2, 3, 4, 5}, {3, 2});
  Tensor r = t.reshape({2, 3});
  EXPECT_EQ(r.raw(), t.raw());
  Tensor n = t.narrow0(1, 2);
  EXPECT_EQ(n.shape(), (Shape{2, 2}));
  EXPECT_EQ(n.to_vector(), (std::vector<float>{2, 3, 4, 5}));
  n.data<float>()[0] = 20;
  EXPECT_EQ(t.item(2), 20.0f);
  EXPECT_THROW(t.narrow0(2, 2), Error);
  EXPECT_THROW(t.reshape({4}), Error);
  EXPECT_EQ(t.size(-1), 2);
}

TEST(Tensor, DtypeCopiesAndTypedAccess) {
  Tensor t = Tensor::from_floats({1.0f, -2.5f, 1000.0f}, {3});
  Tensor h = t.to(DType::BF16);
  EXPECT_EQ(h.dtype(), DType::BF16);
  EXPECT_EQ(h.nbytes(), 6u);
  EXPECT_EQ(h.to_vector(), (std::vector<float>{1.0f, -2.5f, 1000.0f}));
  EXPECT_EQ(t.to(DType::F32).raw(), t.raw());  // same dtype: no copy
  Tensor c = t.clone();
  EXPECT_NE(c.raw(), t.raw());
  EXPECT_THROW(h.data<float>(), Error);  // typed access checks the dtype
  Tensor z = Tensor::zeros({2, 2}, DType::I32);
  EXPECT_EQ(z.data<int32_t>()[3], 0);
  EXPECT_EQ(Tensor::full({2}, 7.0f, DType::U8).data<uint8_t>()[1], 7);
  EXPECT_EQ(t.str(), "F32[3] cpu");
  EXPECT_FALSE(Tensor().defined());
}

TEST(Tensor, CudaWithoutBackendIsAClearError) {
  if (device_backend(Device::CUDA)) GTEST_SKIP() << "a CUDA backend is registered in this binary";
  try {
    Tensor::empty({2}, DType::F32, Device::CUDA);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), 69);
  }
}
