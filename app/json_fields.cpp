#include "app/json_fields.h"

#include <climits>

#include <fmt/format.h>

#include "app/options.h"
#include "core/error.h"
#include "core/json_strict.h"

namespace t2v {

using nlohmann::json;

const std::string& want_string(const json& v, const char* field) {
  if (!v.is_string()) throw FieldError{fmt::format("\"{}\" must be a string, not {}", field, json_type_name(v))};
  return v.get_ref<const std::string&>();
}

int want_int(const json& v, const char* field) {
  if (v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(INT_MAX)) return v.get<int>();
  if (v.is_number_integer() && v.get<int64_t>() >= INT_MIN && v.get<int64_t>() <= INT_MAX) return v.get<int>();
  if (v.is_number_integer() || v.is_number_unsigned())
    throw FieldError{fmt::format("\"{}\" is out of range: {}", field, v.dump())};
  throw FieldError{fmt::format("\"{}\" must be an integer, not {}", field, json_type_name(v))};
}

double want_number(const json& v, const char* field) {
  if (!v.is_number() || v.is_boolean())
    throw FieldError{fmt::format("\"{}\" must be a number, not {}", field, json_type_name(v))};
  return v.get<double>();
}

uint64_t want_seed(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) throw FieldError{fmt::format("\"seed\" must be 0 .. 2^64-1, not {}", v.dump())};
  if (v.is_string()) {
    try {
      return parse_seed(v.get<std::string>());
    } catch (const Error& e) {
      throw FieldError{fmt::format("\"seed\": {}", e.what())};
    }
  }
  throw FieldError{fmt::format("\"seed\" must be an integer, not {}", json_type_name(v))};
}

}  // namespace t2v
