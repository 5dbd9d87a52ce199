// Helpers for the tests that run the t2v program: running it (to completion, or as a child
// the test can signal), temp folders, prompt lists and manifests for `t2v batch`, and the
// model the end-to-end tests render with.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace t2v::test {

struct RunResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// The t2v program the tests run: T2V_EXE, or $T2V_TEST_EXE when set (another build).
std::string t2v_exe();

// Runs T2V_EXE with `args` (no shell; arguments passed verbatim) in `cwd` (if non-empty).
RunResult run_t2v(const std::vector<std::string>& args, const std::string& cwd = "");

// Runs any program (argv[0] is its path) with `env` added to the environment.
RunResult run_program(const std::vector<std::string>& argv,
                      const std::vector<std::pair<std::string, std::string>>& env = {});

// A fresh empty temp folder, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// ---- batch ------------------------------------------------------------------------------------

// The model end-to-end tests render with: the default model (models/t2v-tiny) once it is
// there, else the tiny random Wan pipeline of tests/data. Tests pass small sizes either way.
std::string test_model_dir();

// --model and small settings (16x16, 1 frame, 1 step) so each video takes about a second.
std::vector<std::string> tiny_model_args();

// `a` + tiny_model_args() + extra; an option in `extra` replaces the tiny default of the
// same name (CLI11 refuses an option given twice).
std::vector<std::string> with_tiny_model(std::vector<std::string> a, const std::vector<std::string>& extra);

// `t2v batch LIST --out-dir DIR` + tiny model + extra (with_tiny_model).
std::vector<std::string> batch_args(const std::string& list, const std::string& dir,
                                    const std::vector<std::string>& extra = {});

// Frames (values in [0, 1]) against reference frames: the largest absolute difference and the
// PSNR, 200 dB when they are equal. Sizes that differ are a test failure (the common prefix
// is compared).
struct FrameDiff {
  double max_abs = 0, psnr = 0;
};
FrameDiff frame_diff(const std::vector<float>& got, const std::vector<float>& want);
double frame_psnr(const std::vector<float>& got, const std::vector<float>& want);  // frame_diff(...).psnr

// A list of n prompts with ids "<prefix>0" .. (one JSON object per line).
std::string prompt_list(int n, const std::string& prefix = "item");

// Every line of DIR/manifest.jsonl parsed (a line that does not parse fails the test).
std::vector<nlohmann::json> manifest_lines(const std::string& dir);

// A running t2v: stdout/stderr go to files; env adds variables in the child.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  void signal(int sig);
  int wait();  // exit code, or 128+signal
  std::string out() const;
  std::string err() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::string dir_;
  bool reaped_ = false;
};

}  // namespace t2v::test
