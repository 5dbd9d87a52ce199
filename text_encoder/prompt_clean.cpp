// Wan's prompt cleaning; see prompt_clean.h for what is replicated from ftfy.
// Each function names the Python code it follows (CPython's html module, ftfy
// 6.3 fixes.py / chardata.py); tests/text_encoder/test_tokenizer.cpp checks the
// result against ids that transformers computed after the real cleaning.
#include "text_encoder/prompt_clean.h"

#include <algorithm>
#include <cstring>

#include "core/utf8.h"
#include "text_encoder/html_entities.h"

namespace t2v {
namespace {

// Windows-1252 as browsers (and Python's html module, and ftfy's
// "sloppy-windows-1252") read bytes 0x80..0x9F; the five undefined bytes map
// to themselves.
constexpr char32_t kCp1252High[32] = {
    0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_hex(char32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_ascii_alnum(char32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

const HtmlEntity* find_entity(const std::string& name) {
  const HtmlEntity* begin = kHtmlEntities;
  const HtmlEntity* end = kHtmlEntities + kHtmlEntityCount;
  const HtmlEntity* it = std::lower_bound(begin, end, name, [](const HtmlEntity& e, const std::string& n) {
    return std::strcmp(e.name, n.c_str()) < 0;
  });
  return (it != end && name == it->name) ? it : nullptr;
}

void append_entity(std::u32string& out, const HtmlEntity& e) {
  out += e.first;
  if (e.second) out += e.second;
}

// The part of a code-point string as ASCII (entity names are ASCII; a
// non-ASCII character makes the lookup fail, as in Python).
std::string ascii_of(const std::u32string& s, size_t begin, size_t end) {
  std::string r;
  for (size_t i = begin; i < end; ++i) r += s[i] < 0x80 ? static_cast<char>(s[i]) : '\x01';
  return r;
}

// html._replace_charref for a numeric reference with value `num` (saturated).
void append_numeric_ref(std::u32string& out, uint64_t num) {
  if (num == 0) {
    out += 0xFFFD;
  } else if (num == 0x0D) {
    out += U'\r';
  } else if (num >= 0x80 && num <= 0x9F) {
    out += kCp1252High[num - 0x80];
  } else if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
    out += 0xFFFD;
  } else if ((num >= 0x1 && num <= 0x8) || num == 0xB || (num >= 0xE && num <= 0x1F) || num == 0x7F ||
             (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE) {
    // Python's _invalid_codepoints: dropped.
  } else {
    out += static_cast<char32_t>(num);
  }
}

// Parses the digits of s[begin, end) in base 10 or 16, saturating (Python's int
// is unbounded; anything above U+10FFFF maps to U+FFFD either way).
uint64_t parse_saturated(const std::u32string& s, size_t begin, size_t end, int base) {
  uint64_t v = 0;
  for (size_t i = begin; i < end; ++i) {
    char32_t c = s[i];
    uint64_t d = is_ascii_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
    v = std::min<uint64_t>(v * base + d, 0x7FFFFFFF);
  }
  return v;
}

// ftfy remove_control_chars: the code points ftfy.chardata.CONTROL_CHARS lists.
bool is_ftfy_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

// ---- ftfy fixers, in ftfy's order ---------------------------------------------

// ftfy.fixes.unescape_html: `&#?[0-9A-Za-z]{1,24};` references that are HTML5
// names with ';' or numeric references that html.unescape decodes completely.
std::u32string ftfy_unescape_html(const std::u32string& s) {
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == U'&') {
      size_t j = i + 1;
      bool numeric = j < s.size() && s[j] == U'#';
      if (numeric) ++j;
      size_t k = j;
      while (k < s.size() && k - j < 24 && is_ascii_alnum(s[k])) ++k;
      if (k > j && k < s.size() && s[k] == U';') {
        std::u32string ref = s.substr(i, k + 1 - i);
        if (!numeric) {
          if (const HtmlEntity* e = find_entity(ascii_of(s, j, k + 1))) {
            append_entity(out, *e);
            i = k + 1;
            continue;
          }
        } else {
          std::u32string decoded = html_unescape(ref);
          if (decoded.find(U';') == std::u32string::npos) {
            out += decoded;
            i = k + 1;
            continue;
          }
        }
        out += ref;  // not decodable: kept as written
        i = k + 1;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

std::u32string ftfy_fix_c1_controls(const std::u32string& s) {
  std::u32string out = s;
  for (char32_t& c : out)
    if (c >= 0x80 && c <= 0x9F) c = kCp1252High[c - 0x80];
  return out;
}

std::u32string ftfy_fix_latin_ligatures(const std::u32string& s) {
  std::u32string out;
  for (char32_t c : s) {
    switch (c) {
      case 0x0132: out += U"IJ"; break;
      case 0x0133: out += U"ij"; break;
      case 0x0149: out += U"\u02BCn"; break;
      case 0x01F1: out += U"DZ"; break;
      case 0x01F2: out += U"Dz"; break;
      case 0x01F3: out += U"dz"; break;
      case 0x01C4: out += U"D\u017D"; break;
      case 0x01C5: out += U"D\u017E"; break;
      case 0x01C6: out += U"d\u017E"; break;
      case 0x01C7: out += U"LJ"; break;
      case 0x01C8: out += U"Lj"; break;
      case 0x01C9: out += U"lj"; break;
      case 0x01CA: out += U"NJ"; break;
      case 0x01CB: out += U"Nj"; break;
      case 0x01CC: out += U"nj"; break;
      case 0xFB00: out += U"ff"; break;
      case 0xFB01: out += U"fi"; break;
      case 0xFB02: out += U"fl"; break;
      case 0xFB03: out += U"ffi"; break;
      case 0xFB04: out += U"ffl"; break;
      case 0xFB05: out += U"\u017Ft"; break;
      case 0xFB06: out += U"st"; break;
      default: out += c;
    }
  }
  return out;
}

// ftfy's WIDTH_MAP: NFKC of U+FF01..U+FFEF, plus U+3000 -> space. The
// half-width katakana and hangul (U+FF61..U+FFDC) are left to SentencePiece's
// NFKC, which folds them identically.
std::u32string ftfy_fix_character_width(const std::u32string& s) {
  std::u32string out;
  for (char32_t c : s) {
    if (c == 0x3000) {
      out += U' ';
    } else if (c >= 0xFF01 && c <= 0xFF5E) {
      out += c - 0xFEE0;
    } else if (c == 0xFF5F || c == 0xFF60) {
      out += c == 0xFF5F ? 0x2985 : 0x2986;
    } else if (c >= 0xFFE0 && c <= 0xFFEE && c != 0xFFE7) {
      static constexpr char32_t kSigns[15] = {0xA2,   0xA3,   0xAC,   0x304,  0xA6,   0xA5,   0x20A9, 0,
                                              0x2502, 0x2190, 0x2191, 0x2192, 0x2193, 0x25A0, 0x25CB};
      if (c == 0xFFE3) out += U' ';  // FULLWIDTH MACRON is space + combining macron under NFKC
      out += kSigns[c - 0xFFE0];
    } else {
      out += c;
    }
  }
  return out;
}

std::u32string ftfy_uncurl_quotes(const std::u32string& s) {
  std::u32string out = s;
  for (char32_t& c : out) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';
    else if (c >= 0x201C && c <= 0x201F) c = U'"';
  }
  return out;
}

std::u32string ftfy_fix_line_breaks(const std::u32string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t c = s[i];
    if (c == U'\r' && i + 1 < s.size() && s[i + 1] == U'\n') continue;  // CRLF -> LF
    out += (c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x85) ? U'\n' : c;
  }
  return out;
}

// ESC '[' (digit | ';')* letter
std::u32string ftfy_remove_terminal_escapes(const std::u32string& s) {
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == 0x1B && i + 1 < s.size() && s[i + 1] == U'[') {
      size_t j = i + 2;
      while (j < s.size() && (is_ascii_digit(s[j]) || s[j] == U';')) ++j;
      if (j < s.size() && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z'))) {
        i = j + 1;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

std::u32string ftfy_remove_control_chars(const std::u32string& s) {
  std::u32string out;
  for (char32_t c : s)
    if (!is_ftfy_control(c)) out += c;
  return out;
}

std::u32string ftfy_fix_segment(std::u32string text, bool unescape) {
  while (true) {
    const std::u32string orig = text;
    if (unescape) text = ftfy_unescape_html(text);
    text = ftfy_fix_c1_controls(text);
    text = ftfy_fix_latin_ligatures(text);
    text = ftfy_fix_character_width(text);
    text = ftfy_uncurl_quotes(text);
    text = ftfy_fix_line_breaks(text);
    text = ftfy_remove_terminal_escapes(text);
    text = ftfy_remove_control_chars(text);
    if (text == orig) return text;
  }
}

std::u32string python_strip(const std::u32string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_python_space(s[b])) ++b;
  while (e > b && is_python_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

}  // namespace

bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// CPython Lib/html/__init__.py: unescape / _replace_charref.
std::u32string html_unescape(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  std::u32string out;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    if (s[i] != U'&') {
      out += s[i++];
      continue;
    }
    size_t j = i + 1;
    if (j < n && s[j] == U'#') {
      // '#' digits ';'?  |  '#' [xX] hexdigits ';'?
      bool hex = j + 1 < n && (s[j + 1] == U'x' || s[j + 1] == U'X');
      size_t d = j + (hex ? 2 : 1);
      size_t k = d;
      while (k < n && (hex ? is_ascii_hex(s[k]) : is_ascii_digit(s[k]))) ++k;
      if (k > d) {
        append_numeric_ref(out, parse_saturated(s, d, k, hex ? 16 : 10));
        i = (k < n && s[k] == U';') ? k + 1 : k;
        continue;
      }
      out += s[i++];  // '&#' without digits: not a reference
      continue;
    }
    // Named: [^\t\n\f <&#;]{1,32} ';'?
    size_t k = j;
    auto name_char = [](char32_t c) {
      return c != U'\t' && c != U'\n' && c != U'\f' && c != U' ' && c != U'<' && c != U'&' && c != U'#' &&
             c != U';';
    };
    while (k < n && k - j < 32 && name_char(s[k])) ++k;
    if (k == j) {
      out += s[i++];
      continue;
    }
    if (k < n && s[k] == U';') ++k;
    // s[j, k) is the matched name (with its ';' if any).
    if (const HtmlEntity* e = find_entity(ascii_of(s, j, k))) {
      append_entity(out, *e);
    } else {
      // The longest prefix that is an entity (only the legacy names without ';' can be).
      bool found = false;
      for (size_t x = k - j - 1; x >= 2; --x) {
        if (const HtmlEntity* p = find_entity(ascii_of(s, j, j + x))) {
          append_entity(out, *p);
          out.append(s, j + x, k - j - x);
          found = true;
          break;
        }
      }
      if (!found) out.append(s, i, k - i);
    }
    i = k;
  }
  return out;
}

// ftfy.fix_text: line by line; once a line contains '<', HTML unescaping stays
// off for it and every later line (ftfy's "auto" setting, as fix_text applies it).
std::u32string ftfy_fix_text(const std::u32string& s) {
  std::u32string out;
  bool unescape = true;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find(U'\n', pos);
    size_t end = nl == std::u32string::npos ? s.size() : nl + 1;
    std::u32string segment = s.substr(pos, end - pos);
    if (unescape && segment.find(U'<') != std::u32string::npos) unescape = false;
    out += ftfy_fix_segment(segment, unescape);
    pos = end;
  }
  return out;
}

std::string clean_prompt(std::string_view utf8) {
  std::u32string text = ftfy_fix_text(utf8_decode(utf8));
  text = python_strip(html_unescape(html_unescape(text)));
  std::u32string collapsed;
  bool in_space = false;
  for (char32_t c : text) {
    if (is_python_space(c)) {
      if (!in_space) collapsed += U' ';
      in_space = true;
    } else {
      collapsed += c;
      in_space = false;
    }
  }
  return utf8_encode(python_strip(collapsed));
}

}  // namespace t2v
