// LoRAs for the Wan DiT, in the three key conventions they ship in, merged into
// the weights once at load (the WeightDelta hook of core/weights.h: in fp32,
// after fp8 dequantization, before the cast to the compute dtype).
//
// Conventions (detected per file; module names mapped onto the canonical,
// original Wan names of wan_dit_weights.h):
//   diffusers  `transformer.blocks.0.attn1.to_q.lora_A.weight` / `.lora_B.weight`
//              (with or without `transformer.`), PEFT's `.lora_B.bias`; module
//              names as diffusers' Wan converter writes them: the DiT's rename
//              table (wan_dit_diffusers_key) read backwards.
//   original   `diffusion_model.blocks.0.self_attn.q.lora_down.weight` / `.lora_up.weight`
//              (or lora_A / lora_B; prefix `diffusion_model.`, `model.diffusion_model.`
//              or none), full deltas `<module>.diff` (weight), `.diff_b` (bias),
//              `blocks.N.diff_m` (modulation): LightX2V, Lightning, ComfyUI.
//   kohya      `lora_unet_blocks_0_self_attn_q.lora_down.weight`: original module
//              names with '.' -> '_', looked up in the set of the model's module
//              names spelled that way (the spelling is unambiguous for the Wan DiT).
// Every convention takes an optional `<module>.alpha` (0-d or 1 element, F32/F16/BF16).
//
// Merge, per targeted module, for each LoRA in the order given (deltas add up):
//   W += s * (alpha / rank) * up @ down     rank = rows of down; no alpha: factor s
//   W += s * diff,   b += s * diff_b        (PEFT's lora_B.bias: b += s * (alpha/rank) * lora_B.bias)
// s is the strength. Zero-valued deltas of norms the model does not have are
// accepted and skipped (LightX2V ships zero norm diffs).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "core/weights.h"
#include "diffusion/wan_dit_config.h"

namespace t2v {

// One --lora: a file and its strength.
struct LoraSpec {
  std::string file;
  double strength = 1.0;
  bool operator==(const LoraSpec&) const = default;
};

// "FILE[:STRENGTH]", the strength after the LAST ':' (paths may hold ':'); a text
// naming an existing file is that file at strength 1. Error(64) when the
// strength is not a finite number ("abc", "nan", "inf").
LoraSpec parse_lora_spec(const std::string& text);
// Error(66) naming the file when it does not exist or is not a file.
void check_lora_file_exists(const LoraSpec& spec, const std::string& what = "--lora");

// True when some key ends like a LoRA key (lora_down/up, lora_A/B, alpha, diff).
bool looks_like_lora(const TensorStore& store);

enum class LoraConvention { Diffusers, Original, Kohya };
const char* lora_convention_name(LoraConvention c);  // "diffusers", "original", "kohya"

// One module (or parameter) of the model a LoRA file changes, with the file
// keys that change it ("" = absent).
struct LoraTarget {
  std::string module;       // canonical: "blocks.0.self_attn.q", "blocks.0.modulation"
  std::string weight_key;   // canonical key the pair / diff changes ("blocks.0.self_attn.q.weight")
  std::string bias_key;     // canonical key diff_b changes ("" when none)
  std::string down, up;     // lora_down / lora_A and lora_up / lora_B
  std::string alpha;
  std::string diff, diff_b;
  bool bias_scaled = false;  // diff_b is PEFT's lora_B.bias (scaled like the pair)
  int64_t rank = 0;          // rows of down
  bool has_alpha = false;
  double alpha_value = 0;
  // The factor of the pair for strength 1: alpha / rank, or 1 without alpha.
  double pair_scale() const { return has_alpha ? alpha_value / static_cast<double>(rank) : 1.0; }
};

// A reason a LoRA cannot be merged: one line, and the fix.
struct LoraProblem {
  std::string text;
  std::string hint;
};

// What one file holds, matched against the modules of a DiT config.
struct LoraFile {
  std::string path;
  LoraConvention convention = LoraConvention::Original;
  std::string prefix;  // the key prefix the convention stripped ("diffusion_model.", "lora_unet_", ...)
  std::shared_ptr<const TensorStore> store;
  std::vector<LoraTarget> targets;          // in canonical order
  std::vector<std::string> unknown_keys;    // keys naming nothing in the model (or not a LoRA key)
  std::vector<std::string> skipped_keys;    // zero-valued deltas of norms the model lacks
  std::vector<LoraProblem> problems;        // shape / rank / dtype / value problems
  std::vector<int64_t> ranks() const;       // sorted, unique
  std::vector<double> alphas() const;       // sorted, unique
};

struct LoraReadOptions {
  bool check_shapes = true;  // against the config's weight shapes (off: names only)
  bool check_values = true;  // read the data: NaN / Inf (alphas are always read)
};

// Reads the file's header, detects its convention and maps every key onto the
// modules of `cfg`; problems are collected, not thrown. Error(66) for a missing
// file, Error(65) for a file that is not safetensors or holds no LoRA keys.
LoraFile read_lora_file(const std::string& path, const WanDiTConfig& cfg, const LoraReadOptions& opts = {});

// Raises the file's first problem as Error(65) (with the count of the others),
// then its unknown keys (the first few and how many) unless ignore_unknown.
void check_lora_fits(const LoraFile& file, const WanDiTConfig& cfg, bool ignore_unknown);

// A list of LoRAs with strengths, as one WeightDelta the DiT binds through.
class LoraDelta final : public WeightDelta {
 public:
  bool touches(const std::string& key) const override { return terms_.count(key) != 0; }
  void apply(const std::string& key, Tensor& weight) const override;

  const std::vector<LoraFile>& files() const { return files_; }
  const std::vector<LoraSpec>& specs() const { return specs_; }
  std::vector<std::string> keys() const;  // every canonical key it changes, sorted

 private:
  friend std::shared_ptr<const LoraDelta> load_loras(const std::vector<LoraSpec>&, const WanDiTConfig&, bool);
  struct Term {
    const TensorStore* store = nullptr;
    std::string up, down;  // a pair, or
    std::string diff;      // a full delta
    double factor = 0;     // strength (x alpha / rank for a pair)
  };
  std::vector<LoraSpec> specs_;
  std::vector<LoraFile> files_;  // owns the stores the terms point into
  std::map<std::string, std::vector<Term>> terms_;
};

// Reads and checks every file against `cfg` (headers, shapes, then NaN / Inf in
// the data) and raises the first problem: Error(66) missing file, Error(65)
// problems and unknown keys (unless ignore_unknown). Nothing of the DiT is read.
std::shared_ptr<const LoraDelta> load_loras(const std::vector<LoraSpec>& specs, const WanDiTConfig& cfg,
                                            bool ignore_unknown = false);

}  // namespace t2v
