#include "app/progress.h"

#include <cstdio>

#include <fmt/format.h>

namespace t2v {

void Progress::event(const std::string& name, nlohmann::json fields) const {
  if (!json_) return;
  fields["event"] = name;
  fmt::print(stdout, "{}\n", fields.dump());
  std::fflush(stdout);
}

void Progress::start_steps(int total) {
  total_ = total;
  t0_ = std::chrono::steady_clock::now();
}

void Progress::step_done(int step) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  double rate = elapsed > 0 ? step / elapsed : 0.0;
  double eta = rate > 0 ? (total_ - step) / rate : 0.0;
  event("step", {{"step", step}, {"of", total_}, {"elapsed_s", elapsed}, {"eta_s", eta}});
  if (!bar_) return;
  constexpr int kWidth = 30;
  int filled = total_ > 0 ? step * kWidth / total_ : kWidth;
  std::string bar(filled, '#');
  bar.resize(kWidth, ' ');
  std::string speed = rate >= 1.0 ? fmt::format("{:.2f} it/s", rate) : fmt::format("{:.2f} s/it", 1.0 / rate);
  int e = static_cast<int>(eta + 0.5);
  fmt::print(stderr, "\r  denoise [{}] {}/{}  {}  ETA {:02d}:{:02d}  ", bar, step, total_, speed, e / 60, e % 60);
  std::fflush(stderr);
}

void Progress::finish_steps() {
  if (bar_) fmt::print(stderr, "\n");
}

}  // namespace t2v
