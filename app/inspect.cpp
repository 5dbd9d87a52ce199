#include "app/inspect.h"

#include <cstdio>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "diffusion/wan_dit_config.h"

namespace t2v {

static bool has_any(const TensorStore& s, const std::string& prefix, std::initializer_list<const char*> keys) {
  for (const char* k : keys)
    if (s.contains(prefix + k)) return true;
  return false;
}

DetectedModel detect_model(const TensorStore& store) {
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
  return {"unknown", "unknown", ""};
}

static std::string human_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000.0 && u < 4) {
    b /= 1000.0;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} {}", b, units[u]) : fmt::format("{:.2f} {}", b, units[u]);
}

int run_inspect(const std::string& path, const InspectOptions& opts) {
  refuse_pickle(path);
  TensorStore store = TensorStore::open(path);
  DetectedModel det = detect_model(store);

  int64_t params = 0;
  uint64_t bytes = 0;
  std::map<std::string, int64_t> by_dtype;  // dtype -> element count
  for (const auto& name : store.names()) {
    const TensorInfo& ti = store.info(name);
    params += ti.shape.numel();
    bytes += ti.end - ti.begin;
    by_dtype[dtype_name(ti.dtype)] += ti.shape.numel();
  }

  if (opts.json) {
    nlohmann::json j;
    j["path"] = path;
    j["source"] = store.description();
    j["family"] = det.family;
    j["layout"] = det.layout;
    if (det.family == "wan-dit")
      if (std::optional<std::string> d = describe_wan_dit(store)) j["model"] = *d;
    j["tensors"] = store.names().size();
    j["parameters"] = params;
    j["bytes"] = bytes;
    for (auto& [dt, n] : by_dtype) j["dtypes"][dt] = n;
    size_t shown = 0;
    for (const auto& name : store.names()) {
      if (!opts.all && shown++ >= 40) break;
      const TensorInfo& ti = store.info(name);
      j["list"].push_back({{"name", name}, {"dtype", dtype_name(ti.dtype)}, {"shape", ti.shape.vec()}});
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
  fmt::print("  dtypes      {}\n", dts);
  fmt::print("  detected    {} ({} layout{})\n", det.family, det.layout,
             det.prefix.empty() ? "" : fmt::format(", prefix '{}'", det.prefix));
  if (det.family == "wan-dit") {
    if (std::optional<std::string> d = describe_wan_dit(store)) fmt::print("  model       {}\n", *d);
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
    fmt::print("  {:<{}}  {:<7} {}\n", name, width, dtype_name(ti.dtype), ti.shape.str());
    ++shown;
  }
  return 0;
}

}  // namespace t2v
