// Strict JSON parsing for everything t2v reads from users and files: no duplicate
// keys in any object (nlohmann keeps the last one silently, so two values could be
// read differently by two tools), bounded nesting (a hostile file cannot build a
// deep tree), and every parse failure or number out of range as ONE Error naming
// the origin (docs/bad_inputs.md #15, #75).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace t2v {

struct StrictJsonOptions {
  int code = kExitDataErr;   // exit code of every error
  int max_depth = 64;        // containers nested deeper are refused
  std::string what = "JSON"; // "header", "index", "config": "the header JSON", "header is not valid JSON"
  std::string hint;          // the fix for syntax errors (duplicate keys have their own)
};

// Parses `text`; throws Error(o.code, "<origin>: ...") for invalid JSON (with the
// byte offset), trailing data, numbers beyond double range, nesting deeper than
// o.max_depth and duplicate keys. UTF-8 is the caller's check.
nlohmann::json parse_json_strict(const std::string& origin, std::string_view text, const StrictJsonOptions& o);

// The type of a JSON value for a message: "a string", "an integer", "null", ...
std::string json_type_name(const nlohmann::json& v);

}  // namespace t2v
