// Helpers the checkpoint readers share (core/safetensors.cpp, core/gguf.cpp):
// opening, reading a prefix with pread, mapping a whole file, and names made
// safe for one-line messages.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/tensor.h"

namespace t2v::file_io {

// Closes the descriptor on scope exit.
struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
};

// Opens `path` read-only; Error(66) when it cannot.
int open_input(const std::string& path);

// The size of a regular file opened as `fd`; Error(66) for a folder or anything
// that is not a regular file (`what`: "a .safetensors file").
uint64_t regular_file_size(int fd, const std::string& path, const char* what);

// Reads exactly n bytes at `off`; a short read means the file shrank under us (Error 74).
void pread_all(int fd, void* buf, size_t n, uint64_t off, const std::string& path);

// Maps the first `size` bytes of `fd` read-only; the Storage unmaps on release.
std::shared_ptr<Storage> map_file(int fd, uint64_t size, const std::string& path);

// A name or value as it may appear in a one-line message: control characters
// escaped, long strings shortened (whole UTF-8 characters kept).
std::string printable(std::string_view s, size_t limit = 200);

// "1.5 MB", "312 bytes".
std::string human_bytes(uint64_t n);

}  // namespace t2v::file_io
