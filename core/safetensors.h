// safetensors reading (mmap, validated as strictly as the reference Rust reader)
// and writing (temp file + fsync + rename). Format: u64 little-endian header
// length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets:[b,e]}, ...,
// "__metadata__": {str: str}}, then the data section; offsets are relative to it.
// TensorStore also opens GGUF files (core/gguf.h) through the same TensorFile interface.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/quant.h"
#include "core/tensor.h"

namespace t2v {

struct TensorInfo {
  std::string name;
  DType dtype;         // U8 for a quantized tensor (its raw blocks)
  Shape shape;         // logical shape, PyTorch order (outermost first)
  uint64_t begin = 0;  // byte offsets inside the data section
  uint64_t end = 0;
  std::optional<QuantType> quant;  // GGUF block format (core/quant.h); nullopt: plain `dtype`
};

// "F16", "Q4_K": the dtype or block format a tensor is stored in.
const char* tensor_type_name(const TensorInfo& t);

// One validated, memory-mapped checkpoint file: safetensors (below) or GGUF
// (core/gguf.h). Every rule of the format is checked on open; a violation
// throws Error(65) whose message names the file and, where it applies, the tensor.
class TensorFile {
 public:
  virtual ~TensorFile();
  TensorFile(const TensorFile&) = delete;
  TensorFile& operator=(const TensorFile&) = delete;

  virtual const char* format() const = 0;  // "safetensors" or "GGUF"
  const std::string& path() const { return path_; }
  // In file order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;  // nullptr if absent
  // A CPU tensor viewing the mapped bytes (no copy; keeps the mapping alive);
  // a quantized tensor as its raw blocks, U8 [end - begin].
  Tensor get(const std::string& name) const;
  uint64_t file_size() const { return file_size_; }

 protected:
  explicit TensorFile(std::string path);
  void build_index();  // after tensors_ is filled

  std::string path_;
  uint64_t file_size_ = 0;
  std::shared_ptr<Storage> map_;  // the whole file
  uint64_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
};

class SafetensorsFile : public TensorFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's limit

  explicit SafetensorsFile(const std::string& path);
  const char* format() const override { return "safetensors"; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::map<std::string, std::string> metadata_;
};

// Validates a header given as raw bytes (what SafetensorsFile does after reading
// the length prefix); used by the fuzzer. `data_size` is the data-section size.
std::vector<TensorInfo> parse_safetensors_header(const std::string& origin, const char* json, size_t json_len,
                                                 uint64_t data_size, std::map<std::string, std::string>* metadata);

// A set of tensors spread over one file, a sharded checkpoint
// (`*.safetensors.index.json` with a weight_map), or every .safetensors and .gguf
// file of a folder. Names are unique across files.
class TensorStore {
 public:
  // path: a .safetensors or .gguf file (told apart by its magic bytes), a
  // .safetensors.index.json, or a folder holding either.
  static TensorStore open(const std::string& path);
  const std::vector<std::string>& names() const { return names_; }  // sorted
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // throws Error(65) naming the key if missing
  Tensor get(const std::string& name) const;               // mmap view, file dtype
  std::string file_of(const std::string& name) const;
  const std::vector<std::shared_ptr<TensorFile>>& files() const { return files_; }
  std::string description() const;  // e.g. "transformer/ (2 shards)"
  // True when a file of the store is GGUF; its general.architecture ("wan",
  // "t5encoder"; "" when it has none), the same for every GGUF file of the store.
  bool is_gguf() const { return gguf_; }
  const std::string& architecture() const { return architecture_; }

 private:
  std::string origin_;
  std::vector<std::shared_ptr<TensorFile>> files_;
  bool gguf_ = false;
  std::string architecture_;
  std::map<std::string, size_t> where_;
  std::vector<std::string> names_;
};

// Writes tensors (any device; copied to CPU) to `path` atomically: a temp file in
// the same folder, fsync, rename, fsync of the folder. Order is kept. An existing
// `path` that is not a regular file (a link, device, FIFO, folder) is never replaced,
// and with overwrite = false neither is a regular one: Error(73) (docs/bad_inputs.md #71).
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {}, bool overwrite = true);

// Detects pickle/zip checkpoints (.pth/.pt/.ckpt/.bin) by magic bytes and throws
// Error(65) with conversion instructions; no-op for anything else.
void refuse_pickle(const std::string& path);

}  // namespace t2v
