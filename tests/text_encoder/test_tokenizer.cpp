// Tokenizer and prompt cleaning against the ids transformers' AutoTokenizer
// produced after Wan's cleaning (tools/gen_umt5_goldens.py).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/safetensors.h"
#include "core/utf8.h"
#include "text_encoder/prompt_clean.h"
#include "text_encoder/tokenizer.h"

namespace t2v {
namespace {

const std::string kData = std::string(T2V_TEST_DATA_DIR) + "/text_encoder";

std::string bytes_of(const Tensor& t) { return std::string(static_cast<const char*>(t.raw()), t.nbytes()); }

std::vector<int64_t> ids_of(const Tensor& t) {
  const int64_t* p = t.data<int64_t>();
  return std::vector<int64_t>(p, p + t.numel());
}

struct Goldens {
  SafetensorsFile file{kData + "/token_ids.safetensors"};
  int count() const { return std::stoi(file.metadata().at("count")); }
  std::string prompt(int i) const { return bytes_of(file.get("prompt." + std::to_string(i))); }
  std::string cleaned(int i) const { return bytes_of(file.get("cleaned." + std::to_string(i))); }
  std::vector<int64_t> ids(int i) const { return ids_of(file.get("input_ids." + std::to_string(i))); }
  std::vector<int64_t> spm_ids(int i) const { return ids_of(file.get("spm_ids." + std::to_string(i))); }
  std::string desc(int i) const { return file.metadata().at("description." + std::to_string(i)); }
};

// The cleaned text equals Wan's (ftfy + html + whitespace) except where ftfy
// applies NFC / half-width folding, which we leave to SentencePiece's NFKC:
// there the text differs but the ids must not.
bool nfkc_left_to_sentencepiece(const std::string& desc) {
  return desc == "half-width katakana" || desc == "decomposed accents";
}

TEST(PromptClean, MatchesWanCleaningForEveryGoldenPrompt) {
  Goldens g;
  UMT5Tokenizer tok = UMT5Tokenizer::from_path(kData + "/tokenizer");
  ASSERT_GE(g.count(), 40);
  int differing = 0;
  for (int i = 0; i < g.count(); ++i) {
    const std::string ours = clean_prompt(g.prompt(i));
    if (nfkc_left_to_sentencepiece(g.desc(i))) {
      differing += ours != g.cleaned(i);
      EXPECT_EQ(tok.encode_cleaned(ours), tok.encode_cleaned(g.cleaned(i))) << "prompt " << i;
    } else {
      EXPECT_EQ(ours, g.cleaned(i)) << "prompt " << i << " (" << g.desc(i) << ")";
    }
  }
  EXPECT_EQ(differing, 2);  // the two cases above really exercise the NFKC path
}

TEST(Tokenizer, IdsEqualTransformersForEveryGoldenPrompt) {
  Goldens g;
  UMT5Tokenizer tok = UMT5Tokenizer::from_path(kData + "/tokenizer");
  EXPECT_FALSE(tok.byte_fallback());  // the folder's tokenizer.json says so
  EXPECT_EQ(tok.vocab_size(), 1003);  // 1000 pieces + 3 <extra_id_N>
  int checked = 0, truncated = 0;
  for (int i = 0; i < g.count(); ++i) {
    TokenizedPrompt r = tok.encode(g.prompt(i));
    if (!nfkc_left_to_sentencepiece(g.desc(i))) {
      EXPECT_EQ(r.cleaned, g.cleaned(i)) << "prompt " << i << " (" << g.desc(i) << ")";
    }
    EXPECT_EQ(r.ids, g.ids(i)) << "prompt " << i << " (" << g.desc(i) << ")";
    if (r.dropped > 0) {
      ++truncated;
      EXPECT_EQ(r.ids.size(), 512u);
      EXPECT_EQ(r.dropped, r.text_tokens - 511);
      bool warned = false;
      for (const auto& w : r.warnings)
        warned |= w.find("the last " + std::to_string(r.dropped) + " token(s) were dropped") != std::string::npos;
      EXPECT_TRUE(warned) << "no truncation warning for prompt " << i;
    }
    ++checked;
  }
  EXPECT_GE(checked, 40);
  EXPECT_GE(truncated, 3);  // long English, long Chinese, 513 text tokens
}

// 120 random concatenations of words, CJK, emoji, special-token text, characters
// outside the vocabulary, entities and compatibility characters.
TEST(Tokenizer, IdsEqualTransformersForRandomPrompts) {
  Goldens g;
  UMT5Tokenizer tok = UMT5Tokenizer::from_path(kData + "/tokenizer");
  const int n = std::stoi(g.file.metadata().at("random_count"));
  ASSERT_EQ(n, 120);
  const std::string bytes = bytes_of(g.file.get("random.prompts"));
  const std::vector<int64_t> poff = ids_of(g.file.get("random.prompt_offsets"));
  Tensor ids32 = g.file.get("random.ids");
  const int32_t* all_ids = ids32.data<int32_t>();
  const std::vector<int64_t> ioff = ids_of(g.file.get("random.id_offsets"));
  for (int i = 0; i < n; ++i) {
    const std::string prompt = bytes.substr(poff[i], poff[i + 1] - poff[i]);
    const std::vector<int64_t> expect(all_ids + ioff[i], all_ids + ioff[i + 1]);
    EXPECT_EQ(tok.encode(prompt).ids, expect) << "random prompt " << i << ": " << prompt;
  }
}

TEST(Tokenizer, EmptyAndWhitespacePromptsGiveJustEos) {
  UMT5Tokenizer tok = UMT5Tokenizer::from_path(kData + "/tokenizer");
  EXPECT_EQ(tok.encode("").ids, std::vector<int64_t>{1});
  EXPECT_EQ(tok.encode(" \t\n\u3000 ").ids, std::vector<int64_t>{1});
}

// The bare SentencePiece model (what ComfyUI embeds) keeps its byte fallback:
// ids equal sentencepiece.encode(cleaned) + EOS for every prompt without
// special-token text.
TEST(Tokenizer, BareModelMatchesSentencePieceIds) {
  Goldens g;
  UMT5Tokenizer tok = UMT5Tokenizer::from_path(kData + "/tokenizer/spiece.model");
  EXPECT_TRUE(tok.byte_fallback());
  for (int i = 0; i < g.count(); ++i) {
    std::vector<int64_t> ids = tok.encode_sentencepiece(g.cleaned(i));
    ids.push_back(UMT5Tokenizer::kEosId);
    EXPECT_EQ(ids, g.spm_ids(i)) << "prompt " << i << " (" << g.desc(i) << ")";
    if (g.desc(i).find("special token") == std::string::npos && g.desc(i).find("extra id") == std::string::npos) {
      std::vector<int64_t> full = tok.encode(g.prompt(i), 1 << 20).ids;
      EXPECT_EQ(full, g.spm_ids(i)) << "prompt " << i << " (" << g.desc(i) << ")";
    }
  }
}

TEST(Tokenizer, EmbeddedModelInSafetensors) {
  // ComfyUI's umT5 files carry the model as the U8 tensor `spiece_model`.
  std::ifstream f(kData + "/tokenizer/spiece.model", std::ios::binary);
  std::string proto((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Tensor blob = Tensor::empty(Shape{static_cast<int64_t>(proto.size())}, DType::U8);
  std::memcpy(blob.raw(), proto.data(), proto.size());
  const std::string path = ::testing::TempDir() + "/umt5_with_spiece.safetensors";
  save_safetensors(path, {{"spiece_model", blob}, {"shared.weight", Tensor::zeros(Shape{4, 2}, DType::F16)}});
  UMT5Tokenizer tok = UMT5Tokenizer::from_path(path);
  UMT5Tokenizer ref = UMT5Tokenizer::from_path(kData + "/tokenizer/spiece.model");
  const std::string text = "一只金色的龙 flies over 🦄 the river";
  EXPECT_EQ(tok.encode(text).ids, ref.encode(text).ids);
  EXPECT_EQ(tok.piece_count(), 1000);

  const std::string no_blob = ::testing::TempDir() + "/umt5_without_spiece.safetensors";
  save_safetensors(no_blob, {{"shared.weight", Tensor::zeros(Shape{4, 2}, DType::F16)}});
  try {
    UMT5Tokenizer::from_path(no_blob);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), 65);
    EXPECT_NE(std::string(e.what()).find(no_blob), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("spiece_model"), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, InvalidUtf8IsRejectedWithByteOffset) {
  UMT5Tokenizer tok = UMT5Tokenizer::from_path(kData + "/tokenizer");
  const std::string bad = std::string("a cat \xe4\xb8") + "x";  // truncated 3-byte sequence at byte 6
  try {
    tok.encode(bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), 65);
    EXPECT_NE(std::string(e.what()).find("byte 6"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tok.encode("\xff"), Error);
  EXPECT_THROW(tok.encode("ok \xc0\x80"), Error);  // overlong NUL
}

TEST(Tokenizer, MissingOrCorruptModelNamesTheFile) {
  const std::string dir = ::testing::TempDir() + "/umt5_tok_missing";
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir + "/spiece.model");
  try {
    UMT5Tokenizer::from_path(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), 66);
    EXPECT_NE(std::string(e.what()).find(dir + "/spiece.model"), std::string::npos) << e.what();
  }
  try {
    UMT5Tokenizer::from_path(dir + "/nothing_here.model");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), 66);
    EXPECT_NE(std::string(e.what()).find("nothing_here.model"), std::string::npos) << e.what();
  }
  const std::string corrupt = dir + "/spiece.model";
  std::ofstream(corrupt, std::ios::binary) << "this is not a protobuf \x01\x02\x03";
  try {
    UMT5Tokenizer::from_path(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), 65);
    EXPECT_NE(std::string(e.what()).find(corrupt), std::string::npos) << e.what();
  }
  // A truncated real model is corrupt too.
  std::ifstream f(kData + "/tokenizer/spiece.model", std::ios::binary);
  std::string proto((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::ofstream(corrupt, std::ios::binary | std::ios::trunc) << proto.substr(0, proto.size() / 3);
  EXPECT_THROW(UMT5Tokenizer::from_path(corrupt), Error);
}

TEST(Tokenizer, ControlAndBidiCharactersAreStrippedWithAWarning) {
  UMT5Tokenizer tok = UMT5Tokenizer::from_path(kData + "/tokenizer");
  TokenizedPrompt r = tok.encode(std::string("a red\x00 bird\x07", 12));
  EXPECT_EQ(r.cleaned, "a red bird");
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("2 control character(s) (first at byte 5)"), std::string::npos) << r.warnings[0];
  EXPECT_EQ(r.ids, tok.encode("a red bird").ids);

  TokenizedPrompt b = tok.encode("abc\u202edef\u2066g\u2069");
  EXPECT_EQ(b.cleaned, "abcdefg");
  ASSERT_EQ(b.warnings.size(), 1u);
  EXPECT_NE(b.warnings[0].find("3 Unicode bidi control"), std::string::npos) << b.warnings[0];
  EXPECT_TRUE(tok.encode("a plain prompt").warnings.empty());
}

TEST(PromptClean, HtmlUnescapeFollowsPython) {
  auto un = [](const std::string& s) { return utf8_encode(html_unescape(utf8_decode(s))); };
  EXPECT_EQ(un("&amp;&lt;&gt;&quot;&#39;"), "&<>\"'");
  EXPECT_EQ(un("&ampx &amp &copy2024 &notit; &notin;"), "&x & ©2024 ¬it; ∉");
  EXPECT_EQ(un("&#65&#x42;&#X43;&#0;&#x80;&#x110000;&#xD800;&#1;"), "ABC\uFFFD\u20AC\uFFFD\uFFFD");
  EXPECT_EQ(un("&#; &#x; &unknownentity; & alone"), "&#; &#x; &unknownentity; & alone");
  EXPECT_EQ(un("&NotNestedGreaterGreater;&fjlig;"), "\u2AA2\u0338fj");  // two-code-point references
}

}  // namespace
}  // namespace t2v
