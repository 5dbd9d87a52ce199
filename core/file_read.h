// Opening and reading input files a user names (model files, configs, tokenizer
// files, prompt lists, noise tensors) without hanging or reading without bound:
// the file is opened with O_NONBLOCK, so a FIFO or a device cannot block the open,
// then fstat-ed on that descriptor (no race between the check and the read), and
// anything that is not a regular file is refused (docs/bad_inputs.md #68).
#pragma once

#include <cstdint>
#include <string>

namespace t2v {

// An open, regular, readable file; closed by the destructor.
class InputFile {
 public:
  // Error(66) when `path` is missing or unreadable, or is not a regular file (a
  // folder, FIFO, socket or device); `what` names the file's role in the message
  // ("tokenizer file", "config file").
  InputFile(const std::string& path, const std::string& what);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Reads the whole file; Error(`too_big_code`) when it holds more than `max_bytes`.
  std::string read_all(uint64_t max_bytes, int too_big_code) const;

 private:
  std::string path_, what_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// InputFile(path, what).read_all(max_bytes, too_big_code).
std::string read_input_file(const std::string& path, const std::string& what, uint64_t max_bytes,
                            int too_big_code);

// Size limit for JSON config files (config.json, t2v.json, tokenizer_config.json).
constexpr uint64_t kMaxConfigBytes = 16u << 20;

}  // namespace t2v
