// `t2v generate`: prompt in, MP4 out.
#pragma once

#include "app/options.h"

namespace t2v {

#include <string>

// frames_dump: optional .safetensors to receive the decoded frames in [0, 1]
// before 8-bit rounding (for parity tests).
int run_generate(GenerateOptions& o, const std::string& frames_dump = "");

}  // namespace t2v
