// conv3d through cuDNN's convolution API, with cuDNN loaded at run time
// (dlopen "libcudnn.so.9"): the library stays optional, builds need only the
// headers, and on the GPU machine it comes from torch's nvidia-cudnn wheel.
// Selected per context (runtime.h ConvKernel); tested against the CPU reference
// by tests/cuda/test_backend_ops_compute.cpp (Conv3d/Conv2d, both kernels).
#pragma once

#include "core/tensor.h"
#include "kernels/cuda/launch.h"

namespace t2v::ops::cuda {

struct CudnnState;  // the loaded library's entry points and a handle on the context's stream
void destroy_cudnn_state(CudnnState* s);

// y [B, Cout, To, Ho, Wo] (allocated by the caller, dtype of x) = conv(x, w) (+ bias: y is
// then replaced by a new tensor),
// for the geometry in `a` (pointers in `a` are ignored). Asymmetric padding
// (causal time padding, the 2-D downsample's bottom/right pad) is materialised
// with zero slabs first, since cuDNN pads symmetrically.
// Throws t2v::Error(69) when cuDNN cannot be loaded.
void conv3d_cudnn(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const ConvArgs& a,
                  int pad_t_back, int pad_h_back, int pad_w_back);

}  // namespace t2v::ops::cuda
