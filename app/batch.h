// `t2v batch`: renders a JSONL prompt list with the models loaded once, resumably.
//
// The list is validated completely before any model file is opened (docs/bad_inputs.md #36-41);
// each finished video gets a record in DIR/manifest.jsonl (with its SHA-256) so a rerun
// skips what is done and verified; items are spread over shards (--shard I/N, Slurm job
// arrays, Kubernetes Indexed Jobs) and claimed with lock files so workers sharing a folder
// never render the same item; SIGINT/SIGTERM stop after the current denoising step with
// exit 75 (retry). See docs/batch.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/options.h"

namespace t2v {

struct BatchOptions {
  std::string list;     // the JSONL file
  std::string out_dir;  // videos, manifest.jsonl and .locks/ go here
  GenerateOptions defaults;  // model, device and the per-item defaults (size, frames, steps, ...)
  int seeds = 1;             // seeds per prompt
  std::string shard;         // "I/N" (0-based), or "" for the environment / a single shard
  int shards = 0;            // shard count for JOB_COMPLETION_INDEX (else T2V_SHARDS)
  bool force = false;        // re-render items that are already done
  bool skip_invalid = false; // leave invalid lines out instead of refusing the list
  bool fail_empty = false;   // an empty list is an error (65) instead of a no-op (0)
  bool low_memory = false;   // free umT5 before the DiT loads, at the cost of reloading it per video
  double lock_timeout_s = 12 * 3600.0;  // a lock older than this is taken over even if its process lives
};

int run_batch(BatchOptions& o);

// ---- internals shared by the batch_*.cpp files (and tests) ----------------------------------

struct BatchItem {
  std::string id;       // unique (case-insensitively) over the expanded list
  int line = 0;         // 1-based line in the list
  std::string file;     // file name inside the output folder
  GenerateOptions opts; // complete settings; opts.output = out_dir/file
  uint64_t seed = 0;
  bool seed_derived = false;  // no seed in the list: derived from the item id
};

struct BatchList {
  std::vector<BatchItem> items;     // expanded (one per seed), in list order
  std::vector<std::string> errors;  // "file:line: message", in line order
  std::vector<std::pair<int, std::string>> error_lines;  // the same as (line, message)
  std::vector<std::string> warnings;
  int invalid_lines = 0;
};

// Reads and validates every line; never throws for bad content (errors are collected),
// Error(66) when the file cannot be read.
BatchList read_batch_list(const std::string& path, const GenerateOptions& defaults, int seeds);

// The seed of an item without one: a hash of its id, so reruns and shards agree.
uint64_t derive_seed(const std::string& id, int k);

// Checks a name used for a file in the output folder; "" when fine, else why not.
std::string unsafe_file_name_problem(const std::string& name);

struct ShardSpec {
  int index = 0, count = 1;
  std::string source;  // "--shard", "SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX" or "" (single)
};

// From `spec` ("I/N"), else SLURM_ARRAY_* or JOB_COMPLETION_INDEX (+ `shards` or T2V_SHARDS).
// Throws Error(64) for inconsistent specs.
ShardSpec resolve_shard(const std::string& spec, int shards);

// The settings that identify a rendered video (prompt, seed, size, ...) as JSON.
nlohmann::json item_settings(const BatchItem& item, const std::string& model);

// ---- manifest -------------------------------------------------------------------------------

// DIR/manifest.jsonl: one JSON record per line ("done", "interrupted", "failed"). Appends are
// whole lines with O_APPEND + fsync under an flock on the manifest, so shards sharing the
// folder can append. An append cut short by a crash (an unterminated last line, or a
// truncated JSON prefix that a later append continued after) is dropped by rewriting the
// file atomically, keeping every intact record; any other damaged line is an Error(65)
// naming the file and line (docs/bad_inputs.md #47, #84).
//
// The manifest and the lock files are opened relative to a descriptor of the output folder
// with O_NOFOLLOW: a symbolic link (or a hard-linked file) planted under their names in a
// shared folder is refused, never written through (docs/bad_inputs.md #69).
class Manifest {
 public:
  explicit Manifest(std::string dir);
  ~Manifest();
  Manifest(const Manifest&) = delete;
  Manifest& operator=(const Manifest&) = delete;
  // Re-reads the file (records appended by other workers included). Returns warnings;
  // throws (73) when the manifest is not a regular file or cannot be appended to, (65)
  // for a damaged line that no crash can leave.
  std::vector<std::string> load();
  void append(const nlohmann::json& record);
  // The last "done" record of `id`, if any.
  std::optional<nlohmann::json> last_done(const std::string& id) const;
  const std::vector<nlohmann::json>& records() const { return records_; }
  const std::string& path() const { return path_; }

 private:
  int dir_fd();
  void check_appendable();
  std::string dir_, path_;
  int dfd_ = -1;
  std::vector<nlohmann::json> records_;
};

// Reads the records of DIR/manifest.jsonl (torn appends skipped; a damaged line or a
// manifest that is a symbolic link is an Error(65)); for `t2v gallery`.
std::vector<nlohmann::json> read_manifest_records(const std::string& dir);

// ---- claiming -------------------------------------------------------------------------------

// DIR/.locks/<id>.lock, created atomically (link of a complete temp file) and flocked while
// held. A lock is live while its flock is held, or while its process (same host) is alive
// and it is younger than the timeout; otherwise it is stale and taken over. `.locks` and the
// lock files must be a real folder and regular files with one link: anything else is an
// Error(73), never followed or truncated.
class ItemLock {
 public:
  ItemLock() = default;
  ~ItemLock() { release(); }
  ItemLock(const ItemLock&) = delete;
  ItemLock& operator=(const ItemLock&) = delete;
  // True when acquired; false when another live worker holds it (`holder` says who).
  bool acquire(const std::string& dir, const std::string& id, double timeout_s, std::string* holder);
  void release() noexcept;

 private:
  std::string name_;  // inside the lock folder
  int dir_fd_ = -1;   // DIR/.locks
  int fd_ = -1;
};

}  // namespace t2v
