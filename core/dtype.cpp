#include "core/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace t2v {

size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::F8_E4M3: return 1;
    case DType::F8_E5M2: return 1;
    case DType::I64: return 8;
    case DType::I32: return 4;
    case DType::U8: return 1;
  }
  return 0;
}

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F8_E4M3: return "F8_E4M3";
    case DType::F8_E5M2: return "F8_E5M2";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
  }
  return "?";
}

std::optional<DType> dtype_from_name(std::string_view n) {
  if (n == "F32") return DType::F32;
  if (n == "F16") return DType::F16;
  if (n == "BF16") return DType::BF16;
  if (n == "F8_E4M3") return DType::F8_E4M3;
  if (n == "F8_E5M2") return DType::F8_E5M2;
  if (n == "I64") return DType::I64;
  if (n == "I32") return DType::I32;
  if (n == "U8") return DType::U8;
  return std::nullopt;
}

bool dtype_is_float(DType dt) {
  return dt == DType::F32 || dt == DType::F16 || dt == DType::BF16 || dt == DType::F8_E4M3 || dt == DType::F8_E5M2;
}

static uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
static float float_of(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

uint16_t f32_to_bf16(float x) {
  uint32_t u = bits_of(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN, sign kept
  // Round to nearest even: add 0x7fff plus the lowest kept bit. Overflow rounds to inf.
  uint32_t lsb = (u >> 16) & 1u;
  u += 0x7fffu + lsb;
  return static_cast<uint16_t>(u >> 16);
}

float bf16_to_f32(uint16_t x) { return float_of(static_cast<uint32_t>(x) << 16); }

uint16_t f32_to_f16(float x) {
  uint32_t u = bits_of(x);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x1ffu));  // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (a < 0x38800000u) {
    // Subnormal (or zero) in fp16: value = a * 2^24 units of 2^-24; round to nearest even.
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25: rounds to 0 (2^-25 ties to even 0)
    uint32_t exp = a >> 23;
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp;  // 113..125 -> shift so that result is in 2^-24 units
    uint32_t q = mant >> (shift - 0);
    // mant * 2^(exp-150) / 2^-24 = mant * 2^(exp-126) = mant >> (126-exp)
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias exponent (127 -> 15) and round mantissa from 23 to 10 bits.
  uint32_t r = a - 0x38000000u;  // exponent -= 112
  uint32_t lsb = (r >> 13) & 1u;
  r += 0xfffu + lsb;
  return static_cast<uint16_t>(sign | (r >> 13));
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    if (mant == 0) return float_of(sign);
    // subnormal: mant * 2^-24
    float v = static_cast<float>(mant) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  if (exp == 31) return float_of(sign | 0x7f800000u | (mant << 13));
  return float_of(sign | ((exp + 112) << 23) | (mant << 13));
}

// Generic round-to-nearest-even encoder for small floats with `ebits` exponent
// and `mbits` mantissa bits. Values beyond `max_finite` saturate.
static uint8_t encode_small_float(float x, int ebits, int mbits, int bias, float max_finite, uint8_t nan_code) {
  uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (std::isnan(x)) return static_cast<uint8_t>(sign | nan_code);
  float a = std::fabs(x);
  if (a >= max_finite) {
    // saturate to the max code (NaN/inf excluded)
    a = max_finite;
  }
  if (a == 0.0f) return sign;
  int e;
  std::frexp(a, &e);     // a = f * 2^e, f in [0.5, 1)
  int exp_unbiased = e - 1;  // a in [2^exp, 2^(exp+1))
  int min_normal_exp = 1 - bias;
  int quantum_exp = (exp_unbiased < min_normal_exp ? min_normal_exp : exp_unbiased) - mbits;
  // q = a / 2^quantum_exp rounded to nearest even (exact in double).
  double q = std::ldexp(static_cast<double>(a), -quantum_exp);
  double fl = std::floor(q);
  double rem = q - fl;
  uint32_t qi = static_cast<uint32_t>(fl);
  if (rem > 0.5 || (rem == 0.5 && (qi & 1u))) qi++;
  // Re-encode: qi may have carried into the next binade.
  uint32_t code;
  if (exp_unbiased < min_normal_exp) {
    // subnormal range: qi in [0, 2^mbits]; qi == 2^mbits is the smallest normal (exp field 1) — same encoding.
    code = qi;
  } else {
    int be = exp_unbiased + bias;
    if (qi >= (2u << mbits)) {  // carried
      qi >>= 1;
      be += 1;
    }
    code = (static_cast<uint32_t>(be) << mbits) | (qi & ((1u << mbits) - 1u));
  }
  (void)ebits;
  return static_cast<uint8_t>(sign | code);
}

uint8_t f32_to_f8e4m3(float x) {
  // e4m3fn: bias 7, max 448 (0x7e), no inf, NaN 0x7f. inf saturates to 448.
  if (std::isinf(x)) return x > 0 ? 0x7e : 0xfe;
  return encode_small_float(x, 4, 3, 7, 448.0f, 0x7f);
}

float f8e4m3_to_f32(uint8_t x) {
  float s = (x & 0x80) ? -1.0f : 1.0f;
  uint32_t e = (x >> 3) & 0xf, m = x & 0x7;
  if (e == 0xf && m == 0x7) return std::numeric_limits<float>::quiet_NaN() * s;
  if (e == 0) return s * std::ldexp(static_cast<float>(m), -9);  // m/8 * 2^-6
  return s * std::ldexp(1.0f + static_cast<float>(m) / 8.0f, static_cast<int>(e) - 7);
}

uint8_t f32_to_f8e5m2(float x) {
  // e5m2: bias 15, max 57344, inf 0x7c, NaN 0x7e. Saturating: finite overflow and inf -> max.
  if (std::isinf(x)) return x > 0 ? 0x7b : 0xfb;
  return encode_small_float(x, 5, 2, 15, 57344.0f, 0x7e);
}

float f8e5m2_to_f32(uint8_t x) {
  float s = (x & 0x80) ? -1.0f : 1.0f;
  uint32_t e = (x >> 2) & 0x1f, m = x & 0x3;
  if (e == 0x1f) return m == 0 ? s * std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
  if (e == 0) return s * std::ldexp(static_cast<float>(m), -16);  // m/4 * 2^-14
  return s * std::ldexp(1.0f + static_cast<float>(m) / 4.0f, static_cast<int>(e) - 15);
}

static float load_as_f32(const void* src, DType dt, size_t i) {
  switch (dt) {
    case DType::F32: return static_cast<const float*>(src)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
    case DType::F8_E4M3: return f8e4m3_to_f32(static_cast<const uint8_t*>(src)[i]);
    case DType::F8_E5M2: return f8e5m2_to_f32(static_cast<const uint8_t*>(src)[i]);
    case DType::I64: return static_cast<float>(static_cast<const int64_t*>(src)[i]);
    case DType::I32: return static_cast<float>(static_cast<const int32_t*>(src)[i]);
    case DType::U8: return static_cast<float>(static_cast<const uint8_t*>(src)[i]);
  }
  return 0.0f;
}

static int64_t load_as_i64(const void* src, DType dt, size_t i) {
  switch (dt) {
    case DType::I64: return static_cast<const int64_t*>(src)[i];
    case DType::I32: return static_cast<const int32_t*>(src)[i];
    case DType::U8: return static_cast<const uint8_t*>(src)[i];
    default: {
      // Truncate toward zero; NaN -> 0 and out-of-range values saturate (a plain
      // cast of a float beyond int64 is undefined behaviour).
      float f = load_as_f32(src, dt, i);
      if (std::isnan(f)) return 0;
      if (f >= 9.2233720368547758e18f) return INT64_MAX;
      if (f <= -9.2233720368547758e18f) return INT64_MIN;
      return static_cast<int64_t>(f);
    }
  }
}

void convert_dtype(void* dst, DType dst_dt, const void* src, DType src_dt, size_t n) {
  if (dst_dt == src_dt) {
    std::memcpy(dst, src, n * dtype_size(dst_dt));
    return;
  }
  if (dtype_is_float(dst_dt)) {
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; ++i) {
      float f = load_as_f32(src, src_dt, i);
      switch (dst_dt) {
        case DType::F32: static_cast<float*>(dst)[i] = f; break;
        case DType::F16: static_cast<uint16_t*>(dst)[i] = f32_to_f16(f); break;
        case DType::BF16: static_cast<uint16_t*>(dst)[i] = f32_to_bf16(f); break;
        case DType::F8_E4M3: static_cast<uint8_t*>(dst)[i] = f32_to_f8e4m3(f); break;
        case DType::F8_E5M2: static_cast<uint8_t*>(dst)[i] = f32_to_f8e5m2(f); break;
        default: break;
      }
    }
    return;
  }
#pragma omp parallel for if (n > 65536)
  for (size_t i = 0; i < n; ++i) {
    int64_t v = load_as_i64(src, src_dt, i);
    switch (dst_dt) {
      case DType::I64: static_cast<int64_t*>(dst)[i] = v; break;
      case DType::I32: static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(v); break;
      case DType::U8: static_cast<uint8_t*>(dst)[i] = static_cast<uint8_t>(v); break;
      default: break;
    }
  }
}

}  // namespace t2v
