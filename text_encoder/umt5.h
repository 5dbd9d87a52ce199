// The umT5 encoder as Wan2.1 uses it (docs/wan.md §1): T5 v1.1 encoder blocks
// with a relative-position bias table per layer, unscaled attention, RMS norms
// and a gated tanh-GELU FFN.
//
// Symbols: B batch, L tokens, D d_model, NH heads, DK d_kv, F d_ff, NB buckets.
// Weights follow the transformers `UMT5EncoderModel` keys (also ComfyUI's);
// the original Wan names (`token_embedding.weight`, `blocks.N.attn.q.weight`,
// ...) map onto them in one table (umt5.cpp, `kWanNames`).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/safetensors.h"
#include "core/tensor.h"
#include "core/weights.h"

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

  int64_t inner_dim() const { return num_heads * d_kv; }
  // Every value within its range (overflow-checked products); Error(78) naming
  // `origin` and the field.
  void validate(const std::string& origin) const;
  std::string summary() const;  // "d_model 4096, layers 24, heads 64 x 64, d_ff 10240, vocab 256384"

  // ---- where a config comes from (the same calls for every model) ----
  static std::vector<std::string> preset_names();  // "umt5-xxl" (Wan2.1's encoder)
  // The named preset; Error(64) listing the names for any other.
  static UMT5Config preset(const std::string& name);
  // A transformers config.json. Error 78 names the file and field when a value
  // is missing, mistyped, out of range or unsupported.
  static UMT5Config from_json(const std::string& path);
  static UMT5Config from_json_text(const std::string& text, const std::string& origin);
  // Reads the sizes off a checkpoint's tensor shapes (single files such as
  // ComfyUI's carry no config): vocab and d_model from the embedding, layers
  // from the highest block index, heads and buckets from a bias table, d_ff
  // from wi_0. max_distance and eps cannot be seen and keep umT5's 128 / 1e-6.
  static UMT5Config from_weights(const TensorStore& store);
  // `config_arg`: a preset name, a config.json (or a folder holding one), or
  // empty: then the umT5 config.json beside `weights_path` when there is one,
  // else from_weights (of `store`, or of the store opened at `weights_path`).
  static UMT5Config resolve(const std::string& config_arg, const std::string& weights_path,
                            const TensorStore* store = nullptr);
};

// Which naming a checkpoint uses: "hf" (transformers / ComfyUI, optionally under
// a prefix such as "text_encoders.umt5xxl.transformer."), "wan" (original) or
// "gguf" (llama.cpp's T5 names: `enc.blk.N.attn_q.weight`, `token_embd.weight`,
// as in city96's umT5-XXL GGUFs; Error(65) for a GGUF whose general.architecture
// is not t5/t5encoder).
struct UMT5Layout {
  std::string name;    // "hf" or "wan"
  std::string prefix;  // stripped from every file key
};
UMT5Layout detect_umt5_layout(const TensorStore& store);
// File key (without prefix) of a transformers-layout key in a layout.
std::string umt5_file_key(const UMT5Layout& layout, const std::string& hf_key);
// The canonical (transformers) -> file key rename of a store in `layout`,
// prefix included (transformers may write the tied embedding as
// `encoder.embed_tokens.weight` only).
WeightLayout umt5_weight_layout(const TensorStore& store, const UMT5Layout& layout);

// Bucket of a relative position (key − query) for the bidirectional T5 scheme:
// docs/wan.md §1.4 (float32 log, truncation toward zero).
int64_t relative_position_bucket(int64_t relative_position, int64_t num_buckets, int64_t max_distance);

struct UMT5Attention {  // encoder.block.N.layer.0.SelfAttention
  Tensor q, k, v;                  // [NH*DK, D]
  Tensor o;                        // [D, NH*DK]
  Tensor relative_attention_bias;  // [NB, NH] F32 (added to fp32 logits)
  void bind(const WeightScope& s, const UMT5Config& cfg);
};
struct UMT5FeedForward {  // encoder.block.N.layer.1.DenseReluDense
  Tensor wi_0;  // [F, D]  (GELU branch)
  Tensor wi_1;  // [F, D]  (linear branch)
  Tensor wo;    // [D, F]
  void bind(const WeightScope& s, const UMT5Config& cfg);
};
struct UMT5Block {  // encoder.block.N
  Tensor attn_layer_norm;  // layer.0.layer_norm.weight [D] F32
  UMT5Attention attn;      // layer.0.SelfAttention
  Tensor ffn_layer_norm;   // layer.1.layer_norm.weight [D] F32
  UMT5FeedForward ffn;     // layer.1.DenseReluDense
  void bind(const WeightScope& s, const UMT5Config& cfg);
};

// Every tensor UMT5Encoder::bind asks for, in order (2 + 10 * num_layers).
std::vector<WeightRequest> umt5_weight_list(const UMT5Config& cfg);

struct UMT5LoadOptions {
  Device device = Device::CPU;
  DType dtype = DType::F32;  // compute dtype of the GEMMs and the embedding (norms and bias tables stay F32)
  bool strict = false;       // unused keys are an error instead of a warning
  // Headers only: names, shapes and dtypes checked (every problem in one
  // Error(65)); the returned encoder has undefined tensors.
  bool dry_run = false;
  std::shared_ptr<const WeightDelta> delta;  // per-key deltas merged at load (core/weights.h)
  WeightReport* report = nullptr;            // if set: layout, unused keys, parameter count
};

using TensorDumpHook = std::function<void(const std::string& name, const Tensor& value)>;

class UMT5Encoder {
 public:
  // Binds the weights of `path` (a .safetensors or .gguf file, a shard index,
  // or a folder such as diffusers' text_encoder/) for `cfg`: F32, F16, BF16,
  // ComfyUI scaled fp8 (fp8 × scale_weight) and GGUF quantized blocks
  // (dequantized at load) are accepted and converted once to opts.dtype on
  // opts.device (default: F32 on the CPU); a dry run over the headers first,
  // so a wrong file fails in milliseconds.
  static UMT5Encoder load(const std::string& path, const UMT5Config& cfg, const UMT5LoadOptions& opts = {});
  static UMT5Encoder load(const TensorStore& store, const UMT5Config& cfg, const UMT5LoadOptions& opts = {});
  // Binds every tensor through `root` (at the transformers names) from any
  // source (a checkpoint, a dry run, random weights); runs on the source's device
  // in its compute dtype (precision policy in umt5.cpp).
  static UMT5Encoder bind(const WeightScope& root, const UMT5Config& cfg);

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
  DType dtype() const { return dtype_; }  // the compute dtype

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
  DType dtype_ = DType::F32;
  Tensor shared;  // [V, D] token embedding
  std::vector<UMT5Block> block;
  Tensor final_layer_norm;  // [D] F32
  TensorDumpHook dump_;
};

// Zero-pads rows [L, D] to [text_len, D] (rows L.. exactly zero), as Wan does
// before the DiT's text embedding (docs/wan.md §1.5).
Tensor pad_context(const Tensor& rows, int64_t text_len = 512);

}  // namespace t2v
