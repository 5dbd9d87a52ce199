// Binding model weights by name: a WeightSource hands out tensors, a WeightScope
// names them. Model code binds each module through a scope whose prefix follows
// the module tree of the checkpoint,
//
//   const WeightScope blk = root.pp("blocks").pp(i);
//   q.weight = blk.pp("self_attn").get("q.weight", {dim, dim});            // compute dtype
//   modulation = blk.get("modulation", {1, 6, dim}, WeightPrecision::F32);  // fp32 island
//
// so the member names of the modules are the checkpoint keys and one bind
// function serves every source:
//   CheckpointSource  a TensorStore in one detected layout (a rename from the
//                     canonical key to the file key); converts once at load
//                     (fp8 x scale_weight dequantized, F32/F16/BF16 converted to
//                     the requested dtype, moved to the device). In dry-run mode
//                     it reads headers only and hands out undefined tensors.
//                     Every missing key, wrong shape and unconvertible dtype is
//                     collected and raised in ONE Error(65) by finish().
//   RandomSource      deterministic random weights (t2v bench, tests).
//   ListingSource     records what a bind asks for (key tables, parameter counts).
//
// Two hook points:
//   WeightDelta       a per-key delta applied in fp32 after dequantization and
//                     before the cast to the compute dtype (LoRA: W += s·up@down).
//   get_packed()      a source may hand a weight out in its own storage format
//                     (quantized blocks) to a module that can run on it:
//                     CheckpointSource does so for the quantized tensors of a
//                     GGUF (core/gguf.h) when computing in fp32 on the CPU.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/quant.h"
#include "core/safetensors.h"

namespace t2v {

// The dtype a weight is handed out in: the model's compute dtype (the large GEMM
// weights), or fp32 whatever the compute dtype (the "islands" the reference runs
// in fp32: modulation, time embedding, norms, head; docs/wan.md §2.10).
enum class WeightPrecision { Compute, F32 };

// Keys that carry no weights of their own and are never reported as unused:
// Comfy's `scaled_fp8` marker, per-tensor fp8 scales (`*.scale_weight`, consumed
// with their weight; `*.scale_input`) and the tokenizer blob (`spiece_model`)
// some single-file checkpoints embed; with or without a prefix.
bool is_marker_key(std::string_view file_key);

// One tensor a bind asks for.
struct WeightRequest {
  std::string key;  // canonical key, full path ("blocks.3.self_attn.q.weight")
  Shape shape;      // the shape the module expects
  WeightPrecision precision = WeightPrecision::Compute;
  bool operator==(const WeightRequest&) const = default;
};

// A weight kept in a block-quantized format (core/quant.h; from a GGUF) for
// modules whose forward runs on it directly (ops::linear_packed,
// kernels/packed_ops.h). A matrix [N, K] is N rows of K / block_elems blocks,
// row n at byte n * row_bytes(): exactly the GGUF tensor's data.
struct PackedWeight {
  QuantType type = QuantType::Q8_0;
  Shape shape;  // logical (dequantized) shape [N, K]; K a multiple of the block size
  Tensor data;  // the raw blocks, U8 [N * row_bytes()], on the CPU; undefined in a dry run

  int64_t row_bytes() const { return quant_bytes(type, shape[shape.ndim() - 1]); }
  const char* format() const { return quant_name(type); }  // "Q4_K"
};

// What WeightScope::get_packable returns: the packed form when the source keeps
// one for this key, else the dense tensor exactly as get() would give it.
struct MaybePacked {
  Tensor dense;
  std::optional<PackedWeight> packed;
};

// Where tensors come from. Subclasses decide what a missing key means.
class WeightSource {
 public:
  WeightSource(Device device, DType dtype) : device_(device), dtype_(dtype) {}
  virtual ~WeightSource() = default;
  WeightSource(const WeightSource&) = delete;
  WeightSource& operator=(const WeightSource&) = delete;

  virtual bool has(const std::string& key) const = 0;
  // The tensor in the requested precision on device(); an undefined Tensor in a
  // dry run, or after a problem the source records (see CheckpointSource).
  virtual Tensor get(const WeightRequest& request) = 0;
  // Hook point (b): a source that keeps `request.key` in a packed storage format
  // returns it here; nullopt (every source today) makes the scope call get().
  virtual std::optional<PackedWeight> get_packed(const WeightRequest& request);
  // True when tensors are undefined on purpose (headers only / listing).
  virtual bool dry_run() const { return false; }

  Device device() const { return device_; }
  DType dtype() const { return dtype_; }  // the compute dtype
  DType dtype_of(WeightPrecision p) const { return p == WeightPrecision::F32 ? DType::F32 : dtype_; }

 private:
  Device device_;
  DType dtype_;
};

// A prefix path into a source (candle's VarBuilder idea): pp() descends, get()
// asks for `prefix.name`. Cheap to copy; the source must outlive it.
class WeightScope {
 public:
  explicit WeightScope(WeightSource& source, std::string prefix = "");

  WeightScope pp(std::string_view name) const;  // "blocks" -> "blocks"; then pp(3) -> "blocks.3"
  WeightScope pp(int64_t index) const;
  Tensor get(std::string_view name, const Shape& shape, WeightPrecision precision = WeightPrecision::Compute) const;
  // For modules that can also run on a packed weight (hook point (b)).
  MaybePacked get_packable(std::string_view name, const Shape& shape) const;
  bool has(std::string_view name) const;

  std::string key(std::string_view name) const;  // the full canonical key of `name`
  const std::string& prefix() const { return prefix_; }
  WeightSource& source() const { return *source_; }
  bool dry_run() const { return source_->dry_run(); }
  Device device() const { return source_->device(); }

 private:
  WeightSource* source_;
  std::string prefix_;
};

// ---- hook point (a): per-key deltas -------------------------------------------------
// Applied by CheckpointSource to every key it touches, in fp32 on the CPU, after
// fp8 dequantization and before the cast to the requested dtype, so the delta
// is merged once at load (a LoRA: W += scale · up @ down).
class WeightDelta {
 public:
  virtual ~WeightDelta() = default;
  // Keys it does not touch skip the fp32 pass (a BF16 weight stays BF16 end to end).
  virtual bool touches(const std::string& key) const = 0;
  // `weight` is the canonical key's tensor, F32 on the CPU, in the requested shape.
  virtual void apply(const std::string& key, Tensor& weight) const = 0;
};

// ---- checkpoints ------------------------------------------------------------------------
// How a checkpoint names the canonical keys.
struct WeightLayout {
  std::string name = "original";  // named in errors: "original", "comfy", "diffusers", ...
  // Canonical key -> file key, prefix included; identity when empty.
  std::function<std::string(const std::string& key)> file_key;
};

// For a misshaped tensor: a note on that line ("this looks like the 14B
// model") and, from the first such problem, the hint of the whole error.
struct ShapeNote {
  std::string note;
  std::string hint;
};

struct CheckpointOptions {
  Device device = Device::CPU;
  DType dtype = DType::F32;  // compute dtype
  bool strict = false;       // unused file keys are an error instead of a warning
  bool dry_run = false;      // headers only: nothing is read, tensors stay undefined
  std::string model;         // "Wan DiT", named in errors
  std::string config;        // a summary of the config, named in a mismatch error
  std::string hint;          // the fix a mismatch error suggests
  std::function<ShapeNote(const std::string& key, const Shape& found, const Shape& expected)> shape_note;
  // Canonical keys whose problems are listed first (the line users recognise).
  std::vector<std::string> headline_keys;
  // File keys left unbound on purpose (e.g. the encoder of a decode-only VAE): not "unused".
  std::function<bool(const std::string& file_key)> unbound_on_purpose;
  std::shared_ptr<const WeightDelta> delta;
  // Quantized (GGUF) weights asked for with get_packed() stay in their blocks
  // when the compute is fp32 on the CPU; otherwise, and for every get(), they are
  // dequantized to fp32 at load and converted like any other weight.
  bool keep_packed = true;
};

// What a bind found: the layout, the file keys nothing asked for (markers and
// unbound_on_purpose excluded) and the size of what was bound.
struct WeightReport {
  std::string layout;
  std::vector<std::string> unused_keys;
  int64_t num_tensors = 0;
  int64_t num_params = 0;  // elements of every bound tensor
};

class CheckpointSource : public WeightSource {
 public:
  CheckpointSource(const TensorStore& store, WeightLayout layout, CheckpointOptions opts);

  bool has(const std::string& key) const override;
  Tensor get(const WeightRequest& request) override;
  // The blocks of a quantized 2-D tensor (see CheckpointOptions::keep_packed);
  // nullopt hands the request to get().
  std::optional<PackedWeight> get_packed(const WeightRequest& request) override;
  bool dry_run() const override { return opts_.dry_run; }

  std::string file_key(const std::string& key) const;
  // A problem found outside get() (e.g. more blocks in the file than the
  // config has), raised with the others by finish().
  void report(std::string problem);
  // Raises every recorded problem in one Error(65): the source, model and
  // layout, the first mismatches and missing keys with their counts, and the
  // hint. Then unused file keys: Error(65) when strict, else a warning (not in
  // a dry run: the real pass that follows warns).
  WeightReport finish();

 private:
  std::string origin() const;  // "model.safetensors (Wan DiT, comfy layout)"
  std::string named(const std::string& file_key, const std::string& key) const;

  const TensorStore& store_;
  WeightLayout layout_;
  CheckpointOptions opts_;
  std::set<std::string> used_;
  std::vector<std::string> missing_;
  std::vector<std::string> headline_, mismatches_;  // wrong shape / dtype / scale, and reported problems
  std::string hint_;                                 // from the first ShapeNote with one
  WeightReport report_;
};

// Binds a checkpoint in two passes through the same `bind`: a dry run over the
// headers, which raises every problem in one error (and unused keys when strict)
// before any tensor data is read, then, unless opts.dry_run, the real pass that
// converts and moves each tensor. `bind` stores what it binds (the dry pass
// hands out undefined tensors); it may report() extra problems to the source.
WeightReport bind_checkpoint(const TensorStore& store, const WeightLayout& layout, const CheckpointOptions& opts,
                             const std::function<void(const WeightScope& root, CheckpointSource& source)>& bind);

// ---- other sources -----------------------------------------------------------------------
// Random weights of the requested shapes: N(0, 1/fan_in) for tensors of 2+ dims
// (fan_in = numel / shape[0]), 0.02 · N(0, 1) for vectors and scalars. Indexed
// Philox seeded from (seed, key), so a tensor's values depend on the seed, its
// key and shape only: not on the binding order, the device or the thread count.
class RandomSource : public WeightSource {
 public:
  explicit RandomSource(uint64_t seed, Device device = Device::CPU, DType dtype = DType::F32);
  bool has(const std::string&) const override { return true; }
  Tensor get(const WeightRequest& request) override;

 private:
  uint64_t seed_;
};

// Records every request in order and hands out undefined tensors: what a bind
// asks for, without any file.
class ListingSource : public WeightSource {
 public:
  ListingSource() : WeightSource(Device::CPU, DType::F32) {}
  bool has(const std::string&) const override { return true; }
  Tensor get(const WeightRequest& request) override;
  bool dry_run() const override { return true; }
  const std::vector<WeightRequest>& requests() const { return requests_; }

 private:
  std::vector<WeightRequest> requests_;
};

// The requests `bind` makes, in order.
std::vector<WeightRequest> list_weights(const std::function<void(const WeightScope& root)>& bind);

}  // namespace t2v
