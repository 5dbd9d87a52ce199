// Block-quantized weight formats (the ggml/GGUF "legacy" and K-quants) and their
// dequantization to fp32. A row of K values is stored as K / block_elems blocks
// of block_bytes each; blocks are little-endian and hold one or two fp16 scales.
// docs/gguf.md lists the block layouts.
//
// Dequantization reproduces the reference (ggml's dequantize_row_*, and the
// `gguf` Python package's gguf.quants.dequantize) bit for bit: every value is
// formed with the same fp32 operations in the same order; the products of a
// scale and a small integer are exact in fp32, so only the final subtraction
// (or the Q6_K product) rounds. tests/core/test_gguf_quant.cpp checks it against
// the package's output for every type.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace t2v {

enum class QuantType : uint8_t { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K };
inline constexpr int kNumQuantTypes = 10;

struct QuantTraits {
  const char* name;     // "Q4_K": the ggml spelling
  int64_t block_elems;  // values per block (32, or 256 for the K-quants)
  int64_t block_bytes;  // bytes per block
};

const QuantTraits& quant_traits(QuantType t);
inline const char* quant_name(QuantType t) { return quant_traits(t).name; }
std::optional<QuantType> quant_from_name(std::string_view name);

// Bytes of `n` values; n must be a multiple of the block size (checked by the caller).
inline int64_t quant_bytes(QuantType t, int64_t n) {
  const QuantTraits& q = quant_traits(t);
  return n / q.block_elems * q.block_bytes;
}

// Dequantizes `n` values (a multiple of the block size) from `blocks` into `out`
// (OpenMP over blocks for large n; serial inside another parallel region).
void dequantize(QuantType t, const void* blocks, float* out, int64_t n);

}  // namespace t2v
