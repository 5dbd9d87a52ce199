// safetensors reading (mmap, validated as strictly as the reference Rust reader)
// and writing (temp file + fsync + rename). Format: u64 little-endian header
// length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets:[b,e]}, ...,
// "__metadata__": {str: str}}, then the data section; offsets are relative to it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace t2v {

struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0;  // byte offsets inside the data section
  uint64_t end = 0;
};

// One validated, memory-mapped .safetensors file. Every rule of the format is
// checked on open; a violation throws Error(65) whose message names the file
// and, where it applies, the tensor.
class SafetensorsFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's limit

  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // In file order (ascending offsets).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;  // nullptr if absent
  // A CPU tensor viewing the mapped bytes (no copy; keeps the mapping alive).
  Tensor get(const std::string& name) const;
  uint64_t file_size() const { return file_size_; }

 private:
  std::string path_;
  uint64_t file_size_ = 0;
  std::shared_ptr<Storage> map_;  // the whole file
  uint64_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Validates a header given as raw bytes (what SafetensorsFile does after reading
// the length prefix); used by the fuzzer. `data_size` is the data-section size.
std::vector<TensorInfo> parse_safetensors_header(const std::string& origin, const char* json, size_t json_len,
                                                 uint64_t data_size, std::map<std::string, std::string>* metadata);

// A set of tensors spread over one file, a sharded checkpoint
// (`*.safetensors.index.json` with a weight_map), or every .safetensors file of a
// folder. Names are unique across files.
class TensorStore {
 public:
  // path: a .safetensors file, a .safetensors.index.json, or a folder holding either.
  static TensorStore open(const std::string& path);
  const std::vector<std::string>& names() const { return names_; }  // sorted
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // throws Error(65) naming the key if missing
  Tensor get(const std::string& name) const;               // mmap view, file dtype
  std::string file_of(const std::string& name) const;
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }
  std::string description() const;  // e.g. "transformer/ (2 shards)"

 private:
  std::string origin_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
  std::vector<std::string> names_;
};

// Writes tensors (any device; copied to CPU) to `path` atomically: a temp file in
// the same folder, fsync, rename, fsync of the folder. Order is kept. An existing
// `path` that is not a regular file (a link, device, FIFO, folder) is never replaced,
// and with overwrite = false neither is a regular one: Error(73) (docs/bad_inputs.md #58).
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {}, bool overwrite = true);

// Detects pickle/zip checkpoints (.pth/.pt/.ckpt/.bin) by magic bytes and throws
// Error(65) with conversion instructions; no-op for anything else.
void refuse_pickle(const std::string& path);

}  // namespace t2v
