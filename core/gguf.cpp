// GGUF reader (see gguf.h and docs/gguf.md). The rules follow ggml's own reader
// (ggml/src/gguf.cpp) and the format description in ggml's docs/gguf.md, plus a
// few checks the C reader leaves to its callers (duplicate tensor names and keys,
// overlapping tensor data, names with control characters, bool bytes other than
// 0/1). Nothing is allocated from a count before the count is checked against
// the bytes left in the file. Each rule's error: docs/bad_inputs.md #63-67.
#include "core/gguf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "core/error.h"
#include "core/file_io.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace t2v {

using file_io::printable;

namespace {

constexpr const char* kCorruptHint = "the file is damaged or not a GGUF file; re-download it";
constexpr uint64_t kMaxNameBytes = 4096;         // tensor names and keys (ggml itself allows 64 for tensor names)
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;  // key length, 1-byte key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name, n_dims, one ne, type, offset
constexpr int kMaxGgufDims = 4;
constexpr const char* kOrigShapePrefix = "comfy.gguf.orig_shape.";
constexpr const char* kSupportedTypes = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K";

[[noreturn]] void bad(const std::string& origin, const std::string& what, const char* hint = kCorruptHint) {
  throw Error(kExitDataErr, origin + ": " + what, hint);
}

// ggml's type ids (ggml.h, enum ggml_type); removed ids keep their old names.
const char* const kGgmlTypeNames[] = {
    "F32",    "F16",      "Q4_0",     "Q4_1",     "Q4_2",  "Q4_3",  "Q5_0",       "Q5_1",       "Q8_0",       "Q8_1",
    "Q2_K",   "Q3_K",     "Q4_K",     "Q5_K",     "Q6_K",  "Q8_K",  "IQ2_XXS",    "IQ2_XS",     "IQ3_XXS",    "IQ1_S",
    "IQ4_NL", "IQ3_S",    "IQ2_S",    "IQ4_XS",   "I8",    "I16",   "I32",        "I64",        "F64",        "IQ1_M",
    "BF16",   "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",
};

// How t2v stores a ggml type: a plain dtype or a block format; false if unsupported.
bool storage_of(uint32_t id, DType* dtype, std::optional<QuantType>* quant) {
  *quant = std::nullopt;
  switch (id) {
    case 0: *dtype = DType::F32; return true;
    case 1: *dtype = DType::F16; return true;
    case 30: *dtype = DType::BF16; return true;
    case 2: *quant = QuantType::Q4_0; break;
    case 3: *quant = QuantType::Q4_1; break;
    case 6: *quant = QuantType::Q5_0; break;
    case 7: *quant = QuantType::Q5_1; break;
    case 8: *quant = QuantType::Q8_0; break;
    case 10: *quant = QuantType::Q2_K; break;
    case 11: *quant = QuantType::Q3_K; break;
    case 12: *quant = QuantType::Q4_K; break;
    case 13: *quant = QuantType::Q5_K; break;
    case 14: *quant = QuantType::Q6_K; break;
    default: return false;
  }
  *dtype = DType::U8;
  return true;
}

// Bytes of a fixed-size value type; 0 for string and array.
uint64_t scalar_bytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8:
    case GgufValueType::I8:
    case GgufValueType::Bool: return 1;
    case GgufValueType::U16:
    case GgufValueType::I16: return 2;
    case GgufValueType::U32:
    case GgufValueType::I32:
    case GgufValueType::F32: return 4;
    case GgufValueType::U64:
    case GgufValueType::I64:
    case GgufValueType::F64: return 8;
    case GgufValueType::String:
    case GgufValueType::Array: return 0;
  }
  return 0;
}

bool known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::F64); }

uint64_t le_bytes(const char* p, uint64_t n) {
  uint64_t v = 0;
  for (uint64_t i = n; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Little-endian reads from the header bytes, each checked against the file size
// (a truncated file) and against the bytes read so far (read more, retry). What
// is being read is named by two parts, joined only for an error message.
class Reader {
 public:
  Reader(const std::string& origin, const uint8_t* data, size_t size, uint64_t file_size)
      : origin_(origin), data_(data), size_(size), file_size_(file_size) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return file_size_ - pos_; }
  const uint8_t* data() const { return data_; }

  void need(uint64_t n, std::string_view what, std::string_view what2 = {}) {
    if (n > file_size_ - pos_)
      bad(origin_,
          fmt::format("{}{} at byte {} runs past the end of the file ({} bytes): truncated", what, what2, pos_,
                      file_size_),
          "the download or copy was interrupted; re-download the file");
    if (pos_ + n > size_) throw GgufNeedMore{pos_ + n};
  }
  std::string_view bytes(uint64_t n, std::string_view what, std::string_view what2 = {}) {
    need(n, what, what2);
    std::string_view v(reinterpret_cast<const char*>(data_) + pos_, n);
    pos_ += n;
    return v;
  }
  uint32_t u32(std::string_view what, std::string_view what2 = {}) {
    return static_cast<uint32_t>(le_bytes(bytes(4, what, what2).data(), 4));
  }
  uint64_t u64(std::string_view what, std::string_view what2 = {}) { return le_bytes(bytes(8, what, what2).data(), 8); }
  // A gguf string: u64 length, then the bytes; at most `max` bytes.
  std::string_view str(uint64_t max, std::string_view what, std::string_view what2 = {}) {
    const uint64_t at = pos_;
    const uint64_t n = u64(what, what2);
    if (n > max)
      bad(origin_,
          fmt::format("{}{} at byte {} is {} bytes long, more than the {} bytes t2v accepts", what, what2, at, n, max));
    return bytes(n, what, what2);
  }

 private:
  const std::string& origin_;
  const uint8_t* data_;
  size_t size_;
  uint64_t file_size_;
  uint64_t pos_ = 0;
};

// Keys and tensor names: non-empty UTF-8 without control characters.
void check_name(const std::string& origin, std::string_view name, const char* what) {
  if (name.empty()) bad(origin, fmt::format("a {} is empty", what));
  if (auto off = utf8_first_invalid(name))
    bad(origin, fmt::format("{} \"{}\" is not valid UTF-8 at byte {}", what, printable(name), *off));
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      bad(origin, fmt::format("{} \"{}\" contains a control character", what, printable(name)));
}

GgufKV read_kv(Reader& r, const std::string& origin, std::string key, uint32_t type_id) {
  GgufKV kv;
  kv.key = std::move(key);
  const std::string what = fmt::format("the value of \"{}\"", printable(kv.key, 80));  // once per key
  if (!known_value_type(type_id))
    bad(origin, fmt::format("metadata key \"{}\" has unknown value type {}", printable(kv.key), type_id));
  kv.type = static_cast<GgufValueType>(type_id);
  auto check_bools = [&](std::string_view v) {
    for (unsigned char c : v)
      if (c > 1)
        bad(origin, fmt::format("metadata key \"{}\" holds bool byte {} (expected 0 or 1)", printable(kv.key), c));
  };
  if (kv.type == GgufValueType::String) {
    kv.raw = std::string(r.str(UINT64_MAX, what));
    kv.elem_type = kv.type;
    return kv;
  }
  if (kv.type != GgufValueType::Array) {
    kv.raw = std::string(r.bytes(scalar_bytes(kv.type), what));
    kv.elem_type = kv.type;
    if (kv.type == GgufValueType::Bool) check_bools(kv.raw);
    return kv;
  }
  const uint32_t elem = r.u32(what, " (element type)");
  if (elem == static_cast<uint32_t>(GgufValueType::Array))
    bad(origin, fmt::format("metadata key \"{}\" is an array of arrays, which GGUF readers (ggml) do not support",
                            printable(kv.key)));
  if (!known_value_type(elem))
    bad(origin, fmt::format("metadata key \"{}\" is an array of unknown value type {}", printable(kv.key), elem));
  kv.elem_type = static_cast<GgufValueType>(elem);
  kv.count = r.u64(what, " (array length)");
  const uint64_t start = r.pos();
  if (kv.elem_type == GgufValueType::String) {
    if (kv.count > r.left() / 8)
      bad(origin, fmt::format("metadata key \"{}\" claims {} strings, more than the {} bytes left can hold",
                              printable(kv.key), kv.count, r.left()));
    for (uint64_t i = 0; i < kv.count; ++i) r.str(UINT64_MAX, what, " (a string element)");
    kv.raw.assign(reinterpret_cast<const char*>(r.data()) + start, r.pos() - start);
    return kv;
  }
  const uint64_t sz = scalar_bytes(kv.elem_type);
  if (kv.count > r.left() / sz)
    bad(origin, fmt::format("metadata key \"{}\" claims {} {} values, more than the {} bytes left can hold",
                            printable(kv.key), kv.count, gguf_value_type_name(kv.elem_type), r.left()));
  kv.raw = std::string(r.bytes(kv.count * sz, what));
  if (kv.elem_type == GgufValueType::Bool) check_bools(kv.raw);
  return kv;
}

// `comfy.gguf.orig_shape.<tensor>`: the logical shape, PyTorch order.
std::vector<int64_t> orig_shape_of(const std::string& origin, const GgufKV& kv) {
  const auto dims = kv.integers();
  if (!dims || dims->empty() || dims->size() > static_cast<size_t>(kMaxDims))
    bad(origin, fmt::format("metadata {} is {}, expected an array of 1 to {} integers (the tensor's shape)",
                            printable(kv.key), kv.repr(), kMaxDims));
  for (int64_t d : *dims)
    if (d < 0) bad(origin, fmt::format("metadata {} = {} has a negative size", printable(kv.key), kv.repr()));
  return *dims;
}

}  // namespace

const char* gguf_value_type_name(GgufValueType t) {
  static const char* const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                      "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "?";
}

const char* ggml_type_name(uint32_t id) { return id < std::size(kGgmlTypeNames) ? kGgmlTypeNames[id] : nullptr; }

// ---- GgufKV accessors ------------------------------------------------------------------------

std::optional<std::string> GgufKV::string() const {
  if (type != GgufValueType::String) return std::nullopt;
  return raw;
}

namespace {

bool is_integer_type(GgufValueType t) {
  return t == GgufValueType::U8 || t == GgufValueType::I8 || t == GgufValueType::U16 || t == GgufValueType::I16 ||
         t == GgufValueType::U32 || t == GgufValueType::I32 || t == GgufValueType::U64 || t == GgufValueType::I64 ||
         t == GgufValueType::Bool;
}

bool is_signed(GgufValueType t) {
  return t == GgufValueType::I8 || t == GgufValueType::I16 || t == GgufValueType::I32 || t == GgufValueType::I64;
}

// One integer element at `p`; nullopt when it does not fit int64.
std::optional<int64_t> decode_int(GgufValueType t, const char* p) {
  const uint64_t n = scalar_bytes(t);
  const uint64_t v = le_bytes(p, n);
  if (is_signed(t)) {
    const int shift = static_cast<int>(64 - 8 * n);
    return static_cast<int64_t>(v << shift) >> shift;  // sign-extend
  }
  if (v > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return static_cast<int64_t>(v);
}

double decode_number(GgufValueType t, const char* p) {
  if (t == GgufValueType::F32) {
    float f;
    const uint32_t v = static_cast<uint32_t>(le_bytes(p, 4));
    std::memcpy(&f, &v, 4);
    return f;
  }
  if (t == GgufValueType::F64) {
    double d;
    const uint64_t v = le_bytes(p, 8);
    std::memcpy(&d, &v, 8);
    return d;
  }
  if (is_signed(t)) return static_cast<double>(*decode_int(t, p));
  return static_cast<double>(le_bytes(p, scalar_bytes(t)));
}

std::string element_repr(GgufValueType t, const char* p) {
  if (t == GgufValueType::Bool) return *p ? "true" : "false";
  if (t == GgufValueType::F32 || t == GgufValueType::F64) return fmt::format("{:g}", decode_number(t, p));
  if (is_signed(t)) return std::to_string(*decode_int(t, p));
  return std::to_string(le_bytes(p, scalar_bytes(t)));
}

}  // namespace

std::optional<int64_t> GgufKV::integer() const {
  if (is_array() || !is_integer_type(type)) return std::nullopt;
  return decode_int(type, raw.data());
}

std::optional<double> GgufKV::number() const {
  if (is_array() || type == GgufValueType::String) return std::nullopt;
  return decode_number(type, raw.data());
}

std::optional<std::vector<int64_t>> GgufKV::integers() const {
  if (!is_array() || !is_integer_type(elem_type)) return std::nullopt;
  const uint64_t sz = scalar_bytes(elem_type);
  std::vector<int64_t> out;
  out.reserve(count);  // count * sz == raw.size(): checked when read
  for (uint64_t i = 0; i < count; ++i) {
    const auto v = decode_int(elem_type, raw.data() + i * sz);
    if (!v) return std::nullopt;
    out.push_back(*v);
  }
  return out;
}

std::optional<std::vector<std::string>> GgufKV::strings(size_t limit) const {
  if (!is_array() || elem_type != GgufValueType::String) return std::nullopt;
  std::vector<std::string> out;
  size_t p = 0;
  for (uint64_t i = 0; i < count && out.size() < limit; ++i) {
    const uint64_t n = le_bytes(raw.data() + p, 8);  // lengths were checked when read
    out.emplace_back(raw.data() + p + 8, n);
    p += 8 + n;
  }
  return out;
}

std::string GgufKV::repr(size_t max_items) const {
  if (type == GgufValueType::String) return fmt::format("\"{}\"", printable(raw, 80));
  if (!is_array()) return element_repr(type, raw.data());
  std::string s = "[";
  const uint64_t shown = std::min<uint64_t>(count, max_items);
  if (elem_type == GgufValueType::String) {
    const auto items = strings(shown);
    for (size_t i = 0; i < items->size(); ++i) s += fmt::format("{}\"{}\"", i ? ", " : "", printable((*items)[i], 40));
  } else {
    const uint64_t sz = scalar_bytes(elem_type);
    for (uint64_t i = 0; i < shown; ++i)
      s += fmt::format("{}{}", i ? ", " : "", element_repr(elem_type, raw.data() + i * sz));
  }
  if (count > shown) s += fmt::format(", ... ({} {} values)", count, gguf_value_type_name(elem_type));
  return s + "]";
}

const GgufKV* GgufHeader::find(std::string_view key) const {
  for (const GgufKV& kv : metadata)
    if (kv.key == key) return &kv;
  return nullptr;
}

// ---- the header ------------------------------------------------------------------------------

GgufHeader parse_gguf(const std::string& origin, const uint8_t* data, size_t size, uint64_t file_size) {
  if (size > file_size) size = file_size;
  Reader r(origin, data, size, file_size);
  GgufHeader h;
  if (file_size < 4) bad(origin, fmt::format("{} bytes, not a GGUF file (the 4-byte magic is missing)", file_size));
  const std::string_view magic = r.bytes(4, "magic");
  if (magic != "GGUF") bad(origin, fmt::format("not a GGUF file: starts with \"{}\", not \"GGUF\"", printable(magic)));
  h.version = r.u32("version");
  if (h.version != 3 && h.version != 2) {
    const uint32_t swapped = __builtin_bswap32(h.version);
    if (swapped >= 1 && swapped <= 3)
      bad(origin,
          fmt::format("big-endian GGUF (version {} stored byte-swapped); t2v reads little-endian files", swapped),
          "convert the model on a little-endian machine or use the little-endian release");
    bad(origin, fmt::format("GGUF version {} is not supported (t2v reads versions 3 and 2)", h.version),
        h.version == 1 ? "version 1 files predate the current layout; convert them with a current gguf tool"
                       : "the file is damaged or from a newer format; re-download it");
  }
  const uint64_t n_tensors = r.u64("tensor count");
  const uint64_t n_kv = r.u64("metadata count");
  if (n_kv > r.left() / kMinKvBytes)
    bad(origin,
        fmt::format("header claims {} metadata entries, more than the {} bytes after it can hold", n_kv, r.left()));
  if (n_tensors > r.left() / kMinTensorInfoBytes)
    bad(origin, fmt::format("header claims {} tensors, more than the {} bytes after it can hold", n_tensors, r.left()));

  // ---- metadata ----
  h.metadata.reserve(n_kv);
  std::unordered_set<std::string> keys;
  keys.reserve(n_kv);
  std::unordered_map<std::string, std::vector<int64_t>> orig_shapes;  // tensor -> shape
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key(r.str(kMaxNameBytes, "a metadata key"));
    check_name(origin, key, "metadata key");
    if (!keys.insert(key).second)
      bad(origin, fmt::format("duplicate metadata key \"{}\"", printable(key)),
          "a key may appear only once; the file was written by a broken tool");
    const uint32_t type = r.u32("the value type of metadata key ", key);
    h.metadata.push_back(read_kv(r, origin, std::move(key), type));
    const GgufKV& kv = h.metadata.back();
    if (kv.key == "general.alignment") {
      if (kv.type != GgufValueType::U32)
        bad(origin, fmt::format("general.alignment is a {} value, expected u32", gguf_value_type_name(kv.type)));
      h.alignment = static_cast<uint64_t>(*kv.integer());
      if (h.alignment == 0 || (h.alignment & (h.alignment - 1)) != 0)
        bad(origin, fmt::format("general.alignment = {} is not a power of two", h.alignment));
    } else if (kv.key == "general.architecture") {
      if (kv.type != GgufValueType::String)
        bad(origin,
            fmt::format("general.architecture is a {} value, expected a string", gguf_value_type_name(kv.type)));
      check_name(origin, kv.raw, "general.architecture");
      h.architecture = kv.raw;
    } else if (starts_with(kv.key, kOrigShapePrefix)) {
      orig_shapes[kv.key.substr(std::strlen(kOrigShapePrefix))] = orig_shape_of(origin, kv);
    }
  }

  // ---- tensor infos ----
  h.tensors.reserve(n_tensors);
  h.ggml_types.reserve(n_tensors);
  std::unordered_set<std::string> names;
  names.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.name = std::string(r.str(kMaxNameBytes, "a tensor name"));
    check_name(origin, t.name, "tensor name");
    const std::string tn = printable(t.name);
    if (!names.insert(t.name).second)
      bad(origin, fmt::format("duplicate tensor name {}", tn),
          "each tensor must be stored once; the file was written by a broken tool");
    const uint32_t n_dims = r.u32("the dimension count of tensor ", tn);
    if (n_dims == 0 || n_dims > static_cast<uint32_t>(kMaxDims))
      bad(origin, fmt::format("tensor {} has {} dimensions; GGUF allows 1 to {} ({} for an unquantized tensor, as "
                              "ComfyUI-GGUF writes the Wan patch embedding)",
                              tn, n_dims, kMaxGgufDims, kMaxDims));
    uint64_t ne[kMaxDims] = {};
    for (uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = r.u64("the shape of tensor ", tn);
      if (ne[d] > static_cast<uint64_t>(INT64_MAX))
        bad(origin, fmt::format("tensor {}: ne[{}] = {} is too large", tn, d, ne[d]));
    }
    const uint32_t type = r.u32("the type of tensor ", tn);
    const uint64_t offset = r.u64("the offset of tensor ", tn);
    if (!storage_of(type, &t.dtype, &t.quant)) {
      const char* name = ggml_type_name(type);
      if (!name) bad(origin, fmt::format("tensor {} has unknown ggml type {}", tn, type));
      bad(origin,
          fmt::format("tensor {} has type {}, which t2v does not read; supported: {}", tn, name, kSupportedTypes),
          "use a GGUF quantized to a supported type (e.g. Q8_0, Q6_K, Q5_K_M, Q4_K_M)");
    }
    if (n_dims > static_cast<uint32_t>(kMaxGgufDims) && t.quant)
      bad(origin, fmt::format("tensor {} has {} dimensions and type {}; only unquantized tensors may exceed {}", tn,
                              n_dims, quant_name(*t.quant), kMaxGgufDims));
    // The non-zero dimensions' product must fit whatever their order: a zero
    // dimension does not excuse absurd others ([2^40, 0, 2^40] is refused).
    uint64_t numel = 1;
    bool empty = false;
    for (uint32_t d = 0; d < n_dims; ++d) {
      if (ne[d] == 0) {
        empty = true;
        continue;
      }
      if (numel > static_cast<uint64_t>(INT64_MAX) / ne[d])
        bad(origin, fmt::format("tensor {}: element count overflows", tn));
      numel *= ne[d];
    }
    if (empty) numel = 0;
    uint64_t nbytes;
    if (t.quant) {
      const QuantTraits& q = quant_traits(*t.quant);
      if (ne[0] % static_cast<uint64_t>(q.block_elems) != 0)
        bad(origin, fmt::format("tensor {}: rows of {} values are not a multiple of the {} block size {}", tn, ne[0],
                                q.name, q.block_elems));
      nbytes = numel / static_cast<uint64_t>(q.block_elems) * static_cast<uint64_t>(q.block_bytes);  // < numel
    } else {
      nbytes = numel * dtype_size(t.dtype);  // numel <= INT64_MAX, size <= 4: fits
    }
    if (offset % h.alignment != 0)
      bad(origin, fmt::format("tensor {}: offset {} is not a multiple of the alignment {}", tn, offset, h.alignment));
    if (offset > UINT64_MAX - nbytes)
      bad(origin, fmt::format("tensor {}: offset {} + {} bytes overflows", tn, offset, nbytes));
    t.begin = offset;
    t.end = offset + nbytes;
    // Shape in PyTorch order; a ComfyUI orig_shape key names the logical one.
    std::vector<int64_t> dims;
    for (uint32_t d = n_dims; d-- > 0;) dims.push_back(static_cast<int64_t>(ne[d]));
    if (auto it = orig_shapes.find(t.name); it != orig_shapes.end()) {
      uint64_t n = 1;
      bool overflow = false;
      for (int64_t d : it->second) {
        if (d != 0 && n > static_cast<uint64_t>(INT64_MAX) / static_cast<uint64_t>(d)) overflow = true;
        n *= static_cast<uint64_t>(d);
      }
      if (overflow || n != numel)
        bad(origin, fmt::format("metadata {}{} gives {} values, but the tensor holds {}", kOrigShapePrefix, tn,
                                overflow ? std::string("too many") : std::to_string(n), numel));
      dims = it->second;
    }
    t.shape = Shape(dims);
    h.tensors.push_back(std::move(t));
    h.ggml_types.push_back(type);
  }

  // ---- data section: aligned start, every tensor inside the file, no overlaps ----
  const uint64_t end_of_infos = r.pos();
  if (end_of_infos > UINT64_MAX - (h.alignment - 1)) bad(origin, "data section offset overflows");
  h.data_start = (end_of_infos + h.alignment - 1) / h.alignment * h.alignment;
  for (const TensorInfo& t : h.tensors) {
    if (h.data_start > file_size || t.end > file_size - h.data_start)
      bad(origin,
          fmt::format("tensor {} (data bytes {}..{} from byte {}) ends past the end of the file ({} bytes): truncated",
                      printable(t.name), t.begin, t.end, h.data_start, file_size),
          "the download or copy was interrupted; re-download the file");
  }
  std::vector<size_t> order(h.tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const TensorInfo &x = h.tensors[a], &y = h.tensors[b];
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    const TensorInfo &prev = h.tensors[order[i - 1]], &t = h.tensors[order[i]];
    if (t.begin < prev.end)
      bad(origin, fmt::format("tensor {} (data bytes {}..{}) overlaps tensor {} (data bytes {}..{})", printable(t.name),
                              t.begin, t.end, printable(prev.name), prev.begin, prev.end));
  }
  return h;
}

// ---- GgufFile -----------------------------------------------------------------------------------

GgufFile::GgufFile(const std::string& path) : TensorFile(path) {
  file_io::Fd f;
  f.fd = file_io::open_input(path);
  file_size_ = file_io::regular_file_size(f.fd, path, "a .gguf file");
  // The header has no length field: read a prefix, and more while it continues.
  uint64_t want = std::min<uint64_t>(file_size_, uint64_t{1} << 20);
  std::vector<uint8_t> buf;
  for (;;) {
    buf.resize(want);
    file_io::pread_all(f.fd, buf.data(), want, 0, path);
    try {
      header_ = parse_gguf(path, buf.data(), buf.size(), file_size_);
      break;
    } catch (const GgufNeedMore& more) {
      if (more.bytes > kMaxHeaderBytes)
        bad(path, fmt::format("GGUF header is larger than the {} limit", file_io::human_bytes(kMaxHeaderBytes)));
      want =
          std::min<uint64_t>(file_size_, std::max<uint64_t>(more.bytes, std::min<uint64_t>(2 * want, kMaxHeaderBytes)));
    }
  }
  tensors_ = header_.tensors;
  data_start_ = header_.data_start;
  build_index();
  map_ = file_io::map_file(f.fd, file_size_, path);
}

bool is_gguf_file(const std::string& path) {
  if (ends_with(path, ".gguf") || ends_with(path, ".GGUF")) return true;
  // Non-blocking, regular files only: a FIFO must not hang the sniffing.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return false;
  }
  char magic[4] = {};
  const ssize_t n = ::pread(fd, magic, 4, 0);
  ::close(fd);
  return n == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

void require_gguf_architecture(const TensorStore& store, const std::vector<std::string>& expected,
                               const std::string& part) {
  if (!store.is_gguf() || store.architecture().empty()) return;
  if (std::find(expected.begin(), expected.end(), store.architecture()) != expected.end()) return;
  std::string names;
  for (size_t i = 0; i < expected.size(); ++i)
    names += fmt::format("{}'{}'", i == 0 ? "" : (i + 1 == expected.size() ? " or " : ", "), expected[i]);
  throw Error(kExitDataErr,
              fmt::format("{}: GGUF architecture '{}' where {} was expected (general.architecture {})",
                          store.description(), printable(store.architecture()), part, names),
              "pass the GGUF of the right model part (ComfyUI-GGUF's Wan DiT files say 'wan', the umT5 encoder "
              "files 't5encoder')");
}

}  // namespace t2v
