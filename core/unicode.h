// Unicode properties t2v needs beyond UTF-8 validation (core/utf8.h), without ICU:
//   - which characters show nothing (spaces, zero-width and other default-ignorable
//     characters), so a prompt made only of them counts as empty (docs/bad_inputs.md #79);
//   - a key under which two file names are equal when a file system compares names
//     case-insensitively or after normalising them (NFC on macOS, NFKC on ZFS with
//     normalization=formKC, case folding on Windows/macOS), so batch ids and outputs that
//     would land on one file are refused (docs/bad_inputs.md #76).
#pragma once

#include <string>
#include <string_view>

namespace t2v {

// White_Space characters (U+0020, U+00A0, U+3000, U+2000..U+200A, ...).
bool is_unicode_space(char32_t c);
// Characters that render as nothing: Default_Ignorable_Code_Point (U+200B..U+200F,
// U+2060..U+206F, U+FEFF, U+180B..U+180F, U+00AD, variation selectors, tags, ...) plus
// the Hangul fillers and the blank Braille pattern U+2800.
bool is_invisible(char32_t c);
// True when valid UTF-8 `s` holds nothing but spaces and invisible characters.
bool is_blank_text(std::string_view s);

// The compatibility caseless form of valid UTF-8 `s` (Unicode §3.13, D146:
// NFKD(casefold(NFKD(casefold(NFD(s))))), with default-ignorable characters removed):
// two names with the same key can be one file on some file system.
std::string name_collision_key(std::string_view s);

// Parts of the key, exposed for tests: NFKD (full decomposition and canonical ordering)
// and full case folding of code points.
std::u32string nfkd(std::u32string_view s);
std::u32string case_fold(std::u32string_view s);

}  // namespace t2v
