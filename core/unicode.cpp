#include "core/unicode.h"

#include <algorithm>
#include <cstdlib>
#include <unordered_map>
#include <vector>

#include "core/utf8.h"

namespace t2v {

// Generated tables (core/unicode_tables.cpp, tools/gen_unicode_tables.py).
extern const char* const kDecompositions;
extern const char* const kCaseFolds;
extern const char* const kCombiningClasses;

namespace {

struct Run {
  char32_t start, count, target;  // start + i -> target + i (or the class, for kCombiningClasses)
};

// One table parsed from its text form: runs of single code points, and sequences.
struct Mapping {
  std::vector<Run> runs;  // sorted by start
  std::unordered_map<char32_t, std::u32string> sequences;

  // Appends the mapping of `c` (or `c` itself) to `out`.
  void apply(char32_t c, std::u32string& out) const {
    auto it = std::upper_bound(runs.begin(), runs.end(), c, [](char32_t x, const Run& r) { return x < r.start; });
    if (it != runs.begin()) {
      const Run& r = *(it - 1);
      if (c - r.start < r.count) {
        out.push_back(r.target + (c - r.start));
        return;
      }
    }
    auto s = sequences.find(c);
    if (s != sequences.end()) {
      out += s->second;
      return;
    }
    out.push_back(c);
  }
};

char32_t hex(const char*& p) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(p, &end, 16);
  p = end;
  return static_cast<char32_t>(v);
}

Mapping parse_mapping(const char* text) {
  Mapping m;
  const char* p = text;
  while (*p) {
    const char32_t start = hex(p);
    if (*p == ',') {
      ++p;
      const char32_t count = hex(p);
      ++p;  // ','
      m.runs.push_back({start, count, hex(p)});
    } else {  // ':' then a space-separated sequence
      std::u32string seq;
      do {
        ++p;
        seq.push_back(hex(p));
      } while (*p == ' ');
      m.sequences.emplace(start, std::move(seq));
    }
    if (*p == ';') ++p;
  }
  return m;
}

std::vector<Run> parse_classes(const char* text) {
  std::vector<Run> out;
  const char* p = text;
  while (*p) {
    const char32_t start = hex(p);
    ++p;
    const char32_t count = hex(p);
    ++p;
    char* end = nullptr;
    const auto cls = static_cast<char32_t>(std::strtoul(p, &end, 10));
    p = end;
    out.push_back({start, count, cls});
    if (*p == ';') ++p;
  }
  return out;
}

const Mapping& decompositions() {
  static const Mapping m = parse_mapping(kDecompositions);
  return m;
}
const Mapping& case_folds() {
  static const Mapping m = parse_mapping(kCaseFolds);
  return m;
}

unsigned combining_class(char32_t c) {
  static const std::vector<Run> classes = parse_classes(kCombiningClasses);
  auto it = std::upper_bound(classes.begin(), classes.end(), c, [](char32_t x, const Run& r) { return x < r.start; });
  if (it == classes.begin()) return 0;
  const Run& r = *(it - 1);
  return c - r.start < r.count ? r.target : 0;
}

// Hangul syllables decompose algorithmically (Unicode §3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kVCount = 21, kTCount = 28, kSCount = 11172;

}  // namespace

bool is_unicode_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_invisible(char32_t c) {
  return c == 0xAD || c == 0x34F || c == 0x61C || c == 0x115F || c == 0x1160 || c == 0x17B4 || c == 0x17B5 ||
         (c >= 0x180B && c <= 0x180F) || (c >= 0x200B && c <= 0x200F) || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2060 && c <= 0x206F) || c == 0x2800 || c == 0x3164 || (c >= 0xFE00 && c <= 0xFE0F) || c == 0xFEFF ||
         c == 0xFFA0 || (c >= 0xFFF0 && c <= 0xFFF8) || (c >= 0x1BCA0 && c <= 0x1BCA3) ||
         (c >= 0x1D173 && c <= 0x1D17A) || (c >= 0xE0000 && c <= 0xE0FFF);
}

bool is_blank_text(std::string_view s) {
  for (char32_t c : utf8_decode(s))
    if (!is_unicode_space(c) && !is_invisible(c)) return false;
  return true;
}

std::u32string nfkd(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c >= kSBase && c < kSBase + kSCount) {
      const char32_t i = c - kSBase;
      out.push_back(kLBase + i / (kVCount * kTCount));
      out.push_back(kVBase + i % (kVCount * kTCount) / kTCount);
      if (i % kTCount) out.push_back(kTBase + i % kTCount);
      continue;
    }
    decompositions().apply(c, out);
  }
  // Canonical ordering: each run of combining marks sorted (stably) by class.
  for (size_t i = 0; i < out.size();) {
    if (combining_class(out[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && combining_class(out[j]) != 0) ++j;
    std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(i), out.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  return out;
}

std::u32string case_fold(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) case_folds().apply(c, out);
  return out;
}

std::string name_collision_key(std::string_view s) {
  std::u32string k = nfkd(case_fold(nfkd(case_fold(nfkd(utf8_decode(s))))));
  std::u32string kept;
  kept.reserve(k.size());
  for (char32_t c : k)
    if (!is_invisible(c)) kept.push_back(c);
  return utf8_encode(kept);
}

}  // namespace t2v
