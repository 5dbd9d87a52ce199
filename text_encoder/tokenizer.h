// The umT5 tokenizer: Wan's prompt cleaning, then SentencePiece (libsentencepiece)
// on the umT5 `spiece.model`, then EOS, truncated to 512 tokens. The ids equal
// what transformers' AutoTokenizer (T5TokenizerFast) gives for Wan's call
// `tokenizer(text, padding="max_length", max_length=512, truncation=True,
// add_special_tokens=True)`, restricted to the unpadded part.
//
// Where the transformers tokenizer and raw SentencePiece differ, we follow
// transformers:
//   - special-token text in the prompt ("</s>", "<pad>", "<unk>", "<extra_id_N>")
//     becomes that token's id; the text between them is encoded piece by piece;
//   - when the folder's tokenizer.json says `byte_fallback: false` (what
//     transformers >= 5 writes when it converts a spiece.model), characters the
//     vocabulary lacks become one <unk> per run instead of SentencePiece's
//     byte pieces.
// Without a tokenizer.json (a bare spiece.model, or the model embedded in a
// ComfyUI file) the SentencePiece model's own byte-fallback setting is used and
// only its <pad>, </s>, <unk> pieces are recognised in the text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace t2v {

struct TokenizedPrompt {
  std::vector<int64_t> ids;           // text tokens then EOS; at most max_length
  int64_t text_tokens = 0;            // text tokens before truncation (no EOS)
  int64_t dropped = 0;                // text tokens cut by truncation
  std::string cleaned;                // the prompt after cleaning (UTF-8)
  std::vector<std::string> warnings;  // also logged; one line each
};

class UMT5Tokenizer {
 public:
  static constexpr int64_t kPadId = 0;
  static constexpr int64_t kEosId = 1;
  static constexpr int64_t kUnkId = 2;
  static constexpr int64_t kTextLen = 512;  // Wan's text_len, EOS included
  // Longer prompts are refused (Error 65): 512 tokens are a few thousand bytes, and the
  // cap bounds the time cleaning and SentencePiece take on hostile text.
  static constexpr size_t kMaxPromptBytes = 64 * 1024;

  // `path`: a tokenizer folder (spiece.model, optional tokenizer.json /
  // tokenizer_config.json), a spiece.model file, or a .safetensors file with the
  // U8 tensor `spiece_model` (ComfyUI's umT5 files). Error 66 when missing,
  // 65 when corrupt; both name the file.
  static UMT5Tokenizer from_path(const std::string& path);
  // A serialized SentencePiece model; `origin` names it in errors.
  static UMT5Tokenizer from_model_proto(const std::string& bytes, const std::string& origin);

  // The full path: validate UTF-8 (Error 65 with the byte offset), strip bidi
  // controls (warning), clean as Wan does, encode, append EOS, truncate to
  // max_length with a warning naming how many tokens were dropped. An empty
  // prompt gives just EOS (refusing empty prompts is the caller's decision).
  TokenizedPrompt encode(std::string_view prompt, int64_t max_length = kTextLen) const;
  // Ids of already-cleaned text: special-token splitting + SentencePiece, no EOS.
  std::vector<int64_t> encode_cleaned(std::string_view cleaned) const;
  // Raw SentencePiece ids (no special-token splitting, no unk folding, no EOS):
  // what ComfyUI's tokenizer produces before it appends EOS.
  std::vector<int64_t> encode_sentencepiece(std::string_view text) const;

  int64_t piece_count() const;  // SentencePiece pieces (without added tokens)
  int64_t vocab_size() const;   // pieces + added tokens (e.g. <extra_id_N>)
  bool byte_fallback() const { return byte_fallback_; }
  const std::string& origin() const { return origin_; }

 private:
  std::shared_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string origin_;
  bool byte_fallback_ = true;                             // false: byte pieces fold into <unk>
  std::vector<std::pair<std::string, int64_t>> special_;  // matched in the raw text
  int64_t vocab_size_ = 0;
};

// Removes Unicode bidi embedding/override/isolate controls (U+202A..U+202E,
// U+2066..U+2069) from valid UTF-8 and says how many in `warning` (empty when
// none). docs/bad_inputs.md #28: they reorder how a prompt displays without changing
// what the model reads, so a prompt can look different from what it says.
std::string strip_bidi_controls(std::string_view utf8, std::string* warning);

}  // namespace t2v
