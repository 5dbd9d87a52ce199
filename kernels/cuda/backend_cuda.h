// The CUDA backend's table (kernels/backend.h): each op-family file registers
// its entries; register_backend (backend_cuda.cpp) collects them with the
// device hooks. Only kernels/backend.cpp calls it, in builds with nvcc.
//
// Dtype rule (kernels/ops.h): float inputs F32, BF16 or F16 (side tensors
// independently of x); arithmetic in fp32; output in the dtype of the first
// tensor argument. linear/matmul take x and w of one dtype (no per-call cast).
// Everything must live on the device kernels/cuda/runtime.h initialised.
// Shape problems throw t2v::Error(70), like the CPU path.
//
// Files: gemm_cublaslt.cpp (linear, linear_gelu_tanh, matmul), ops_norm.cpp,
// ops_attention.cpp, ops_elementwise.cpp (activations, broadcast arithmetic,
// casts, lincomb), ops_conv.cpp, ops_layout.cpp (layout ops, upsample, rope).
// Tests: tests/cuda/.
#pragma once

#include "kernels/backend.h"

namespace t2v::ops::cuda {

void register_backend(Backend& b);

void register_gemm(Backend& b);
void register_norm(Backend& b);
void register_attention(Backend& b);
void register_elementwise(Backend& b);
void register_conv(Backend& b);
void register_layout(Backend& b);

}  // namespace t2v::ops::cuda
