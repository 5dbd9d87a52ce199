#include "app/serve_jobs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/batch.h"
#include "app/host.h"
#include "core/error.h"
#include "video_io/atomic_file.h"

namespace t2v {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kIdPrefix = "video_";
constexpr const char* kStagingPrefix = ".staging-";
constexpr const char* kTrashPrefix = ".trash-";

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string random_hex(int digits) {
  thread_local std::mt19937_64 rng(std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32));
  std::string s;
  while (static_cast<int>(s.size()) < digits) s += fmt::format("{:016x}", rng());
  return s.substr(0, static_cast<size_t>(digits));
}

std::optional<json> read_json_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

void write_json_file(const std::string& path, const json& j) {
  const std::string text = j.dump(2) + "\n";
  write_file_atomic(path, text.data(), text.size(), /*overwrite=*/true);
}

std::optional<JobStatus> parse_status(const std::string& s) {
  for (JobStatus st : {JobStatus::kQueued, JobStatus::kInProgress, JobStatus::kCompleted, JobStatus::kFailed})
    if (s == job_status_name(st)) return st;
  return std::nullopt;
}

std::optional<int64_t> opt_int(const json& j, const char* key) {
  if (j.contains(key) && j[key].is_number_integer()) return j[key].get<int64_t>();
  return std::nullopt;
}

json state_json(const Job& j) {
  json s;
  s["status"] = job_status_name(j.status);
  s["progress"] = j.progress;
  s["started_at"] = j.started_at ? json(*j.started_at) : json(nullptr);
  s["completed_at"] = j.completed_at ? json(*j.completed_at) : json(nullptr);
  s["error"] =
      j.status == JobStatus::kFailed ? json{{"code", j.error_code}, {"message", j.error_message}} : json(nullptr);
  s["attempts"] = j.attempts;
  s["host"] = host_name();
  s["pid"] = static_cast<long>(::getpid());
  s["updated"] = utc_now();
  return s;
}

bool newer(const Job& a, const Job& b) {
  return a.created_ns != b.created_ns ? a.created_ns > b.created_ns : a.id > b.id;
}

}  // namespace

const char* job_status_name(JobStatus s) {
  switch (s) {
    case JobStatus::kQueued: return "queued";
    case JobStatus::kInProgress: return "in_progress";
    case JobStatus::kCompleted: return "completed";
    case JobStatus::kFailed: return "failed";
  }
  return "queued";
}

bool valid_job_id(std::string_view id) {
  const std::string_view prefix = kIdPrefix;
  if (id.size() <= prefix.size() || id.size() > prefix.size() + 64 || id.substr(0, prefix.size()) != prefix)
    return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

std::string make_job_id() { return kIdPrefix + random_hex(32); }

JobStore::JobStore(std::string dir) : dir_(std::move(dir)) {}

std::vector<std::string> JobStore::open() {
  std::vector<std::string> warnings;
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) {
    if (fs::exists(dir_, ec))
      throw Error(kExitCantCreate, fmt::format("--jobs-dir {} is not a folder", dir_), "choose a folder");
    fs::create_directories(dir_, ec);
    if (ec)
      throw Error(kExitCantCreate, fmt::format("cannot create --jobs-dir {}: {}", dir_, ec.message()),
                  "check the path and permissions");
  }
  check_output_writable(dir_);
  std::vector<std::string> ids;
  for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(kStagingPrefix, 0) == 0 || name.rfind(kTrashPrefix, 0) == 0) {
      // A submission that was never answered, or a deletion cut short: neither is a job.
      std::error_code rm;
      fs::remove_all(e.path(), rm);
      continue;
    }
    if (valid_job_id(name) && e.is_directory(ec)) ids.push_back(name);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& id : ids) {
    std::string problem;
    std::optional<Job> j = read_job(id, &problem);
    if (!j) {
      warnings.push_back(fmt::format("{}: {}; left as it is", job_dir(id), problem));
      continue;
    }
    if (j->status == JobStatus::kInProgress) {  // its render was cut short: it runs again
      j->status = JobStatus::kQueued;
      j->progress = 0;
    }
    jobs_[id] = std::move(*j);
  }
  return warnings;
}

std::optional<Job> JobStore::read_job(const std::string& id, std::string* problem) const {
  const std::string d = job_dir(id);
  std::optional<json> req = read_json_file(d + "/request.json");
  if (!req || !(*req).contains("settings") || !(*req)["settings"].is_object()) {
    *problem = "request.json is missing or not a job request";
    return std::nullopt;
  }
  Job j;
  j.id = id;
  j.settings = (*req)["settings"];
  j.created_at = opt_int(*req, "created_at").value_or(0);
  j.created_ns = opt_int(*req, "created_ns").value_or(j.created_at * 1000000000LL);
  // request.json makes the job; a state.json that cannot be read means it never ran to a result.
  if (std::optional<json> st = read_json_file(d + "/state.json")) {
    const json& s = *st;
    if (s.contains("status") && s["status"].is_string())
      j.status = parse_status(s["status"].get<std::string>()).value_or(JobStatus::kQueued);
    j.progress = static_cast<int>(std::clamp<int64_t>(opt_int(s, "progress").value_or(0), 0, 100));
    j.started_at = opt_int(s, "started_at");
    j.completed_at = opt_int(s, "completed_at");
    j.attempts = static_cast<int>(std::max<int64_t>(0, opt_int(s, "attempts").value_or(0)));
    if (s.contains("error") && s["error"].is_object()) {
      j.error_code = s["error"].value("code", "");
      j.error_message = s["error"].value("message", "");
    }
  }
  return j;
}

void JobStore::write_state(const Job& job) const { write_json_file(job_dir(job.id) + "/state.json", state_json(job)); }

std::optional<Job> JobStore::submit(json settings, size_t max_queued,
                                    const std::vector<std::pair<std::string, std::string>>& files) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t waiting = reserved_;
    for (const auto& [id, j] : jobs_) waiting += j.status == JobStatus::kQueued;
    if (waiting >= max_queued) return std::nullopt;
    ++reserved_;
  }
  Job j;
  j.id = make_job_id();
  j.settings = std::move(settings);
  j.created_ns = now_ns();
  j.created_at = j.created_ns / 1000000000LL;
  const std::string staging = dir_ + "/" + kStagingPrefix + j.id;
  try {
    std::error_code ec;
    if (!fs::create_directory(staging, ec))
      throw Error(kExitCantCreate, fmt::format("cannot create {}: {}", staging, ec.message()));
    write_json_file(
        staging + "/request.json",
        {{"id", j.id}, {"created_at", j.created_at}, {"created_ns", j.created_ns}, {"settings", j.settings}});
    write_json_file(staging + "/state.json", state_json(j));
    for (const auto& [name, bytes] : files) write_file_atomic(staging + "/" + name, bytes.data(), bytes.size(), false);
    if (::rename(staging.c_str(), job_dir(j.id).c_str()) != 0)
      throw Error(kExitCantCreate, fmt::format("cannot move {} into place: {}", staging, std::strerror(errno)));
    fsync_folder(dir_);
  } catch (...) {
    std::error_code rm;
    fs::remove_all(staging, rm);
    std::lock_guard<std::mutex> lock(mu_);
    --reserved_;
    throw;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    --reserved_;
    jobs_[j.id] = j;
    ++submissions_;
  }
  cv_.notify_all();
  return j;
}

std::optional<Job> JobStore::get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return it->second;
}

std::vector<Job> JobStore::newest_first() const {
  std::vector<Job> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out.reserve(jobs_.size());
    for (const auto& [id, j] : jobs_) out.push_back(j);
  }
  std::sort(out.begin(), out.end(), newer);
  return out;
}

size_t JobStore::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [id, j] : jobs_) n += j.status == JobStatus::kQueued;
  return n;
}

size_t JobStore::queued_on_disk() {
  for (const std::string& id : queued_oldest_first()) reload(id);
  return queued();
}

bool JobStore::remove(const std::string& id) {
  std::string trash;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!jobs_.erase(id)) return false;
    // One rename takes the job away at once; its files go after, outside the lock.
    trash = fmt::format("{}/{}{}-{}", dir_, kTrashPrefix, id, random_hex(8));
    if (::rename(job_dir(id).c_str(), trash.c_str()) != 0) trash.clear();
    fsync_folder(dir_);
  }
  std::error_code ec;
  if (!trash.empty()) fs::remove_all(trash, ec);
  return true;
}

std::vector<std::string> JobStore::queued_oldest_first() const {
  std::vector<const Job*> q;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, j] : jobs_)
    if (j.status == JobStatus::kQueued) q.push_back(&j);
  std::sort(q.begin(), q.end(), [](const Job* a, const Job* b) { return newer(*b, *a); });
  std::vector<std::string> ids;
  for (const Job* j : q) ids.push_back(j->id);
  return ids;
}

std::optional<Job> JobStore::reload(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  std::error_code ec;
  if (!fs::is_directory(job_dir(id), ec)) {  // deleted by another server
    jobs_.erase(it);
    return std::nullopt;
  }
  std::string problem;
  std::optional<Job> j = read_job(id, &problem);
  if (!j) return it->second;
  j->progress = j->status == JobStatus::kCompleted ? 100 : it->second.progress;
  it->second = *j;
  return j;
}

bool JobStore::save(const Job& job) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job.id);
  if (it == jobs_.end()) return false;
  write_state(job);
  const int preview_step = it->second.preview_step;  // kept in memory only
  it->second = job;
  it->second.preview_step = preview_step;
  return true;
}

void JobStore::set_progress(const std::string& id, int progress, int preview_step) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  it->second.progress = progress;
  if (preview_step > 0) it->second.preview_step = preview_step;
}

void JobStore::wait_for_submission(double seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t seen = submissions_;
  cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return submissions_ != seen; });
}

void JobStore::notify_all() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++submissions_;
  }
  cv_.notify_all();
}

void JobStore::journal(const std::string& status, const std::string& id, json fields) const {
  json rec = fields.is_object() ? std::move(fields) : json::object();
  rec["status"] = status;
  rec["id"] = id;
  rec["host"] = host_name();
  rec["pid"] = static_cast<long>(::getpid());
  rec["time"] = utc_now();
  try {
    Manifest(dir_).append(rec);
  } catch (const Error& e) {
    spdlog::warn("could not append to the journal {}/manifest.jsonl: {}", dir_, e.what());
  }
}

}  // namespace t2v
