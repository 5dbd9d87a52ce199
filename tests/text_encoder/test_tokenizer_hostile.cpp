// The tokenizer against hostile prompts (docs/bad_inputs.md #70): one huge word, and prompts
// past the byte cap. A 1 MB single word took 17 s; the cap keeps every prompt the tokenizer
// accepts under a second, and the ids of prompts below it do not change.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "core/error.h"
#include "text_encoder/tokenizer.h"

namespace t2v {
namespace {

const std::string kData = std::string(T2V_TEST_DATA_DIR) + "/text_encoder";
using Clock = std::chrono::steady_clock;

TEST(TokenizerHostile, TheLargestPromptOfOneWordIsQuick) {
  UMT5Tokenizer tok = UMT5Tokenizer::from_path(kData + "/tokenizer");
  for (char c : {'a', 'x'}) {
    const std::string word(UMT5Tokenizer::kMaxPromptBytes, c);
    const auto t0 = Clock::now();
    TokenizedPrompt p = tok.encode(word);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_EQ(p.ids.size(), static_cast<size_t>(UMT5Tokenizer::kTextLen));
    EXPECT_GT(p.dropped, 0);
    EXPECT_LT(s, 3.0) << "a " << word.size() << "-byte word";
    std::printf("%zu-byte single word: %.3f s\n", word.size(), s);
  }
}

TEST(TokenizerHostile, PromptsAboveTheCapAreRefused) {
  UMT5Tokenizer tok = UMT5Tokenizer::from_path(kData + "/tokenizer");
  try {
    tok.encode(std::string(UMT5Tokenizer::kMaxPromptBytes + 1, 'a'));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("above the limit of 65536 bytes"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace t2v
