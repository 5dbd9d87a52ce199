// RFC 2397 data: URLs with base64 data, the way HTTP clients send files inside JSON
// (`t2v serve`'s input images, docs/serve.md). Bytes come from clients, so decoding is
// strict and bounds-checked (fuzzed: tests/fuzz/fuzz_image_header.cpp).
#pragma once

#include <optional>
#include <string>

namespace t2v {

// The bytes of "data:[<media type>][;params];base64,<data>". nullopt with `problem` set when
// it is not one: no "data:" prefix or comma, not base64 (only that form carries binary
// safely), a byte outside the base64 alphabet (named with its position), data after '='
// padding, or no data. Padding may be left out.
std::optional<std::string> decode_data_url(const std::string& url, std::string* problem);

// "data:<media_type>;base64,<bytes in base64>", padded.
std::string encode_data_url(const std::string& media_type, const std::string& bytes);

}  // namespace t2v
