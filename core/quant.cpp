// Dequantization of the ggml block formats (see quant.h). Each function takes one
// block and writes its values in order; the bit layouts follow ggml-common.h
// (block_q4_0 ... block_q6_K). Compiled with -ffp-contract=off (core/CMakeLists.txt)
// so `a * b - c` stays two roundings, as in the reference.
#include "core/quant.h"

#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace t2v {

namespace {

constexpr QuantTraits kTraits[kNumQuantTypes] = {
    {"Q4_0", 32, 18},  {"Q4_1", 32, 20},   {"Q5_0", 32, 22},   {"Q5_1", 32, 24},   {"Q8_0", 32, 34},
    {"Q2_K", 256, 84}, {"Q3_K", 256, 110}, {"Q4_K", 256, 144}, {"Q5_K", 256, 176}, {"Q6_K", 256, 210},
};

float half(const uint8_t* p) { return f16_to_f32(static_cast<uint16_t>(p[0] | (p[1] << 8))); }

uint32_t u32le(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

// The low nibble of byte l holds value l, the high nibble value l + 16.
int nibble32(const uint8_t* qs, int j) { return j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4; }

// ---- legacy formats: 32 values, d (and m) in fp16 ----------------------------------
void block_q4_0(const uint8_t* b, float* y) {  // d, qs[16]; q - 8
  const float d = half(b);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(nibble32(b + 2, j) - 8);
}

void block_q4_1(const uint8_t* b, float* y) {  // d, m, qs[16]; d * q + m
  const float d = half(b), m = half(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(nibble32(b + 4, j)) + m;
}

// Fifth bit of value j: bit j of qh.
int five_bits(const uint8_t* qs, uint32_t qh, int j) {
  return nibble32(qs, j) | static_cast<int>(((qh >> j) & 1u) << 4);
}

void block_q5_0(const uint8_t* b, float* y) {  // d, qh[4], qs[16]; q - 16
  const float d = half(b);
  const uint32_t qh = u32le(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(five_bits(b + 6, qh, j) - 16);
}

void block_q5_1(const uint8_t* b, float* y) {  // d, m, qh[4], qs[16]; d * q + m
  const float d = half(b), m = half(b + 2);
  const uint32_t qh = u32le(b + 4);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(five_bits(b + 8, qh, j)) + m;
}

void block_q8_0(const uint8_t* b, float* y) {  // d, qs[32] int8
  const float d = half(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

// ---- K-quants: 256 values in 16 or 8 sub-blocks --------------------------------------
void block_q2_k(const uint8_t* b, float* y) {  // scales[16] (lo: scale, hi: min), qs[64], d, dmin
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = half(b + 80), dmin = half(b + 82);
  for (int j = 0; j < 256; ++j) {
    // value j: 2 bits at shift 2·((j % 128) / 32) of byte 32·(j / 128) + j % 32
    const int q = (qs[(j / 128) * 32 + j % 32] >> (2 * ((j % 128) / 32))) & 3;
    const uint8_t s = scales[j / 16];
    const float dl = d * static_cast<float>(s & 0xF), ml = dmin * static_cast<float>(s >> 4);
    y[j] = dl * static_cast<float>(q) - ml;
  }
}

void block_q3_k(const uint8_t* b, float* y) {  // hmask[32], qs[64], scales[12] (16 x 6 bits), d
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* sc = b + 96;
  const float d = half(b + 108);
  float dl[16];
  for (int i = 0; i < 16; ++i) {
    const int lo = i < 8 ? sc[i] & 0xF : sc[i - 8] >> 4;
    const int hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
    dl[i] = d * static_cast<float>(static_cast<int8_t>(lo | (hi << 4)) - 32);
  }
  for (int j = 0; j < 256; ++j) {
    const int low = (qs[(j / 128) * 32 + j % 32] >> (2 * ((j % 128) / 32))) & 3;
    const int high = (hmask[j % 32] >> (j / 32)) & 1;  // a clear bit subtracts 4
    y[j] = dl[j / 16] * static_cast<float>(low - (high ? 0 : 4));
  }
}

// The 8 six-bit scales and mins of Q4_K / Q5_K, packed in 12 bytes.
void scale_min_k4(const uint8_t* s, int i, int* sc, int* m) {
  if (i < 4) {
    *sc = s[i] & 63;
    *m = s[i + 4] & 63;
  } else {
    *sc = (s[i + 4] & 0xF) | ((s[i - 4] >> 6) << 4);
    *m = (s[i + 4] >> 4) | ((s[i] >> 6) << 4);
  }
}

void block_q4_k(const uint8_t* b, float* y) {  // d, dmin, scales[12], qs[128]
  const float d = half(b), dmin = half(b + 2);
  const uint8_t* qs = b + 16;
  for (int sb = 0; sb < 8; ++sb) {
    int sc, m;
    scale_min_k4(b + 4, sb, &sc, &m);
    const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
    // sub-block sb: the low (even sb) or high (odd sb) nibbles of bytes 32·(sb / 2) ...
    for (int l = 0; l < 32; ++l) {
      const int q = (qs[(sb / 2) * 32 + l] >> (4 * (sb % 2))) & 0xF;
      y[sb * 32 + l] = dl * static_cast<float>(q) - ml;
    }
  }
}

void block_q5_k(const uint8_t* b, float* y) {  // d, dmin, scales[12], qh[32], qs[128]
  const float d = half(b), dmin = half(b + 2);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int sb = 0; sb < 8; ++sb) {
    int sc, m;
    scale_min_k4(b + 4, sb, &sc, &m);
    const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      const int q = ((qs[(sb / 2) * 32 + l] >> (4 * (sb % 2))) & 0xF) | (((qh[l] >> sb) & 1) << 4);
      y[sb * 32 + l] = dl * static_cast<float>(q) - ml;
    }
  }
}

void block_q6_k(const uint8_t* b, float* y) {  // ql[128], qh[64], scales[16] int8, d
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half(b + 208);
  for (int j = 0; j < 256; ++j) {
    const int h = j / 128, r = j % 128;
    const int lo = (ql[h * 64 + r % 64] >> (4 * (r / 64))) & 0xF;
    const int hi = (qh[h * 32 + r % 32] >> (2 * (r / 32))) & 3;
    const float dl = d * static_cast<float>(scales[j / 16]);
    y[j] = dl * static_cast<float>(static_cast<int8_t>(lo | (hi << 4)) - 32);
  }
}

using BlockFn = void (*)(const uint8_t*, float*);
constexpr BlockFn kBlockFns[kNumQuantTypes] = {block_q4_0, block_q4_1, block_q5_0, block_q5_1, block_q8_0,
                                               block_q2_k, block_q3_k, block_q4_k, block_q5_k, block_q6_k};

}  // namespace

const QuantTraits& quant_traits(QuantType t) {
  const int i = static_cast<int>(t);
  T2V_ASSERT(i >= 0 && i < kNumQuantTypes, "quant type {}", i);
  return kTraits[i];
}

std::optional<QuantType> quant_from_name(std::string_view name) {
  for (int i = 0; i < kNumQuantTypes; ++i)
    if (name == kTraits[i].name) return static_cast<QuantType>(i);
  return std::nullopt;
}

void dequantize(QuantType t, const void* blocks, float* out, int64_t n) {
  const QuantTraits& q = quant_traits(t);
  T2V_ASSERT(n % q.block_elems == 0, "dequantize {}: {} values is not a whole number of blocks", q.name, n);
  const BlockFn fn = kBlockFns[static_cast<int>(t)];
  const auto* b = static_cast<const uint8_t*>(blocks);
  const int64_t nb = n / q.block_elems;
#pragma omp parallel for schedule(static) if (nb > 4096)
  for (int64_t i = 0; i < nb; ++i) fn(b + i * q.block_bytes, out + i * q.block_elems);
}

}  // namespace t2v
