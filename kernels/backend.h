// The backend table: the one list of what a device implements. kernels/ops.cpp
// checks arguments, looks up the table of the first tensor's device and calls
// one entry; model code never sees this header (it calls kernels/ops.h).
//
// Each backend fills one Backend (kernels/cpu, kernels/cuda, kernels/test_device:
// every op-family .cpp registers its own entries). An entry left nullptr means
// "not supported on this device": calling the op throws Error(69) naming the op
// and the device. Entries receive checked arguments (shapes, devices; see
// ops.cpp) and have the semantics documented in kernels/ops.h; the dtypes an
// entry accepts follow the rule at the top of kernels/ops.h. Adding an op: docs/ARCHITECTURE.md, "How to add an op".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/ops.h"

namespace t2v::ops {

struct Backend {
  const char* name = nullptr;  // device_name() of its device

  // ---- device management (nullptr where the device needs none) -----------------
  void (*open)() = nullptr;                   // makes device 0 ready for tensors (idempotent)
  size_t (*peak_memory_bytes)() = nullptr;    // high-water mark of device memory in use since the last reset
  void (*reset_peak_memory)() = nullptr;      // the mark restarts from the memory in use now

  // ---- ops (kernels/ops.h); the first op entry is `linear` ---------------------
  Tensor (*linear)(const Tensor& x, const Tensor& w, const Tensor& bias) = nullptr;
  Tensor (*linear_gelu_tanh)(const Tensor& x, const Tensor& w, const Tensor& bias) = nullptr;
  Tensor (*matmul)(const Tensor& a, const Tensor& b) = nullptr;

  Tensor (*layer_norm)(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) = nullptr;
  Tensor (*layer_norm_modulate)(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                                const Tensor& shift, const Tensor& scale) = nullptr;
  Tensor (*rms_norm)(const Tensor& x, const Tensor& weight, float eps) = nullptr;
  Tensor (*rms_norm_channels)(const Tensor& x, const Tensor& gamma, float eps) = nullptr;
  Tensor (*softmax)(const Tensor& x) = nullptr;

  // p.bias is already right-aligned to 4-D by ops.cpp.
  Tensor (*attention)(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) = nullptr;

  Tensor (*gelu_tanh)(const Tensor& x) = nullptr;
  Tensor (*gelu_erf)(const Tensor& x) = nullptr;
  Tensor (*silu)(const Tensor& x) = nullptr;
  Tensor (*add)(const Tensor& a, const Tensor& b) = nullptr;
  Tensor (*sub)(const Tensor& a, const Tensor& b) = nullptr;
  Tensor (*mul)(const Tensor& a, const Tensor& b) = nullptr;
  Tensor (*scale)(const Tensor& x, float s) = nullptr;
  Tensor (*add_scalar)(const Tensor& x, float s) = nullptr;
  Tensor (*clamp)(const Tensor& x, float lo, float hi) = nullptr;
  Tensor (*modulate)(const Tensor& x, const Tensor& shift, const Tensor& scale) = nullptr;
  Tensor (*add_gated)(const Tensor& x, const Tensor& y, const Tensor& gate) = nullptr;
  // Receives only the terms with a non-zero coefficient (possibly none: dst = 0).
  void (*lincomb)(Tensor& dst, std::span<const LinTerm> terms) = nullptr;

  Tensor (*conv3d)(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv3dParams& p) = nullptr;
  Tensor (*conv2d)(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) = nullptr;
  Tensor (*upsample_nearest2x)(const Tensor& x) = nullptr;

  Tensor (*rope_3d)(const Tensor& x, const Tensor& table) = nullptr;

  // `dim` is already normalised to [0, x.dim()).
  Tensor (*concat)(const std::vector<Tensor>& xs, int dim) = nullptr;
  Tensor (*slice)(const Tensor& x, int dim, int64_t start, int64_t end) = nullptr;
  Tensor (*permute)(const Tensor& x, const std::vector<int>& perm) = nullptr;
  Tensor (*contiguous_copy)(const Tensor& x) = nullptr;
  Tensor (*embedding)(const Tensor& table, const Tensor& ids) = nullptr;
  Tensor (*cast)(const Tensor& x, DType dt) = nullptr;
};

// The table of a device. Throws Error(69) with the reason when the backend is
// not part of this build (CUDA without nvcc).
const Backend& backend(Device dev);

// Throws Error(69) "<op> is not supported on device <name>" (an entry is nullptr).
[[noreturn]] void unsupported(const char* op, const Backend& b);

// The op entries of a table by name, in declaration order, and whether each is
// filled (for tests and diagnostics: a backend-coverage check iterates these).
struct OpEntry {
  const char* name;
  bool present;
};
std::vector<OpEntry> op_entries(const Backend& b);

}  // namespace t2v::ops
