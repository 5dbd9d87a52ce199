// `t2v probe text-encoder` (docs/conventions.md §7): runs the umT5 encoder on
// named input tensors and writes its output, so tools/ scripts can compare it
// with transformers on the same inputs.
#pragma once

#include <string>

#include "core/tensor.h"

namespace t2v {

// weights: a umT5 checkpoint (file, shard index or folder); config: a
// transformers config.json, the preset "umt5-xxl", empty (the config.json
// beside the weights, else the sizes read off them: UMT5Config::resolve), or
// "auto" (the sizes read off the weights: UMT5Config::from_weights); inputs: a
// .safetensors with `input_ids` I64 [B, L] and `attention_mask` I64 [B, L]
// (optional: all ones); out: the .safetensors to write with
// `last_hidden_state` F32 [B, L, D].
void probe_text_encoder(const std::string& weights, const std::string& config, const std::string& inputs,
                        const std::string& out, Device dev);

}  // namespace t2v
