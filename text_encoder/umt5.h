// The umT5 encoder as Wan2.1 uses it (docs/wan.md §1): T5 v1.1 encoder blocks
// with a relative-position bias table per layer, unscaled attention, RMS norms
// and a gated tanh-GELU FFN.
//
// Symbols: B batch, L tokens, D d_model, NH heads, DK d_kv, F d_ff, NB buckets.
// Weights follow the transformers `UMT5EncoderModel` keys (also ComfyUI's);
// the original Wan names (`token_embedding.weight`, `blocks.N.attn.q.weight`,
// ...) map onto them in one table (umt5.cpp, `wan_key_of`).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/safetensors.h"
#include "core/tensor.h"

namespace t2v {

struct UMT5Config {
  int64_t vocab_size = 256384;
  int64_t d_model = 4096;
  int64_t num_layers = 24;  // encoder blocks
  int64_t num_heads = 64;
  int64_t d_kv = 64;
  int64_t d_ff = 10240;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  std::string feed_forward_proj = "gated-gelu";  // the only kind umT5 uses
  float layer_norm_epsilon = 1e-6f;

  // "umt5-xxl" (Wan2.1's encoder), or a transformers config.json path. Error 78
  // names the file and field when a value is missing, mistyped or unsupported.
  static UMT5Config from_preset_or_file(const std::string& preset_or_path);
  // Reads the sizes off a checkpoint's tensor shapes (single files such as
  // ComfyUI's carry no config): vocab and d_model from the embedding, layers
  // from the highest block index, heads and buckets from a bias table, d_ff
  // from wi_0. max_distance and eps cannot be seen and keep umT5's 128 / 1e-6.
  static UMT5Config from_weights(const TensorStore& store);
  static UMT5Config umt5_xxl() { return {}; }
  static UMT5Config from_json_file(const std::string& path);
  int64_t inner_dim() const { return num_heads * d_kv; }
};

// The tensors an encoder of this config needs, in the transformers layout:
// name and shape ([out, in] for Linears). 2 + 10 * num_layers entries.
std::vector<std::pair<std::string, Shape>> umt5_expected_tensors(const UMT5Config& cfg);

// Which naming a checkpoint uses: "hf" (transformers / ComfyUI, optionally under
// a prefix such as "text_encoders.umt5xxl.transformer.") or "wan" (original).
struct UMT5Layout {
  std::string name;    // "hf" or "wan"
  std::string prefix;  // stripped from every file key
};
UMT5Layout detect_umt5_layout(const TensorStore& store);
// File key (without prefix) of a transformers-layout key in a layout.
std::string umt5_file_key(const UMT5Layout& layout, const std::string& hf_key);

// Checks names, shapes and dtype kinds against umt5_expected_tensors without
// reading any tensor data (so it runs on a real-size file in milliseconds).
// Throws Error(65) listing the missing and misshaped keys by name. The weight
// binding below walks the same table, so a file that passes here binds.
void check_umt5_tensors(const TensorStore& store, const UMT5Config& cfg);

// Bucket of a relative position (key − query) for the bidirectional T5 scheme:
// docs/wan.md §1.4 (float32 log, truncation toward zero).
int64_t relative_position_bucket(int64_t relative_position, int64_t num_buckets, int64_t max_distance);

struct UMT5Attention {  // encoder.block.N.layer.0.SelfAttention
  Tensor q, k, v;                  // [NH*DK, D]
  Tensor o;                        // [D, NH*DK]
  Tensor relative_attention_bias;  // [NB, NH] F32
};
struct UMT5FeedForward {  // encoder.block.N.layer.1.DenseReluDense
  Tensor wi_0;  // [F, D]  (GELU branch)
  Tensor wi_1;  // [F, D]  (linear branch)
  Tensor wo;    // [D, F]
};
struct UMT5Block {  // encoder.block.N
  Tensor attn_layer_norm;  // layer.0.layer_norm.weight [D]
  UMT5Attention attn;
  Tensor ffn_layer_norm;   // layer.1.layer_norm.weight [D]
  UMT5FeedForward ffn;
};

using TensorDumpHook = std::function<void(const std::string& name, const Tensor& value)>;

class UMT5Encoder {
 public:
  // Binds the weights of `path` (a .safetensors file, a shard index, or a
  // folder such as diffusers' text_encoder/) for `cfg`: F32, F16, BF16 and
  // ComfyUI scaled fp8 (fp8 × scale_weight) are accepted and converted to the
  // device's compute dtype (CPU: F32).
  static UMT5Encoder load(const std::string& path, const UMT5Config& cfg, Device dev = Device::CPU);
  static UMT5Encoder load(const TensorStore& store, const UMT5Config& cfg, Device dev = Device::CPU);
  // Builds the encoder from a source of tensors (transformers key, shape) ->
  // tensor in the compute dtype on `dev` (F32 for the bias tables when
  // `want_f32` is set); used by load() and to run random weights.
  using TensorSource = std::function<Tensor(const std::string& key, const Shape& shape, bool want_f32)>;
  static UMT5Encoder from_tensors(const UMT5Config& cfg, const TensorSource& get, Device dev = Device::CPU);

  // input_ids [B, L] I64, attention_mask [B, L] I64 (1 = token, 0 = padding;
  // may be undefined: all ones) -> last_hidden_state [B, L, D] F32 (on `dev`).
  // Padding rows are computed as transformers computes them (they attend to
  // the unmasked keys), so the whole tensor can be compared with it.
  Tensor forward(const Tensor& input_ids, const Tensor& attention_mask) const;

  // What Wan feeds the DiT for one prompt: the encoder run on the prompt's ids
  // (text tokens + EOS, at most text_len) and the rows followed by exact zeros
  // up to text_len: [text_len, D] F32.
  Tensor encode_context(const std::vector<int64_t>& ids, int64_t text_len = 512) const;

  // Called with named intermediate tensors ("encoder.embed_tokens",
  // "encoder.block.3.attn_out", "encoder.block.3.out", "encoder.final_layer_norm").
  void set_dump_hook(TensorDumpHook hook) { dump_ = std::move(hook); }

  const UMT5Config& config() const { return cfg_; }
  Device device() const { return dev_; }

 private:
  // Bucket of every (query i, key j) pair: [L, L] I64 on the device.
  Tensor position_buckets(int64_t L) const;
  // One layer's bias: [1, NH, L, L] F32, bias[0, h, i, j] = table[bucket(j − i), h].
  Tensor position_bias(const UMT5Attention& attn, const Tensor& buckets) const;
  Tensor block_forward(int i, const Tensor& h, const Tensor& key_mask, const Tensor& buckets) const;
  void dump(const std::string& name, const Tensor& t) const {
    if (dump_) dump_(name, t);
  }

  UMT5Config cfg_;
  Device dev_ = Device::CPU;
  Tensor shared;  // [V, D] token embedding
  std::vector<UMT5Block> block;
  Tensor final_layer_norm;  // [D]
  TensorDumpHook dump_;
};

// Zero-pads rows [L, D] to [text_len, D] (rows L.. exactly zero), as Wan does
// before the DiT's text embedding (docs/wan.md §1.5).
Tensor pad_context(const Tensor& rows, int64_t text_len = 512);

}  // namespace t2v
