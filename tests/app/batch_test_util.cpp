#include "batch_test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace t2v::test {

std::vector<std::string> tiny_model_args() {
  return {"--model", std::string(T2V_TEST_DATA_DIR) + "/pipeline/tiny_wan", "--size", "16x16", "--frames", "1",
          "--steps", "1"};
}

std::vector<std::string> batch_args(const std::string& list, const std::string& dir,
                                    const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"batch", list, "--out-dir", dir};
  for (const std::string& s : tiny_model_args()) a.push_back(s);
  for (const std::string& s : extra) a.push_back(s);
  return a;
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

Child::Child(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "t2v-child-XXXXXX").string();
  dir_ = mkdtemp(tmpl.data());
  std::string out = dir_ + "/stdout", err = dir_ + "/stderr";
  pid_ = fork();
  if (pid_ == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    std::string exe = T2V_EXE;
    argv.push_back(exe.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
}

Child::~Child() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    wait();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void Child::signal(int sig) { kill(pid_, sig); }

int Child::wait() {
  int status = 0;
  waitpid(pid_, &status, 0);
  reaped_ = true;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Child::out() const { return read_text(dir_ + "/stdout"); }
std::string Child::err() const { return read_text(dir_ + "/stderr"); }

}  // namespace t2v::test
