// Helpers for the batch tests: prompt lists, manifest reading, a t2v child process the
// test can signal, and the tiny model settings that keep each video at about a second.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace t2v::test {

// --model and settings for fast renders with the tiny random Wan model.
std::vector<std::string> tiny_model_args();

// `t2v batch LIST --out-dir DIR` + tiny model + extra.
std::vector<std::string> batch_args(const std::string& list, const std::string& dir,
                                    const std::vector<std::string>& extra = {});

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// A list of n prompts with ids "<prefix>0" .. (one JSON object per line).
std::string prompt_list(int n, const std::string& prefix = "item");

// Every line of DIR/manifest.jsonl parsed (a line that does not parse fails the test).
std::vector<nlohmann::json> manifest_lines(const std::string& dir);

// A running t2v: stdout/stderr go to files; env adds variables in the child.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env = {});
  ~Child();
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
