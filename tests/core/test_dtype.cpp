// Narrow-float conversions against PyTorch, exhaustively over every bf16/fp16/fp8
// bit pattern and over ~5,000 fp32 inputs at the rounding edges
// (tests/data/core/dtype_tables.safetensors, written by tools/make_dtype_tables.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/dtype.h"
#include "core/safetensors.h"

using namespace t2v;

namespace {

const SafetensorsFile& tables() {
  static SafetensorsFile f(std::string(T2V_TEST_DATA_DIR) + "/core/dtype_tables.safetensors");
  return f;
}

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

// Equal bit for bit, or both NaN (torch canonicalizes NaN payloads and signs).
bool same_float(float a, float b) { return (std::isnan(a) && std::isnan(b)) || bits(a) == bits(b); }

template <class Decode>
void check_decode_table(const char* table, int n, Decode decode) {
  Tensor t = tables().get(table);
  ASSERT_EQ(t.numel(), n);
  const float* ref = t.data<float>();
  int mismatches = 0;
  for (int i = 0; i < n; ++i) {
    float v = decode(i);
    if (!same_float(v, ref[i])) {
      if (++mismatches <= 5) ADD_FAILURE() << table << ": pattern 0x" << std::hex << i << " decodes to " << v
                                            << ", torch gives " << ref[i];
    }
  }
  EXPECT_EQ(mismatches, 0) << table;
  std::printf("[ dtype ] %s: %d patterns, %d mismatches vs torch\n", table, n, mismatches);
}

}  // namespace

TEST(DType, NamesAndSizes) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::F8_E4M3, DType::F8_E5M2, DType::I64, DType::I32,
                   DType::U8}) {
    auto back = dtype_from_name(dtype_name(dt));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, dt);
  }
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_size(DType::F8_E5M2), 1u);
  EXPECT_FALSE(dtype_from_name("F8_E4M3FNUZ").has_value());
  EXPECT_FALSE(dtype_from_name("f32").has_value());
}

TEST(DType, DecodeBF16AllPatterns) {
  check_decode_table("bf16_decode", 65536, [](int i) { return bf16_to_f32(static_cast<uint16_t>(i)); });
}
TEST(DType, DecodeF16AllPatterns) {
  check_decode_table("f16_decode", 65536, [](int i) { return f16_to_f32(static_cast<uint16_t>(i)); });
}
TEST(DType, DecodeF8E4M3AllPatterns) {
  check_decode_table("e4m3_decode", 256, [](int i) { return f8e4m3_to_f32(static_cast<uint8_t>(i)); });
}
TEST(DType, DecodeF8E5M2AllPatterns) {
  check_decode_table("e5m2_decode", 256, [](int i) { return f8e5m2_to_f32(static_cast<uint8_t>(i)); });
}

// Every representable value encodes back to its own pattern (NaN to some NaN;
// e5m2 inf saturates to the max finite value by design).
TEST(DType, EncodeRoundTripsEveryPattern) {
  int checked = 0;
  for (int i = 0; i < 65536; ++i) {
    auto h = static_cast<uint16_t>(i);
    float b = bf16_to_f32(h), f = f16_to_f32(h);
    if (std::isnan(b))
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(b))));
    else
      EXPECT_EQ(f32_to_bf16(b), h) << std::hex << i;
    if (std::isnan(f))
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
    else
      EXPECT_EQ(f32_to_f16(f), h) << std::hex << i;
    checked += 2;
  }
  for (int i = 0; i < 256; ++i) {
    auto q = static_cast<uint8_t>(i);
    float a = f8e4m3_to_f32(q), b = f8e5m2_to_f32(q);
    if (std::isnan(a))
      EXPECT_TRUE(std::isnan(f8e4m3_to_f32(f32_to_f8e4m3(a))));
    else
      EXPECT_EQ(f32_to_f8e4m3(a), q) << std::hex << i;
    if (std::isnan(b))
      EXPECT_TRUE(std::isnan(f8e5m2_to_f32(f32_to_f8e5m2(b))));
    else if (std::isinf(b))
      EXPECT_EQ(f32_to_f8e5m2(b), (q & 0x80) | 0x7b) << "inf saturates to +-57344";
    else
      EXPECT_EQ(f32_to_f8e5m2(b), q) << std::hex << i;
    checked += 2;
  }
  std::printf("[ dtype ] round trip of %d patterns\n", checked);
}

TEST(DType, EncodeMatchesTorchOnEdgeInputs) {
  Tensor in = tables().get("enc_input");
  const float* x = in.data<float>();
  const int64_t n = in.numel();
  const uint16_t* bf = tables().get("enc_bf16").data<uint16_t>();
  const uint16_t* hf = tables().get("enc_f16").data<uint16_t>();
  int bad_bf = 0, bad_hf = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint16_t ob = f32_to_bf16(x[i]), oh = f32_to_f16(x[i]);
    if (!same_float(bf16_to_f32(ob), bf16_to_f32(bf[i])) && ++bad_bf <= 5)
      ADD_FAILURE() << "bf16(" << x[i] << ") = 0x" << std::hex << ob << ", torch 0x" << bf[i];
    if (!same_float(f16_to_f32(oh), f16_to_f32(hf[i])) && ++bad_hf <= 5)
      ADD_FAILURE() << "f16(" << x[i] << ") = 0x" << std::hex << oh << ", torch 0x" << hf[i];
  }
  EXPECT_EQ(bad_bf, 0);
  EXPECT_EQ(bad_hf, 0);
  std::printf("[ dtype ] %lld fp32 inputs: bf16 mismatches %d, fp16 mismatches %d\n", static_cast<long long>(n),
              bad_bf, bad_hf);
}

// Our fp8 casts saturate (finite overflow and inf -> +-max), as fp8 quantizers do
// with clamp-then-cast. PyTorch's plain cast is not saturating for e5m2 (out of
// range gives inf); for e4m3fn torch 2.15 on CPU saturates (older releases gave
// NaN). So: ours == torch(clamp(x)) everywhere, and ours == torch(x) wherever
// torch's plain result is in range; where it is NaN/inf for a non-NaN input,
// ours is +-max.
TEST(DType, EncodeF8SaturatesAndOtherwiseMatchesTorch) {
  Tensor in = tables().get("enc_input");
  const float* x = in.data<float>();
  const int64_t n = in.numel();
  struct Case {
    const char* raw;
    const char* sat;
    uint8_t (*enc)(float);
    float (*dec)(uint8_t);
    float max;
  } cases[] = {{"enc_e4m3", "enc_e4m3_sat", f32_to_f8e4m3, f8e4m3_to_f32, 448.0f},
               {"enc_e5m2", "enc_e5m2_sat", f32_to_f8e5m2, f8e5m2_to_f32, 57344.0f}};
  int total_saturated = 0;
  for (const Case& c : cases) {
    const uint8_t* raw = tables().get(c.raw).data<uint8_t>();
    const uint8_t* sat = tables().get(c.sat).data<uint8_t>();
    int bad_sat = 0, bad_raw = 0, saturated = 0;
    for (int64_t i = 0; i < n; ++i) {
      uint8_t o = c.enc(x[i]);
      float ov = c.dec(o);
      if (!same_float(ov, c.dec(sat[i])) && ++bad_sat <= 5)
        ADD_FAILURE() << c.sat << ": x=" << x[i] << " ours " << ov << " torch(clamp) " << c.dec(sat[i]);
      float rv = c.dec(raw[i]);
      bool torch_out_of_range = !std::isnan(x[i]) && (std::isnan(rv) || std::isinf(rv));
      if (torch_out_of_range) {
        ++saturated;
        EXPECT_EQ(std::fabs(ov), c.max) << c.raw << ": x=" << x[i] << " must saturate";
        EXPECT_EQ(std::signbit(ov), std::signbit(x[i]));
      } else if (!same_float(ov, rv) && ++bad_raw <= 5) {
        ADD_FAILURE() << c.raw << ": x=" << x[i] << " ours " << ov << " torch " << rv;
      }
    }
    EXPECT_EQ(bad_sat, 0) << c.sat;
    EXPECT_EQ(bad_raw, 0) << c.raw;
    total_saturated += saturated;
    std::printf("[ dtype ] %s: %lld inputs, %d mismatches vs torch(clamp(x)), %d saturated where torch's cast "
                "gives NaN/inf, %d other mismatches\n",
                c.raw, static_cast<long long>(n), bad_sat, saturated, bad_raw);
  }
  EXPECT_GT(total_saturated, 10) << "the table must exercise the non-saturating torch cast";
}

TEST(DType, ConvertDtypeMatchesScalarFunctions) {
  Tensor in = tables().get("enc_input");
  const int64_t n = in.numel();
  const float* x = in.data<float>();
  std::vector<uint16_t> b(n), h(n);
  std::vector<uint8_t> e4(n), e5(n);
  convert_dtype(b.data(), DType::BF16, x, DType::F32, n);
  convert_dtype(h.data(), DType::F16, x, DType::F32, n);
  convert_dtype(e4.data(), DType::F8_E4M3, x, DType::F32, n);
  convert_dtype(e5.data(), DType::F8_E5M2, x, DType::F32, n);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(b[i], f32_to_bf16(x[i]));
    ASSERT_EQ(h[i], f32_to_f16(x[i]));
    ASSERT_EQ(e4[i], f32_to_f8e4m3(x[i]));
    ASSERT_EQ(e5[i], f32_to_f8e5m2(x[i]));
  }
  // Narrow -> narrow goes through fp32: bf16 -> fp16 equals f32_to_f16(bf16_to_f32()).
  std::vector<uint16_t> all(65536), out(65536);
  for (int i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  convert_dtype(out.data(), DType::F16, all.data(), DType::BF16, all.size());
  for (int i = 0; i < 65536; ++i) ASSERT_EQ(out[i], f32_to_f16(bf16_to_f32(all[i]))) << i;
}

TEST(DType, FloatToIntTruncatesAndSaturates) {
  const float in[] = {1.9f, -1.9f, 0.0f, 1e30f, -1e30f, std::numeric_limits<float>::quiet_NaN(),
                      std::numeric_limits<float>::infinity(), 300.0f};
  const int n = 8;
  int64_t i64[n];
  convert_dtype(i64, DType::I64, in, DType::F32, n);
  EXPECT_EQ(i64[0], 1);
  EXPECT_EQ(i64[1], -1);
  EXPECT_EQ(i64[2], 0);
  EXPECT_EQ(i64[3], INT64_MAX);
  EXPECT_EQ(i64[4], INT64_MIN);
  EXPECT_EQ(i64[5], 0);
  EXPECT_EQ(i64[6], INT64_MAX);
  int32_t i32[3];
  const int64_t src[3] = {-5, 1ll << 40, 7};
  convert_dtype(i32, DType::I32, src, DType::I64, 3);
  EXPECT_EQ(i32[0], -5);
  EXPECT_EQ(i32[2], 7);
  float back[3];
  convert_dtype(back, DType::F32, src, DType::I64, 3);
  EXPECT_EQ(back[1], 1099511627776.0f);
}
