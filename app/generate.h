// `t2v generate`: prompt in, MP4 out.
#pragma once

#include <string>

#include "app/options.h"

namespace t2v {

// --live-preview FILE.png: a latent preview of the render in progress, replaced atomically
// every `every` denoising steps and at the last (app/latent_preview.h).
struct LivePreviewOptions {
  std::string path;  // "" = none
  int every = 5;
};

// frames_dump: optional .safetensors to receive the decoded frames in [0, 1]
// before 8-bit rounding (for parity tests).
int run_generate(GenerateOptions& o, const std::string& frames_dump = "", const LivePreviewOptions& live = {});

}  // namespace t2v
