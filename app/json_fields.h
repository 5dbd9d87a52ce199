// Typed reads of JSON request fields (a batch list line, a `t2v serve` request body), each
// failing with a message that names the field and what it needs, so both report the same.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace t2v {

// A field's problem, e.g. "\"steps\" must be an integer, not a string".
struct FieldError {
  std::string message;
};


const std::string& want_string(const nlohmann::json& v, const char* field);
int want_int(const nlohmann::json& v, const char* field);        // within int's range
double want_number(const nlohmann::json& v, const char* field);  // any JSON number, not a boolean
uint64_t want_seed(const nlohmann::json& v);                     // 0 .. 2^64-1, a number or a decimal string

}  // namespace t2v
