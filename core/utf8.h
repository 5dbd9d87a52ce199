// UTF-8 validation for user text (prompts, JSONL values). SentencePiece would
// silently map invalid bytes to U+FFFD, so we refuse them with the byte offset.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace t2v {

// Returns the byte offset of the first invalid UTF-8 sequence (overlongs,
// surrogates, code points > U+10FFFF and truncated sequences are invalid), or
// nullopt when `s` is valid.
std::optional<size_t> utf8_first_invalid(std::string_view s);

// Throws Error(65) "<what> is not valid UTF-8 at byte N" when invalid.
void utf8_require_valid(std::string_view s, const std::string& what);

// Decodes valid UTF-8 into code points (call utf8_require_valid first).
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(const std::u32string& s);

}  // namespace t2v
