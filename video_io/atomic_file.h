// Output files appear complete or not at all (docs/bad_inputs.md #42-46, docs/conventions.md §8.1).
//
// Every file t2v writes (MP4, contact sheet, GIF) goes to a temp file in the destination
// folder, named `.<name>.tmp-XXXXXX.<ext>`, is fsynced, renamed into place and the folder
// is fsynced. Same folder means same file system, so the rename is atomic; a crash leaves
// either nothing or a temp file that `clean_stale_temp_files` removes on the next start.
// A writer holds an exclusive flock on its temp file for its whole life, so a cleaner
// started by another shard sharing the folder skips files that are still being written.
#pragma once

#include <string>
#include <string_view>

namespace t2v {

class AtomicFile {
 public:
  AtomicFile() = default;
  ~AtomicFile();  // discards the temp file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Creates the temp file next to `path`. Throws Error(73) when the folder is missing, not a
  // folder or not writable, when `path` exists and `overwrite` is false, or when it exists
  // and is not a regular file (check_output_target); Error(74) when the file system is full.
  void create(const std::string& path, bool overwrite);

  // fsyncs the temp file, renames it to path() (RENAME_NOREPLACE unless overwrite: a file
  // that appeared meanwhile, e.g. from another shard, gives Error(73) and is kept) and
  // fsyncs the folder. On failure the temp file is deleted and the error rethrown.
  void commit();

  // Deletes the temp file if there is one; safe to call more than once.
  void discard() noexcept;

  bool active() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  std::string path_, temp_path_;
  int fd_ = -1;
  bool overwrite_ = false;
};

// Checks, before any work, that `path` can be written as a new file: its name fits the
// file system (NAME_MAX), it does not name a folder, and an existing entry is a regular
// file that `overwrite` allows replacing. A symbolic link (dangling or not), FIFO, socket
// or device there is never replaced or written through. Error(73) says which
// (docs/bad_inputs.md #71, #72). The folder itself is check_output_writable's job.
void check_output_target(const std::string& path, bool overwrite);

// Writes `size` bytes to `path` through an AtomicFile. Error(74) names `path` on a write error.
void write_file_atomic(const std::string& path, const void* data, size_t size, bool overwrite);

// fsyncs a folder so the names created or renamed in it survive a power loss (best effort:
// file systems without directory fsync are left as they are).
void fsync_folder(const std::string& dir);

// Checks, before any model is loaded, that files can be created in `dir` by creating and
// deleting a temp file there. Error(73) says what is wrong and how to fix it.
void check_output_writable(const std::string& dir);

// Preflight for disk-full (docs/bad_inputs.md #44): Error(74) when the file system holding `dir`
// has fewer than `bytes` available to us (statvfs f_bavail) or no free inodes.
void check_free_space(const std::string& dir, uint64_t bytes);

// True for names AtomicFile gives its temp files: `.<name>.tmp-XXXXXX.<ext>` with six
// characters from [A-Za-z0-9] (mkstemps) and an alphanumeric extension of 1-8 characters.
bool is_temp_file_name(std::string_view name);

// Deletes regular files in `dir` (not in subfolders) whose names match is_temp_file_name
// and that no live writer holds locked. Returns how many were deleted.
int clean_stale_temp_files(const std::string& dir);

}  // namespace t2v
