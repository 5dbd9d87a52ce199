// Dequantization of the ggml block formats on the GPU (dequant.cu), bit-exact
// to the CPU reference core/quant.h: the same fp32 operations in the same order,
// each rounded on its own (__fmul_rn / __fadd_rn / __fsub_rn: nvcc would
// otherwise contract a * b + c into an FMA). Not wired into a model yet: the
// loader hands CUDA dequantized weights (core/weights.h, get_packed); this is the
// building block for keeping them packed on the device.
// Test: tests/cuda/test_dequant_cuda.cpp (skips without a GPU).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace t2v::ops::cuda {

// `code` is static_cast<int>(QuantType) (core/quant.h); `blocks` and `out` are
// device pointers; n a multiple of the block size. Checked launch on `s`.
void launch_dequantize(int code, const void* blocks, float* out, int64_t n, cudaStream_t s);

}  // namespace t2v::ops::cuda
