#include "core/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"

namespace t2v::file_io {

Fd::~Fd() {
  if (fd >= 0) ::close(fd);
}

// Opens without blocking (a FIFO would wait for a writer) and refuses anything that is
// not a regular file on the descriptor itself (docs/bad_inputs.md #68).
int open_input(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    throw Error(kExitNoInput, fmt::format("{}: cannot open: {}", path, std::strerror(e)),
                e == ENOENT ? "check the path" : "check the file's permissions");
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
    const bool dir = S_ISDIR(st.st_mode);
    ::close(fd);
    if (dir)
      throw Error(kExitNoInput, fmt::format("{}: is a folder, not a model file", path),
                  "pass the folder to TensorStore::open or name a file inside it");
    throw Error(kExitNoInput,
                fmt::format("{}: not a regular file ({})", path, S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket"),
                "name a regular .safetensors or .gguf file");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

uint64_t regular_file_size(int fd, const std::string& path, const char* what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(kExitIoErr, fmt::format("{}: fstat failed: {}", path, std::strerror(errno)));
  if (S_ISDIR(st.st_mode))
    throw Error(kExitNoInput, fmt::format("{}: is a folder, not {}", path, what),
                "pass the folder to TensorStore::open or name a file inside it");
  if (!S_ISREG(st.st_mode)) throw Error(kExitNoInput, fmt::format("{}: not a regular file", path));
  return static_cast<uint64_t>(st.st_size);
}

void pread_all(int fd, void* buf, size_t n, uint64_t off, const std::string& path) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw Error(kExitIoErr, fmt::format("{}: read failed at byte {}: {}", path, off, std::strerror(errno)));
    if (r == 0)
      throw Error(kExitIoErr, fmt::format("{}: file became shorter while reading (at byte {})", path, off),
                  "another process is writing the file; wait for it to finish and retry");
    p += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
}

std::shared_ptr<Storage> map_file(int fd, uint64_t size, const std::string& path) {
  if (size == 0) return std::make_shared<Storage>(Device::CPU, nullptr, 0, [](void*) {});
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED)
    throw Error(kExitIoErr, fmt::format("{}: mmap of {} failed: {}", path, human_bytes(size), std::strerror(errno)));
  const size_t len = size;
  return std::make_shared<Storage>(Device::CPU, p, len, [len](void* q) { ::munmap(q, len); });
}

std::string printable(std::string_view s, size_t limit) {
  size_t cut = std::min<size_t>(s.size(), limit);
  while (cut < s.size() && cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) --cut;  // whole UTF-8 chars
  std::string out;
  for (unsigned char c : s.substr(0, cut)) {
    if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out.push_back(static_cast<char>(c));
  }
  if (cut < s.size()) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

std::string human_bytes(uint64_t n) {
  if (n >= 1000000000ull) return fmt::format("{:.1f} GB", n / 1e9);
  if (n >= 1000000ull) return fmt::format("{:.1f} MB", n / 1e6);
  if (n >= 1000ull) return fmt::format("{:.1f} kB", n / 1e3);
  return fmt::format("{} bytes", n);
}

}  // namespace t2v::file_io
