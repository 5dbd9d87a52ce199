#include "cli_test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace t2v::test {

namespace fs = std::filesystem;

namespace {

std::string make_temp_dir(const char* prefix) {
  std::string tmpl = (fs::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
  char* p = mkdtemp(tmpl.data());
  if (!p) std::abort();
  return p;
}

// fork + exec with stdout/stderr to files; returns the child's pid (the parent side).
pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path,
            const std::string& cwd, const std::vector<std::pair<std::string, std::string>>& env) {
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

int wait_code(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::string> with_exe(const std::vector<std::string>& args) {
  std::vector<std::string> a = {t2v_exe()};
  a.insert(a.end(), args.begin(), args.end());
  return a;
}

}  // namespace

// T2V_TEST_EXE runs the tests against another build of t2v (e.g. to see a new test fail on
// the program before a fix).
std::string t2v_exe() {
  const char* other = std::getenv("T2V_TEST_EXE");
  return other && *other ? other : T2V_EXE;
}

RunResult run_program(const std::vector<std::string>& argv,
                      const std::vector<std::pair<std::string, std::string>>& env) {
  TempDir io;
  pid_t pid = spawn(argv, io.file("stdout"), io.file("stderr"), "", env);
  RunResult r;
  r.code = wait_code(pid);
  r.out = read_text(io.file("stdout"));
  r.err = read_text(io.file("stderr"));
  return r;
}

RunResult run_t2v(const std::vector<std::string>& args, const std::string& cwd) {
  TempDir io;
  pid_t pid = spawn(with_exe(args), io.file("stdout"), io.file("stderr"), cwd, {});
  RunResult r;
  r.code = wait_code(pid);
  r.out = read_text(io.file("stdout"));
  r.err = read_text(io.file("stderr"));
  return r;
}

TempDir::TempDir() : path_(make_temp_dir("t2v-test")) {}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---- batch ------------------------------------------------------------------------------------

std::string test_model_dir() {
  const fs::path dflt = fs::path(T2V_SOURCE_DIR) / "models" / "t2v-tiny";
  std::error_code ec;
  if (fs::exists(dflt / "model_index.json", ec)) return dflt.string();
  return std::string(T2V_TEST_DATA_DIR) + "/pipeline/tiny_wan";
}

std::vector<std::string> tiny_model_args() {
  return {"--model", test_model_dir(), "--size", "16x16", "--frames", "1", "--steps", "1"};
}

std::vector<std::string> with_tiny_model(std::vector<std::string> a, const std::vector<std::string>& extra) {
  std::set<std::string> given(extra.begin(), extra.end());
  std::vector<std::string> tiny = tiny_model_args();
  for (size_t k = 0; k + 1 < tiny.size(); k += 2) {
    if (given.count(tiny[k])) continue;
    a.push_back(tiny[k]);
    a.push_back(tiny[k + 1]);
  }
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::vector<std::string> batch_args(const std::string& list, const std::string& dir,
                                    const std::vector<std::string>& extra) {
  return with_tiny_model({"batch", list, "--out-dir", dir}, extra);
}

FrameDiff frame_diff(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  FrameDiff d;
  double se = 0;
  const size_t n = std::min(got.size(), want.size());
  for (size_t i = 0; i < n; ++i) {
    const double e = static_cast<double>(got[i]) - want[i];
    se += e * e;
    d.max_abs = std::max(d.max_abs, std::fabs(e));
  }
  const double mse = se / static_cast<double>(std::max<size_t>(n, 1));
  d.psnr = mse == 0 ? 200.0 : 10.0 * std::log10(1.0 / mse);
  return d;
}

double frame_psnr(const std::vector<float>& got, const std::vector<float>& want) {
  return frame_diff(got, want).psnr;
}

std::string prompt_list(int n, const std::string& prefix) {
  static const char* kShapes[] = {"a red ball", "a blue cube", "a green cone", "a yellow star",
                                  "a purple ring", "an orange pyramid"};
  std::string s;
  for (int i = 0; i < n; ++i)
    s += nlohmann::json{{"id", fmt::format("{}{}", prefix, i)}, {"prompt", fmt::format("{} {}", kShapes[i % 6], i)}}
             .dump() +
         "\n";
  return s;
}

std::vector<nlohmann::json> manifest_lines(const std::string& dir) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_text(dir + "/manifest.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_TRUE(j.is_object()) << "manifest line does not parse: " << line;
    if (j.is_object()) out.push_back(j);
  }
  return out;
}

Child::Child(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env)
    : dir_(make_temp_dir("t2v-child")) {
  pid_ = spawn(with_exe(args), dir_ + "/stdout", dir_ + "/stderr", "", env);
}

Child::~Child() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    wait();
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void Child::signal(int sig) { kill(pid_, sig); }

int Child::wait() {
  int code = wait_code(pid_);
  reaped_ = true;
  return code;
}

std::string Child::out() const { return read_text(dir_ + "/stdout"); }
std::string Child::err() const { return read_text(dir_ + "/stderr"); }

}  // namespace t2v::test
