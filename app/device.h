// Device selection for the CLI: "cpu" or "cuda" -> Device, starting the CUDA
// backend on first use.
#pragma once

#include <string>

#include "core/tensor.h"

namespace t2v {

// Parses --device and, for cuda, initialises the backend (device 0). Error(64)
// for an unknown name; Error(69) when this build or machine has no CUDA.
Device open_device(const std::string& name);

}  // namespace t2v
