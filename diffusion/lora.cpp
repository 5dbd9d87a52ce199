// LoRA files for the Wan DiT: convention detection, key mapping onto the
// canonical modules, checks, and the merge (see lora.h).
#include "diffusion/lora.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "core/strings.h"
#include "diffusion/wan_dit_weights.h"
#include "kernels/ops.h"

namespace t2v {

namespace fs = std::filesystem;

namespace {

constexpr size_t kListedKeys = 4;  // unknown keys named in one error; the rest are counted

// ---- the model's module names in each convention ---------------------------------
// Module = a canonical key without `.weight` / `.bias`; a parameter that is not
// a Linear's (the modulations) is its own module.
struct ModuleTables {
  std::map<std::string, Shape> shapes;           // canonical key -> shape
  std::map<std::string, size_t> order;           // module -> position in the bind order
  std::map<std::string, std::string> weight_of;  // module -> its weight (or the parameter itself)
  std::map<std::string, std::string> bias_of;    // module -> its bias
  std::map<std::string, std::string> diffusers;  // diffusers module name -> module
  std::map<std::string, std::string> kohya;      // module with '.' -> '_' -> module ("" = ambiguous)
  bool has(const std::string& m) const { return order.count(m) != 0; }
};

std::string strip_param_suffix(const std::string& key, std::string* suffix) {
  for (const char* s : {".weight", ".bias"})
    if (ends_with(key, s)) {
      *suffix = s;
      return key.substr(0, key.size() - std::string_view(s).size());
    }
  suffix->clear();
  return key;
}

ModuleTables module_tables(const WanDiTConfig& cfg) {
  ModuleTables t;
  for (const WeightRequest& r : wan_dit_weight_list(cfg)) {
    t.shapes[r.key] = r.shape;
    std::string suffix;
    const std::string m = strip_param_suffix(r.key, &suffix);
    t.order.emplace(m, t.order.size());
    (suffix == ".bias" ? t.bias_of : t.weight_of)[m] = r.key;
    // The rename table read backwards: the diffusers name of the same key, less the same suffix.
    const std::string d = wan_dit_diffusers_key(r.key);
    t.diffusers[d.substr(0, d.size() - suffix.size())] = m;
  }
  for (const auto& [m, pos] : t.order) {
    std::string k = m;
    std::replace(k.begin(), k.end(), '.', '_');
    auto [it, fresh] = t.kohya.emplace(k, m);
    if (!fresh && it->second != m) it->second.clear();
  }
  return t;
}

// ---- key parsing ----------------------------------------------------------------------
enum class Part { Down, Up, BiasB, Alpha, DiffB, DiffM, Diff };

struct Suffix {
  const char* text;
  Part part;
};
// Longest first where one ends another (".diff_b" / ".diff" do not: both listed).
constexpr Suffix kSuffixes[] = {
    {".lora_down.weight", Part::Down}, {".lora_A.weight", Part::Down}, {".lora_up.weight", Part::Up},
    {".lora_B.weight", Part::Up},      {".lora_B.bias", Part::BiasB},  {".alpha", Part::Alpha},
    {".diff_b", Part::DiffB},          {".diff_m", Part::DiffM},       {".diff", Part::Diff},
};

bool split_key(const std::string& key, std::string* module, Part* part) {
  for (const Suffix& s : kSuffixes)
    if (ends_with(key, s.text)) {
      *module = key.substr(0, key.size() - std::string_view(s.text).size());
      *part = s.part;
      return !module->empty();
    }
  return false;
}

// Adapter kinds whose merge is not W += up @ down: refused rather than merged wrong.
const char* unsupported_adapter(const std::string& key) {
  if (key.find(".dora_scale") != std::string::npos) return "DoRA";
  if (key.find(".hada_") != std::string::npos) return "LoHa";
  if (key.find(".lokr_") != std::string::npos) return "LoKr";
  if (key.find(".lora_mid.") != std::string::npos) return "LoCon with a mid weight";
  return nullptr;
}

// The canonical module `name` (the key less its LoRA suffix) names in `conv`, or "".
std::string map_module(const ModuleTables& t, LoraConvention conv, std::string name, Part part, std::string* prefix) {
  if (part == Part::DiffM) name += conv == LoraConvention::Kohya ? "_modulation" : ".modulation";
  switch (conv) {
    case LoraConvention::Original:
      for (const char* p : {"model.diffusion_model.", "diffusion_model.", ""})
        if (starts_with(name, p) && t.has(name.substr(std::string_view(p).size()))) {
          *prefix = p;
          return name.substr(std::string_view(p).size());
        }
      return "";
    case LoraConvention::Diffusers:
      if (part == Part::DiffM) return "";
      for (const char* p : {"transformer.", "base_model.model.", ""})
        if (starts_with(name, p)) {
          const auto it = t.diffusers.find(name.substr(std::string_view(p).size()));
          if (it != t.diffusers.end()) {
            *prefix = p;
            return it->second;
          }
        }
      return "";
    case LoraConvention::Kohya:
      if (starts_with(name, "lora_unet_")) {
        const auto it = t.kohya.find(name.substr(10));
        if (it != t.kohya.end()) {
          *prefix = "lora_unet_";
          return it->second;
        }
      }
      return "";
  }
  return "";
}

bool is_lora_float(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }

// Index of the first NaN / Inf, or -1.
int64_t first_non_finite(const Tensor& t) {
  const Tensor f = t.to(DType::F32);
  const float* p = f.data<float>();
  for (int64_t i = 0; i < f.numel(); ++i)
    if (!std::isfinite(p[i])) return i;
  return -1;
}

bool all_zero(const Tensor& t) {
  const Tensor f = t.to(DType::F32);
  const float* p = f.data<float>();
  for (int64_t i = 0; i < f.numel(); ++i)
    if (p[i] != 0.0f) return false;
  return true;
}

// The preset whose weight `key` has `shape` (a LoRA made for another model), or "".
std::string preset_with_weight_shape(const std::string& key, int64_t rows, int64_t numel, const WanDiTConfig& cfg) {
  for (const std::string& name : WanDiTConfig::preset_names()) {
    const WanDiTConfig p = WanDiTConfig::preset(name);
    if (p.dim == cfg.dim && p.ffn_dim == cfg.ffn_dim && p.text_dim == cfg.text_dim) continue;
    for (const WeightRequest& r : wan_dit_weight_list(p))
      if (r.key == key && r.shape.ndim() >= 1 && r.shape[0] == rows && r.shape.numel() == numel) return name;
  }
  return "";
}

std::string join_first(const std::vector<std::string>& items, size_t n) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < n; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > n) s += fmt::format(", ... ({} more)", items.size() - n);
  return s;
}

}  // namespace

// ---- specs ------------------------------------------------------------------------------
LoraSpec parse_lora_spec(const std::string& text) {
  const char* hint = "write --lora FILE or FILE:STRENGTH with a finite number, e.g. style.safetensors:0.8";
  if (text.empty()) throw Error(kExitUsage, "--lora is empty", hint);
  std::error_code ec;
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || fs::exists(text, ec)) return {text, 1.0};
  const std::string file = text.substr(0, colon), s = text.substr(colon + 1);
  double v = 0;
  const auto [p, err] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || err != std::errc() || p != s.data() + s.size() || !std::isfinite(v))
    throw Error(kExitUsage,
                fmt::format("--lora '{}': strength '{}' is not a finite number (the strength follows the last ':')",
                            text, s),
                hint);
  if (file.empty()) throw Error(kExitUsage, fmt::format("--lora '{}' names no file", text), hint);
  return {file, v};
}

void check_lora_file_exists(const LoraSpec& spec, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(spec.file, ec))
    throw Error(kExitNoInput, fmt::format("{} {}: no such file", what, spec.file),
                "check the path of the LoRA .safetensors file");
}

bool looks_like_lora(const TensorStore& store) {
  std::string module;
  Part part;
  for (const std::string& key : store.names())
    if (split_key(key, &module, &part) && part != Part::Alpha) return true;
  return false;
}

const char* lora_convention_name(LoraConvention c) {
  switch (c) {
    case LoraConvention::Diffusers: return "diffusers";
    case LoraConvention::Original: return "original";
    case LoraConvention::Kohya: return "kohya";
  }
  return "?";
}

std::vector<int64_t> LoraFile::ranks() const {
  std::set<int64_t> r;
  for (const LoraTarget& t : targets)
    if (t.rank > 0) r.insert(t.rank);
  return {r.begin(), r.end()};
}

std::vector<double> LoraFile::alphas() const {
  std::set<double> a;
  for (const LoraTarget& t : targets)
    if (t.has_alpha) a.insert(t.alpha_value);
  return {a.begin(), a.end()};
}

// ---- reading ---------------------------------------------------------------------------
LoraFile read_lora_file(const std::string& path, const WanDiTConfig& cfg, const LoraReadOptions& opts) {
  check_lora_file_exists({path, 1.0}, "LoRA");
  refuse_pickle(path);
  LoraFile f;
  f.path = path;
  f.store = std::make_shared<const TensorStore>(TensorStore::open(path));
  const TensorStore& store = *f.store;
  const ModuleTables tables = module_tables(cfg);

  // Which convention names the most keys.
  struct Parsed {
    std::string key, name;
    Part part;
  };
  std::vector<Parsed> parsed;
  for (const std::string& key : store.names()) {
    if (const char* kind = unsupported_adapter(key)) {
      f.problems.push_back({fmt::format("{} is a {} key; t2v merges plain LoRA pairs and full deltas only", key, kind),
                            "convert the adapter to a plain LoRA, or merge it into the model with its trainer"});
      continue;
    }
    Parsed p{key, "", Part::Diff};
    if (split_key(key, &p.name, &p.part))
      parsed.push_back(p);
    else
      f.unknown_keys.push_back(key);
  }
  if (parsed.empty() && f.problems.empty())
    throw Error(kExitDataErr,
                fmt::format("{}: not a LoRA (no lora_down/lora_up, lora_A/lora_B, alpha or diff keys); its tensors: {}",
                            path, join_first(store.names(), 4)),
                "pass a LoRA .safetensors to --lora; model weights go to --model or --dit");
  int best_count = -1;
  for (LoraConvention c : {LoraConvention::Original, LoraConvention::Diffusers, LoraConvention::Kohya}) {
    int n = 0;
    std::string prefix;
    for (const Parsed& p : parsed) n += map_module(tables, c, p.name, p.part, &prefix).empty() ? 0 : 1;
    if (n > best_count) best_count = n, f.convention = c;
  }

  std::map<std::string, LoraTarget> by_module;
  auto problem = [&](std::string text, std::string hint) { f.problems.push_back({std::move(text), std::move(hint)}); };
  for (const Parsed& p : parsed) {
    std::string prefix;
    const std::string m = map_module(tables, f.convention, p.name, p.part, &prefix);
    if (m.empty()) {
      // Zero-valued deltas of norms this model does not have (no qk-norm or no
      // cross-attention LayerNorm): nothing to merge.
      if ((p.part == Part::Diff || p.part == Part::DiffB) && p.name.find("norm") != std::string::npos &&
          is_lora_float(store.info(p.key).dtype) && all_zero(store.get(p.key)))
        f.skipped_keys.push_back(p.key);
      else
        f.unknown_keys.push_back(p.key);
      continue;
    }
    if (f.prefix.empty()) f.prefix = prefix;
    LoraTarget& t = by_module[m];
    t.module = m;
    std::string* slot = nullptr;
    switch (p.part) {
      case Part::Down: slot = &t.down; break;
      case Part::Up: slot = &t.up; break;
      case Part::Alpha: slot = &t.alpha; break;
      case Part::Diff: slot = &t.diff; break;
      case Part::DiffM: slot = &t.diff; break;
      case Part::DiffB: slot = &t.diff_b; break;
      case Part::BiasB:
        slot = &t.diff_b;
        t.bias_scaled = true;
        break;
    }
    if (!slot->empty()) {
      problem(fmt::format("{} and {} both give the same part of {}", *slot, p.key, m),
              "the file holds the same module twice; remove one copy");
      continue;
    }
    *slot = p.key;
  }

  // Every target's header: dtypes, alpha, pair, ranks, shapes.
  std::vector<LoraTarget> targets;
  for (auto& [m, t] : by_module) targets.push_back(t);
  std::sort(targets.begin(), targets.end(),
            [&](const LoraTarget& a, const LoraTarget& b) { return tables.order.at(a.module) < tables.order.at(b.module); });
  const char* shape_hint = "check that the LoRA was made for this model (Wan2.1 text-to-video, this size)";
  for (LoraTarget& t : targets) {
    const size_t problems_before = f.problems.size();
    const auto w = tables.weight_of.find(t.module);
    const auto b = tables.bias_of.find(t.module);
    t.weight_key = w == tables.weight_of.end() ? "" : w->second;
    t.bias_key = b == tables.bias_of.end() ? "" : b->second;
    for (const std::string* k : {&t.down, &t.up, &t.alpha, &t.diff, &t.diff_b})
      if (!k->empty() && !is_lora_float(store.info(*k).dtype))
        problem(fmt::format("{} has dtype {}; LoRA tensors must be F32, F16 or BF16", *k,
                            dtype_name(store.info(*k).dtype)),
                "convert the LoRA to F32, F16 or BF16");
    if (f.problems.size() != problems_before) continue;
    if (!t.alpha.empty()) {
      const TensorInfo& ai = store.info(t.alpha);
      if (ai.shape.numel() != 1) {
        problem(fmt::format("{} has shape {}; an alpha is one number", t.alpha, ai.shape.str()),
                "the file is not a LoRA t2v understands");
        continue;
      }
      t.has_alpha = true;
      t.alpha_value = store.get(t.alpha).to(DType::F32).item(0);
    }
    if (t.down.empty() != t.up.empty()) {
      const std::string& have = t.down.empty() ? t.up : t.down;
      problem(fmt::format("{} has no matching {} half", have, t.down.empty() ? "down (lora_down / lora_A)"
                                                                            : "up (lora_up / lora_B)"),
              "the LoRA file is incomplete; download it again");
      continue;
    }
    if (!t.down.empty()) {
      const Shape& d = store.info(t.down).shape;
      const Shape& u = store.info(t.up).shape;
      bool up_ok = u.ndim() >= 2;
      for (int i = 2; i < u.ndim(); ++i) up_ok = up_ok && u[i] == 1;
      if (d.ndim() < 2 || !up_ok || d[0] <= 0) {
        problem(fmt::format("{} {} and {} {} are not a down / up pair of matrices", t.down, d.str(), t.up, u.str()),
                "the file is not a LoRA t2v understands");
        continue;
      }
      if (u[1] != d[0]) {
        problem(fmt::format("rank mismatch: {} is {} (rank {}) but {} is {} (rank {})", t.down, d.str(), d[0], t.up,
                            u.str(), u[1]),
                "the LoRA file is damaged or mixes two LoRAs; download it again");
        continue;
      }
      t.rank = d[0];
      if (t.weight_key.empty() || t.weight_key == t.module) {
        problem(fmt::format("{}: {} is not a weight matrix a LoRA pair can change", t.up, t.module), shape_hint);
        continue;
      }
      const Shape& ws = tables.shapes.at(t.weight_key);
      const int64_t out = u[0], in = d.numel() / d[0];
      if (opts.check_shapes && (ws.ndim() < 2 || out != ws[0] || out * in != ws.numel())) {
        const std::string other = preset_with_weight_shape(t.weight_key, out, out * in, cfg);
        problem(fmt::format("{} {} x {} {} gives [{}, {}], but the model's {} is {}{}", t.up, u.str(), t.down, d.str(),
                            out, in, t.weight_key, ws.str(),
                            other.empty() ? "" : fmt::format(" (the LoRA looks made for the {} model)", other)),
                other.empty() ? std::string(shape_hint)
                              : fmt::format("use a LoRA made for this model; this one fits {}", other));
        continue;
      }
    }
    if (!t.diff.empty()) {
      const Shape& ds = store.info(t.diff).shape;
      if (t.weight_key.empty()) {
        problem(fmt::format("{}: the model's {} has no weight", t.diff, t.module), shape_hint);
        continue;
      }
      if (opts.check_shapes && ds != tables.shapes.at(t.weight_key)) {
        problem(fmt::format("{} is {}, but the model's {} is {}", t.diff, ds.str(), t.weight_key,
                            tables.shapes.at(t.weight_key).str()),
                shape_hint);
        continue;
      }
    }
    if (!t.diff_b.empty()) {
      const Shape& bs = store.info(t.diff_b).shape;
      if (t.bias_key.empty()) {
        problem(fmt::format("{}: the model's {} has no bias", t.diff_b, t.module), shape_hint);
        continue;
      }
      if (opts.check_shapes && bs != tables.shapes.at(t.bias_key)) {
        problem(fmt::format("{} is {}, but the model's {} is {}", t.diff_b, bs.str(), t.bias_key,
                            tables.shapes.at(t.bias_key).str()),
                shape_hint);
        continue;
      }
    }
  }
  // The data, once the headers fit: NaN / Inf anywhere (alphas were read above).
  for (const LoraTarget& t : targets) {
    if (!f.problems.empty()) break;
    for (const std::string* k : {&t.alpha, &t.down, &t.up, &t.diff, &t.diff_b}) {
      if (k->empty() || (!opts.check_values && k != &t.alpha)) continue;
      const int64_t bad = first_non_finite(store.get(*k));
      if (bad >= 0) {
        problem(fmt::format("{} holds NaN or Inf (element {})", *k, bad),
                "the LoRA file is damaged (or was trained into NaN); use another copy");
        break;
      }
    }
  }
  f.targets = std::move(targets);
  return f;
}

void check_lora_fits(const LoraFile& f, const WanDiTConfig& cfg, bool ignore_unknown) {
  if (!f.problems.empty()) {
    const LoraProblem& p = f.problems.front();
    throw Error(kExitDataErr,
                fmt::format("LoRA {} ({} names) cannot be merged into the Wan DiT ({}): {}{}", f.path,
                            lora_convention_name(f.convention), cfg.summary(), p.text,
                            f.problems.size() > 1 ? fmt::format(" (and {} more problem{})", f.problems.size() - 1,
                                                                f.problems.size() > 2 ? "s" : "")
                                                  : ""),
                p.hint);
  }
  if (!f.unknown_keys.empty() && !ignore_unknown)
    throw Error(kExitDataErr,
                fmt::format("LoRA {} ({} names): {} key{} match{} no module of the Wan DiT: {}", f.path,
                            lora_convention_name(f.convention), f.unknown_keys.size(),
                            f.unknown_keys.size() == 1 ? "" : "s", f.unknown_keys.size() == 1 ? "es" : "",
                            join_first(f.unknown_keys, kListedKeys)),
                "is it a LoRA for another model (Wan2.2, image-to-video, another architecture)? "
                "--lora-ignore-unknown merges the keys that match and skips the others");
  if (f.targets.empty())
    throw Error(kExitDataErr, fmt::format("LoRA {}: none of its keys changes the Wan DiT", f.path),
                "it is a LoRA for another model");
}

// ---- the merge ------------------------------------------------------------------------------
std::shared_ptr<const LoraDelta> load_loras(const std::vector<LoraSpec>& specs, const WanDiTConfig& cfg,
                                            bool ignore_unknown) {
  if (specs.empty()) return nullptr;
  auto delta = std::make_shared<LoraDelta>();
  delta->specs_ = specs;
  for (const LoraSpec& s : specs) {
    if (!std::isfinite(s.strength))
      throw Error(kExitUsage, fmt::format("LoRA {}: strength {} is not a finite number", s.file, s.strength));
    check_lora_file_exists(s);
  }
  for (const LoraSpec& s : specs) {
    LoraFile f = read_lora_file(s.file, cfg);
    check_lora_fits(f, cfg, ignore_unknown);
    delta->files_.push_back(std::move(f));
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    const LoraFile& f = delta->files_[i];
    const double s = specs[i].strength;
    for (const LoraTarget& t : f.targets) {
      const double pair = t.rank > 0 ? t.pair_scale() : 1.0;
      if (!t.down.empty()) delta->terms_[t.weight_key].push_back({f.store.get(), t.up, t.down, "", s * pair});
      if (!t.diff.empty()) delta->terms_[t.weight_key].push_back({f.store.get(), "", "", t.diff, s});
      if (!t.diff_b.empty())
        delta->terms_[t.bias_key].push_back({f.store.get(), "", "", t.diff_b, t.bias_scaled ? s * pair : s});
    }
  }
  return delta;
}

std::vector<std::string> LoraDelta::keys() const {
  std::vector<std::string> k;
  for (const auto& [key, terms] : terms_) k.push_back(key);
  return k;
}

void LoraDelta::apply(const std::string& key, Tensor& weight) const {
  const auto it = terms_.find(key);
  if (it == terms_.end()) return;
  T2V_ASSERT(weight.dtype() == DType::F32 && weight.device() == Device::CPU, "LoRA merge into {}: {} (expected F32 CPU)",
             key, weight.str());
  float* w = weight.data<float>();
  const int64_t n = weight.numel();
  for (const Term& t : it->second) {
    Tensor d;
    if (!t.diff.empty()) {
      d = t.store->get(t.diff).to(DType::F32);
    } else {
      // up [out, r(, 1...)] @ down [r, in...] -> [out, in], in fp32 (as PEFT and ComfyUI do).
      const Tensor up = t.store->get(t.up).to(DType::F32);
      const Tensor down = t.store->get(t.down).to(DType::F32);
      const int64_t r = down.size(0);
      d = ops::matmul(up.reshape({up.size(0), r}), down.reshape({r, down.numel() / r}));
    }
    T2V_ASSERT(d.numel() == n, "LoRA delta for {} has {} elements, the weight {}", key, d.numel(), n);
    const float* p = d.data<float>();
    const double f = t.factor;
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) w[i] = static_cast<float>(static_cast<double>(w[i]) + f * p[i]);
  }
}

}  // namespace t2v
