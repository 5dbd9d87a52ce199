// The HTML5 named character references (generated table, html_entities.cpp).
#pragma once

#include <cstddef>

namespace t2v {

struct HtmlEntity {
  const char* name;   // without the '&'; the standard forms end in ';'
  char32_t first;     // the character(s) it stands for; second is 0 when
  char32_t second;    // the reference is a single character
};
extern const HtmlEntity kHtmlEntities[];  // sorted by name (byte order)
extern const size_t kHtmlEntityCount;

}  // namespace t2v
