// The test device's table (kernels/backend.h), filled by ops_test_device.cpp;
// kernels/backend.cpp collects it. See test_device.h for what the device is.
#pragma once

#include "kernels/backend.h"

namespace t2v::ops::test_device {

void register_backend(Backend& b);

}  // namespace t2v::ops::test_device
