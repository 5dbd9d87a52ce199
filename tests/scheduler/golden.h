// Access to the scheduler goldens written by tools/gen_scheduler_goldens.py:
// tests/data/scheduler/{unipc,dpmpp,euler}.safetensors, one case per
// (schedule kind, steps) with its shift in the metadata.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/safetensors.h"
#include "scheduler/schedule.h"

namespace t2v {
inline void PrintTo(Sampler s, std::ostream* os) { *os << sampler_name(s); }
}  // namespace t2v

namespace t2v::test {

struct GoldenCase {
  std::string name;  // "wan.n50"
  ScheduleKind kind;
  int steps;
  double shift;
};

inline std::string sampler_file_stem(Sampler s) {
  return s == Sampler::kUniPC ? "unipc" : s == Sampler::kDPMSolver ? "dpmpp" : "euler";
}

// Test-name suffix for TEST_P over samplers.
inline std::string sampler_param_name(const ::testing::TestParamInfo<Sampler>& p) {
  return sampler_file_stem(p.param);
}

inline std::string golden_file(Sampler s) {
  return std::string(T2V_TEST_DATA_DIR) + "/scheduler/" + sampler_file_stem(s) + ".safetensors";
}

// The cases of one golden file, from its "<case>.steps" / "<case>.shift" metadata.
inline std::vector<GoldenCase> golden_cases(const SafetensorsFile& f) {
  std::vector<GoldenCase> out;
  const std::string suffix = ".steps";
  for (const auto& [key, value] : f.metadata()) {
    if (key.size() <= suffix.size() || key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    GoldenCase c;
    c.name = key.substr(0, key.size() - suffix.size());
    c.kind = schedule_kind_from_name(c.name.substr(0, c.name.find('.')));
    c.steps = std::stoi(value);
    c.shift = std::stod(f.metadata().at(c.name + ".shift"));
    out.push_back(c);
  }
  return out;
}

}  // namespace t2v::test
