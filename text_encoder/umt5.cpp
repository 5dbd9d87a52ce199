// umT5 encoder forward (docs/wan.md §1.3) on kernels/ops.h ops.
// Follows transformers' models/umt5/modeling_umt5.py (UMT5EncoderModel) and
// Wan2.1's wan/modules/t5.py, which compute the same function.
#include "text_encoder/umt5.h"

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/weights.h"
#include "kernels/ops.h"

namespace t2v {

// ---- config -------------------------------------------------------------------

UMT5Config UMT5Config::from_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) fail(kExitNoInput, "cannot read text-encoder config '{}'", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    fail(kExitConfig, "text-encoder config '{}' is not valid JSON: {}", path, e.what());
  }
  if (!j.is_object()) fail(kExitConfig, "text-encoder config '{}' is not a JSON object", path);
  UMT5Config c;
  auto get_int = [&](const char* key, int64_t* dst) {
    if (!j.contains(key))
      throw Error(kExitConfig, fmt::format("text-encoder config '{}' lacks '{}'", path, key),
                  "use the config.json of the text_encoder/ folder, or --config umt5-xxl");
    if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0)
      fail(kExitConfig, "text-encoder config '{}': '{}' = {} is not a positive integer", path, key, j[key].dump());
    *dst = j[key].get<int64_t>();
  };
  get_int("vocab_size", &c.vocab_size);
  get_int("d_model", &c.d_model);
  get_int("num_layers", &c.num_layers);
  get_int("num_heads", &c.num_heads);
  get_int("d_kv", &c.d_kv);
  get_int("d_ff", &c.d_ff);
  get_int("relative_attention_num_buckets", &c.relative_attention_num_buckets);
  get_int("relative_attention_max_distance", &c.relative_attention_max_distance);
  if (j.contains("layer_norm_epsilon")) {
    if (!j["layer_norm_epsilon"].is_number() || j["layer_norm_epsilon"].get<double>() <= 0)
      fail(kExitConfig, "text-encoder config '{}': 'layer_norm_epsilon' = {} is not a positive number", path,
           j["layer_norm_epsilon"].dump());
    c.layer_norm_epsilon = j["layer_norm_epsilon"].get<float>();
  }
  if (j.contains("feed_forward_proj")) {
    if (!j["feed_forward_proj"].is_string())
      fail(kExitConfig, "text-encoder config '{}': 'feed_forward_proj' is not a string", path);
    c.feed_forward_proj = j["feed_forward_proj"].get<std::string>();
  }
  // transformers maps "gated-gelu" to the tanh GELU ("gelu_new"); other kinds
  // are not umT5 and are refused rather than silently run with the wrong FFN.
  if (c.feed_forward_proj != "gated-gelu")
    throw Error(kExitConfig,
                fmt::format("text-encoder config '{}': feed_forward_proj '{}' is not supported", path,
                            c.feed_forward_proj),
                "umT5 (Wan's text encoder) uses \"gated-gelu\"");
  if (j.contains("model_type") && j["model_type"].is_string() && j["model_type"] != "umt5")
    fail(kExitConfig,
         "text-encoder config '{}' is model_type '{}'; this encoder implements umt5 (per-layer position bias)", path,
         j["model_type"].get<std::string>());
  if (c.relative_attention_num_buckets % 4 != 0)
    fail(kExitConfig, "text-encoder config '{}': relative_attention_num_buckets = {} must be a multiple of 4", path,
         c.relative_attention_num_buckets);
  return c;
}

UMT5Config UMT5Config::from_preset_or_file(const std::string& preset_or_path) {
  if (preset_or_path == "umt5-xxl") return umt5_xxl();
  return from_json_file(preset_or_path);
}

// ---- layouts ------------------------------------------------------------------

std::vector<std::pair<std::string, Shape>> umt5_expected_tensors(const UMT5Config& c) {
  const int64_t D = c.d_model, I = c.inner_dim(), F = c.d_ff;
  std::vector<std::pair<std::string, Shape>> t;
  t.emplace_back("shared.weight", Shape{c.vocab_size, D});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string b = fmt::format("encoder.block.{}.", i);
    t.emplace_back(b + "layer.0.layer_norm.weight", Shape{D});
    for (const char* p : {"q", "k", "v"}) t.emplace_back(b + "layer.0.SelfAttention." + p + ".weight", Shape{I, D});
    t.emplace_back(b + "layer.0.SelfAttention.o.weight", Shape{D, I});
    t.emplace_back(b + "layer.0.SelfAttention.relative_attention_bias.weight",
                   Shape{c.relative_attention_num_buckets, c.num_heads});
    t.emplace_back(b + "layer.1.layer_norm.weight", Shape{D});
    t.emplace_back(b + "layer.1.DenseReluDense.wi_0.weight", Shape{F, D});
    t.emplace_back(b + "layer.1.DenseReluDense.wi_1.weight", Shape{F, D});
    t.emplace_back(b + "layer.1.DenseReluDense.wo.weight", Shape{D, F});
  }
  t.emplace_back("encoder.final_layer_norm.weight", Shape{D});
  return t;
}

namespace {

bool ends_with(const std::string& s, std::string_view suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Original Wan (wan/modules/t5.py) names of the transformers keys.
std::string wan_key_of(const std::string& hf) {
  if (hf == "shared.weight") return "token_embedding.weight";
  if (hf == "encoder.final_layer_norm.weight") return "norm.weight";
  const std::string pre = "encoder.block.";
  T2V_ASSERT(hf.rfind(pre, 0) == 0, "not a umT5 key: {}", hf);
  size_t dot = hf.find('.', pre.size());
  const std::string i = hf.substr(pre.size(), dot - pre.size());
  const std::string rest = hf.substr(dot + 1);
  static const std::pair<const char*, const char*> kMap[] = {
      {"layer.0.layer_norm.weight", "norm1.weight"},
      {"layer.0.SelfAttention.q.weight", "attn.q.weight"},
      {"layer.0.SelfAttention.k.weight", "attn.k.weight"},
      {"layer.0.SelfAttention.v.weight", "attn.v.weight"},
      {"layer.0.SelfAttention.o.weight", "attn.o.weight"},
      {"layer.0.SelfAttention.relative_attention_bias.weight", "pos_embedding.embedding.weight"},
      {"layer.1.layer_norm.weight", "norm2.weight"},
      {"layer.1.DenseReluDense.wi_0.weight", "ffn.gate.0.weight"},
      {"layer.1.DenseReluDense.wi_1.weight", "ffn.fc1.weight"},
      {"layer.1.DenseReluDense.wo.weight", "ffn.fc2.weight"},
  };
  for (const auto& [h, w] : kMap)
    if (rest == h) return "blocks." + i + "." + w;
  T2V_ASSERT(false, "no Wan name for {}", hf);
  return {};
}

// The file key (prefix included) holding `hf_key` in this store. transformers
// may write the tied embedding as `encoder.embed_tokens.weight` only.
std::string resolve_key(const TensorStore& store, const UMT5Layout& layout, const std::string& hf_key) {
  std::string k = layout.prefix + umt5_file_key(layout, hf_key);
  if (layout.name == "hf" && hf_key == "shared.weight" && !store.contains(k) &&
      store.contains(layout.prefix + "encoder.embed_tokens.weight"))
    return layout.prefix + "encoder.embed_tokens.weight";
  return k;
}

std::string shape_hint(const UMT5Config& c, const Shape& found, const Shape& expected) {
  if (found.ndim() == 2 && expected.ndim() == 2 && found[1] != expected[1])
    return fmt::format("the file's model width is {} but the config says d_model {}; pass the matching --config",
                       found[1], c.d_model);
  return "pass the config.json that belongs to this checkpoint";
}

}  // namespace

std::string umt5_file_key(const UMT5Layout& layout, const std::string& hf_key) {
  return layout.name == "wan" ? wan_key_of(hf_key) : hf_key;
}

UMT5Layout detect_umt5_layout(const TensorStore& store) {
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
                          "(transformers/ComfyUI) nor 'token_embedding.weight' (Wan)",
                          store.description()),
              "pass the text encoder file (e.g. text_encoder/ of the diffusers folder or umt5_xxl_*.safetensors)");
}

UMT5Config UMT5Config::from_weights(const TensorStore& store) {
  const UMT5Layout layout = detect_umt5_layout(store);
  auto shape_of = [&](const std::string& hf_key) -> Shape {
    const std::string k = resolve_key(store, layout, hf_key);
    if (!store.contains(k))
      fail(kExitDataErr, "{}: cannot read the umT5 sizes: tensor '{}' is missing", store.description(), k);
    return store.info(k).shape;
  };
  UMT5Config c;
  const Shape emb = shape_of("shared.weight");                                                  // [V, D]
  const Shape bias = shape_of("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");  // [NB, NH]
  const Shape q = shape_of("encoder.block.0.layer.0.SelfAttention.q.weight");                   // [NH*DK, D]
  const Shape wi = shape_of("encoder.block.0.layer.1.DenseReluDense.wi_0.weight");              // [F, D]
  if (emb.ndim() != 2 || bias.ndim() != 2 || q.ndim() != 2 || wi.ndim() != 2 || q[0] % bias[1] != 0)
    fail(kExitDataErr, "{}: the umT5 tensor shapes are inconsistent (embedding {}, bias {}, q {}, wi_0 {})",
         store.description(), emb.str(), bias.str(), q.str(), wi.str());
  c.vocab_size = emb[0];
  c.d_model = emb[1];
  c.relative_attention_num_buckets = bias[0];
  c.num_heads = bias[1];
  c.d_kv = q[0] / bias[1];
  c.d_ff = wi[0];
  c.num_layers = 0;
  while (store.contains(resolve_key(store, layout,
                                    fmt::format("encoder.block.{}.layer.0.layer_norm.weight", c.num_layers))))
    ++c.num_layers;
  return c;
}

void check_umt5_tensors(const TensorStore& store, const UMT5Config& cfg) {
  const UMT5Layout layout = detect_umt5_layout(store);
  std::vector<std::string> missing, wrong;
  for (const auto& [key, shape] : umt5_expected_tensors(cfg)) {
    const std::string fk = resolve_key(store, layout, key);
    if (!store.contains(fk)) {
      missing.push_back(fk);
      continue;
    }
    const TensorInfo& info = store.info(fk);
    if (info.shape != shape)
      wrong.push_back(fmt::format("{} is {}, config expects {} ({})", fk, info.shape.str(), shape.str(),
                                  shape_hint(cfg, info.shape, shape)));
    else if (!dtype_is_float(info.dtype))
      wrong.push_back(fmt::format("{} has dtype {}, expected F32, F16, BF16 or F8_E4M3", fk, dtype_name(info.dtype)));
  }
  if (missing.empty() && wrong.empty()) return;
  std::string msg = fmt::format("{} ({} layout) does not match the umT5 config:", store.description(), layout.name);
  if (!missing.empty()) {
    msg += fmt::format(" missing {} tensor(s): ", missing.size());
    for (size_t i = 0; i < missing.size() && i < 6; ++i) msg += (i ? ", " : "") + missing[i];
    if (missing.size() > 6) msg += fmt::format(", ... ({} more)", missing.size() - 6);
    msg += ";";
  }
  for (size_t i = 0; i < wrong.size() && i < 4; ++i) msg += " " + wrong[i] + ";";
  msg.pop_back();
  throw Error(kExitDataErr, msg, "check that the checkpoint and the --config describe the same model");
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

UMT5Encoder UMT5Encoder::load(const std::string& path, const UMT5Config& cfg, Device dev) {
  TensorStore store = TensorStore::open(path);
  return load(store, cfg, dev);
}

UMT5Encoder UMT5Encoder::load(const TensorStore& store, const UMT5Config& cfg, Device dev) {
  // Names and shapes first, from the header alone: a wrong file fails before
  // gigabytes are converted.
  check_umt5_tensors(store, cfg);
  const UMT5Layout layout = detect_umt5_layout(store);
  const bool embed_alias = layout.name == "hf" && !store.contains(layout.prefix + "shared.weight");

  WeightLoaderOptions opts;
  opts.device = dev;
  opts.dtype = dev == Device::CPU ? DType::F32 : DType::BF16;
  opts.layout = layout.name == "hf" ? "transformers/ComfyUI umT5" : "Wan umT5";
  opts.strip_prefix = layout.prefix;
  opts.rename = [layout, embed_alias](const std::string& k) {
    if (embed_alias && k == "shared.weight") return std::string("encoder.embed_tokens.weight");
    return umt5_file_key(layout, k);
  };
  opts.shape_hint = [cfg](const std::string&, const Shape& found, const Shape& expected) {
    return shape_hint(cfg, found, expected);
  };
  WeightLoader w(store, opts);

  UMT5Encoder e = from_tensors(
      cfg, [&](const std::string& key, const Shape& shape, bool f32) {
        return f32 ? w.get_f32(key, shape) : w.get(key, shape);
      },
      dev);
  w.finish();
  return e;
}

UMT5Encoder UMT5Encoder::from_tensors(const UMT5Config& cfg, const TensorSource& get, Device dev) {
  // The table of umt5_expected_tensors, bound member by member.
  const auto table = umt5_expected_tensors(cfg);
  size_t t = 0;
  auto next = [&](bool f32) {
    const auto& [key, shape] = table[t++];
    return get(key, shape, f32);
  };
  UMT5Encoder e;
  e.cfg_ = cfg;
  e.dev_ = dev;
  e.shared = next(false);
  e.block.resize(cfg.num_layers);
  for (UMT5Block& b : e.block) {
    b.attn_layer_norm = next(false);
    b.attn.q = next(false);
    b.attn.k = next(false);
    b.attn.v = next(false);
    b.attn.o = next(false);
    b.attn.relative_attention_bias = next(true);  // added to fp32 logits
    b.ffn_layer_norm = next(false);
    b.ffn.wi_0 = next(false);
    b.ffn.wi_1 = next(false);
    b.ffn.wo = next(false);
  }
  e.final_layer_norm = next(false);
  T2V_ASSERT(t == table.size(), "bound {} of {} umT5 tensors", t, table.size());
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

Tensor UMT5Encoder::block_forward(int i, const Tensor& h, const Tensor& key_mask, const Tensor& buckets) const {
  const UMT5Block& b = block[i];
  const int64_t B = h.size(0), L = h.size(1), NH = cfg_.num_heads, DK = cfg_.d_kv;
  const float eps = cfg_.layer_norm_epsilon;
  const std::string name = fmt::format("encoder.block.{}", i);

  // Self-attention: pre-norm, no 1/sqrt(d_kv) scaling, this layer's own bias table.
  Tensor n = ops::rms_norm(h, b.attn_layer_norm, eps);                 // [B, L, D]
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
  Tensor x = ops::add(h, attn_out);

  // Gated FFN: GELU(tanh) on wi_0, linear on wi_1.
  n = ops::rms_norm(x, b.ffn_layer_norm, eps);
  Tensor gate = ops::gelu_tanh(ops::linear(n, b.ffn.wi_0));  // [B, L, F]
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

  Tensor h = ops::embedding(shared, input_ids.to(dev_));  // [B, L, D]
  dump("encoder.embed_tokens", h);
  Tensor key_mask = attention_mask.defined() ? attention_mask.to(dev_) : Tensor();
  const Tensor buckets = position_buckets(input_ids.size(1));  // [L, L], shared by the layers' tables
  for (int i = 0; i < static_cast<int>(block.size()); ++i) h = block_forward(i, h, key_mask, buckets);
  Tensor out = ops::rms_norm(h, final_layer_norm, cfg_.layer_norm_epsilon);
  if (out.dtype() != DType::F32) out = ops::cast(out, DType::F32);
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
