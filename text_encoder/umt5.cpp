// umT5 encoder forward (docs/wan.md §1.3) on kernels/ops.h ops.
// Follows transformers' models/umt5/modeling_umt5.py (UMT5EncoderModel) and
// Wan2.1's wan/modules/t5.py, which compute the same function.
//
// Precision (docs/wan.md §1.6): one setting, the compute dtype of the weights
// (F32 on the CPU; BF16 or F32 on a device). The GEMMs (q/k/v/o, wi_0/wi_1/wo)
// and the token embedding run in it: each GEMM group's input is cast to it once
// (after the norm) and their outputs come back in it; attention takes q/k/v in
// it and keeps logits, bias and softmax in fp32. fp32 islands: the residual
// stream h (the embedding row widens exactly; every residual add is fp32), the
// RMS norms (statistics and weights) and the relative-position bias tables.
// With F32 weights every cast is a no-op.
#include "text_encoder/umt5.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/config_check.h"
#include "core/file_read.h"
#include "core/error.h"
#include "core/gguf.h"
#include "core/strings.h"
#include "core/weights.h"
#include "kernels/ops.h"

namespace t2v {

// ---- config -------------------------------------------------------------------

namespace {

// Bounds of every size (generous: umt5-xxl has d_model 4096, 24 layers).
constexpr int64_t kMaxVocab = 1 << 22;
constexpr int64_t kMaxDim = 65536;     // d_model
constexpr int64_t kMaxFfn = 1 << 20;   // d_ff
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxHeads = 1024;
constexpr int64_t kMaxHeadDim = 4096;  // d_kv
constexpr int64_t kMaxBuckets = 1024;
constexpr int64_t kMaxDistance = 1 << 20;

const char* kConfigHint = "use the config.json of the text_encoder/ folder, or --config umt5-xxl";

// Regular files only, size-capped (docs/bad_inputs.md #68).
std::string read_text(const std::string& path) {
  return read_input_file(path, "text-encoder config", kMaxConfigBytes, kExitConfig);
}

}  // namespace

void UMT5Config::validate(const std::string& origin) const {
  const ConfigCheck c(origin, kConfigHint);
  c.range("vocab_size", vocab_size, 1, kMaxVocab);
  c.range("d_model", d_model, 1, kMaxDim);
  c.range("num_layers", num_layers, 1, kMaxLayers);
  c.range("num_heads", num_heads, 1, kMaxHeads);
  c.range("d_kv", d_kv, 1, kMaxHeadDim);
  c.range("d_ff", d_ff, 1, kMaxFfn);
  c.range("relative_attention_num_buckets", relative_attention_num_buckets, 4, kMaxBuckets);
  if (relative_attention_num_buckets % 4 != 0)
    c.fail(fmt::format("relative_attention_num_buckets = {} must be a multiple of 4", relative_attention_num_buckets));
  // Past max_distance / the exact band (buckets / 4) the bucket is a log: the ratio must exceed 1.
  c.range("relative_attention_max_distance", relative_attention_max_distance, relative_attention_num_buckets / 4 + 1,
          kMaxDistance);
  c.open_range("layer_norm_epsilon", layer_norm_epsilon, 0.0, 1.0);
  // transformers maps "gated-gelu" to the tanh GELU ("gelu_new"); other kinds
  // are not umT5 and are refused rather than silently run with the wrong FFN.
  if (feed_forward_proj != "gated-gelu")
    throw Error(kExitConfig, fmt::format("{}: feed_forward_proj '{}' is not supported", origin, feed_forward_proj),
                "umT5 (Wan's text encoder) uses \"gated-gelu\"");
  c.product("num_heads x d_kv", {num_heads, d_kv}, kMaxDim * 4);
  c.product("vocab_size x d_model", {vocab_size, d_model});
  c.product("d_ff x d_model", {d_ff, d_model});
}

std::string UMT5Config::summary() const {
  return fmt::format("d_model {}, layers {}, heads {} x {}, d_ff {}, vocab {}", d_model, num_layers, num_heads, d_kv,
                     d_ff, vocab_size);
}

std::vector<std::string> UMT5Config::preset_names() { return {"umt5-xxl"}; }

UMT5Config UMT5Config::preset(const std::string& name) {
  if (name == "umt5-xxl") return {};  // the defaults are Wan2.1's encoder
  throw Error(kExitUsage, fmt::format("unknown text-encoder preset '{}'", name),
              fmt::format("use one of: {}, or a config.json", fmt::join(preset_names(), ", ")));
}

UMT5Config UMT5Config::from_json_text(const std::string& text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(kExitConfig, "text-encoder config '{}' is not valid JSON: {}", origin, e.what());
  }
  if (!j.is_object()) fail(kExitConfig, "text-encoder config '{}' is not a JSON object", origin);
  const ConfigCheck check("text-encoder config '" + origin + "'", kConfigHint);
  UMT5Config c;
  auto get_int = [&](const char* key, int64_t* dst, int64_t hi) {
    if (!j.contains(key))
      throw Error(kExitConfig, fmt::format("text-encoder config '{}' lacks '{}'", origin, key), kConfigHint);
    const nlohmann::json& v = j[key];
    if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() <= 0))
      fail(kExitConfig, "text-encoder config '{}': '{}' = {} is not a positive integer", origin, key, v.dump());
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
      check.fail(fmt::format("{} = {} is outside [1, {}]", key, v.dump(), hi));
    *dst = v.get<int64_t>();
    check.range(key, *dst, 1, hi);
  };
  get_int("vocab_size", &c.vocab_size, kMaxVocab);
  get_int("d_model", &c.d_model, kMaxDim);
  get_int("num_layers", &c.num_layers, kMaxLayers);
  get_int("num_heads", &c.num_heads, kMaxHeads);
  get_int("d_kv", &c.d_kv, kMaxHeadDim);
  get_int("d_ff", &c.d_ff, kMaxFfn);
  get_int("relative_attention_num_buckets", &c.relative_attention_num_buckets, kMaxBuckets);
  get_int("relative_attention_max_distance", &c.relative_attention_max_distance, kMaxDistance);
  if (j.contains("layer_norm_epsilon")) {
    if (!j["layer_norm_epsilon"].is_number() || j["layer_norm_epsilon"].get<double>() <= 0)
      fail(kExitConfig, "text-encoder config '{}': 'layer_norm_epsilon' = {} is not a positive number", origin,
           j["layer_norm_epsilon"].dump());
    check.open_range("layer_norm_epsilon", j["layer_norm_epsilon"].get<double>(), 0.0, 1.0);
    c.layer_norm_epsilon = j["layer_norm_epsilon"].get<float>();
  }
  if (j.contains("feed_forward_proj")) {
    if (!j["feed_forward_proj"].is_string())
      fail(kExitConfig, "text-encoder config '{}': 'feed_forward_proj' is not a string", origin);
    c.feed_forward_proj = j["feed_forward_proj"].get<std::string>();
  }
  if (j.contains("model_type") && j["model_type"].is_string() && j["model_type"] != "umt5")
    fail(kExitConfig,
         "text-encoder config '{}' is model_type '{}'; this encoder implements umt5 (per-layer position bias)", origin,
         j["model_type"].get<std::string>());
  c.validate("text-encoder config '" + origin + "'");
  return c;
}

UMT5Config UMT5Config::from_json(const std::string& path) { return from_json_text(read_text(path), path); }

UMT5Config UMT5Config::resolve(const std::string& config_arg, const std::string& weights_path,
                               const TensorStore* store) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!config_arg.empty()) {
    const auto names = preset_names();
    if (std::find(names.begin(), names.end(), config_arg) != names.end()) return preset(config_arg);
    if (fs::is_directory(config_arg, ec)) return from_json((fs::path(config_arg) / "config.json").string());
    return from_json(config_arg);
  }
  // A diffusers text_encoder/ folder (or a file inside one) carries its config.json.
  const fs::path p(weights_path);
  const fs::path cfg = (fs::is_directory(p, ec) ? p : p.parent_path()) / "config.json";
  if (!weights_path.empty() && fs::exists(cfg, ec)) {
    const std::string text = read_text(cfg.string());
    if (text.find("\"d_kv\"") != std::string::npos) return from_json_text(text, cfg.string());
  }
  if (store) return from_weights(*store);
  return from_weights(TensorStore::open(weights_path));
}

// ---- layouts ------------------------------------------------------------------

namespace {

// The transformers umT5 keys under another naming: the embedding, the final norm,
// and per block `<block_prefix>N.<name>` for the ten per-block tensors (in the order
// of kBlockKeys). Anything else keeps its name (and is then reported missing).
struct T5Naming {
  const char* shared;
  const char* final_norm;
  const char* block_prefix;
  std::array<const char*, 10> block;
};

constexpr std::array<const char*, 10> kBlockKeys = {
    "layer.0.layer_norm.weight",
    "layer.0.SelfAttention.q.weight",
    "layer.0.SelfAttention.k.weight",
    "layer.0.SelfAttention.v.weight",
    "layer.0.SelfAttention.o.weight",
    "layer.0.SelfAttention.relative_attention_bias.weight",
    "layer.1.layer_norm.weight",
    "layer.1.DenseReluDense.wi_0.weight",
    "layer.1.DenseReluDense.wi_1.weight",
    "layer.1.DenseReluDense.wo.weight",
};

// Original Wan (wan/modules/t5.py).
constexpr T5Naming kWanNames = {"token_embedding.weight", "norm.weight", "blocks.",
                                {"norm1.weight", "attn.q.weight", "attn.k.weight", "attn.v.weight", "attn.o.weight",
                                 "pos_embedding.embedding.weight", "norm2.weight", "ffn.gate.0.weight",
                                 "ffn.fc1.weight", "ffn.fc2.weight"}};

// llama.cpp's T5 names (as city96's umT5-XXL GGUFs carry them; ComfyUI-GGUF's
// T5_SD_MAP reverses the same table): `enc.blk.N.attn_q.weight`, `token_embd.weight`.
constexpr T5Naming kGgufNames = {"token_embd.weight", "enc.output_norm.weight", "enc.blk.",
                                 {"attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
                                  "attn_o.weight", "attn_rel_b.weight", "ffn_norm.weight", "ffn_gate.weight",
                                  "ffn_up.weight", "ffn_down.weight"}};

std::string renamed_key(const T5Naming& names, const std::string& hf) {
  if (hf == "shared.weight") return names.shared;
  if (hf == "encoder.final_layer_norm.weight") return names.final_norm;
  const std::string pre = "encoder.block.";
  if (!starts_with(hf, pre)) return hf;
  const size_t dot = hf.find('.', pre.size());
  if (dot == std::string::npos) return hf;
  const std::string i = hf.substr(pre.size(), dot - pre.size());
  const std::string rest = hf.substr(dot + 1);
  for (size_t k = 0; k < kBlockKeys.size(); ++k)
    if (rest == kBlockKeys[k]) return names.block_prefix + i + "." + names.block[k];
  return hf;
}

ShapeNote shape_note(const UMT5Config& c, const Shape& found, const Shape& expected) {
  if (found.ndim() == 2 && expected.ndim() == 2 && found[1] != expected[1])
    return {fmt::format("the file's model width is {} but the config says d_model {}; pass the matching --config",
                        found[1], c.d_model),
            ""};
  return {"pass the config.json that belongs to this checkpoint", ""};
}

}  // namespace

std::string umt5_file_key(const UMT5Layout& layout, const std::string& hf_key) {
  if (layout.name == "wan") return renamed_key(kWanNames, hf_key);
  if (layout.name == "gguf") return renamed_key(kGgufNames, hf_key);
  return hf_key;
}

WeightLayout umt5_weight_layout(const TensorStore& store, const UMT5Layout& layout) {
  const bool embed_alias = layout.name == "hf" && !store.contains(layout.prefix + "shared.weight") &&
                           store.contains(layout.prefix + "encoder.embed_tokens.weight");
  return {layout.name == "hf"     ? "transformers/ComfyUI umT5"
          : layout.name == "gguf" ? "llama.cpp T5 GGUF"
                                  : "Wan umT5",
          [layout, embed_alias](const std::string& k) {
            if (embed_alias && k == "shared.weight") return layout.prefix + "encoder.embed_tokens.weight";
            return layout.prefix + umt5_file_key(layout, k);
          }};
}

UMT5Layout detect_umt5_layout(const TensorStore& store) {
  require_gguf_architecture(store, {"t5", "t5encoder"}, "a umT5 text encoder");
  if (store.contains("enc.output_norm.weight") || store.contains("enc.blk.0.attn_q.weight")) return {"gguf", ""};
  for (const std::string& k : store.names()) {
    if (ends_with(k, "encoder.final_layer_norm.weight"))
      return {"hf", k.substr(0, k.size() - std::string("encoder.final_layer_norm.weight").size())};
  }
  for (const std::string& k : store.names()) {
    if (ends_with(k, "token_embedding.weight"))
      return {"wan", k.substr(0, k.size() - std::string("token_embedding.weight").size())};
  }
  throw Error(kExitDataErr,
              fmt::format("{} is not a umT5 encoder checkpoint: it has neither 'encoder.final_layer_norm.weight' "
                          "(transformers/ComfyUI), 'token_embedding.weight' (Wan) nor 'enc.output_norm.weight' "
                          "(llama.cpp GGUF)",
                          store.description()),
              "pass the text encoder file (e.g. text_encoder/ of the diffusers folder or umt5_xxl_*.safetensors)");
}

UMT5Config UMT5Config::from_weights(const TensorStore& store) {
  const WeightLayout layout = umt5_weight_layout(store, detect_umt5_layout(store));
  auto shape_of = [&](const std::string& hf_key) -> Shape {
    const std::string k = layout.file_key(hf_key);
    if (!store.contains(k))
      fail(kExitDataErr, "{}: cannot read the umT5 sizes: tensor '{}' is missing", store.description(), k);
    return store.info(k).shape;
  };
  UMT5Config c;
  const Shape emb = shape_of("shared.weight");                                                  // [V, D]
  const Shape bias = shape_of("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");  // [NB, NH]
  const Shape q = shape_of("encoder.block.0.layer.0.SelfAttention.q.weight");                   // [NH*DK, D]
  const Shape wi = shape_of("encoder.block.0.layer.1.DenseReluDense.wi_0.weight");              // [F, D]
  if (emb.ndim() != 2 || bias.ndim() != 2 || q.ndim() != 2 || wi.ndim() != 2 || bias[1] <= 0 || q[0] % bias[1] != 0)
    fail(kExitDataErr, "{}: the umT5 tensor shapes are inconsistent (embedding {}, bias {}, q {}, wi_0 {})",
         store.description(), emb.str(), bias.str(), q.str(), wi.str());
  c.vocab_size = emb[0];
  c.d_model = emb[1];
  c.relative_attention_num_buckets = bias[0];
  c.num_heads = bias[1];
  c.d_kv = q[0] / bias[1];
  c.d_ff = wi[0];
  c.num_layers = 0;
  while (store.contains(layout.file_key(fmt::format("encoder.block.{}.layer.0.layer_norm.weight", c.num_layers))))
    ++c.num_layers;
  c.validate(store.description() + " (detected config)");
  return c;
}

// ---- relative position bias -----------------------------------------------------

int64_t relative_position_bucket(int64_t relative_position, int64_t num_buckets, int64_t max_distance) {
  // Bidirectional: half of the buckets for keys after the query.
  const int64_t half = num_buckets / 2;
  const int64_t base = relative_position > 0 ? half : 0;
  const int64_t n = relative_position < 0 ? -relative_position : relative_position;
  const int64_t max_exact = half / 2;
  if (n < max_exact) return base + n;
  // float32 as transformers computes it: log(n / max_exact) in float32, divided
  // by the double log(max_distance / max_exact) rounded to float32, scaled,
  // truncated toward zero.
  const float ratio = std::log(static_cast<float>(n) / static_cast<float>(max_exact)) /
                      static_cast<float>(std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact))) *
                      static_cast<float>(half - max_exact);
  return base + std::min<int64_t>(max_exact + static_cast<int64_t>(ratio), half - 1);
}

// ---- weights ------------------------------------------------------------------------

void UMT5Attention::bind(const WeightScope& s, const UMT5Config& c) {
  const int64_t D = c.d_model, I = c.inner_dim();
  q = s.get("q.weight", Shape{I, D});
  k = s.get("k.weight", Shape{I, D});
  v = s.get("v.weight", Shape{I, D});
  o = s.get("o.weight", Shape{D, I});
  relative_attention_bias = s.get("relative_attention_bias.weight",
                                  Shape{c.relative_attention_num_buckets, c.num_heads}, WeightPrecision::F32);
}

void UMT5FeedForward::bind(const WeightScope& s, const UMT5Config& c) {
  wi_0 = s.get("wi_0.weight", Shape{c.d_ff, c.d_model});
  wi_1 = s.get("wi_1.weight", Shape{c.d_ff, c.d_model});
  wo = s.get("wo.weight", Shape{c.d_model, c.d_ff});
}

void UMT5Block::bind(const WeightScope& s, const UMT5Config& c) {
  const WeightScope attn_layer = s.pp("layer.0"), ffn_layer = s.pp("layer.1");
  attn_layer_norm = attn_layer.get("layer_norm.weight", Shape{c.d_model}, WeightPrecision::F32);
  attn.bind(attn_layer.pp("SelfAttention"), c);
  ffn_layer_norm = ffn_layer.get("layer_norm.weight", Shape{c.d_model}, WeightPrecision::F32);
  ffn.bind(ffn_layer.pp("DenseReluDense"), c);
}

UMT5Encoder UMT5Encoder::bind(const WeightScope& root, const UMT5Config& cfg) {
  cfg.validate("the text-encoder config");
  UMT5Encoder e;
  e.cfg_ = cfg;
  e.dev_ = root.device();
  e.dtype_ = root.source().dtype();
  e.shared = root.get("shared.weight", Shape{cfg.vocab_size, cfg.d_model});
  e.block.resize(static_cast<size_t>(cfg.num_layers));
  const WeightScope blocks = root.pp("encoder.block");
  for (size_t i = 0; i < e.block.size(); ++i) e.block[i].bind(blocks.pp(static_cast<int64_t>(i)), cfg);
  e.final_layer_norm = root.get("encoder.final_layer_norm.weight", Shape{cfg.d_model}, WeightPrecision::F32);
  return e;
}

std::vector<WeightRequest> umt5_weight_list(const UMT5Config& cfg) {
  return list_weights([&](const WeightScope& root) { UMT5Encoder::bind(root, cfg); });
}

UMT5Encoder UMT5Encoder::load(const std::string& path, const UMT5Config& cfg, const UMT5LoadOptions& opts) {
  TensorStore store = TensorStore::open(path);
  return load(store, cfg, opts);
}

UMT5Encoder UMT5Encoder::load(const TensorStore& store, const UMT5Config& cfg, const UMT5LoadOptions& opts) {
  cfg.validate("the text-encoder config");
  CheckpointOptions co;
  co.device = opts.device;
  co.dtype = opts.dtype;
  co.strict = opts.strict;
  co.dry_run = opts.dry_run;
  co.delta = opts.delta;
  co.model = "umT5";
  co.config = cfg.summary();
  co.hint = "check that the checkpoint and the --config describe the same model";
  co.shape_note = [cfg](const std::string&, const Shape& found, const Shape& expected) {
    return shape_note(cfg, found, expected);
  };
  UMT5Encoder e;
  const WeightReport report =
      bind_checkpoint(store, umt5_weight_layout(store, detect_umt5_layout(store)), co,
                      [&](const WeightScope& root, CheckpointSource&) { e = bind(root, cfg); });
  if (opts.report) *opts.report = report;
  return e;
}

// ---- forward --------------------------------------------------------------------------

Tensor UMT5Encoder::position_buckets(int64_t L) const {
  // Bucket ids depend only on (j − i); built on the host like token ids.
  Tensor buckets = Tensor::empty(Shape{L, L}, DType::I64);
  int64_t* p = buckets.data<int64_t>();
  std::vector<int64_t> by_distance(2 * L - 1);
  for (int64_t r = -(L - 1); r <= L - 1; ++r)
    by_distance[r + L - 1] = relative_position_bucket(r, cfg_.relative_attention_num_buckets,
                                                      cfg_.relative_attention_max_distance);
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) p[i * L + j] = by_distance[j - i + L - 1];
  return buckets.to(dev_);
}

Tensor UMT5Encoder::position_bias(const UMT5Attention& attn, const Tensor& buckets) const {
  const int64_t L = buckets.size(0);
  Tensor bias = ops::embedding(attn.relative_attention_bias, buckets);  // [L, L, NH]
  bias = ops::permute(bias, {2, 0, 1});                                          // [NH, L, L]
  return bias.reshape(Shape{1, cfg_.num_heads, L, L});
}

namespace {

// x in dtype dt (no op when it already is): the one place activations change precision.
Tensor in_dtype(const Tensor& x, DType dt) { return x.dtype() == dt ? x : ops::cast(x, dt); }

}  // namespace

Tensor UMT5Encoder::block_forward(int i, const Tensor& h, const Tensor& key_mask, const Tensor& buckets) const {
  const UMT5Block& b = block[i];
  const int64_t B = h.size(0), L = h.size(1), NH = cfg_.num_heads, DK = cfg_.d_kv;
  const float eps = cfg_.layer_norm_epsilon;
  const std::string name = fmt::format("encoder.block.{}", i);

  // Self-attention: pre-norm, no 1/sqrt(d_kv) scaling, this layer's own bias table.
  Tensor n = in_dtype(ops::rms_norm(h, b.attn_layer_norm, eps), dtype_);  // [B, L, D]
  Tensor q = ops::linear(n, b.attn.q).reshape(Shape{B, L, NH, DK});    // [B, L, NH, DK]
  Tensor k = ops::linear(n, b.attn.k).reshape(Shape{B, L, NH, DK});
  Tensor v = ops::linear(n, b.attn.v).reshape(Shape{B, L, NH, DK});
  ops::AttentionParams ap;
  ap.scale = 1.0f;
  ap.bias = position_bias(b.attn, buckets);  // [1, NH, L, L]
  ap.key_mask = key_mask;              // [B, L] or undefined
  Tensor a = ops::attention(q, k, v, ap).reshape(Shape{B, L, NH * DK});  // [B, L, NH*DK]
  Tensor attn_out = ops::linear(a, b.attn.o);                             // [B, L, D]
  dump(name + ".attn_out", attn_out);
  Tensor x = ops::add(h, attn_out);  // F32

  // Gated FFN: GELU(tanh) on wi_0 (fused into its GEMM), linear on wi_1.
  n = in_dtype(ops::rms_norm(x, b.ffn_layer_norm, eps), dtype_);
  Tensor gate = ops::linear_gelu_tanh(n, b.ffn.wi_0);       // [B, L, F]
  Tensor lin = ops::linear(n, b.ffn.wi_1);                   // [B, L, F]
  Tensor f = ops::linear(ops::mul(gate, lin), b.ffn.wo);     // [B, L, D]
  dump(name + ".ffn_out", f);
  x = ops::add(x, f);
  dump(name + ".out", x);
  return x;
}

Tensor UMT5Encoder::forward(const Tensor& input_ids, const Tensor& attention_mask) const {
  if (input_ids.dim() != 2 || input_ids.dtype() != DType::I64)
    fail(kExitDataErr, "text encoder: input_ids must be I64 [B, L], got {}", input_ids.str());
  if (input_ids.size(1) < 1) fail(kExitDataErr, "text encoder: input_ids has no tokens ({})", input_ids.str());
  if (attention_mask.defined() && (attention_mask.shape() != input_ids.shape()))
    fail(kExitDataErr, "text encoder: attention_mask {} does not match input_ids {}", attention_mask.str(),
         input_ids.str());
  // Ids outside the embedding would read out of bounds: refuse them by value.
  Tensor ids_host = input_ids.to(Device::CPU);
  const int64_t* idp = ids_host.data<int64_t>();
  for (int64_t t = 0; t < ids_host.numel(); ++t)
    if (idp[t] < 0 || idp[t] >= cfg_.vocab_size)
      fail(kExitDataErr, "text encoder: input_ids[{}] = {} is outside the vocabulary [0, {})", t, idp[t],
           cfg_.vocab_size);

  Tensor h = in_dtype(ops::embedding(shared, input_ids.to(dev_)), DType::F32);  // [B, L, D], the fp32 stream
  dump("encoder.embed_tokens", h);
  Tensor key_mask = attention_mask.defined() ? attention_mask.to(dev_) : Tensor();
  const Tensor buckets = position_buckets(input_ids.size(1));  // [L, L], shared by the layers' tables
  for (int i = 0; i < static_cast<int>(block.size()); ++i) h = block_forward(i, h, key_mask, buckets);
  Tensor out = ops::rms_norm(h, final_layer_norm, cfg_.layer_norm_epsilon);  // F32
  dump("encoder.final_layer_norm", out);
  return out;
}

Tensor pad_context(const Tensor& rows, int64_t text_len) {
  T2V_ASSERT(rows.dim() == 2, "pad_context expects [L, D], got {}", rows.str());
  const int64_t L = rows.size(0), D = rows.size(1);
  T2V_ASSERT(L >= 1 && L <= text_len, "context has {} rows, text_len is {}", L, text_len);
  if (L == text_len) return rows;
  return ops::concat({rows, Tensor::zeros(Shape{text_len - L, D}, rows.dtype(), rows.device())}, 0);
}

Tensor UMT5Encoder::encode_context(const std::vector<int64_t>& ids, int64_t text_len) const {
  const int64_t L = static_cast<int64_t>(ids.size());
  if (L < 1 || L > text_len)
    fail(kExitDataErr, "text encoder: {} token ids for a context of {} rows (1..{} expected)", L, text_len, text_len);
  Tensor t = Tensor::empty(Shape{1, L}, DType::I64);
  std::copy(ids.begin(), ids.end(), t.data<int64_t>());
  // Only the real tokens, no mask: rows 0..L-1 equal a masked 512-token run
  // (padded keys are masked; the bias depends only on j − i). docs/wan.md §1.3.
  Tensor out = forward(t, Tensor());  // [1, L, D]
  return pad_context(out.reshape(Shape{L, cfg_.d_model}), text_len);
}

}  // namespace t2v
