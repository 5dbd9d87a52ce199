// Element types and their conversions. Conversions to narrow floats round to
// nearest even (bf16, fp16) and saturate (fp8), matching PyTorch's casts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace t2v {

enum class DType : uint8_t { F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, U8 };

size_t dtype_size(DType dt);
// The safetensors spelling: "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "I64", "I32", "U8".
const char* dtype_name(DType dt);
std::optional<DType> dtype_from_name(std::string_view name);
bool dtype_is_float(DType dt);

// ---- scalar conversions ------------------------------------------------------
// fp32 -> bf16/fp16: round to nearest, ties to even; NaN stays NaN (quiet), overflow -> inf.
uint16_t f32_to_bf16(float x);
float bf16_to_f32(uint16_t x);
uint16_t f32_to_f16(float x);
float f16_to_f32(uint16_t x);
// fp8 e4m3fn (no inf, max 448, NaN = 0x7f/0xff) and e5m2 (IEEE-like, max 57344).
// Round to nearest even; finite values beyond the max saturate to +-max (as
// torch's saturating cast used by fp8 quantizers); NaN -> NaN; e4m3 maps inf to +-448.
uint8_t f32_to_f8e4m3(float x);
float f8e4m3_to_f32(uint8_t x);
uint8_t f32_to_f8e5m2(float x);
float f8e5m2_to_f32(uint8_t x);

// Converts n elements between any two dtypes (float types through fp32; integer
// types by value; float -> int truncates toward zero). src and dst must not overlap.
void convert_dtype(void* dst, DType dst_dt, const void* src, DType src_dt, size_t n);

}  // namespace t2v
