// `t2v inspect`: lists any valid safetensors or GGUF file, folder or index (tensors,
// dtypes or block formats, parameters, bytes; a GGUF's metadata), then says whether it
// is a model t2v can load. A shard, a LoRA or a
// partial checkpoint is listed like any other file and gets one "not a complete model:
// ..." line saying why, with exit 0: the file is fine, it is just not a whole model. A
// LoRA is also read as --lora reads it: convention, modules, ranks, alphas and, with
// --model / --dit, whether it fits that model.
// Exit 65 stays for files that are not valid safetensors or GGUF (docs/bad_inputs.md #1-20).
#include "app/inspect.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/model_paths.h"
#include "app/options.h"
#include "core/error.h"
#include "diffusion/lora.h"
#include "core/gguf.h"
#include "diffusion/wan_dit_config.h"
#include "core/weights.h"
#include "diffusion/wan_dit_weights.h"
#include "image_encoder/clip_vision.h"
#include "text_encoder/umt5.h"
#include "vae/wan_vae.h"

namespace t2v {

std::optional<std::string> describe_wan_dit(const TensorStore& store) {
  if (!is_wan_dit(store)) return std::nullopt;
  const WanDiTShapes d = detect_wan_dit_shapes(store);
  const WanDiTConfig& c = d.cfg;
  std::map<std::string, int64_t> dtypes;
  int64_t params = 0;
  for (const auto& name : store.names()) {
    const TensorInfo& info = store.info(name);
    dtypes[tensor_type_name(info)]++;
    if (!is_marker_key(name)) params += info.shape.numel();
  }
  std::string dt;
  for (const auto& [k, v] : dtypes) dt += fmt::format("{}{} x{}", dt.empty() ? "" : ", ", k, v);
  // The kind follows from the channels and the image embedder (docs/wan.md §8.5): 48 in and
  // out is TI2V, more in than out without an embedder Wan2.2 I2V, with one Wan2.1 I2V/FLF2V.
  const std::string kind = c.image_to_video() ? (c.first_last_frame() ? "Wan2.1 first-last-frame-to-video DiT"
                                                                      : "Wan2.1 image-to-video DiT")
                           : c.ti2v()         ? "Wan2.2 TI2V DiT"
                           : c.image_latent_input()
                               ? "Wan2.2 I2V DiT (image latent and mask in the input channels)"
                               : "Wan2.1 DiT";
  std::string out = fmt::format("{}, {} layout{}{}\n", kind, wan_dit_layout_name(d.layout),
                                d.layout == WanDiTLayout::Comfy ? " (prefix model.diffusion_model. stripped)" : "",
                                store.is_gguf() ? " (GGUF, ComfyUI-GGUF convention)" : "");
  out += fmt::format("  preset: {}{}\n", c.preset_name.empty() ? "none (custom dims)" : c.preset_name,
                     c.preset_name == "wan2.1-t2v-14b" ? " (also each expert of Wan2.2 T2V-A14B)" : "");
  out += fmt::format("  dim {}, ffn {}, heads {}, layers {}, in {} / out {}, text_dim {}, freq_dim {}, patch {}x{}x{}\n",
                     c.dim, c.ffn_dim,
                     d.heads_known ? fmt::format("{} x {}", c.num_heads, c.dim / c.num_heads)
                                   : std::string("unknown (needs config.json)"),
                     c.num_layers, c.in_dim, c.out_dim, c.text_dim, c.freq_dim, c.patch_size[0], c.patch_size[1],
                     c.patch_size[2]);
  if (c.image_to_video())  // docs/wan.md §5.1
    out += fmt::format("  image: CLIP features of width {}, {} image tokens; input = noise {} + mask 4 + image latents\n",
                       c.image_dim, wan_dit_image_tokens(c), c.out_dim);
  out += fmt::format("  parameters: {} ({:.3f} B)\n", params, static_cast<double>(params) * 1e-9);
  out += fmt::format("  dtypes: {}{}\n", dt,
                     store.contains("scaled_fp8") || store.contains(std::string(kComfyPrefix) + "scaled_fp8")
                         ? " (scaled fp8: weights x scale_weight)"
                         : "");
  return out;
}

static bool has_any(const TensorStore& s, const std::string& prefix, std::initializer_list<const char*> keys) {
  for (const char* k : keys)
    if (s.contains(prefix + k)) return true;
  return false;
}

DetectedModel detect_model(const TensorStore& store) {
  // A GGUF names its family; one t2v does not run is not guessed from its names.
  const std::string& arch = store.architecture();
  if (store.is_gguf() && !arch.empty() && arch != "wan" && arch != "t5" && arch != "t5encoder")
    return {"unknown", "GGUF architecture '" + arch + "'", ""};
  for (const std::string prefix : {"", "model.diffusion_model."}) {
    if (has_any(store, prefix, {"blocks.0.self_attn.q.weight"}) && has_any(store, prefix, {"head.modulation"}))
      return {"wan-dit", prefix.empty() ? "original" : "comfy", prefix};
  }
  if (has_any(store, "", {"blocks.0.attn1.to_q.weight"}) && has_any(store, "", {"scale_shift_table"}))
    return {"wan-dit", "diffusers", ""};
  if (has_any(store, "", {"decoder.conv1.weight"}) && has_any(store, "", {"conv2.weight"}))
    return {"wan-vae", "original", ""};
  if (has_any(store, "", {"decoder.conv_in.weight"}) && has_any(store, "", {"post_quant_conv.weight"}))
    return {"wan-vae", "diffusers", ""};
  if (has_any(store, "", {"encoder.block.0.layer.0.SelfAttention.q.weight"}))
    return {"umt5-encoder", store.contains("spiece_model") ? "comfy" : "transformers", ""};
  if (has_any(store, "", {"blocks.0.attn.q.weight"}) && has_any(store, "", {"token_embedding.weight"}))
    return {"umt5-encoder", "original", ""};
  if (is_clip_vision(store)) {
    std::string prefix;
    const ClipVisionLayout layout = detect_clip_vision_layout(store, &prefix);
    return {"clip-vision", clip_vision_layout_name(layout), prefix};
  }
  if (has_any(store, "", {"enc.blk.0.attn_q.weight"}) && has_any(store, "", {"token_embd.weight"}))
    return {"umt5-encoder", "llama.cpp GGUF", ""};
  if (looks_like_lora(store)) return {"lora", "lora", ""};
  return {"unknown", "unknown", ""};
}

namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000.0 && u < 4) {
    b /= 1000.0;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} {}", b, units[u]) : fmt::format("{:.2f} {}", b, units[u]);
}

// Whether t2v can load the store as one model component, and if not, why (one line).
struct Verdict {
  bool complete = false;
  std::string status;  // "Wan DiT, loads as it is" / "not a complete model: ..."
};

// The checks below throw Error(65) with the reason; the file itself is valid, so the
// reason becomes the verdict instead of the exit code. Some loaders list problems on
// indented lines: they are joined so the verdict stays one line.
std::string reason_of(const Error& e) {
  const std::string what = e.what();
  std::string out;
  for (size_t i = 0; i < what.size(); ++i) {
    if (what[i] != '\n') {
      out += what[i];
      continue;
    }
    while (i + 1 < what.size() && what[i + 1] == ' ') ++i;
    out += !out.empty() && out.back() == ':' ? " " : "; ";
  }
  return out;
}

// Names of parts of a model component, for files that hold only some of them.
struct PartialFamily {
  const char* name;
  std::regex keys;
};

const std::vector<PartialFamily>& partial_families() {
  static const std::vector<PartialFamily> f = {
      {"Wan DiT",
       std::regex(R"(^(model\.diffusion_model\.)?(blocks\.\d+\.(self_attn|cross_attn|attn1|attn2|ffn|norm2|norm3|)"
                  R"(modulation|scale_shift_table)|patch_embedding|text_embedding|time_embedding|time_projection|)"
                  R"(condition_embedder|head\.|proj_out|scale_shift_table))")},
      {"Wan VAE", std::regex(R"(^((encoder|decoder)\.(downsamples|upsamples|down_blocks|up_blocks|middle|mid_block|)"
                             R"(conv1|conv_in|head|norm_out|conv_out)|conv1\.|conv2\.|quant_conv|post_quant_conv))")},
      {"umT5 encoder", std::regex(R"(^(shared\.weight|encoder\.block\.|encoder\.final_layer_norm|token_embedding\.|)"
                                  R"(blocks\.\d+\.(attn|ffn|pos_embedding)\.))")},
  };
  return f;
}

// A store that no loader recognises: a shard, a LoRA, part of a checkpoint, or
// something else. Says which, as precisely as the names allow.
std::string unknown_reason(const TensorStore& store, const std::string& path) {
  const std::vector<std::string>& names = store.names();
  if (names.empty()) return "the file holds no tensors";
  size_t lora = 0;
  auto ends = [](const std::string& n, std::string_view s) {
    return n.size() > s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
  };
  for (const std::string& n : names)
    if (n.find("lora_") != std::string::npos || n.find(".lora.") != std::string::npos || ends(n, ".alpha") ||
        ends(n, ".diff") || ends(n, ".diff_b") || ends(n, ".diff_m"))
      ++lora;
  if (lora > 0)
    return fmt::format(
        "a LoRA adapter ({} of {} tensors are LoRA factors, deltas or scales); generate and batch merge it "
        "into a model's DiT with --lora",
        lora, names.size());
  std::smatch m;
  const std::string file = std::filesystem::path(path).filename().string();
  static const std::regex shard(R"(-(\d+)-of-(\d+)\.safetensors$)");
  const bool is_shard = std::regex_search(file, m, shard);
  auto shard_note = [&](const std::string& what) {
    return fmt::format(
        "shard {} of {} of a sharded checkpoint{}; inspect its folder or .index.json for the whole model",
        std::stoi(m[1].str()), std::stoi(m[2].str()), what);
  };
  for (const PartialFamily& f : partial_families()) {
    size_t hits = 0;
    for (const std::string& n : names) hits += std::regex_search(n, f.keys);
    if (hits * 2 >= names.size()) {
      if (is_shard) return shard_note(fmt::format(" ({} tensors)", f.name));
      return fmt::format(
          "{} of {} tensors are {} tensors, but the ones that identify a whole {} are missing "
          "(part of a checkpoint?)",
          hits, names.size(), f.name, f.name);
    }
  }
  if (is_shard) return shard_note("");
  return fmt::format("the tensor names match no Wan DiT, Wan VAE or umT5 encoder layout (first: {})", names.front());
}

Verdict wan_dit_verdict(const TensorStore& store, const std::string& path) {
  try {
    describe_wan_dit(store);  // throws when a tensor that sets the model size is missing
  } catch (const Error& e) {
    return {false, "not a complete model: " + reason_of(e)};
  }
  WanDiTConfig cfg;
  try {
    cfg = WanDiTConfig::resolve("", path, &store);
  } catch (const Error& e) {
    // Complete or not, the sizes are known; only what shapes cannot show is missing.
    return {false, "needs a config: " + reason_of(e)};
  }
  try {
    WanDiTLoadOptions dry;
    dry.dry_run = true;
    WeightReport report;
    dry.report = &report;
    load_wan_dit(store, cfg, dry);
    return {true, fmt::format("Wan DiT ({} layout, {}), loads as it is", report.layout,
                              cfg.preset_name.empty() ? cfg.summary() : cfg.preset_name)};
  } catch (const Error& e) {
    return {false, "not a complete model: " + reason_of(e)};
  }
}

Verdict wan_vae_verdict(const TensorStore& store) {
  try {
    const WanVAEConfig cfg = WanVAEConfig::from_weights(store);
    WanVAELoadOptions dry;
    dry.dry_run = true;
    WanVAE::load(store, cfg, dry);
    return {true, "Wan VAE, loads as it is"};
  } catch (const Error& e) {
    return {false, "not a complete model: " + reason_of(e)};
  }
}

Verdict umt5_verdict(const TensorStore& store) {
  try {
    const UMT5Config cfg = UMT5Config::from_weights(store);
    UMT5LoadOptions dry;
    dry.dry_run = true;
    UMT5Encoder::load(store, cfg, dry);
    return {true, fmt::format("umT5 encoder ({} layers, d_model {}), loads as it is", cfg.num_layers, cfg.d_model)};
  } catch (const Error& e) {
    return {false, "not a complete model: " + reason_of(e)};
  }
}

Verdict clip_vision_verdict(const TensorStore& store, const std::string& path) {
  try {
    const ClipVisionConfig cfg = ClipVisionConfig::resolve("", path, &store);
    ClipVisionLoadOptions dry;
    dry.dry_run = true;
    WeightReport report;
    dry.report = &report;
    ClipVisionEncoder::load(store, cfg, dry);
    return {true, fmt::format("CLIP vision encoder ({} layout, {}{}; image-to-video uses the output of block {} of "
                              "{}), loads as it is",
                              report.layout, cfg.summary(), cfg.preset_name.empty() ? "" : ", " + cfg.preset_name,
                              cfg.layers_run(), cfg.num_layers)};
  } catch (const Error& e) {
    return {false, "not a complete model: " + reason_of(e)};
  }
}

// The DiT config a LoRA is checked against (--dit, else --model's DiT), or, with
// neither, a 14B-named config with enough blocks: names only.
struct LoraCheckModel {
  WanDiTConfig cfg;
  std::string name;  // "" when no model was given
};

LoraCheckModel lora_target(const InspectOptions& opts, const TensorStore& lora) {
  LoraCheckModel t;
  if (opts.model.empty() && opts.dit.empty()) {
    t.cfg = WanDiTConfig::preset("wan2.1-t2v-14b");
    for (const std::string& k : lora.names()) {  // blocks named in the file, in any convention
      for (const char* b : {"blocks.", "blocks_"}) {
        const size_t at = k.find(b);
        if (at == std::string::npos) continue;
        int64_t n = 0;
        size_t i = at + 7;
        while (i < k.size() && k[i] >= '0' && k[i] <= '9' && n < 100000) n = n * 10 + (k[i++] - '0');
        t.cfg.num_layers = std::max(t.cfg.num_layers, n + 1);
      }
    }
    return t;
  }
  std::string dit = opts.dit, dit_config;
  if (dit.empty()) {
    GenerateOptions g;
    g.model = opts.model;
    const ModelPaths p = resolve_model_paths(g);
    dit = p.dit;
    dit_config = p.dit_config;
    t.name = p.name;
  } else {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(dit, ec)) throw Error(kExitNoInput, fmt::format("--dit {}: no such file or folder", dit));
    t.name = fs::path(dit).filename().string();
  }
  const TensorStore store = TensorStore::open(dit);
  t.cfg = WanDiTConfig::resolve(dit_config, dit, &store);
  if (t.name.empty()) t.name = dit;
  return t;
}

std::string first_modules(const LoraFile& f, size_t n) {
  std::string s;
  for (size_t i = 0; i < f.targets.size() && i < n; ++i) s += fmt::format("{}{}", i ? ", " : "", f.targets[i].module);
  if (f.targets.size() > n) s += ", ...";
  return s;
}

template <class T>
std::string join_values(const std::vector<T>& v) {
  std::string s;
  for (const T& x : v) s += fmt::format("{}{:g}", s.empty() ? "" : ", ", static_cast<double>(x));
  return s;
}

// What t2v makes of a LoRA file: convention, modules, ranks, alphas and, with a
// model, whether it fits (shapes from the headers, values read).
nlohmann::json lora_report(const std::string& path, const TensorStore& store, const InspectOptions& opts) {
  const LoraCheckModel target = lora_target(opts, store);
  const bool with_model = !target.name.empty();
  LoraReadOptions ro;
  ro.check_shapes = with_model;
  ro.check_values = with_model;
  const LoraFile f = read_lora_file(path, target.cfg, ro);
  nlohmann::json j;
  j["convention"] = lora_convention_name(f.convention);
  j["prefix"] = f.prefix;
  j["modules"] = f.targets.size();
  int pairs = 0, diffs = 0, bias = 0;
  for (const LoraTarget& t : f.targets) {
    j["module_names"].push_back(t.module);
    pairs += !t.down.empty();
    diffs += !t.diff.empty();
    bias += !t.diff_b.empty();
  }
  j["pairs"] = pairs;
  j["weight_deltas"] = diffs;
  j["bias_deltas"] = bias;
  j["ranks"] = f.ranks();
  j["alphas"] = f.alphas();
  j["skipped_keys"] = f.skipped_keys;
  j["unknown_keys"] = f.unknown_keys;
  for (const LoraProblem& p : f.problems) j["problems"].push_back(p.text);
  if (with_model) {
    j["model"] = target.name;
    j["model_config"] = target.cfg.summary();
    j["fits"] = f.problems.empty() && f.unknown_keys.empty() && !f.targets.empty();
  }
  j["_first_modules"] = first_modules(f, 4);
  return j;
}

Verdict verdict_of(const TensorStore& store, const DetectedModel& det, const std::string& path) {
  if (det.family == "clip-vision") return clip_vision_verdict(store, path);
  if (det.family == "wan-dit") return wan_dit_verdict(store, path);
  if (det.family == "wan-vae") return wan_vae_verdict(store);
  if (det.family == "umt5-encoder") return umt5_verdict(store);
  if (det.layout.rfind("GGUF architecture", 0) == 0)
    return {false, "not a model t2v runs: " + det.layout + " (t2v reads 'wan' DiTs and 't5encoder' umT5 encoders)"};
  return {false, "not a complete model: " + unknown_reason(store, path)};
}

}  // namespace

int run_inspect(const std::string& path, const InspectOptions& opts) {
  refuse_pickle(path);
  TensorStore store = TensorStore::open(path);  // Error(65/66) for what is not valid safetensors or GGUF
  const DetectedModel det = detect_model(store);
  const Verdict verdict = verdict_of(store, det, path);
  std::optional<std::string> dit_description;
  if (det.family == "wan-dit") {
    try {
      dit_description = describe_wan_dit(store);
    } catch (const Error&) {
      // the verdict says what is missing
    }
  }

  int64_t params = 0;
  uint64_t bytes = 0;
  std::map<std::string, int64_t> by_dtype;  // dtype -> element count
  for (const auto& name : store.names()) {
    const TensorInfo& ti = store.info(name);
    params += ti.shape.numel();
    bytes += ti.end - ti.begin;
    by_dtype[tensor_type_name(ti)] += ti.shape.numel();
  }
  const auto* gguf = store.files().size() == 1 ? dynamic_cast<const GgufFile*>(store.files()[0].get()) : nullptr;

  nlohmann::json lora;
  if (det.family == "lora") lora = lora_report(path, store, opts);

  if (opts.json) {
    nlohmann::json j;
    j["path"] = path;
    if (!lora.is_null()) {
      lora.erase("_first_modules");
      j["lora"] = lora;
    }
    j["source"] = store.description();
    j["family"] = det.family;
    j["layout"] = det.layout;
    j["complete"] = verdict.complete;
    j["status"] = verdict.status;
    if (dit_description) j["model"] = *dit_description;
    j["tensors"] = store.names().size();
    j["parameters"] = params;
    j["bytes"] = bytes;
    for (auto& [dt, n] : by_dtype) j["dtypes"][dt] = n;
    if (gguf) {
      const GgufHeader& h = gguf->header();
      j["format"] = "GGUF";
      j["gguf"] = {{"version", h.version}, {"alignment", h.alignment}, {"architecture", h.architecture}};
      for (const GgufKV& kv : h.metadata) j["gguf"]["metadata"][kv.key] = kv.repr();
    }
    j["list"] = nlohmann::json::array();
    size_t shown = 0;
    for (const auto& name : store.names()) {
      if (!opts.all && shown++ >= 40) break;
      const TensorInfo& ti = store.info(name);
      j["list"].push_back({{"name", name}, {"dtype", tensor_type_name(ti)}, {"shape", ti.shape.vec()}});
    }
    fmt::print("{}\n", j.dump(2));
    return 0;
  }

  fmt::print("{}: {}\n", path, store.description());
  fmt::print("  tensors     {}\n", store.names().size());
  fmt::print("  parameters  {} ({:.3f} B)\n", params, static_cast<double>(params) / 1e9);
  fmt::print("  bytes       {} ({})\n", bytes, human_bytes(static_cast<double>(bytes)));
  std::string dts;
  for (auto& [dt, n] : by_dtype) dts += fmt::format("{}{} ({} elements)", dts.empty() ? "" : ", ", dt, n);
  fmt::print("  dtypes      {}\n", dts.empty() ? "-" : dts);
  if (det.family == "lora")
    fmt::print("  detected    lora (for the Wan DiT)\n");
  else
    fmt::print("  detected    {} ({}{})\n", det.family,
               det.layout.rfind("GGUF", 0) == 0 ? det.layout : det.layout + " layout",
               det.prefix.empty() ? "" : fmt::format(", prefix '{}'", det.prefix));
  if (dit_description) {
    while (!dit_description->empty() && dit_description->back() == '\n') dit_description->pop_back();
    fmt::print("  model       {}\n", *dit_description);
  }
  if (!lora.is_null()) {
    fmt::print("  convention  {} names{}\n", lora["convention"].get<std::string>(),
               lora["prefix"].get<std::string>().empty() ? ""
                                                         : fmt::format(" (prefix '{}')", lora["prefix"].get<std::string>()));
    fmt::print("  modules     {} ({}): {} LoRA pairs, {} weight deltas, {} bias deltas\n", lora["modules"].get<size_t>(),
               lora["_first_modules"].get<std::string>(), lora["pairs"].get<int>(), lora["weight_deltas"].get<int>(),
               lora["bias_deltas"].get<int>());
    const auto ranks = lora["ranks"].get<std::vector<int64_t>>();
    const auto alphas = lora["alphas"].get<std::vector<double>>();
    fmt::print("  rank        {}\n", ranks.empty() ? std::string("-") : join_values(ranks));
    fmt::print("  alpha       {}\n", alphas.empty() ? std::string("none (factor 1)") : join_values(alphas));
    if (!lora["skipped_keys"].empty())
      fmt::print("  skipped     {} zero-valued norm deltas\n", lora["skipped_keys"].size());
    if (!lora["unknown_keys"].empty())
      fmt::print("  unknown     {} keys match no module: {}{}\n", lora["unknown_keys"].size(),
                 lora["unknown_keys"][0].get<std::string>(), lora["unknown_keys"].size() > 1 ? ", ..." : "");
    if (lora.contains("fits")) {
      std::string why;
      if (lora.contains("problems")) why = fmt::format(": {}", lora["problems"][0].get<std::string>());
      else if (!lora["unknown_keys"].empty()) why = ": keys that match no module (--lora-ignore-unknown skips them)";
      fmt::print("  fits        {} {} ({}){}\n", lora["fits"].get<bool>() ? "yes," : "no,", lora["model"].get<std::string>(),
                 lora["model_config"].get<std::string>(), why);
    } else if (lora.contains("problems")) {
      fmt::print("  problem     {}\n", lora["problems"][0].get<std::string>());
    }
  }
  fmt::print("  status      {}\n", verdict.status);
  if (gguf) {
    const GgufHeader& h = gguf->header();
    fmt::print("  gguf        version {}, alignment {}, architecture '{}', {} metadata keys\n", h.version, h.alignment,
               h.architecture, h.metadata.size());
    size_t kw = 0;
    for (const GgufKV& kv : h.metadata) kw = std::max(kw, kv.key.size());
    kw = std::min<size_t>(kw, 48);
    size_t listed = 0;
    for (const GgufKV& kv : h.metadata) {
      if (!opts.all && listed >= 40) {
        fmt::print("    ... {} more keys (use --all)\n", h.metadata.size() - listed);
        break;
      }
      fmt::print("    {:<{}}  {}\n", kv.key, kw, kv.repr());
      ++listed;
    }
  }
  size_t width = 0;
  for (const auto& name : store.names()) width = std::max(width, name.size());
  width = std::min<size_t>(width, 72);
  size_t shown = 0;
  for (const auto& name : store.names()) {
    if (!opts.all && shown >= 40) {
      fmt::print("  ... {} more (use --all)\n", store.names().size() - shown);
      break;
    }
    const TensorInfo& ti = store.info(name);
    fmt::print("  {:<{}}  {:<7} {}\n", name, width, tensor_type_name(ti), ti.shape.str());
    ++shown;
  }
  return 0;
}

}  // namespace t2v
