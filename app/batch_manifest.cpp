// The batch manifest (append-only JSONL under an flock, docs/bad_inputs.md #47, #84) and the
// per-item lock files that keep two workers sharing an output folder off the same item. Both
// are opened relative to a descriptor of the output folder, with O_NOFOLLOW (docs/bad_inputs.md #69).
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <random>

#include <fmt/format.h>

#include "app/batch.h"
#include "app/host.h"
#include "core/error.h"
#include "video_io/atomic_file.h"

namespace t2v {

using nlohmann::json;

namespace {

constexpr const char* kManifestName = "manifest.jsonl";
constexpr const char* kLockDirName = ".locks";
constexpr size_t kMaxLockBytes = 64 * 1024;  // a lock file is one short JSON line

std::string errno_text() { return std::strerror(errno); }

// Reads a whole file (at most `max` bytes) from an open descriptor, from offset 0.
std::string read_all(int fd, size_t max = SIZE_MAX) {
  std::string data;
  char buf[65536];
  off_t off = 0;
  while (data.size() < max) {
    ssize_t n = ::pread(fd, buf, std::min(sizeof buf, max - data.size()), off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return data;
}

void write_all(int fd, const std::string& s, const std::string& what) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(kExitIoErr, fmt::format("cannot write {}: {}", what, errno_text()), "check free space");
    done += static_cast<size_t>(n);
  }
}

int open_folder_fd(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    throw Error(kExitCantCreate, fmt::format("cannot open the output folder {}: {}", dir, errno_text()),
                "check the path and permissions");
  return fd;
}

[[noreturn]] void refuse_hard_links(const struct stat& st, const std::string& shown, int code) {
  throw Error(code,
              fmt::format("{} has {} hard links; t2v writes only files of its own", shown,
                          static_cast<unsigned long>(st.st_nlink)),
              "move it away; t2v keeps its records there");
}

// Opens the control file `name` inside the folder `dfd` without following a symbolic link,
// and refuses anything but a regular file (with a single link unless `any_links`): a link
// planted there by someone sharing the folder would otherwise make this process write
// through it. `shown` names the file in errors; `code` is the exit code for a refusal.
int open_control_file(int dfd, const char* name, int flags, const std::string& shown, int code,
                      bool any_links = false) {
  int fd = ::openat(dfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0644);
  if (fd < 0) {
    const int e = errno;
    struct stat lst {};
    if (e == ELOOP || (::fstatat(dfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)))
      throw Error(code, fmt::format("{} is a symbolic link; t2v never follows links for its control files", shown),
                  "remove the link (someone who can write to the folder put it there)");
    errno = e;
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(code, fmt::format("{} is not a regular file", shown), "move it away; t2v keeps its records there");
  }
  if (st.st_nlink != 1 && !any_links) {
    ::close(fd);
    refuse_hard_links(st, shown, code);
  }
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0) ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  return fd;
}

struct Parsed {
  std::vector<json> records;
  int torn = 0;        // appends cut short by a crash: dropped
  int damaged_line = 0;  // the first line no crash can leave (1-based), 0 when none
  std::string damage;  // what is wrong with it
};

// What a record must hold for the code that reads it (types included, so a hand-edited
// manifest cannot make a later step throw on a wrong type).
std::string record_problem(const json& j) {
  if (!j.is_object()) return "not a JSON object";
  if (!j.contains("status") || !j["status"].is_string()) return "no \"status\" string";
  if (!j.contains("id") || !(j["id"].is_string() || j["id"].is_null())) return "no \"id\" string (or null)";
  if (j["status"] == "done") {
    for (const char* k : {"file", "sha256"})
      if (!j.contains(k) || !j[k].is_string()) return fmt::format("a done record without a \"{}\" string", k);
    if (j.contains("settings") && !j["settings"].is_object()) return "\"settings\" is not an object";
  }
  return "";
}

// A line an append cut short: a truncated JSON object (its parse fails at the end of the
// text) or the zeros a file system can leave after a power loss.
bool looks_torn(const std::string& line) {
  if (line.find_first_not_of('\0') == std::string::npos) return true;
  const size_t first = line.find_first_not_of(" \t\r");
  if (first == std::string::npos || line[first] != '{') return false;
  try {
    json parsed = json::parse(line);
    return false;
  } catch (const json::parse_error& e) {
    return e.byte >= line.size();
  } catch (const json::exception&) {
    return false;
  }
}

Parsed parse_manifest(const std::string& data) {
  Parsed p;
  size_t pos = 0;
  int lineno = 0;
  while (pos < data.size()) {
    ++lineno;
    size_t nl = data.find('\n', pos);
    bool last = nl == std::string::npos;
    std::string line = data.substr(pos, last ? std::string::npos : nl - pos);
    pos = last ? data.size() : nl + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    std::string problem = j.is_discarded() ? "not valid JSON" : record_problem(j);
    if (problem.empty()) {
      p.records.push_back(std::move(j));
    } else if (last || looks_torn(line)) {
      ++p.torn;  // only a crash mid-append leaves these; the next append starts a fresh line
    } else if (p.damaged_line == 0) {
      p.damaged_line = lineno;
      p.damage = problem;
    }
  }
  return p;
}

[[noreturn]] void throw_damaged(const std::string& path, const Parsed& p) {
  throw Error(kExitDataErr,
              fmt::format("{}:{}: damaged record ({}); a crash can only cut an append short, so the file was "
                          "edited or corrupted",
                          path, p.damaged_line, p.damage),
              "fix or delete that line (the videos stay; a missing record only makes the item render again)");
}

}  // namespace

Manifest::Manifest(std::string dir) : dir_(std::move(dir)), path_(dir_ + "/" + kManifestName) {}

Manifest::~Manifest() {
  if (dfd_ >= 0) ::close(dfd_);
}

int Manifest::dir_fd() {
  if (dfd_ < 0) dfd_ = open_folder_fd(dir_);
  return dfd_;
}

std::vector<std::string> Manifest::load() {
  std::vector<std::string> warnings;
  records_.clear();
  int fd = open_control_file(dir_fd(), kManifestName, O_RDONLY, path_, kExitCantCreate);
  if (fd < 0) {
    if (errno == ENOENT) {
      check_appendable();
      return warnings;
    }
    throw Error(kExitIoErr, fmt::format("cannot read {}: {}", path_, errno_text()));
  }
  // The exclusive lock keeps appenders out while a damaged file is rewritten.
  while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  Parsed p = parse_manifest(read_all(fd));
  if (p.damaged_line > 0) {
    ::close(fd);
    throw_damaged(path_, p);
  }
  records_ = p.records;
  if (p.torn > 0) {
    warnings.push_back(fmt::format("{}: dropped {} damaged line(s) cut short by a crash or power loss; "
                                   "rewrote it with the {} intact record(s)",
                                   path_, p.torn, records_.size()));
    std::string data;
    for (const json& r : records_) data += r.dump() + "\n";
    try {
      write_file_atomic(path_, data.data(), data.size(), /*overwrite=*/true);
    } catch (...) {
      ::close(fd);
      throw;
    }
  }
  ::close(fd);
  check_appendable();
  return warnings;
}

// Appending must work before anything is rendered: a record that cannot be written would
// leave a finished video the next run cannot verify.
void Manifest::check_appendable() {
  int fd = open_control_file(dir_fd(), kManifestName, O_WRONLY | O_APPEND | O_CREAT, path_, kExitCantCreate);
  if (fd < 0)
    throw Error(kExitCantCreate, fmt::format("cannot write {}: {}", path_, errno_text()),
                "check that the output folder is writable");
  ::close(fd);
}

void Manifest::append(const json& record) {
  const std::string line = record.dump() + "\n";
  const int dfd = dir_fd();
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = open_control_file(dfd, kManifestName, O_WRONLY | O_APPEND | O_CREAT, path_, kExitCantCreate);
    if (fd < 0)
      throw Error(kExitIoErr, fmt::format("cannot open {} for appending: {}", path_, errno_text()),
                  "check that the output folder is writable");
    while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
    }
    struct stat fs_fd {}, fs_path {};
    // A rewrite (load() after a crash) may have replaced the file while we waited: append to the new one.
    if (::fstat(fd, &fs_fd) != 0 || ::fstatat(dfd, kManifestName, &fs_path, AT_SYMLINK_NOFOLLOW) != 0 ||
        fs_fd.st_ino != fs_path.st_ino || fs_fd.st_dev != fs_path.st_dev) {
      ::close(fd);
      continue;
    }
    try {
      std::string out = line;
      if (fs_fd.st_size > 0) {
        char last = 0;
        // A line cut short by a crash must not swallow this record: start a fresh line.
        if (::pread(fd, &last, 1, fs_fd.st_size - 1) == 1 && last != '\n') out = "\n" + out;
      }
      write_all(fd, out, path_);
      if (::fsync(fd) != 0) throw Error(kExitIoErr, fmt::format("cannot fsync {}: {}", path_, errno_text()));
      if (fs_fd.st_size == 0) ::fsync(dfd);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    records_.push_back(record);
    return;
  }
  throw Error(kExitIoErr, fmt::format("{} keeps being replaced while appending", path_));
}

std::optional<json> Manifest::last_done(const std::string& id) const {
  for (auto it = records_.rbegin(); it != records_.rend(); ++it)
    if ((*it)["id"] == id && (*it)["status"] == "done") return *it;
  return std::nullopt;
}

std::vector<json> read_manifest_records(const std::string& dir) {
  const std::string path = dir + "/" + kManifestName;
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    throw Error(kExitNoInput, fmt::format("cannot read {}: {}", dir, errno_text()),
                "point at the --out-dir of a t2v batch run");
  int fd = -1;
  try {
    fd = open_control_file(dfd, kManifestName, O_RDONLY, path, kExitDataErr);
  } catch (...) {
    ::close(dfd);
    throw;
  }
  ::close(dfd);
  if (fd < 0)
    throw Error(kExitNoInput, fmt::format("cannot read {}: {}", path, errno_text()),
                "point at the --out-dir of a t2v batch run");
  Parsed p = parse_manifest(read_all(fd));
  ::close(fd);
  if (p.damaged_line > 0) throw_damaged(path, p);
  return p.records;
}

// ---- locks ------------------------------------------------------------------------------------

bool ItemLock::acquire(const std::string& dir, const std::string& id, double timeout_s, std::string* holder) {
  release();
  const std::string lock_dir = dir + "/" + kLockDirName;
  {
    const int dfd = open_folder_fd(dir);
    if (::mkdirat(dfd, kLockDirName, 0755) != 0 && errno != EEXIST) {
      const std::string why = errno_text();
      ::close(dfd);
      throw Error(kExitCantCreate, fmt::format("cannot create {}: {}", lock_dir, why));
    }
    dir_fd_ = ::openat(dfd, kLockDirName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    const int e = errno;
    struct stat lst {};
    const bool link = dir_fd_ < 0 && ::fstatat(dfd, kLockDirName, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode);
    ::close(dfd);
    if (dir_fd_ < 0) {
      if (link || e == ELOOP)
        throw Error(kExitCantCreate,
                    fmt::format("{} is a symbolic link; t2v never follows links for its control files", lock_dir),
                    "remove the link (someone who can write to the folder put it there)");
      throw Error(kExitCantCreate, fmt::format("cannot open {}: {}", lock_dir, std::strerror(e)),
                  "it must be a folder t2v can write to");
    }
  }
  const std::string name = id + ".lock";
  const std::string path = lock_dir + "/" + name;
  const std::string host = host_name();
  const long now = static_cast<long>(std::time(nullptr));
  const std::string content =
      json{{"host", host}, {"pid", static_cast<long>(::getpid())}, {"time", now}, {"id", id}}.dump() + "\n";
  std::mt19937_64 rng(std::random_device{}());
  auto give_up = [&](bool result) {
    ::close(dir_fd_);
    dir_fd_ = -1;
    return result;
  };
  for (int attempt = 0; attempt < 5; ++attempt) {
    // A complete lock file appears under its name in one step (link fails if one exists).
    const std::string tmp = fmt::format(".{}.lock.{}.{:x}", id, ::getpid(), rng() & 0xffffffffu);
    int fd = ::openat(dir_fd_, tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
      const std::string why = errno_text();
      give_up(false);
      throw Error(kExitCantCreate, fmt::format("cannot create a lock file in {}: {}", lock_dir, why));
    }
    ::flock(fd, LOCK_EX | LOCK_NB);
    try {
      write_all(fd, content, lock_dir + "/" + tmp);
    } catch (...) {
      ::close(fd);
      ::unlinkat(dir_fd_, tmp.c_str(), 0);
      give_up(false);
      throw;
    }
    // linkat without AT_SYMLINK_FOLLOW: the new name is a link to our file, never through one.
    int linked = ::linkat(dir_fd_, tmp.c_str(), dir_fd_, name.c_str(), 0);
    int link_errno = errno;
    ::unlinkat(dir_fd_, tmp.c_str(), 0);
    if (linked == 0) {
      name_ = name;
      fd_ = fd;
      return true;
    }
    ::close(fd);
    if (link_errno != EEXIST) {
      give_up(false);
      throw Error(kExitCantCreate, fmt::format("cannot create {}: {}", path, std::strerror(link_errno)));
    }

    // Someone holds or held it: live or stale? A symbolic link there is refused at once. A
    // second link is refused only once its flock is free: a worker creating the lock holds
    // the flock while both names of its file exist (between linkat and unlinkat above).
    int ofd = -1;
    try {
      ofd = open_control_file(dir_fd_, name.c_str(), O_RDWR, path, kExitCantCreate, /*any_links=*/true);
    } catch (...) {
      give_up(false);
      throw;
    }
    if (ofd < 0) continue;  // released meanwhile: try again
    std::string who = read_all(ofd, kMaxLockBytes);
    json j = json::parse(who, nullptr, false);
    std::string their_host = j.is_object() && j.value("host", json()).is_string() ? j["host"].get<std::string>() : "?";
    long their_pid = j.is_object() && j.value("pid", json()).is_number_integer() ? j["pid"].get<long>() : 0;
    if (holder) *holder = fmt::format("{} pid {}", their_host, their_pid);
    if (::flock(ofd, LOCK_EX | LOCK_NB) != 0) {  // its writer is alive and holds it
      ::close(ofd);
      return give_up(false);
    }
    struct stat st {};
    ::fstat(ofd, &st);
    if (st.st_nlink != 1) {
      ::close(ofd);
      give_up(false);
      refuse_hard_links(st, path, kExitCantCreate);
    }
    const double age = static_cast<double>(now - st.st_mtime);
    bool stale = age > timeout_s;
    if (!j.is_object()) stale = stale || age > 60;  // garbage, not one being written (link makes that atomic)
    if (their_host == host && their_pid > 0 &&
        (their_pid == ::getpid() || (::kill(static_cast<pid_t>(their_pid), 0) != 0 && errno == ESRCH)))
      stale = true;
    struct stat now_st {};
    if (!stale || ::fstatat(dir_fd_, name.c_str(), &now_st, AT_SYMLINK_NOFOLLOW) != 0 || now_st.st_ino != st.st_ino) {
      ::close(ofd);
      if (!stale) return give_up(false);
      continue;  // replaced meanwhile
    }
    // Take the stale lock over in place: we hold its flock, so nobody else can do the same.
    if (::ftruncate(ofd, 0) != 0 ||
        ::pwrite(ofd, content.data(), content.size(), 0) != static_cast<ssize_t>(content.size())) {
      const std::string why = errno_text();
      ::close(ofd);
      give_up(false);
      throw Error(kExitCantCreate, fmt::format("cannot take over {}: {}", path, why));
    }
    name_ = name;
    fd_ = ofd;
    return true;
  }
  if (holder) *holder = "workers that keep replacing the lock";
  return give_up(false);
}

void ItemLock::release() noexcept {
  if (fd_ >= 0) {
    ::unlinkat(dir_fd_, name_.c_str(), 0);
    ::close(fd_);
    fd_ = -1;
    name_.clear();
  }
  if (dir_fd_ >= 0) {
    ::close(dir_fd_);
    dir_fd_ = -1;
  }
}

}  // namespace t2v
