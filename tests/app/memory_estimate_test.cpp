// The memory estimate t2v checks a render against before loading weights
// (app/memory_estimate.h, docs/bad_inputs.md #74), compared with the peak resident memory
// of real runs of the test model: the estimate t2v logs (T2V_LOG=debug) against the run's
// ru_maxrss.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <regex>

#include "cli_test_util.h"

namespace t2v::test {
namespace {

struct Measured {
  int code = -1;
  std::string err;
  double peak_bytes = 0;  // the child's maximum resident set size
};

// Runs t2v with `args` and T2V_LOG=debug; returns its exit code, stderr and peak RSS.
Measured run_measured(const std::vector<std::string>& args, const TempDir& dir) {
  const std::string err_path = dir.file("stderr");
  std::vector<std::string> argv = {t2v_exe()};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int e = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int n = ::open("/dev/null", O_WRONLY);
    ::dup2(n, 1);
    ::dup2(e, 2);
    ::setenv("T2V_LOG", "debug", 1);
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    ::_exit(127);
  }
  Measured m;
  int status = 0;
  struct rusage ru {};
  while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  m.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  m.err = read_text(err_path);
  m.peak_bytes = static_cast<double>(ru.ru_maxrss) * 1024.0;  // Linux reports KiB
  return m;
}

// Measured on 2 cores with the default model (estimate / peak): 64x64x17 0.90, 128x128x1
// 0.82, 256x256x1 0.99, 384x384x1 1.02, 512x512x1 1.07; 256x256x17 0.75 and x33 0.74 (too
// slow to run here). The bounds leave room around those, and fail when a stage's memory
// grows or the estimate loses a term.
TEST(MemoryEstimate, IsCloseToThePeakOfRealRuns) {
  TempDir dir;
  const std::regex line(R"(memory estimate for .*: encode ([0-9.]+) GB, denoise ([0-9.]+) GB, decode ([0-9.]+) GB)");
  for (const auto& [size, frames] : std::vector<std::pair<std::string, std::string>>{
           {"64x64", "17"}, {"128x128", "1"}, {"256x256", "1"}}) {
    SCOPED_TRACE(size + " x " + frames);
    const std::string out = dir.file("v" + size + "_" + frames + ".mp4");
    Measured m = run_measured({"generate", "--model", test_model_dir(), "-p", "a red ball rolling", "--size", size,
                               "--frames", frames, "--steps", "1", "--seed", "1", "-o", out, "-q"},
                              dir);
    ASSERT_EQ(m.code, 0) << m.err;
    std::smatch g;
    ASSERT_TRUE(std::regex_search(m.err, g, line)) << m.err;
    const double estimate = std::max({std::stod(g[1]), std::stod(g[2]), std::stod(g[3])}) * 1e9;
    const double ratio = estimate / m.peak_bytes;
    std::printf("%s x %s frames: estimate %.3f GB, peak RSS %.3f GB (%.2fx)\n", size.c_str(), frames.c_str(),
                estimate / 1e9, m.peak_bytes / 1e9, ratio);
    EXPECT_GT(ratio, 0.7);
    EXPECT_LT(ratio, 1.5);
  }
}

}  // namespace
}  // namespace t2v::test
