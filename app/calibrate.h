// `t2v calibrate-cache`: fits TeaCache's rescale polynomial for a model that has no
// published one (docs/PERFORMANCE.md). Renders the prompts uncached, records per step
// and CFG branch the relative L1 change of the blocks' modulation input e0 (x) and of
// the DiT's output (y), fits y = p(x) with p of degree 4 by least squares (numpy.polyfit
// order), prints it and, with --write, stores it in the model folder's t2v.json.
#pragma once

#include <string>
#include <vector>

#include "app/options.h"

namespace t2v {

struct CalibrateOptions {
  GenerateOptions gen;  // model, device, dtype and the settings (t2v.json applied); steps 50 unless given
  std::string prompts;  // text file, one prompt a line (blank lines and # comments skipped)
  uint64_t seed = 0;    // prompt k renders with seed + k
  bool write = false;   // store {"teacache": {"coefficients": ..., "calibration": ...}} in <model>/t2v.json
};

// Least-squares polynomial of `degree` through (x, y), highest power first. Error(65)
// with fewer distinct points than coefficients.
std::vector<double> fit_polynomial(const std::vector<double>& x, const std::vector<double>& y, int degree);

int run_calibrate_cache(CalibrateOptions& o);

}  // namespace t2v
