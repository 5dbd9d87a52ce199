// umT5 tokenizer on libsentencepiece; see tokenizer.h for how it matches
// transformers' T5TokenizerFast.
#include "text_encoder/tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/file_read.h"
#include "core/json_strict.h"
#include "core/safetensors.h"
#include "core/utf8.h"
#include "text_encoder/prompt_clean.h"

namespace t2v {
namespace fs = std::filesystem;

namespace {

// umT5's spiece.model is 4.5 MB and its tokenizer.json 16 MB: the caps leave room
// and keep a wrong file (or /dev/zero) from being read without end.
constexpr uint64_t kMaxTokenizerFileBytes = 256u << 20;

std::string read_file_bytes(const std::string& path, const std::string& what) {
  // Regular files only: a FIFO or device would block or never end (docs/bad_inputs.md #68).
  return read_input_file(path, what, kMaxTokenizerFileBytes, kExitDataErr);
}

bool has_suffix(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The parts of a transformers tokenizer.json that change ids: the byte-fallback
// flag of the Unigram model and the added tokens (matched in the raw text).
void read_tokenizer_json(const std::string& path, bool* byte_fallback,
                         std::vector<std::pair<std::string, int64_t>>* added) {
  const std::string hint = "restore it from the model repository, or delete it to tokenize with spiece.model alone";
  const std::string text = read_file_bytes(path, "tokenizer file");
  if (auto bad = utf8_first_invalid(text))
    throw Error(kExitDataErr, fmt::format("tokenizer file '{}' is not valid UTF-8 at byte {}", path, *bad), hint);
  StrictJsonOptions jo;
  jo.what = "tokenizer";
  jo.hint = hint;
  const nlohmann::json j = parse_json_strict("tokenizer file '" + path + "'", text, jo);
  // Every field is type-checked before it is read: a wrong type is a one-line data error
  // naming the file and key, not a library exception (docs/bad_inputs.md #75).
  auto wrong = [&](const std::string& key, const char* want, const nlohmann::json& v) {
    return Error(kExitDataErr,
                 fmt::format("tokenizer file '{}': \"{}\" is {}, expected {}", path, key, json_type_name(v), want), hint);
  };
  if (!j.is_object()) throw wrong("(top level)", "an object", j);
  nlohmann::json model = nlohmann::json::object();
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_object()) throw wrong("model", "an object", j["model"]);
    model = j["model"];
  }
  std::string type = "Unigram";
  if (model.contains("type")) {
    if (!model["type"].is_string()) throw wrong("model.type", "a string", model["type"]);
    type = model["type"].get<std::string>();
  }
  if (type != "Unigram")
    fail(kExitDataErr, "tokenizer file '{}' holds a {} model; umT5 uses a Unigram (SentencePiece) model", path, type);
  *byte_fallback = false;
  if (model.contains("byte_fallback") && !model["byte_fallback"].is_null()) {
    if (!model["byte_fallback"].is_boolean()) throw wrong("model.byte_fallback", "true or false", model["byte_fallback"]);
    *byte_fallback = model["byte_fallback"].get<bool>();
  }
  if (!j.contains("added_tokens") || j["added_tokens"].is_null()) return;
  if (!j["added_tokens"].is_array()) throw wrong("added_tokens", "an array", j["added_tokens"]);
  for (const auto& t : j["added_tokens"]) {
    if (!t.is_object() || !t.contains("content") || !t.contains("id") || !t["content"].is_string() ||
        !t["id"].is_number_integer() || t["id"].get<int64_t>() < 0 || t["id"].get<int64_t>() > (1 << 24))
      fail(kExitDataErr, "tokenizer file '{}': an added_tokens entry lacks a string content or an id in 0..2^24", path);
    added->emplace_back(t["content"].get<std::string>(), t["id"].get<int64_t>());
  }
}

// ASCII control characters ftfy's remove_control_chars drops (C0 except
// \t \n \f \r, and DEL): counted for the warning; the cleaning removes them.
int count_removed_controls(std::string_view utf8, size_t* first_offset) {
  int n = 0;
  for (size_t i = 0; i < utf8.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(utf8[i]);
    bool control = c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F;
    if (control) {
      if (n == 0) *first_offset = i;
      ++n;
    }
  }
  return n;
}

}  // namespace

std::string strip_bidi_controls(std::string_view utf8, std::string* warning) {
  std::u32string s = utf8_decode(utf8);
  std::u32string out;
  int n = 0;
  for (char32_t c : s) {
    if ((c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069)) {
      ++n;
      continue;
    }
    out += c;
  }
  if (warning) {
    *warning = n == 0 ? std::string()
                      : fmt::format("prompt contains {} Unicode bidi control character(s) (U+202A..U+202E, "
                                    "U+2066..U+2069); removed them",
                                    n);
  }
  return n == 0 ? std::string(utf8) : utf8_encode(out);
}

UMT5Tokenizer UMT5Tokenizer::from_model_proto(const std::string& bytes, const std::string& origin) {
  UMT5Tokenizer t;
  t.origin_ = origin;
  t.sp_ = std::make_shared<sentencepiece::SentencePieceProcessor>();
  auto status = t.sp_->LoadFromSerializedProto(bytes);
  if (!status.ok() || t.sp_->GetPieceSize() <= 2)
    throw Error(kExitDataErr,
                fmt::format("'{}' is not a SentencePiece model ({} bytes): {}", origin, bytes.size(),
                            status.ok() ? "too few pieces" : status.ToString()),
                "use the spiece.model of google/umt5-xxl (the diffusers tokenizer/ folder) or a ComfyUI umT5 file");
  const int n = t.sp_->GetPieceSize();
  // T5's fixed special ids; a model with other ids would need other constants.
  if (t.sp_->PieceToId("<pad>") != kPadId || t.sp_->PieceToId("</s>") != kEosId || !t.sp_->IsUnknown(kUnkId))
    fail(kExitDataErr, "SentencePiece model '{}' does not have T5's special ids (<pad>=0, </s>=1, <unk>=2)", origin);
  t.byte_fallback_ = t.sp_->IsByte(t.sp_->PieceToId("<0x00>"));
  for (int64_t id : {kPadId, kEosId, kUnkId}) t.special_.emplace_back(t.sp_->IdToPiece(static_cast<int>(id)), id);
  t.vocab_size_ = n;
  return t;
}

UMT5Tokenizer UMT5Tokenizer::from_path(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw Error(kExitNoInput, fmt::format("tokenizer path '{}' does not exist", path),
                "pass the tokenizer/ folder, its spiece.model, or a ComfyUI umT5 .safetensors");
  if (fs::is_directory(path, ec)) {
    const std::string model = (fs::path(path) / "spiece.model").string();
    if (!fs::exists(model, ec))
      throw Error(kExitNoInput, fmt::format("tokenizer folder '{}' has no spiece.model (needed: '{}')", path, model),
                  "copy spiece.model from google/umt5-xxl into the folder");
    UMT5Tokenizer t = from_model_proto(read_file_bytes(model, "tokenizer model"), model);
    const std::string json = (fs::path(path) / "tokenizer.json").string();
    if (fs::exists(json, ec)) {
      bool byte_fallback = true;
      std::vector<std::pair<std::string, int64_t>> added;
      read_tokenizer_json(json, &byte_fallback, &added);
      t.byte_fallback_ = byte_fallback && t.byte_fallback_;
      t.special_ = added;
      for (const auto& [content, id] : added) t.vocab_size_ = std::max<int64_t>(t.vocab_size_, id + 1);
    }
    return t;
  }
  if (has_suffix(path, ".safetensors")) {
    SafetensorsFile f(path);
    const TensorInfo* info = f.find("spiece_model");
    if (!info)
      throw Error(kExitDataErr, fmt::format("'{}' has no embedded tokenizer (tensor 'spiece_model')", path),
                  "pass --tokenizer with the umT5 tokenizer/ folder or its spiece.model");
    if (info->dtype != DType::U8)
      fail(kExitDataErr, "'{}': tensor 'spiece_model' is {}, expected U8 (the serialized SentencePiece model)", path,
           dtype_name(info->dtype));
    Tensor blob = f.get("spiece_model");
    std::string bytes(static_cast<const char*>(blob.raw()), blob.nbytes());
    return from_model_proto(bytes, path + ":spiece_model");
  }
  return from_model_proto(read_file_bytes(path, "tokenizer model"), path);
}

int64_t UMT5Tokenizer::piece_count() const { return sp_->GetPieceSize(); }
int64_t UMT5Tokenizer::vocab_size() const { return vocab_size_; }

std::vector<int64_t> UMT5Tokenizer::encode_sentencepiece(std::string_view text) const {
  std::vector<int> ids;
  auto status = sp_->Encode(std::string(text), &ids);
  T2V_ASSERT(status.ok(), "SentencePiece encode failed: {}", status.ToString());
  return {ids.begin(), ids.end()};
}

std::vector<int64_t> UMT5Tokenizer::encode_cleaned(std::string_view text) const {
  std::vector<int64_t> out;
  auto encode_segment = [&](std::string_view seg) {
    std::vector<int64_t> ids = encode_sentencepiece(seg);
    if (byte_fallback_) {
      out.insert(out.end(), ids.begin(), ids.end());
      return;
    }
    // transformers' Unigram without byte fallback: an unknown character is one
    // <unk> and consecutive ones fuse; SentencePiece spelled each as bytes.
    for (size_t i = 0; i < ids.size(); ++i) {
      if (sp_->IsByte(static_cast<int>(ids[i]))) {
        if (i == 0 || !sp_->IsByte(static_cast<int>(ids[i - 1]))) out.push_back(kUnkId);
      } else {
        out.push_back(ids[i]);
      }
    }
  };
  // Added tokens are matched leftmost-longest on the raw text (what the
  // tokenizers library's AddedVocabulary does); the text between is encoded alone.
  size_t seg_begin = 0, i = 0;
  while (i < text.size()) {
    size_t best_len = 0;
    int64_t best_id = 0;
    for (const auto& [content, id] : special_) {
      if (content.size() > best_len && text.compare(i, content.size(), content) == 0) {
        best_len = content.size();
        best_id = id;
      }
    }
    if (best_len == 0) {
      ++i;
      continue;
    }
    if (i > seg_begin) encode_segment(text.substr(seg_begin, i - seg_begin));
    out.push_back(best_id);
    i += best_len;
    seg_begin = i;
  }
  if (seg_begin < text.size()) encode_segment(text.substr(seg_begin));
  return out;
}

TokenizedPrompt UMT5Tokenizer::encode(std::string_view prompt, int64_t max_length) const {
  T2V_ASSERT(max_length >= 1, "max_length {} must leave room for EOS", max_length);
  if (prompt.size() > kMaxPromptBytes)
    throw Error(kExitDataErr, fmt::format("prompt is {} bytes, above the limit of {} bytes", prompt.size(), kMaxPromptBytes),
                "the text encoder reads only the first 512 tokens (a few thousand bytes); shorten it");
  utf8_require_valid(prompt, "prompt");
  TokenizedPrompt r;
  std::string warning;
  std::string text = strip_bidi_controls(prompt, &warning);
  if (!warning.empty()) r.warnings.push_back(warning);
  size_t first = 0;
  if (int n = count_removed_controls(text, &first); n > 0)
    r.warnings.push_back(fmt::format("prompt contains {} control character(s) (first at byte {}); removed them", n,
                                     first));
  r.cleaned = clean_prompt(text);
  r.ids = encode_cleaned(r.cleaned);
  r.text_tokens = static_cast<int64_t>(r.ids.size());
  if (r.text_tokens > max_length - 1) {
    r.dropped = r.text_tokens - (max_length - 1);
    r.ids.resize(max_length - 1);
    r.warnings.push_back(fmt::format(
        "prompt is {} tokens; the text encoder takes {} plus EOS, so the last {} token(s) were dropped", r.text_tokens,
        max_length - 1, r.dropped));
  }
  r.ids.push_back(kEosId);
  for (const auto& w : r.warnings) spdlog::warn("{}", w);
  return r;
}

}  // namespace t2v
