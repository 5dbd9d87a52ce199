#include "core/json_strict.h"

#include <vector>

#include <fmt/format.h>

#include "core/file_io.h"

namespace t2v {

using file_io::printable;
using nlohmann::json;

namespace {

// Builds the DOM from SAX events. nlohmann's own callback parser scans the whole
// parent object for a discarded value each time a nested object ends, which is
// quadratic in the number of entries (100,000 tensors: minutes); this builder is
// linear: each key is looked up once in its object (a std::map), values are
// appended in place.
class StrictBuilder : public nlohmann::json_sax<json> {
 public:
  StrictBuilder(const std::string& origin, const StrictJsonOptions& o) : origin_(origin), o_(o) {}

  bool null() override { return put(json(nullptr)); }
  bool boolean(bool v) override { return put(json(v)); }
  bool number_integer(number_integer_t v) override { return put(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return put(json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return put(json(v)); }
  bool string(string_t& v) override { return put(json(std::move(v))); }
  bool binary(binary_t& v) override { return put(json::binary(std::move(v))); }
  bool start_object(std::size_t) override { return open(json::object()); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    if (stack_.back()->contains(k))
      fail(fmt::format("duplicate key \"{}\" in the {} JSON", printable(k), o_.what),
           "a name may appear only once; the file was written by a broken tool");
    key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    const std::string msg = ex.what();
    if (const auto* pe = dynamic_cast<const json::parse_error*>(&ex)) {
      if (msg.find("expected end of input") != std::string::npos)
        fail(fmt::format("trailing data after the closing brace of the {} JSON at byte {}", o_.what, pe->byte - 1),
             o_.hint);
      // Keep nlohmann's reason ("syntax error while parsing object key - ...") without its prefix.
      const size_t p = msg.find("syntax error");
      fail(fmt::format("{} is not valid JSON at byte {}: {}", o_.what, pe->byte == 0 ? 0 : pe->byte - 1,
                       printable(p == std::string::npos ? msg : msg.substr(p))),
           o_.hint);
    }
    // out_of_range.406: a number beyond double range ("1e400"); no byte offset is kept.
    const size_t p = msg.find("] ");
    fail(fmt::format("{} is not valid JSON: {}", o_.what, printable(p == std::string::npos ? msg : msg.substr(p + 2))),
         o_.hint);
  }

  json take() { return std::move(root_); }

 private:
  [[noreturn]] void fail(const std::string& what, const std::string& hint) const {
    throw Error(o_.code, origin_ + ": " + what, hint);
  }
  // Places `v` in the open container (or as the root); returns where it went.
  json* place(json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      auto& a = top.get_ref<json::array_t&>();
      a.push_back(std::move(v));
      return &a.back();
    }
    auto& obj = top.get_ref<json::object_t&>();
    return &obj.emplace(std::move(key_), std::move(v)).first->second;
  }
  bool put(json&& v) {
    place(std::move(v));
    return true;
  }
  bool open(json&& container) {
    if (static_cast<int>(stack_.size()) + 1 > o_.max_depth)
      fail(fmt::format("{} JSON nests deeper than {} levels, which no valid file does", o_.what, o_.max_depth),
           o_.hint);
    // Pointers stay valid while the container is open: its parent gets no new
    // element until it closes.
    stack_.push_back(place(std::move(container)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  const std::string& origin_;
  const StrictJsonOptions& o_;
  json root_;
  std::vector<json*> stack_;
  std::string key_;
};

}  // namespace

json parse_json_strict(const std::string& origin, std::string_view text, const StrictJsonOptions& o) {
  StrictBuilder b(origin, o);
  json::sax_parse(text.begin(), text.end(), &b);
  return b.take();
}

std::string json_type_name(const json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  return "an object";
}

}  // namespace t2v
