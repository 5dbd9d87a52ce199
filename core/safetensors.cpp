// safetensors reader and writer. The reader validates every rule the reference
// Rust reader (huggingface/safetensors, `SafeTensors::read_metadata`) enforces,
// plus a few it leaves to the caller (duplicate JSON keys, odd tensor names),
// and never sizes an allocation from an unchecked header field.
//
// Caveat on mmap: the file's size is taken with fstat before mapping, and every
// access stays inside that size. If another process truncates the file while it
// is mapped, touching a page past the new end raises SIGBUS; we do not install a
// handler. The header is read with pread (a truncation during open is an
// Error(74)), and CheckpointSource (core/weights.h) re-checks the file's size
// before copying each tensor out of the mapping (Error(74) when it shrank), so
// the remaining window is a truncation racing with one tensor's copy.
#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/json_strict.h"
#include "core/file_io.h"
#include "core/gguf.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace t2v {

namespace fs = std::filesystem;
using file_io::Fd;
using file_io::human_bytes;
using file_io::open_input;
using file_io::pread_all;
using file_io::printable;
using nlohmann::json;

namespace {

constexpr const char* kCorruptHint = "the file is damaged or not a safetensors file; re-download or re-export it";
constexpr const char* kSupportedDtypes = "F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, U8";

[[noreturn]] void bad(const std::string& origin, const std::string& what, const char* hint = kCorruptHint) {
  throw Error(kExitDataErr, origin + ": " + what, hint);
}

// A JSON value for a message ("-1", "1.5", "\"x\""), shortened.
std::string json_repr(const json& v) {
  return printable(v.dump(-1, ' ', false, json::error_handler_t::replace), 60);
}

// The strict parser (core/json_strict.h) with this reader's hint.
json parse_json_strict(const std::string& origin, const char* text, size_t len, int max_depth, const char* what) {
  StrictJsonOptions o;
  o.code = kExitDataErr;
  o.max_depth = max_depth;
  o.what = what;
  o.hint = kCorruptHint;
  return t2v::parse_json_strict(origin, std::string_view(text, len), o);
}

// A non-negative integer JSON value (reject negative, fractional, > 2^64-1,
// which nlohmann parses as a float, and non-numbers).
bool json_u64(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if (i < 0) return false;
    *out = static_cast<uint64_t>(i);
    return true;
  }
  return false;
}

std::string dtype_hint(const std::string& name) {
  if (name.find("FNUZ") != std::string::npos)
    return "FNUZ fp8 (AMD) differs from F8_E4M3/F8_E5M2 in bias and NaN code; convert the checkpoint to BF16 "
           "(or to OCP fp8) in Python first";
  if (name == "F64") return "convert the checkpoint to F32 or BF16 in Python (safetensors.torch.save_file)";
  return "convert the checkpoint to BF16/F16/F32 (or F8_E4M3/F8_E5M2) in Python with safetensors.torch.save_file";
}

void check_tensor_name(const std::string& origin, const std::string& name) {
  if (name.empty()) bad(origin, "a tensor has an empty name");
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      bad(origin, fmt::format("tensor name \"{}\" contains a control character", printable(name)));
  if (name == ".." || name.rfind("../", 0) == 0 || name.find("/..") != std::string::npos)
    bad(origin, fmt::format("tensor name \"{}\" contains a \"..\" path component", printable(name)));
}

// Which pickle-family format the first bytes belong to, or nullptr. A
// safetensors file whose length prefix happens to look like pickle magic (a
// 640-byte header starts 80 02 00 ...) is told apart by its '{' at byte 8.
const char* pickle_kind(const unsigned char* p, size_t n) {
  if (n >= 9 && p[8] == '{') return nullptr;
  if (n >= 4 && p[0] == 'P' && p[1] == 'K' && p[2] == 3 && p[3] == 4) return "a PyTorch zip checkpoint (torch.save)";
  if (n >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5) return "a Python pickle (torch.save legacy format)";
  return nullptr;
}

[[noreturn]] void throw_pickle(const std::string& path, const char* kind) {
  throw Error(kExitDataErr,
              fmt::format("{}: this is {}, not safetensors; pickle checkpoints can run arbitrary code and are not loaded",
                          path, kind),
              fmt::format("convert it once with: python3 -c \"import torch; from safetensors.torch import save_file; "
                          "sd = torch.load('{0}', map_location='cpu', weights_only=True); "
                          "sd = sd.get('state_dict', sd); "
                          "save_file({{k: v.contiguous() for k, v in sd.items()}}, '{0}.safetensors')\"",
                          path));
}

}  // namespace

// ---- header validation --------------------------------------------------------------
std::vector<TensorInfo> parse_safetensors_header(const std::string& origin, const char* text, size_t len,
                                                 uint64_t data_size, std::map<std::string, std::string>* metadata) {
  std::string_view sv(text, len);
  if (auto off = utf8_first_invalid(sv)) bad(origin, fmt::format("header is not valid UTF-8 at byte {}", *off));
  size_t first = sv.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || sv[first] != '{')
    bad(origin, fmt::format("header is not a JSON object (byte {} is not '{{')", first == std::string_view::npos ? len : first));

  // root object -> tensor entry object -> shape / data_offsets array.
  json root = parse_json_strict(origin, text, len, 3, "header");
  if (!root.is_object()) bad(origin, "header is not a JSON object");

  std::vector<TensorInfo> out;
  out.reserve(root.size());
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) bad(origin, "__metadata__ is not a JSON object of strings");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string())
          bad(origin, fmt::format("__metadata__ value for \"{}\" is {}, not a string", printable(m.key()),
                                  json_repr(m.value())),
              "the reference reader refuses non-string metadata; re-save with string values");
        if (metadata) (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    check_tensor_name(origin, name);
    const std::string tn = printable(name);
    if (!entry.is_object()) bad(origin, fmt::format("tensor {}: entry is not a JSON object", tn));
    for (auto f = entry.begin(); f != entry.end(); ++f)
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        bad(origin, fmt::format("tensor {}: unknown field \"{}\" (expected dtype, shape, data_offsets)", tn,
                                printable(f.key())));
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(field)) bad(origin, fmt::format("tensor {}: missing field \"{}\"", tn, field));

    TensorInfo info;
    info.name = name;
    const json& jd = entry["dtype"];
    if (!jd.is_string()) bad(origin, fmt::format("tensor {}: dtype is {}, not a string", tn, json_repr(jd)));
    const std::string& ds = jd.get_ref<const std::string&>();
    auto dt = dtype_from_name(ds);
    if (!dt)
      bad(origin, fmt::format("tensor {}: unsupported dtype \"{}\"; supported: {}", tn, printable(ds), kSupportedDtypes),
          dtype_hint(ds).c_str());
    info.dtype = *dt;

    const json& js = entry["shape"];
    if (!js.is_array()) bad(origin, fmt::format("tensor {}: shape is {}, not an array", tn, json_repr(js)));
    if (js.size() > static_cast<size_t>(kMaxDims))
      bad(origin, fmt::format("tensor {}: shape has {} dimensions; t2v supports at most {}", tn, js.size(), kMaxDims),
          "this is not a Wan/umT5 tensor; pass the right model file");
    // The non-zero dimensions' product must fit whatever their order: a zero
    // dimension does not excuse absurd others ([2^40, 0, 2^40] is refused).
    std::vector<int64_t> dims;
    uint64_t numel = 1;
    bool empty = false;
    for (size_t d = 0; d < js.size(); ++d) {
      uint64_t v;
      if (!json_u64(js[d], &v))
        bad(origin, fmt::format("tensor {}: shape[{}] = {} is not a non-negative integer", tn, d, json_repr(js[d])));
      if (v > static_cast<uint64_t>(INT64_MAX))
        bad(origin, fmt::format("tensor {}: shape[{}] = {} is too large", tn, d, v));
      dims.push_back(static_cast<int64_t>(v));
      if (v == 0) {
        empty = true;
        continue;
      }
      if (numel > static_cast<uint64_t>(INT64_MAX) / v)
        bad(origin, fmt::format("tensor {}: element count overflows for shape {}", tn, json_repr(js)));
      numel *= v;
    }
    if (empty) numel = 0;
    uint64_t itemsize = dtype_size(info.dtype);
    if (numel > UINT64_MAX / itemsize)
      bad(origin, fmt::format("tensor {}: byte count overflows for shape {} {}", tn, json_repr(js), ds));
    uint64_t nbytes = numel * itemsize;
    info.shape = Shape(dims);

    const json& jo = entry["data_offsets"];
    if (!jo.is_array() || jo.size() != 2)
      bad(origin, fmt::format("tensor {}: data_offsets is {}, not [begin, end]", tn, json_repr(jo)));
    for (size_t k = 0; k < 2; ++k)
      if (!json_u64(jo[k], k == 0 ? &info.begin : &info.end))
        bad(origin, fmt::format("tensor {}: data_offsets[{}] = {} is not a non-negative integer", tn, k, json_repr(jo[k])));
    if (info.end < info.begin)
      bad(origin, fmt::format("tensor {}: data_offsets [{}, {}] end before they begin", tn, info.begin, info.end));
    if (info.end - info.begin != nbytes)
      bad(origin, fmt::format("tensor {}: {} bytes for shape {} {} (needs {})", tn, info.end - info.begin,
                              info.shape.str(), ds, nbytes));
    out.push_back(std::move(info));
  }

  // The data section must be covered exactly: sorted by offset, each tensor
  // starts where the previous one ended, the first at 0, the last at the end.
  std::sort(out.begin(), out.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : out) {
    if (t.begin < expected)
      bad(origin, fmt::format("tensor {} (bytes {}..{}) overlaps tensor {} (bytes {}..{})", printable(t.name), t.begin,
                              t.end, printable(prev->name), prev->begin, prev->end));
    if (t.begin > expected)
      bad(origin, fmt::format("gap of {} bytes before tensor {} (data bytes {}..{} belong to no tensor)",
                              t.begin - expected, printable(t.name), expected, t.begin));
    if (t.end > data_size)
      bad(origin, fmt::format("tensor {} ends at data byte {}, file has {} data bytes: truncated", printable(t.name),
                              t.end, data_size),
          "the download or copy was interrupted; re-download the file");
    expected = t.end;
    prev = &t;
  }
  if (expected != data_size)
    bad(origin, fmt::format("{} trailing bytes after the last tensor{} (data section has {} bytes, tensors cover {})",
                            data_size - expected, prev ? fmt::format(" {}", printable(prev->name)) : std::string(), data_size,
                            expected));
  return out;
}

// ---- SafetensorsFile ----------------------------------------------------------------------
SafetensorsFile::SafetensorsFile(const std::string& path) : TensorFile(path) {
  Fd f;
  f.fd = open_input(path);
  file_size_ = file_io::regular_file_size(f.fd, path, "a .safetensors file");

  unsigned char prefix[9] = {};
  pread_all(f.fd, prefix, std::min<uint64_t>(9, file_size_), 0, path);
  if (const char* kind = pickle_kind(prefix, std::min<uint64_t>(9, file_size_))) throw_pickle(path, kind);
  if (file_size_ >= 4 && std::memcmp(prefix, "GGUF", 4) == 0)
    bad(path, "this is a GGUF file, not safetensors",
        "GGUF files are read as model weights (--dit, --t5, a --model folder); this input must be safetensors");
  if (file_size_ < 8)
    bad(path, fmt::format("{} bytes, not a safetensors file (header length missing)", file_size_));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];  // little-endian u64
  if (n > kMaxHeaderBytes)
    bad(path, fmt::format("header length {} exceeds the limit of {} bytes", n, kMaxHeaderBytes));
  if (n > file_size_ - 8)
    bad(path, fmt::format("header claims {} but file has {}: truncated download?", human_bytes(n),
                          human_bytes(file_size_)),
        "re-download the file (compare its sha256 with the one published next to it)");

  // The header is copied out with pread, so parsing cannot fault if the file shrinks.
  std::string header(n, '\0');
  pread_all(f.fd, header.data(), n, 8, path);
  data_start_ = 8 + n;
  tensors_ = parse_safetensors_header(path, header.data(), header.size(), file_size_ - data_start_, &metadata_);
  build_index();
  // Map the size fstat reported; all tensor accesses were validated against it.
  map_ = file_io::map_file(f.fd, file_size_, path);
}

// ---- TensorFile -----------------------------------------------------------------------------------
TensorFile::TensorFile(std::string path) : path_(std::move(path)) {}
TensorFile::~TensorFile() = default;

void TensorFile::build_index() {
  index_.clear();
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

const TensorInfo* TensorFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Tensor TensorFile::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t)
    throw Error(kExitDataErr, fmt::format("{}: no tensor named \"{}\"", path_, printable(name)),
                "run `t2v inspect` on the file to list its tensors");
  size_t off = static_cast<size_t>(data_start_ + t->begin);
  // A quantized tensor is handed out as its raw blocks.
  const Shape shape = t->quant ? Shape{static_cast<int64_t>(t->end - t->begin)} : t->shape;
  // Typed access needs natural alignment; a file may place tensors at any byte
  // offset (safetensors does not pad), so misaligned tensors are copied.
  if (off % dtype_size(t->dtype) != 0) {
    Tensor c = Tensor::empty(shape, t->dtype);
    std::memcpy(c.raw(), static_cast<const char*>(map_->data()) + off, t->end - t->begin);
    return c;
  }
  return Tensor::wrap(map_, off, shape, t->dtype);
}

const char* tensor_type_name(const TensorInfo& t) { return t.quant ? quant_name(*t.quant) : dtype_name(t.dtype); }

// ---- TensorStore ----------------------------------------------------------------------------------
namespace {

std::string read_small_file(const std::string& path, uint64_t cap) {
  Fd f;
  f.fd = open_input(path);
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) throw Error(kExitIoErr, fmt::format("{}: fstat failed: {}", path, std::strerror(errno)));
  if (static_cast<uint64_t>(st.st_size) > cap)
    bad(path, fmt::format("{} is larger than the {} limit for this kind of file", human_bytes(st.st_size),
                          human_bytes(cap)));
  std::string s(static_cast<size_t>(st.st_size), '\0');
  pread_all(f.fd, s.data(), s.size(), 0, path);
  return s;
}

// A shard name from an index must stay inside the index's folder: relative, no
// ".." component. Symlinks are followed (Hugging Face caches link shards to blobs).
bool shard_name_inside(const std::string& s) {
  if (s.empty() || s.find('\0') != std::string::npos) return false;
  fs::path p(s);
  if (p.is_absolute()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

}  // namespace

TensorStore TensorStore::open(const std::string& path) {
  TensorStore st;
  st.origin_ = path;
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status))
    throw Error(kExitNoInput, fmt::format("{}: no such file or folder", path), "check the model path");

  std::vector<std::string> files;
  std::string index_path;
  if (fs::is_directory(status)) {
    std::vector<std::string> indexes, singles, pickles;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      std::string fn = e.path().filename().string();
      if (!e.is_regular_file(ec)) continue;
      if (ends_with(fn, ".safetensors.index.json"))
        indexes.push_back(e.path().string());
      else if (ends_with(fn, ".safetensors") || ends_with(fn, ".gguf"))
        singles.push_back(e.path().string());
      else if (ends_with(fn, ".bin") || ends_with(fn, ".pth") || ends_with(fn, ".pt") || ends_with(fn, ".ckpt"))
        pickles.push_back(fn);
    }
    if (ec) throw Error(kExitNoInput, fmt::format("{}: cannot list folder: {}", path, ec.message()));
    std::sort(indexes.begin(), indexes.end());
    std::sort(singles.begin(), singles.end());
    if (indexes.size() > 1)
      bad(path, fmt::format("folder holds {} index files ({}, ...); cannot tell which checkpoint to load",
                            indexes.size(), fs::path(indexes[0]).filename().string()),
          "pass the .safetensors.index.json you mean");
    if (indexes.size() == 1) {
      index_path = indexes[0];
    } else if (!singles.empty()) {
      files = singles;
    } else {
      throw Error(kExitNoInput, fmt::format("{}: folder holds no .safetensors or .gguf files", path),
                  pickles.empty() ? "pass the folder that holds the model's .safetensors (or .gguf) files"
                                  : "it holds pickle checkpoints (" + pickles[0] +
                                        "); convert them with safetensors.torch.save_file first");
    }
  } else if (ends_with(path, ".index.json")) {
    index_path = path;
  } else {
    files.push_back(path);
  }

  // Index: {"weight_map": {tensor: shard file}} (transformers/diffusers format).
  std::map<std::string, std::string> expected_shard;  // tensor -> shard path
  if (!index_path.empty()) {
    std::string text = read_small_file(index_path, SafetensorsFile::kMaxHeaderBytes);
    if (auto off = utf8_first_invalid(text)) bad(index_path, fmt::format("not valid UTF-8 at byte {}", *off));
    json j = parse_json_strict(index_path, text.data(), text.size(), 8, "index");
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      bad(index_path, "no \"weight_map\" object (not a safetensors index)");
    fs::path dir = fs::path(index_path).parent_path();
    std::set<std::string> shards;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        bad(index_path, fmt::format("weight_map entry for \"{}\" is {}, not a file name", printable(it.key()),
                                    json_repr(it.value())));
      std::string shard = it.value().get<std::string>();
      if (!shard_name_inside(shard))
        bad(index_path, fmt::format("shard \"{}\" (for tensor {}) is outside the index's folder", printable(shard),
                                    printable(it.key())),
            "shard names must be files next to the index");
      std::string sp = (dir / shard).string();
      expected_shard[it.key()] = sp;
      shards.insert(sp);
    }
    for (const std::string& sp : shards) {
      if (!fs::exists(sp, ec))
        throw Error(kExitNoInput,
                    fmt::format("{}: shard \"{}\" is missing", index_path, fs::path(sp).filename().string()),
                    "the download is incomplete; fetch every file listed in the index");
      files.push_back(sp);
    }
  }

  for (const std::string& fpath : files) {
    refuse_pickle(fpath);
    std::shared_ptr<TensorFile> f;
    if (is_gguf_file(fpath))
      f = std::make_shared<GgufFile>(fpath);
    else
      f = std::make_shared<SafetensorsFile>(fpath);
    size_t fi = st.files_.size();
    st.files_.push_back(f);
    for (const TensorInfo& t : f->tensors()) {
      auto [it, inserted] = st.where_.emplace(t.name, fi);
      if (!inserted)
        bad(fpath, fmt::format("tensor {} also appears in {}", printable(t.name), st.files_[it->second]->path()),
            "each tensor must be stored once; remove the stray file from the folder");
    }
  }
  for (const auto& [name, sp] : expected_shard) {
    auto it = st.where_.find(name);
    if (it == st.where_.end() || st.files_[it->second]->path() != sp)
      bad(index_path, fmt::format("index places tensor {} in {}, but that shard does not hold it", printable(name),
                                  fs::path(sp).filename().string()),
          "the index and the shards come from different versions; re-download them together");
  }
  // GGUF files name their model family; one store holds one family.
  for (const auto& f : st.files_) {
    const auto* g = dynamic_cast<const GgufFile*>(f.get());
    if (!g || g->architecture().empty()) {
      st.gguf_ = st.gguf_ || g;
      continue;
    }
    if (!st.architecture_.empty() && st.architecture_ != g->architecture())
      bad(f->path(),
          fmt::format("GGUF architecture '{}' differs from '{}' of the other files in {}", printable(g->architecture()),
                      printable(st.architecture_), path),
          "keep the parts of different models (DiT, text encoder) in separate files and pass them with --dit/--t5");
    st.architecture_ = g->architecture();
    st.gguf_ = true;
  }
  st.names_.reserve(st.where_.size());
  for (const auto& kv : st.where_) st.names_.push_back(kv.first);  // std::map: already sorted
  if (!index_path.empty())
    st.origin_ = index_path;
  return st;
}

const TensorInfo& TensorStore::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end())
    throw Error(kExitDataErr, fmt::format("{}: no tensor named \"{}\"", description(), printable(name)),
                "run `t2v inspect` on the model to list its tensors");
  return *files_[it->second]->find(name);
}

Tensor TensorStore::get(const std::string& name) const {
  info(name);  // throws naming the key
  return files_[where_.at(name)]->get(name);
}

std::string TensorStore::file_of(const std::string& name) const {
  info(name);
  return files_[where_.at(name)]->path();
}

std::string TensorStore::description() const {
  if (files_.size() == 1 && !ends_with(origin_, ".index.json")) return files_[0]->path();
  std::string base = ends_with(origin_, ".index.json") ? fs::path(origin_).parent_path().string() : origin_;
  if (!base.empty() && base.back() != '/') base += '/';
  return fmt::format("{} ({} {})", base, files_.size(),
                     ends_with(origin_, ".index.json") ? (files_.size() == 1 ? "shard" : "shards")
                                                       : (files_.size() == 1 ? "file" : "files"));
}

// ---- writer -------------------------------------------------------------------------------------------
namespace {

void write_all(int fd, const void* buf, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = ::write(fd, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int e = errno;
      throw Error(kExitIoErr, fmt::format("{}: write failed: {}", path, std::strerror(e)),
                  e == ENOSPC || e == EDQUOT ? "free disk space and retry" : "check the destination filesystem");
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

namespace {

// Error(73) when `path` exists and may not be replaced.
void check_replaceable(const std::string& path, bool overwrite) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISREG(st.st_mode))
    throw Error(kExitCantCreate,
                fmt::format("{}: exists and is {}, not a regular file", path,
                            S_ISDIR(st.st_mode) ? "a folder" : S_ISLNK(st.st_mode) ? "a symbolic link" : "a special file"),
                "t2v replaces only regular files; choose another output path");
  if (!overwrite)
    throw Error(kExitCantCreate, fmt::format("{}: already exists", path), "pass --overwrite or choose another name");
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata, bool overwrite) {
  check_replaceable(path, overwrite);
  // Header: metadata first (as the reference writer does), tensors in the given
  // order with contiguous offsets, padded with spaces to a multiple of 8 bytes.
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::vector<Tensor> cpu;
  cpu.reserve(tensors.size());
  std::set<std::string> seen;
  uint64_t off = 0;
  for (const auto& [name, t] : tensors) {
    T2V_ASSERT(t.defined(), "save_safetensors: tensor {} is undefined", name);
    T2V_ASSERT(name != "__metadata__" && !name.empty(), "save_safetensors: invalid tensor name \"{}\"", name);
    T2V_ASSERT(seen.insert(name).second, "save_safetensors: tensor {} given twice", name);
    cpu.push_back(t.to(Device::CPU));
    uint64_t nb = t.nbytes();
    h[name] = {{"dtype", dtype_name(t.dtype())}, {"shape", t.shape().vec()}, {"data_offsets", {off, off + nb}}};
    off += nb;
  }
  std::string header;
  try {
    header = h.dump();
  } catch (const nlohmann::json::type_error& e) {
    throw Error(kExitDataErr, fmt::format("{}: a tensor name or metadata value is not valid UTF-8", path),
                "names and metadata must be UTF-8 text");
  }
  header.append((8 - header.size() % 8) % 8, ' ');
  unsigned char len8[8];
  for (int i = 0; i < 8; ++i) len8[i] = static_cast<unsigned char>((static_cast<uint64_t>(header.size()) >> (8 * i)) & 0xff);

  fs::path dest(path);
  fs::path dir = dest.parent_path().empty() ? fs::path(".") : dest.parent_path();
  std::string tmpl = (dir / fmt::format(".{}.tmp-XXXXXX", dest.filename().string())).string();
  std::vector<char> tmpname(tmpl.begin(), tmpl.end());
  tmpname.push_back('\0');
  int fd = ::mkstemp(tmpname.data());
  if (fd < 0) {
    int e = errno;
    throw Error(kExitCantCreate, fmt::format("{}: cannot create a temporary file in {}: {}", path, dir.string(),
                                             std::strerror(e)),
                "check that the folder exists and is writable");
  }
  std::string tmp(tmpname.data());
  try {
    if (::fchmod(fd, 0644) != 0) {
      // Not fatal: the file stays owner-only.
    }
    write_all(fd, len8, 8, path);
    write_all(fd, header.data(), header.size(), path);
    for (const Tensor& t : cpu)
      if (t.nbytes() > 0) write_all(fd, t.raw(), t.nbytes(), path);
    if (::fsync(fd) != 0) throw Error(kExitIoErr, fmt::format("{}: fsync failed: {}", path, std::strerror(errno)));
    int rc = ::close(fd);
    fd = -1;
    if (rc != 0) throw Error(kExitIoErr, fmt::format("{}: close failed: {}", path, std::strerror(errno)));
    // Checked again just before the rename: the target may have appeared meanwhile.
    check_replaceable(path, overwrite);
    rc = overwrite ? ::rename(tmp.c_str(), path.c_str())
                   : ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
    if (rc != 0 && !overwrite && (errno == EINVAL || errno == ENOSYS)) {
      rc = ::link(tmp.c_str(), path.c_str());  // file systems without RENAME_NOREPLACE
      if (rc == 0) ::unlink(tmp.c_str());
    }
    if (rc != 0)
      throw Error(kExitCantCreate, fmt::format("{}: cannot rename the temporary file into place: {}", path,
                                               std::strerror(errno)));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Persist the rename itself.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    int rc = ::fsync(dfd);
    int e = errno;
    ::close(dfd);
    if (rc != 0 && e != EINVAL)
      throw Error(kExitIoErr, fmt::format("{}: fsync of folder {} failed: {}", path, dir.string(), std::strerror(e)));
  }
}

void refuse_pickle(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return;  // opening it for real reports the problem
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {  // folders, FIFOs, devices: not read here
    ::close(fd);
    return;
  }
  unsigned char buf[9] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  ::close(fd);
  if (n <= 0) return;
  if (const char* kind = pickle_kind(buf, static_cast<size_t>(n))) throw_pickle(path, kind);
}

}  // namespace t2v
