// Runs the t2v program and captures its exit code and output.
#pragma once

#include <string>
#include <vector>

namespace t2v::test {

struct RunResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs T2V_EXE with `args` (no shell; arguments passed verbatim) in `cwd` (if non-empty).
RunResult run_t2v(const std::vector<std::string>& args, const std::string& cwd = "");

// A fresh empty temp folder, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace t2v::test
