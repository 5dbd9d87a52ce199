// Prompt cleaning as Wan2.1 does it before tokenizing (wan/modules/tokenizers.py):
//   ftfy.fix_text -> html.unescape twice -> strip -> collapse whitespace runs -> strip.
//
// ftfy is a Python library; the parts of ftfy.fix_text (v6, default settings)
// that can change the token ids are replicated here, in ftfy's order, repeated
// until nothing changes, per line (ftfy works line by line):
//   - unescape_html: `&name;` / `&#N;` references with a semicolon, only while
//     no line so far contained '<' (ftfy's "auto" mode)
//   - fix_c1_controls: U+0080..U+009F read as Windows-1252
//   - fix_latin_ligatures, fix_character_width (full-width ASCII, U+3000 and
//     the full-width signs U+FFE0..U+FFEE), uncurl_quotes, fix_line_breaks,
//     remove_terminal_escapes (ESC [ digits/; letter), remove_control_chars
// Not replicated (see also docs/perf_text_encoder.md, "Tokenizer fidelity"):
//   - fix_encoding (mojibake repair such as "cafÃ©" -> "café"): such prompts
//     are tokenized as typed;
//   - NFC normalization, half-width katakana/hangul folding: SentencePiece's
//     nmt_nfkc normalizer performs NFKC, which subsumes both, so ids match;
//   - ftfy's decoding of all-caps entity names (&EACUTE;).
// Python's html.unescape is replicated fully (all HTML5 names, legacy names
// without ';', numeric references with Python's replacement rules).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace t2v {

// Python's html.unescape on a code-point string.
std::u32string html_unescape(const std::u32string& s);

// ftfy.fix_text (the replicated parts, see above).
std::u32string ftfy_fix_text(const std::u32string& s);

// Python's str.isspace() (what `\s` matches in Wan's whitespace regex).
bool is_python_space(char32_t c);

// Wan's full cleaning on valid UTF-8 (call utf8_require_valid first).
std::string clean_prompt(std::string_view utf8);

}  // namespace t2v
