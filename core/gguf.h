// GGUF reading (versions 3 and 2, little-endian), validated as strictly as the
// safetensors reader: every count, size, offset and type is checked with
// overflow-safe arithmetic before anything is allocated from it, and the work is
// linear in the header size (hash sets for duplicates, one sort for overlaps).
//
// Layout: "GGUF", u32 version, u64 tensor count, u64 key/value count; the
// key/values (gguf string key, u32 value type, value); the tensor infos (name,
// u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml type, u64 offset); zero
// padding to `general.alignment` (default 32); the data section, each tensor at
// an aligned offset from its start. Strings are u64 length + bytes. The rules
// t2v enforces are listed in docs/gguf.md.
//
// Shapes are handed out in PyTorch order (ne reversed). Two ComfyUI-GGUF
// conventions are understood: 5-D unquantized tensors (`fix_5d_tensors.py` writes
// the Wan patch embedding with n_dims 5) and `comfy.gguf.orig_shape.<name>`, an
// integer array that gives the logical shape of a tensor stored reshaped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/safetensors.h"

namespace t2v {

enum class GgufValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
const char* gguf_value_type_name(GgufValueType t);  // "u32", "string", "array", ...

// One metadata key/value. Scalars and arrays keep the bytes as stored (little-endian);
// the accessors decode them.
struct GgufKV {
  std::string key;
  GgufValueType type = GgufValueType::U8;
  GgufValueType elem_type = GgufValueType::U8;  // the element type of an array
  uint64_t count = 1;                           // elements of an array (1 for a scalar)
  std::string raw;                              // scalar: its bytes; string: its text; array: the elements as stored

  bool is_array() const { return type == GgufValueType::Array; }
  std::optional<std::string> string() const;  // a string value
  std::optional<int64_t> integer() const;     // an integer or bool scalar that fits int64
  std::optional<double> number() const;       // any numeric or bool scalar
  // The elements of an integer array (nullopt for other values or values beyond int64).
  std::optional<std::vector<int64_t>> integers() const;
  // The first `limit` elements of a string array.
  std::optional<std::vector<std::string>> strings(size_t limit = SIZE_MAX) const;
  // For listings: `"wan"`, `32`, `[1, 2, 3]`, `[string x 256384: "<pad>", "</s>", ...]`.
  std::string repr(size_t max_items = 6) const;
};

// What the header of a GGUF file declares, after validation.
struct GgufHeader {
  uint32_t version = 0;
  uint64_t alignment = 32;           // general.alignment
  uint64_t data_start = 0;           // file offset of the data section (aligned)
  std::vector<GgufKV> metadata;      // file order
  std::vector<TensorInfo> tensors;   // file order; begin/end relative to data_start
  std::vector<uint32_t> ggml_types;  // the ggml type id of each tensor
  std::string architecture;          // general.architecture; "" when absent

  const GgufKV* find(std::string_view key) const;  // nullptr if absent
};

// Validates the header of a GGUF file of `file_size` bytes whose first `size`
// bytes are `data`; Error(65) naming `origin` for any violation. When the header
// continues past `size` (< file_size), throws GgufNeedMore: read more and retry.
GgufHeader parse_gguf(const std::string& origin, const uint8_t* data, size_t size, uint64_t file_size);
struct GgufNeedMore {
  uint64_t bytes;  // at least this many are needed
};

// The ggml name of a tensor type id ("Q4_K", "IQ4_XS"), or nullptr for ids ggml does not define.
const char* ggml_type_name(uint32_t id);

// A validated, memory-mapped GGUF file. The header is read with pread (a file
// shrinking during open is an Error(74)); tensors view the mapping as
// SafetensorsFile's do.
class GgufFile : public TensorFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 1ull << 30;  // tokenizer vocabularies take a few MB

  explicit GgufFile(const std::string& path);
  const char* format() const override { return "GGUF"; }
  const GgufHeader& header() const { return header_; }
  const std::string& architecture() const { return header_.architecture; }

 private:
  GgufHeader header_;
};

// True when `path` ends in .gguf or starts with the GGUF magic (no throw).
bool is_gguf_file(const std::string& path);

// For a store with GGUF files: Error(65) unless its general.architecture is one
// of `expected` (a missing architecture passes: the tensor names decide).
// `part` names what was expected ("a Wan DiT").
void require_gguf_architecture(const TensorStore& store, const std::vector<std::string>& expected,
                               const std::string& part);

}  // namespace t2v
