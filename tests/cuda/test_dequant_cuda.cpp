// GPU dequantization of every ggml block format (kernels/cuda/dequant.cu)
// against the CPU reference core/quant.h on random blocks: bit for bit. Skips
// where no CUDA device is present.
#ifdef T2V_HAVE_CUDA
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/dtype.h"
#include "core/quant.h"
#include "kernels/cuda/ops_dequant.h"
#include "kernels/cuda/runtime.h"

namespace t2v {
namespace {

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

}  // namespace

TEST(DequantCuda, EveryFormatMatchesTheCpuReferenceBitForBit) {
  std::string reason;
  if (!ops::cuda::device_available(&reason)) GTEST_SKIP() << "no CUDA device: " << reason;
  ops::cuda::init(0);
  std::mt19937 gen(5);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> mag(1e-4f, 0.1f);
  for (int ti = 0; ti < kNumQuantTypes; ++ti) {
    const auto t = static_cast<QuantType>(ti);
    const QuantTraits& q = quant_traits(t);
    for (const int64_t rows : {int64_t{1}, int64_t{37}}) {
      const int64_t k = 3 * q.block_elems;
      PackedWeight w{t, Shape{rows, k}, Tensor()};
      w.data = Tensor::empty(Shape{rows * w.row_bytes()}, DType::U8);
      uint8_t* p = w.data.data<uint8_t>();
      for (int64_t i = 0; i < w.data.numel(); ++i) p[i] = static_cast<uint8_t>(byte(gen));
      for (int64_t b = 0; b < rows * k / q.block_elems; ++b)
        for (int off : scale_fields(t)) {
          const uint16_t h = f32_to_f16(byte(gen) < 128 ? mag(gen) : -mag(gen));
          std::memcpy(p + b * q.block_bytes + off, &h, 2);
        }
      Tensor want = Tensor::empty(w.shape, DType::F32);
      dequantize(t, w.data.raw(), want.data<float>(), want.numel());
      const Tensor got = ops::cuda::dequantize_packed(w).to(Device::CPU);
      ASSERT_EQ(got.shape(), want.shape());
      EXPECT_EQ(std::memcmp(got.raw(), want.raw(), want.nbytes()), 0) << quant_name(t) << " rows " << rows;
    }
  }
}

}  // namespace t2v
#endif  // T2V_HAVE_CUDA
