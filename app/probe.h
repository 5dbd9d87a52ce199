// `t2v probe COMPONENT`: runs one model component (app/probe_components.h) on
// named input tensors and writes its outputs (docs/conventions.md §7); tools/
// scripts write the same inputs through the upstream reference so the two can
// be compared.
#pragma once

#include <string>

#include "app/choices.h"
#include "core/tensor.h"

namespace t2v {

struct ProbeOptions {
  std::string component;  // text-encoder | dit | vae-decode | vae-encode | clip-vision
  std::string weights, config, inputs, out;
  Device device = Device::CPU;
  DTypeChoice dtype = DTypeChoice::kAuto;  // the component's compute dtype, as for generate
  bool overwrite = false;                  // replace an existing --out (a regular file only)
};

int run_probe(const ProbeOptions& o);

}  // namespace t2v
