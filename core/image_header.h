// The size an image file declares, read from its header without decoding: what lets a
// 30000x30000 image be refused before its pixels are allocated (docs/bad_inputs.md #85-88).
// Bytes come from files and from HTTP requests, so every read is bounds-checked
// (fuzzed: tests/fuzz/fuzz_image_header.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace t2v {

// The width and height a PNG, JPEG, WebP or BMP header declares; `format` names the format
// recognised from the signature ("" for none). False when the bytes are none of these or the
// header is cut short (a BMP's sizes may come back negative: callers check the range).
bool image_header_size(const std::vector<uint8_t>& bytes, int64_t* width, int64_t* height, std::string* format);

// Whether a JPEG's scan data runs to its end-of-image marker. Inside entropy-coded data a
// 0xFF byte is always followed by 0x00 or a restart marker, so an FF D9 after the first
// start-of-scan is the real end (a thumbnail's FF D9 sits before it, in APP1): libjpeg fills
// a cut-off JPEG with grey without a word, PIL refuses it.
bool jpeg_reaches_end(const std::vector<uint8_t>& bytes);

}  // namespace t2v
