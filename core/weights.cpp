#include "core/weights.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include <spdlog/spdlog.h>

#include "core/finite.h"
#include "core/philox.h"
#include "core/strings.h"

namespace t2v {

namespace {

constexpr size_t kListedMissing = 8;     // keys named in one error; the rest are counted
constexpr size_t kListedMismatches = 4;  // wrong shapes/dtypes named before the missing keys

std::string plural(size_t n, const char* word) { return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s"); }

std::string join_first(const std::vector<std::string>& items, size_t n, const char* sep) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < n; ++i) s += (i ? sep : "") + items[i];
  if (items.size() > n) s += fmt::format("{}... ({} more)", sep, items.size() - n);
  return s;
}

bool is_convertible(DType dt) {
  return dt == DType::F32 || dt == DType::F16 || dt == DType::BF16 || dt == DType::F8_E4M3 || dt == DType::F8_E5M2;
}

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

// FNV-1a of the key: the per-tensor stream of RandomSource.
uint64_t key_hash(const std::string& key) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

bool is_marker_key(std::string_view k) {
  std::string_view last = k;
  if (size_t p = k.rfind('.'); p != std::string_view::npos) last = k.substr(p + 1);
  return last == "scaled_fp8" || last == "spiece_model" || ends_with(k, ".scale_weight") ||
         ends_with(k, ".scale_input");
}

// ---- WeightSource / WeightScope -------------------------------------------------------------

std::optional<PackedWeight> WeightSource::get_packed(const WeightRequest&) { return std::nullopt; }

WeightScope::WeightScope(WeightSource& source, std::string prefix) : source_(&source), prefix_(std::move(prefix)) {}

std::string WeightScope::key(std::string_view name) const {
  if (prefix_.empty()) return std::string(name);
  if (name.empty()) return prefix_;
  return prefix_ + "." + std::string(name);
}

WeightScope WeightScope::pp(std::string_view name) const { return WeightScope(*source_, key(name)); }
WeightScope WeightScope::pp(int64_t index) const { return pp(std::to_string(index)); }

Tensor WeightScope::get(std::string_view name, const Shape& shape, WeightPrecision precision) const {
  return source_->get(WeightRequest{key(name), shape, precision});
}

MaybePacked WeightScope::get_packable(std::string_view name, const Shape& shape) const {
  const WeightRequest req{key(name), shape, WeightPrecision::Compute};
  MaybePacked out;
  out.packed = source_->get_packed(req);
  if (!out.packed) out.dense = source_->get(req);
  return out;
}

bool WeightScope::has(std::string_view name) const { return source_->has(key(name)); }

// ---- CheckpointSource ------------------------------------------------------------------------

CheckpointSource::CheckpointSource(const TensorStore& store, WeightLayout layout, CheckpointOptions opts)
    : WeightSource(opts.device, opts.dtype), store_(store), layout_(std::move(layout)), opts_(std::move(opts)) {
  report_.layout = layout_.name;
}

std::string CheckpointSource::file_key(const std::string& key) const {
  return layout_.file_key ? layout_.file_key(key) : key;
}

bool CheckpointSource::has(const std::string& key) const { return store_.contains(file_key(key)); }

std::string CheckpointSource::origin() const {
  return opts_.model.empty() ? fmt::format("{} ({} layout)", store_.description(), layout_.name)
                             : fmt::format("{} ({}, {} layout)", store_.description(), opts_.model, layout_.name);
}

std::string CheckpointSource::named(const std::string& fk, const std::string& key) const {
  return fk == key ? key : fmt::format("{} (canonical {})", fk, key);
}

void CheckpointSource::report(std::string problem) { mismatches_.push_back(std::move(problem)); }

Tensor CheckpointSource::get(const WeightRequest& req) {
  const std::string fk = file_key(req.key);
  if (!store_.contains(fk)) {
    missing_.push_back(named(fk, req.key));
    return {};
  }
  used_.insert(fk);
  const TensorInfo& info = store_.info(fk);
  const bool headline = std::find(opts_.headline_keys.begin(), opts_.headline_keys.end(), req.key) !=
                        opts_.headline_keys.end();
  auto problem = [&](std::string line) {
    (headline ? headline_ : mismatches_).push_back(std::move(line));
    return Tensor();
  };
  if (info.shape != req.shape) {
    const ShapeNote n = opts_.shape_note ? opts_.shape_note(req.key, info.shape, req.shape) : ShapeNote{};
    if (hint_.empty()) hint_ = n.hint;
    return problem(fmt::format("{} is {}, config expects {}{}{}", named(fk, req.key), info.shape.str(),
                               req.shape.str(), n.note.empty() ? "" : ": ", n.note));
  }
  if (!info.quant && !is_convertible(info.dtype))
    return problem(fmt::format("{} has dtype {}, expected a float type (F32, F16, BF16, F8_E4M3 or F8_E5M2)",
                               named(fk, req.key), dtype_name(info.dtype)));
  // Scaled fp8 (Comfy `scaled_fp8` checkpoints): the stored value is w / scale,
  // rounded to fp8; the weight is dequantized in fp32 before any other step.
  const bool fp8 = info.dtype == DType::F8_E4M3 || info.dtype == DType::F8_E5M2;
  const std::string scale_key = ends_with(fk, ".weight") ? fk.substr(0, fk.size() - 7) + ".scale_weight" : "";
  const bool scaled = fp8 && !scale_key.empty() && store_.contains(scale_key);
  if (scaled) {
    used_.insert(scale_key);
    const TensorInfo& si = store_.info(scale_key);
    if (si.shape.numel() != 1 || !dtype_is_float(si.dtype))
      return problem(fmt::format("{} is {}{}, expected a single floating-point scale", scale_key,
                                 dtype_name(si.dtype), si.shape.str()));
  }
  report_.num_tensors += 1;
  report_.num_params += info.shape.numel();
  if (opts_.dry_run) return {};

  const DType dt = dtype_of(req.precision);
  const bool delta = opts_.delta && opts_.delta->touches(req.key);
  check_file_unchanged(store_, fk);
  const Tensor src = store_.get(fk);
  Tensor out;
  if (info.quant) {
    // Quantized blocks (GGUF): dequantized to the reference's fp32 values, then
    // handled as any fp32 weight.
    Tensor f = Tensor::empty(info.shape, DType::F32);
    dequantize(*info.quant, src.raw(), f.data<float>(), f.numel());
    if (delta) opts_.delta->apply(req.key, f);
    out = f.to(dt);
  } else if (scaled || delta) {
    Tensor f = src.to(DType::F32);
    if (f.storage() == src.storage()) f = f.clone();  // never write into the mapping
    if (scaled) {
      check_file_unchanged(store_, scale_key);
      const float scale = store_.get(scale_key).item(0);
      float* p = f.data<float>();
      const int64_t n = f.numel();
#pragma omp parallel for if (n > 65536)
      for (int64_t i = 0; i < n; ++i) p[i] *= scale;
    }
    if (delta) opts_.delta->apply(req.key, f);
    out = f.to(dt);
  } else {
    out = src.to(dt);
  }
  // Never hand out a view of the mapping: the model then owns writable memory
  // and cannot fault later if the file changes on disk.
  if (out.storage() == src.storage()) out = out.clone();
  // One vectorised pass over the converted weight: a NaN or Inf in a checkpoint would
  // otherwise surface as a black video (docs/bad_inputs.md #19). Overflow in the
  // conversion (fp8 x scale, a narrower dtype) is caught too.
  if (const int64_t bad = first_non_finite(out); bad >= 0)
    throw Error(kExitDataErr,
                fmt::format("{}: tensor {} holds NaN or Inf (element {} of {})", store_.file_of(fk), named(fk, req.key),
                            bad, out.numel()),
                "the checkpoint is damaged or was saved from a diverged run; re-download or re-export it");
  return out.to(device());
}

std::optional<PackedWeight> CheckpointSource::get_packed(const WeightRequest& req) {
  // Packed weights run in fp32 on the CPU (ops::linear_packed); other backends
  // get the dequantized weight in their compute dtype.
  if (!opts_.keep_packed || device() != Device::CPU || dtype() != DType::F32 ||
      req.precision != WeightPrecision::Compute)
    return std::nullopt;
  const std::string fk = file_key(req.key);
  if (!store_.contains(fk)) return std::nullopt;  // get() records it as missing
  const TensorInfo& info = store_.info(fk);
  // Anything else (a shape problem, a row that is not whole blocks after a
  // ComfyUI reshape, a delta to merge) goes through get().
  if (!info.quant || info.shape != req.shape || req.shape.ndim() != 2 ||
      req.shape[1] % quant_traits(*info.quant).block_elems != 0 || (opts_.delta && opts_.delta->touches(req.key)))
    return std::nullopt;
  used_.insert(fk);
  report_.num_tensors += 1;
  report_.num_params += info.shape.numel();
  PackedWeight w{*info.quant, info.shape, Tensor()};
  if (opts_.dry_run) return w;
  check_file_unchanged(store_, fk);
  w.data = store_.get(fk).clone();  // owned memory, never a view of the mapping
  return w;
}

WeightReport CheckpointSource::finish() {
  if (!missing_.empty() || !headline_.empty() || !mismatches_.empty()) {
    std::vector<std::string> mismatches = headline_;
    mismatches.insert(mismatches.end(), mismatches_.begin(), mismatches_.end());
    std::vector<std::string> parts;
    if (!mismatches.empty())
      parts.push_back(join_first(mismatches, missing_.empty() ? kListedMissing : kListedMismatches, "; "));
    if (!missing_.empty())
      parts.push_back(fmt::format("missing {}: {}", plural(missing_.size(), "tensor"),
                                  join_first(missing_, kListedMissing, ", ")));
    std::string msg = origin() + " does not match the config";
    if (!opts_.config.empty()) msg += " (" + opts_.config + ")";
    msg += ": " + parts[0] + (parts.size() > 1 ? "; " + parts[1] : "");
    const std::string hint = !hint_.empty()       ? hint_
                             : !opts_.hint.empty() ? opts_.hint
                                                   : "the checkpoint does not match the expected model; check that "
                                                     "the file is the intended model (size, version) and complete";
    throw Error(kExitDataErr, msg, hint);
  }
  report_.unused_keys.clear();
  for (const std::string& k : store_.names())
    if (!used_.count(k) && !is_marker_key(k) && !(opts_.unbound_on_purpose && opts_.unbound_on_purpose(k)))
      report_.unused_keys.push_back(k);
  const auto& unused = report_.unused_keys;
  if (!unused.empty() && (opts_.strict || !opts_.dry_run)) {
    const std::string msg = fmt::format("{}: {} the model does not use: {}", origin(),
                                        plural(unused.size(), "unexpected tensor"),
                                        join_first(unused, kListedMissing, ", "));
    if (opts_.strict)
      throw Error(kExitDataErr, msg, "the file holds weights this model does not use; drop --strict to only warn");
    spdlog::warn("{}", msg);
  }
  return report_;
}

WeightReport bind_checkpoint(const TensorStore& store, const WeightLayout& layout, const CheckpointOptions& opts,
                             const std::function<void(const WeightScope& root, CheckpointSource& source)>& bind) {
  CheckpointOptions dry = opts;
  dry.dry_run = true;
  CheckpointSource check(store, layout, dry);
  bind(WeightScope(check), check);
  WeightReport report = check.finish();
  if (opts.dry_run) return report;
  CheckpointSource source(store, layout, opts);
  bind(WeightScope(source), source);
  return source.finish();
}

// ---- RandomSource / ListingSource ------------------------------------------------------------

RandomSource::RandomSource(uint64_t seed, Device device, DType dtype) : WeightSource(device, dtype), seed_(seed) {}

Tensor RandomSource::get(const WeightRequest& req) {
  const Shape& s = req.shape;
  const float scale = s.ndim() >= 2 && s[0] > 0 ? 1.0f / std::sqrt(static_cast<float>(s.numel() / s[0])) : 0.02f;
  Tensor t = randn_philox(s, seed_ * 0x9E3779B97F4A7C15ull ^ key_hash(req.key));
  float* p = t.data<float>();
  const int64_t n = t.numel();
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) p[i] *= scale;
  return t.to(dtype_of(req.precision)).to(device());
}

Tensor ListingSource::get(const WeightRequest& req) {
  requests_.push_back(req);
  return {};
}

std::vector<WeightRequest> list_weights(const std::function<void(const WeightScope& root)>& bind) {
  ListingSource listing;
  bind(WeightScope(listing));
  return listing.requests();
}

}  // namespace t2v
