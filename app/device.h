// Device selection for the CLI: "cpu", "cuda" or "test" -> Device, opening the
// device's backend on first use (kernels/backend.h).
#pragma once

#include <string>

#include "core/tensor.h"

namespace t2v {

// Parses --device and opens the device (CUDA: device 0; test: the CPU kernels
// behind the device interface, kernels/test_device/test_device.h). Error(64)
// for an unknown name; Error(69) when this build or machine has no CUDA.
Device open_device(const std::string& name);

// Peak memory of a device since the last reset, in bytes: for CUDA the caching
// allocator's high-water mark of memory in use; for the test device its
// allocations' high-water mark; for the CPU the process's peak resident set
// (VmHWM; reset through /proc/self/clear_refs).
size_t peak_memory_bytes(Device dev);
void reset_peak_memory(Device dev);

}  // namespace t2v
