// The test device (Device::Test, printed "test"): the CPU kernels behind the
// device interface, so the device code path (explicit host<->device copies,
// device-side dtypes, per-device backend tables) runs and is tested on machines
// without a GPU. The CLI opens it with --device test.
//
//  - Memory: its own allocations behind core's DeviceBackend hooks. A tensor's
//    address (Tensor::raw()) is a reserved, inaccessible range, so host code
//    that reads it without a transfer crashes as it would on a GPU;
//    Tensor::data<T>() refuses it with Error(70). Data moves only through
//    Tensor::to(Device) / copy_from. New allocations are filled with 0xFF (NaN
//    as F32/BF16/F16), so an element an op never writes reads NaN.
//  - Ops: the CUDA dtype rule (kernels/ops.h): float inputs F32, BF16 or F16
//    are widened to host F32, the CPU table's entry computes, the result is
//    rounded once to the dtype of the first tensor argument and uploaded.
//    Layout ops move bytes of any dtype. With F32 storage every result equals
//    the CPU reference bit for bit.
//  - Accounting: bytes in use and their high-water mark, for tests that bound
//    a feature's device memory.
#pragma once

#include <cstddef>
#include <cstdint>

namespace t2v::ops {

// Registers the test device's memory hooks in core (idempotent, thread-safe).
// Tensors on Device::Test can be created only after this.
void open_test_device();

struct TestDeviceMemoryStats {
  size_t in_use_bytes = 0;       // bytes of live test-device storage (as requested, not rounded)
  size_t peak_in_use_bytes = 0;  // high-water mark of in_use_bytes since open or the last reset
  int64_t live_allocations = 0;  // storages not yet freed
  uint64_t allocations = 0;      // allocations since the device was opened
};
TestDeviceMemoryStats test_device_memory_stats();
// Restarts the high-water mark from the bytes in use now.
void reset_test_device_peak_memory();

}  // namespace t2v::ops
