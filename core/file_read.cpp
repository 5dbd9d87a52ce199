#include "core/file_read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"

namespace t2v {

namespace {

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "not a regular file";
}

}  // namespace

InputFile::InputFile(const std::string& path, const std::string& what) : path_(path), what_(what) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd_ < 0) {
    const int e = errno;
    throw Error(kExitNoInput, fmt::format("cannot open {} '{}': {}", what, path, std::strerror(e)),
                e == ENOENT ? "check the path" : "check the file's permissions");
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int e = errno;
    ::close(fd_);
    throw Error(kExitNoInput, fmt::format("cannot stat {} '{}': {}", what, path, std::strerror(e)));
  }
  if (!S_ISREG(st.st_mode)) {
    const char* kind = kind_of(st.st_mode);
    ::close(fd_);
    throw Error(kExitNoInput, fmt::format("{} '{}' is {}, not a regular file", what, path, kind),
                "name a regular file");
  }
  // Regular files never block; plain blocking reads from here on.
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
  size_ = static_cast<uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string InputFile::read_all(uint64_t max_bytes, int too_big_code) const {
  if (size_ > max_bytes)
    throw Error(too_big_code,
                fmt::format("{} '{}' is {} bytes, more than the {} bytes such a file may have", what_, path_, size_,
                            max_bytes),
                "check that this is the intended file");
  // Read up to max_bytes + 1 whatever fstat said: the file may grow while read.
  std::string data;
  data.resize(static_cast<size_t>(size_));
  size_t got = 0;
  for (;;) {
    if (got == data.size()) {
      if (data.size() > max_bytes) break;
      data.resize(std::min<uint64_t>(max_bytes + 1, data.size() + 65536));
    }
    const ssize_t n = ::pread(fd_, data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw Error(kExitIoErr, fmt::format("cannot read {} '{}': {}", what_, path_, std::strerror(errno)));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  if (got > max_bytes)
    throw Error(too_big_code,
                fmt::format("{} '{}' holds more than the {} bytes such a file may have", what_, path_, max_bytes),
                "check that this is the intended file");
  return data;
}

std::string read_input_file(const std::string& path, const std::string& what, uint64_t max_bytes,
                            int too_big_code) {
  return InputFile(path, what).read_all(max_bytes, too_big_code);
}

}  // namespace t2v
