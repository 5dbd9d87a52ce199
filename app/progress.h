// Progress for people (a one-line bar with it/s and ETA on a terminal) and for
// machines (--json: one JSON object per line on stdout).
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

namespace t2v {

class Progress {
 public:
  // bar: draw the bar on stderr (a terminal, no --quiet); json: emit events on stdout.
  Progress(bool bar, bool json) : bar_(bar), json_(json) {}
  void event(const std::string& name, nlohmann::json fields = {}) const;  // --json only
  void start_steps(int total);
  void step_done(int step);  // 1-based
  void finish_steps();
  bool json() const { return json_; }

 private:
  bool bar_, json_;
  int total_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace t2v
