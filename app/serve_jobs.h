// `t2v serve`: the jobs on disk. Each accepted job is a folder under the jobs dir,
//
//   JOBS/video_<32 hex>/request.json   the settings it renders (written once)
//                      /state.json     status, timestamps, attempts, error (replaced atomically)
//                      /video.mp4      when completed (temp file + rename, by the pipeline)
//                      /thumbnail.png, spritesheet.png, preview.png
//   JOBS/.locks/<id>.lock              held while a server renders it (batch's ItemLock)
//   JOBS/manifest.jsonl                journal: submitted, started, done, failed, requeued, deleted
//
// A new folder is written as .staging-<id> and renamed into place, so a job is complete or absent;
// a deleted one is renamed to .trash-<id>-... before it is removed. State changes:
//
//   queued -> in_progress -> completed | failed
//   in_progress -> queued   (shutdown at the next step; on disk after a crash: requeued on start)
//   any -> (deleted)
//
// Progress and the latest preview step live in memory; everything else is written before it is
// reported. docs/serve.md describes the layout and the state machine.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace t2v {

enum class JobStatus { kQueued, kInProgress, kCompleted, kFailed };
const char* job_status_name(JobStatus s);  // "queued", "in_progress", "completed", "failed"

struct Job {
  std::string id;
  nlohmann::json settings;  // as stored in request.json (job_settings_json)
  int64_t created_at = 0;   // unix seconds
  int64_t created_ns = 0;   // submission order (ties broken by id)
  JobStatus status = JobStatus::kQueued;
  int progress = 0;  // 0..100
  std::optional<int64_t> started_at, completed_at;
  std::string error_code, error_message;  // when failed
  int attempts = 0;                       // renders started
  int preview_step = 0;                   // denoising step of the latest live preview, 0 for none
};

// Ids the server makes and accepts: "video_" then 1..64 of [A-Za-z0-9_-]. Nothing else ever
// names a path under the jobs dir.
bool valid_job_id(std::string_view id);
std::string make_job_id();  // "video_" + 32 random hex digits

class JobStore {
 public:
  explicit JobStore(std::string dir);

  // Creates the folder when missing, checks that it is writable (Error 73), removes what
  // interrupted submissions and deletions left, and loads every job. Jobs found in_progress
  // are queued again in memory (a worker that claims one rewrites its state). Returns warnings.
  std::vector<std::string> open();
  const std::string& dir() const { return dir_; }
  std::string job_dir(const std::string& id) const { return dir_ + "/" + id; }

  // Writes the new job's folder (complete or absent) and queues it; nullopt when `max_queued`
  // jobs are already waiting. Error(73/74) when the disk refuses.
  std::optional<Job> submit(nlohmann::json settings, size_t max_queued);

  std::optional<Job> get(const std::string& id) const;
  std::vector<Job> newest_first() const;
  size_t queued() const;
  // queued() after reading each queued job's state from disk again: another server sharing the
  // folder may have rendered some since this one last looked (the count at shutdown).
  size_t queued_on_disk();
  // Removes the job's folder; false for an unknown id.
  bool remove(const std::string& id);

  // ---- the worker ----
  std::vector<std::string> queued_oldest_first() const;
  // The job as its files say now (another server sharing the folder may have moved it on),
  // also updating memory; nullopt when its folder is gone.
  std::optional<Job> reload(const std::string& id);
  // Writes state.json and updates memory; false when the job was deleted meanwhile.
  bool save(const Job& job);
  void set_progress(const std::string& id, int progress, int preview_step);  // memory only
  // Waits until a job is submitted or `seconds` pass.
  void wait_for_submission(double seconds);
  void notify_all();

  // One journal record (status, id, host, pid, time + `fields`); failures are logged only.
  void journal(const std::string& status, const std::string& id, nlohmann::json fields = {}) const;

 private:
  void write_state(const Job& job) const;
  std::optional<Job> read_job(const std::string& id, std::string* problem) const;

  std::string dir_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Job> jobs_;
  size_t reserved_ = 0;       // submissions being written
  uint64_t submissions_ = 0;  // bumps wake the worker
};

}  // namespace t2v
