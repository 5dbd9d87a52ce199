#include "video_io/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"

namespace t2v {
namespace {

std::string errno_text(int e) { return std::strerror(e); }

// "a/b/c.mp4" -> ("a/b", "c.mp4"); "c.mp4" -> (".", "c.mp4"); "/c.mp4" -> ("/", "c.mp4").
std::pair<std::string, std::string> split_path(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// Error(73) for a folder we cannot create files in, with the fix for each cause.
[[noreturn]] void throw_folder_error(const std::string& dir, int e) {
  switch (e) {
    case ENOENT:
      throw Error(kExitCantCreate, fmt::format("output folder '{}' does not exist", dir),
                  fmt::format("create it (mkdir -p '{}') or choose another output folder", dir));
    case ENOTDIR:
      throw Error(kExitCantCreate,
                  fmt::format("output folder '{}' is not a folder (it or a parent is a file)", dir),
                  "choose a path whose parents are folders");
    case EACCES:
    case EPERM:
      throw Error(kExitCantCreate,
                  fmt::format("cannot create files in output folder '{}': {}", dir, errno_text(e)),
                  "make it writable (chmod u+w) or choose another output folder");
    case EROFS:
      throw Error(kExitCantCreate,
                  fmt::format("output folder '{}' is on a read-only file system", dir),
                  "choose an output folder on a writable file system");
    case ENOSPC:
    case EDQUOT:
      throw Error(kExitIoErr, fmt::format("cannot create files in output folder '{}': {}", dir, errno_text(e)),
                  "free disk space or raise the quota");
    default:
      throw Error(kExitCantCreate,
                  fmt::format("cannot create files in output folder '{}': {}", dir, errno_text(e)),
                  "choose another output folder");
  }
}

// The folder must exist and be a folder; stat's errors are reported like mkstemps' ones.
void require_folder(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw_folder_error(dir, errno);
  if (!S_ISDIR(st.st_mode)) throw_folder_error(dir, ENOTDIR);
}

// mkstemps creates files 0600; finished outputs get the usual 0666 & ~umask. umask() itself
// would change process state (not thread-safe), so read it from /proc.
mode_t current_umask() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
  }
  return 022;
}

// Cuts `name` to at most `max_bytes` without splitting a UTF-8 sequence, so temp names stay
// within NAME_MAX (255) for long output names.
std::string truncate_utf8(const std::string& name, size_t max_bytes) {
  if (name.size() <= max_bytes) return name;
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(name[n]) & 0xC0) == 0x80) --n;
  return name.substr(0, n);
}

bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Creates and locks a temp file in `dir` for final name `name`; returns its fd, sets `temp`.
int create_temp(const std::string& dir, const std::string& name, std::string& temp) {
  std::string ext = "tmp";
  size_t dot = name.rfind('.');
  if (dot != std::string::npos && dot + 1 < name.size() && name.size() - dot - 1 <= 8) {
    bool ok = true;
    for (size_t i = dot + 1; i < name.size(); ++i) ok = ok && is_alnum(name[i]);
    if (ok) ext = name.substr(dot + 1);
  }
  std::string prefix = dir == "/" ? "/" : dir + "/";
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string tmpl = prefix + "." + truncate_utf8(name, 200) + ".tmp-XXXXXX." + ext;
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    int fd = ::mkstemps(buf.data(), static_cast<int>(ext.size() + 1));
    if (fd < 0) throw_folder_error(dir, errno);
    temp.assign(buf.data());
    // Lock at once; a cleaner that unlinked the file between mkstemps and flock leaves us
    // holding an unnamed inode, which the identity check below detects: then try again.
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      struct stat by_fd {}, by_name {};
      if (::fstat(fd, &by_fd) == 0 && ::stat(temp.c_str(), &by_name) == 0 && by_fd.st_ino == by_name.st_ino &&
          by_fd.st_dev == by_name.st_dev) {
        ::fchmod(fd, 0666 & ~current_umask());
        return fd;
      }
    }
    ::close(fd);
  }
  throw Error(kExitCantCreate, fmt::format("cannot create a temp file in output folder '{}'", dir),
              "another process keeps deleting files there; use a separate output folder");
}

}  // namespace

void fsync_folder(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;  // the rename happened; durability of the entry is best effort here
  ::fsync(dfd);         // EINVAL on file systems without directory fsync: nothing more to do
  ::close(dfd);
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::create(const std::string& path, bool overwrite) {
  T2V_ASSERT(fd_ < 0, "AtomicFile::create called twice");
  auto [dir, name] = split_path(path);
  if (name.empty() || name == "." || name == "..")
    throw Error(kExitCantCreate, fmt::format("output path '{}' does not name a file", path),
                "give a file name such as out/video.mp4");
  require_folder(dir);
  check_output_target(path, overwrite);
  fd_ = create_temp(dir, name, temp_path_);
  path_ = path;
  overwrite_ = overwrite;
}

void AtomicFile::commit() {
  T2V_ASSERT(fd_ >= 0, "AtomicFile::commit without create");
  if (::fsync(fd_) != 0) {
    int e = errno;
    discard();
    throw Error(kExitIoErr, fmt::format("writing '{}' failed: {}", path_, errno_text(e)),
                "check free space and the file system; the partial file was deleted");
  }
  int rc = 0;
  if (overwrite_) {
    rc = ::rename(temp_path_.c_str(), path_.c_str());
  } else {
    rc = ::renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE);
    if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
      // File systems without RENAME_NOREPLACE (some network ones): link() also refuses to
      // replace an existing name, then drop the temp name.
      rc = ::link(temp_path_.c_str(), path_.c_str());
      if (rc == 0) ::unlink(temp_path_.c_str());
    }
  }
  if (rc != 0) {
    int e = errno;
    discard();
    if (e == EEXIST)
      throw Error(kExitCantCreate, fmt::format("output file '{}' appeared while it was being written", path_),
                  "another process writes the same name; pass --overwrite or choose another name");
    throw Error(kExitCantCreate, fmt::format("cannot move the finished file into place as '{}': {}", path_, errno_text(e)),
                "check the output folder's permissions");
  }
  fsync_folder(split_path(path_).first);
  ::close(fd_);
  fd_ = -1;
  temp_path_.clear();
}

void AtomicFile::discard() noexcept {
  if (fd_ < 0) return;
  ::unlink(temp_path_.c_str());
  ::close(fd_);
  fd_ = -1;
  temp_path_.clear();
}

void check_output_target(const std::string& path, bool overwrite) {
  auto [dir, name] = split_path(path);
  if (name.empty() || name == "." || name == "..")
    throw Error(kExitCantCreate, fmt::format("output path '{}' does not name a file", path),
                "give a file name such as out/video.mp4");
  long name_max = ::pathconf(dir.c_str(), _PC_NAME_MAX);
  if (name_max <= 0) name_max = 255;
  if (name.size() > static_cast<size_t>(name_max))
    throw Error(kExitCantCreate,
                fmt::format("output file name '{}...' is {} bytes; the file system takes at most {}", name.substr(0, 40),
                            name.size(), name_max),
                "choose a shorter name");
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode))
    throw Error(kExitCantCreate, fmt::format("output path '{}' is a folder", path), "give a file name inside it");
  if (!S_ISREG(st.st_mode))
    throw Error(kExitCantCreate,
                fmt::format("output path '{}' exists and is {}", path,
                            S_ISLNK(st.st_mode)    ? "a symbolic link"
                            : S_ISFIFO(st.st_mode) ? "a FIFO"
                            : S_ISSOCK(st.st_mode) ? "a socket"
                                                   : "a device"),
                "t2v replaces only regular files, never writes through links or devices; choose another name");
  if (!overwrite)
    throw Error(kExitCantCreate, fmt::format("output file '{}' already exists", path),
                "pass --overwrite to replace it or choose another name");
}

void write_file_atomic(const std::string& path, const void* data, size_t size, bool overwrite) {
  AtomicFile file;
  file.create(path, overwrite);
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(file.fd(), p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      file.discard();
      throw Error(kExitIoErr, fmt::format("writing '{}' failed: {}", path, errno_text(e)),
                  "check free space and the file system; the partial file was deleted");
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  file.commit();
}

void check_output_writable(const std::string& dir) {
  require_folder(dir);
  std::string temp;
  int fd = create_temp(dir, "t2v-write-check", temp);
  ::unlink(temp.c_str());
  ::close(fd);
}

void check_free_space(const std::string& dir, uint64_t bytes) {
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) throw_folder_error(dir, errno);
  const uint64_t avail = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (avail < bytes)
    throw Error(kExitIoErr,
                fmt::format("output folder '{}' has {:.1f} MB free, the output needs about {:.1f} MB", dir,
                            avail / 1e6, bytes / 1e6),
                "free disk space or choose another output folder");
  if (fs.f_files > 0 && fs.f_favail == 0)  // f_files == 0: the file system does not count inodes
    throw Error(kExitIoErr, fmt::format("output folder '{}' has no free inodes", dir),
                "delete files there or choose another output folder");
}

bool is_temp_file_name(std::string_view name) {
  // .<name>.tmp-XXXXXX.<ext>
  size_t dot = name.rfind('.');
  if (name.size() < 2 || name[0] != '.' || dot == std::string_view::npos) return false;
  std::string_view ext = name.substr(dot + 1);
  if (ext.empty() || ext.size() > 8) return false;
  for (char c : ext)
    if (!is_alnum(c)) return false;
  std::string_view stem = name.substr(0, dot);  // .<name>.tmp-XXXXXX
  constexpr std::string_view kMarker = ".tmp-";
  if (stem.size() < 1 + 1 + kMarker.size() + 6) return false;
  std::string_view rand = stem.substr(stem.size() - 6);
  for (char c : rand)
    if (!is_alnum(c)) return false;
  return stem.substr(stem.size() - 6 - kMarker.size(), kMarker.size()) == kMarker;
}

int clean_stale_temp_files(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  int dfd = ::dirfd(d);
  std::vector<std::string> names;
  while (struct dirent* ent = ::readdir(d)) {
    if (is_temp_file_name(ent->d_name)) names.emplace_back(ent->d_name);
  }
  int removed = 0;
  for (const std::string& name : names) {
    int fd = ::openat(dfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    // Only plain files, and only when no writer holds the lock (a live shard's output).
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      if (::unlinkat(dfd, name.c_str(), 0) == 0) ++removed;
    }
    ::close(fd);
  }
  ::closedir(d);
  return removed;
}

}  // namespace t2v
