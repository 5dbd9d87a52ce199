#include "core/weights.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace t2v {

namespace {

constexpr size_t kListedKeys = 8;  // keys named in one error; the rest are counted

bool ends_with(const std::string& s, std::string_view suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// File keys that carry no weights of their own: Comfy's `scaled_fp8` marker,
// the per-tensor fp8 scales (consumed with their weight, or unused when a model
// skips that weight) and tokenizer blobs some single-file checkpoints embed.
bool is_marker_key(const std::string& k) {
  std::string_view last = k;
  if (size_t p = k.rfind('.'); p != std::string::npos) last = std::string_view(k).substr(p + 1);
  return last == "scaled_fp8" || last == "spiece_model" || ends_with(k, ".scale_weight") ||
         ends_with(k, ".scale_input");
}

std::string join_first(const std::vector<std::string>& keys, size_t n) {
  std::string s;
  for (size_t i = 0; i < keys.size() && i < n; ++i) s += (i ? ", " : "") + keys[i];
  if (keys.size() > n) s += fmt::format(", ... ({} more)", keys.size() - n);
  return s;
}

constexpr const char* kMissingPrefix = "missing ";

// The mapping stays valid only while the file keeps its size: reading a page past
// a new, shorter end raises SIGBUS. Check before copying each tensor out, so a
// file truncated during the load (a re-download over it) is an I/O error instead.
void check_file_unchanged(const TensorStore& store, const std::string& key) {
  const std::string path = store.file_of(key);
  for (const auto& f : store.files()) {
    if (f->path() != path) continue;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_size) < f->file_size())
      throw Error(kExitIoErr,
                  fmt::format("{}: file changed while loading (was {} bytes, now {})", path, f->file_size(),
                              ::stat(path.c_str(), &st) == 0 ? std::to_string(st.st_size) : std::strerror(errno)),
                  "another process is replacing the model file; wait for it to finish and retry");
    return;
  }
}

}  // namespace

WeightLoader::WeightLoader(const TensorStore& store, WeightLoaderOptions opts) : store_(store), opts_(std::move(opts)) {}

std::string WeightLoader::file_key(const std::string& canonical) const {
  return opts_.strip_prefix + (opts_.rename ? opts_.rename(canonical) : canonical);
}

bool WeightLoader::has(const std::string& canonical_key) const { return store_.contains(file_key(canonical_key)); }

Tensor WeightLoader::get(const std::string& canonical_key, const Shape& expected) {
  return get_as(canonical_key, expected, opts_.dtype);
}

Tensor WeightLoader::get_f32(const std::string& canonical_key, const Shape& expected) {
  return get_as(canonical_key, expected, DType::F32);
}

Tensor WeightLoader::get_as(const std::string& canonical_key, const Shape& expected, DType dt) {
  const std::string fk = file_key(canonical_key);
  if (!store_.contains(fk)) {
    problems_.push_back(kMissingPrefix + canonical_key);
    return {};
  }
  used_.insert(fk);
  const TensorInfo& info = store_.info(fk);
  std::string shown = fk == canonical_key ? canonical_key : fmt::format("{} (file key {})", canonical_key, fk);
  if (info.shape != expected) {
    std::string hint = opts_.shape_hint ? opts_.shape_hint(canonical_key, info.shape, expected) : std::string();
    problems_.push_back(fmt::format("{} is {}, config expects {}{}{}", shown, info.shape.str(), expected.str(),
                                    hint.empty() ? "" : ": ", hint));
    return {};
  }
  if (dtype_is_float(info.dtype) != dtype_is_float(dt)) {
    problems_.push_back(fmt::format("{} has dtype {}, expected {} data ({})", shown, dtype_name(info.dtype),
                                    dtype_is_float(dt) ? "floating-point" : "integer", dtype_name(dt)));
    return {};
  }

  check_file_unchanged(store_, fk);
  Tensor src = store_.get(fk);
  Tensor out;
  const bool fp8 = info.dtype == DType::F8_E4M3 || info.dtype == DType::F8_E5M2;
  const std::string scale_key = ends_with(fk, ".weight") ? fk.substr(0, fk.size() - 7) + ".scale_weight" : "";
  if (fp8 && !scale_key.empty() && store_.contains(scale_key)) {
    // Scaled fp8 (Comfy `scaled_fp8` checkpoints): the stored value is w / scale,
    // rounded to fp8; dequantize in fp32 before the cast to the compute dtype.
    used_.insert(scale_key);
    const TensorInfo& si = store_.info(scale_key);
    if (si.shape.numel() != 1 || !dtype_is_float(si.dtype)) {
      problems_.push_back(fmt::format("{} is {}{}, expected a single floating-point scale", scale_key,
                                      dtype_name(si.dtype), si.shape.str()));
      return {};
    }
    check_file_unchanged(store_, scale_key);
    float scale = store_.get(scale_key).item(0);
    Tensor f = src.to(DType::F32);
    float* p = f.data<float>();
    const int64_t n = f.numel();
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) p[i] *= scale;
    out = f.to(dt);
  } else {
    out = src.to(dt);
  }
  // Never hand out a view of the mapping: the model then owns writable memory
  // and cannot fault later if the file changes on disk.
  if (out.storage() == src.storage()) out = out.clone();
  return out.to(opts_.device);
}

void WeightLoader::finish(bool strict) {
  if (!problems_.empty()) {
    std::vector<std::string> missing, other;
    for (const std::string& p : problems_) {
      if (p.rfind(kMissingPrefix, 0) == 0)
        missing.push_back(p.substr(std::strlen(kMissingPrefix)));
      else
        other.push_back(p);
    }
    std::string msg;
    if (!missing.empty())
      msg = fmt::format("missing {} tensor{} for layout '{}': {}", missing.size(), missing.size() == 1 ? "" : "s",
                        opts_.layout, join_first(missing, kListedKeys));
    if (!other.empty())
      msg += fmt::format("{}{}", msg.empty() ? "" : "; ", join_first(other, missing.empty() ? kListedKeys : 3));
    throw Error(kExitDataErr, fmt::format("{}: {}", store_.description(), msg),
                "the checkpoint does not match the expected model; check that the file is the intended model "
                "(size, version) and complete");
  }
  unused_.clear();
  for (const std::string& k : store_.names())
    if (!used_.count(k) && !is_marker_key(k)) unused_.push_back(k);
  if (unused_.empty()) return;
  std::string msg = fmt::format("{}: {} unexpected tensor{} for layout '{}': {}", store_.description(), unused_.size(),
                                unused_.size() == 1 ? "" : "s", opts_.layout, join_first(unused_, kListedKeys));
  if (strict)
    throw Error(kExitDataErr, msg, "the file holds weights this model does not use; drop --strict to only warn");
  spdlog::warn("{}", msg);
}

}  // namespace t2v
