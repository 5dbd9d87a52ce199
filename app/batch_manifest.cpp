// The batch manifest (append-only JSONL under an flock, docs/bad_inputs.md #47) and the per-item
// lock files that keep two workers sharing an output folder off the same item.
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

std::string errno_text() { return std::strerror(errno); }

// Reads a whole file from an open descriptor (from offset 0).
std::string read_all(int fd) {
  std::string data;
  char buf[65536];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
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

struct Parsed {
  std::vector<json> records;
  int damaged = 0;        // lines that are not a JSON object
  bool unterminated = false;
};

Parsed parse_manifest(const std::string& data) {
  Parsed p;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    bool last = nl == std::string::npos;
    std::string line = data.substr(pos, last ? std::string::npos : nl - pos);
    pos = last ? data.size() : nl + 1;
    if (last) p.unterminated = true;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("id") && j.contains("status")) {
      p.records.push_back(std::move(j));
    } else {
      ++p.damaged;
    }
  }
  return p;
}

}  // namespace

Manifest::Manifest(std::string dir) : dir_(std::move(dir)), path_(dir_ + "/" + kManifestName) {}

std::vector<std::string> Manifest::load() {
  std::vector<std::string> warnings;
  records_.clear();
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      check_appendable();
      return warnings;
    }
    throw Error(kExitIoErr, fmt::format("cannot read {}: {}", path_, errno_text()));
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(kExitCantCreate, fmt::format("{} is not a file", path_), "move it away; the manifest is written there");
  }
  // The exclusive lock keeps appenders out while a damaged file is rewritten.
  while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  Parsed p = parse_manifest(read_all(fd));
  records_ = p.records;
  if (p.damaged > 0 || p.unterminated) {
    warnings.push_back(fmt::format("{}: dropped {} damaged line(s) (an append cut short by a crash or power loss); "
                                   "rewrote it with the {} intact record(s)",
                                   path_, p.damaged, records_.size()));
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
void Manifest::check_appendable() const {
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error(kExitCantCreate, fmt::format("cannot write {}: {}", path_, errno_text()),
                "check that the output folder is writable");
  ::close(fd);
}

void Manifest::append(const json& record) {
  const std::string line = record.dump() + "\n";
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      throw Error(kExitIoErr, fmt::format("cannot open {} for appending: {}", path_, errno_text()),
                  "check that the output folder is writable");
    while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
    }
    struct stat fs_fd {}, fs_path {};
    // A rewrite (load() after a crash) may have replaced the file while we waited: append to the new one.
    if (::fstat(fd, &fs_fd) != 0 || ::stat(path_.c_str(), &fs_path) != 0 || fs_fd.st_ino != fs_path.st_ino ||
        fs_fd.st_dev != fs_path.st_dev) {
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
      if (fs_fd.st_size == 0) {
        int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
          ::fsync(dfd);
          ::close(dfd);
        }
      }
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
  std::string path = dir + "/" + kManifestName;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(kExitNoInput, fmt::format("cannot read {}: {}", path, errno_text()),
                "point at the --out-dir of a t2v batch run");
  Parsed p = parse_manifest(read_all(fd));
  ::close(fd);
  return p.records;
}

// ---- locks ------------------------------------------------------------------------------------

bool ItemLock::acquire(const std::string& dir, const std::string& id, double timeout_s, std::string* holder) {
  release();
  const std::string lock_dir = dir + "/.locks";
  if (::mkdir(lock_dir.c_str(), 0755) != 0 && errno != EEXIST)
    throw Error(kExitCantCreate, fmt::format("cannot create {}: {}", lock_dir, errno_text()));
  const std::string path = lock_dir + "/" + id + ".lock";
  const std::string host = host_name();
  const long now = static_cast<long>(std::time(nullptr));
  const std::string content =
      json{{"host", host}, {"pid", static_cast<long>(::getpid())}, {"time", now}, {"id", id}}.dump() + "\n";
  std::mt19937_64 rng(std::random_device{}());
  for (int attempt = 0; attempt < 5; ++attempt) {
    // A complete lock file appears under its name in one step (link fails if one exists).
    std::string tmp = fmt::format("{}/.{}.lock.{}.{:x}", lock_dir, id, ::getpid(), rng() & 0xffffffffu);
    int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(kExitCantCreate, fmt::format("cannot create a lock file in {}: {}", lock_dir, errno_text()));
    ::flock(fd, LOCK_EX | LOCK_NB);
    try {
      write_all(fd, content, tmp);
    } catch (...) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw;
    }
    int linked = ::link(tmp.c_str(), path.c_str());
    int link_errno = errno;
    ::unlink(tmp.c_str());
    if (linked == 0) {
      path_ = path;
      fd_ = fd;
      return true;
    }
    ::close(fd);
    if (link_errno != EEXIST)
      throw Error(kExitCantCreate, fmt::format("cannot create {}: {}", path, std::strerror(link_errno)));

    // Someone holds or held it: live or stale?
    int ofd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (ofd < 0) continue;  // released meanwhile: try again
    std::string who = read_all(ofd);
    json j = json::parse(who, nullptr, false);
    std::string their_host = j.is_object() && j.value("host", json()).is_string() ? j["host"].get<std::string>() : "?";
    long their_pid = j.is_object() && j.value("pid", json()).is_number_integer() ? j["pid"].get<long>() : 0;
    if (holder) *holder = fmt::format("{} pid {}", their_host, their_pid);
    if (::flock(ofd, LOCK_EX | LOCK_NB) != 0) {  // its writer is alive and holds it
      ::close(ofd);
      return false;
    }
    struct stat st {};
    ::fstat(ofd, &st);
    const double age = static_cast<double>(now - st.st_mtime);
    bool stale = age > timeout_s;
    if (!j.is_object()) stale = stale || age > 60;  // garbage, not one being written (link makes that atomic)
    if (their_host == host && their_pid > 0 &&
        (their_pid == ::getpid() || (::kill(static_cast<pid_t>(their_pid), 0) != 0 && errno == ESRCH)))
      stale = true;
    struct stat now_st {};
    if (!stale || ::stat(path.c_str(), &now_st) != 0 || now_st.st_ino != st.st_ino) {
      ::close(ofd);
      if (!stale) return false;
      continue;  // replaced meanwhile
    }
    // Take the stale lock over in place: we hold its flock, so nobody else can do the same.
    if (::ftruncate(ofd, 0) != 0) {
      ::close(ofd);
      throw Error(kExitCantCreate, fmt::format("cannot take over {}: {}", path, errno_text()));
    }
    std::string c = content;
    if (::pwrite(ofd, c.data(), c.size(), 0) != static_cast<ssize_t>(c.size())) {
      ::close(ofd);
      throw Error(kExitCantCreate, fmt::format("cannot take over {}: {}", path, errno_text()));
    }
    path_ = path;
    fd_ = ofd;
    return true;
  }
  if (holder) *holder = "workers that keep replacing the lock";
  return false;
}

void ItemLock::release() noexcept {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
  path_.clear();
}

}  // namespace t2v
