#include "core/image_header.h"

#include <initializer_list>

namespace t2v {

namespace {

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) | b[at + 3];
}
uint32_t be16(const std::vector<uint8_t>& b, size_t at) { return (uint32_t{b[at]} << 8) | b[at + 1]; }
uint32_t le16(const std::vector<uint8_t>& b, size_t at) { return uint32_t{b[at]} | (uint32_t{b[at + 1]} << 8); }
uint32_t le24(const std::vector<uint8_t>& b, size_t at) { return le16(b, at) | (uint32_t{b[at + 2]} << 16); }
uint32_t le32(const std::vector<uint8_t>& b, size_t at) { return le24(b, at) | (uint32_t{b[at + 3]} << 24); }

bool starts_with_bytes(const std::vector<uint8_t>& b, std::initializer_list<uint8_t> sig, size_t at = 0) {
  if (b.size() < at + sig.size()) return false;
  size_t i = at;
  for (uint8_t c : sig)
    if (b[i++] != c) return false;
  return true;
}

// JPEG: the first start-of-frame segment (SOF0..SOF15 except DHT C4, JPG C8, DAC CC)
// holds the height and width after the sample precision.
bool jpeg_size(const std::vector<uint8_t>& b, int64_t* w, int64_t* h) {
  size_t pos = 2;
  while (pos + 1 < b.size()) {
    if (b[pos] != 0xFF) return false;
    while (pos < b.size() && b[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= b.size()) return false;
    const uint8_t m = b[pos];
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {  // markers without a length
      ++pos;
      continue;
    }
    if (m == 0xD9 || m == 0xDA || pos + 2 >= b.size()) return false;  // end of image / scan before a frame
    const uint32_t len = be16(b, pos + 1);
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
      if (pos + 8 > b.size()) return false;
      *h = be16(b, pos + 4);
      *w = be16(b, pos + 6);
      return true;
    }
    if (len < 2) return false;
    pos += 1 + len;
  }
  return false;
}

}  // namespace

bool jpeg_reaches_end(const std::vector<uint8_t>& b) {
  size_t pos = 2;
  while (pos + 3 < b.size()) {
    if (b[pos] != 0xFF) return false;
    while (pos < b.size() && b[pos] == 0xFF) ++pos;
    if (pos + 2 >= b.size()) return false;
    const uint8_t m = b[pos];
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
      ++pos;
      continue;
    }
    if (m == 0xD9) return false;  // ends before any scan
    const uint32_t len = be16(b, pos + 1);
    if (len < 2) return false;
    pos += 1 + len;
    if (m == 0xDA) {
      for (size_t i = pos; i + 1 < b.size(); ++i)
        if (b[i] == 0xFF && b[i + 1] == 0xD9) return true;
      return false;
    }
  }
  return false;
}

namespace {

bool webp_size(const std::vector<uint8_t>& b, int64_t* w, int64_t* h) {
  if (b.size() < 30) return false;
  if (starts_with_bytes(b, {'V', 'P', '8', ' '}, 12)) {  // lossy: frame header after the start code 9d 01 2a
    if (!starts_with_bytes(b, {0x9D, 0x01, 0x2A}, 23)) return false;
    *w = le16(b, 26) & 0x3FFF;
    *h = le16(b, 28) & 0x3FFF;
    return true;
  }
  if (starts_with_bytes(b, {'V', 'P', '8', 'L'}, 12)) {  // lossless: 14-bit width-1, height-1
    if (b[20] != 0x2F) return false;
    const uint32_t bits = le32(b, 21);
    *w = (bits & 0x3FFF) + 1;
    *h = ((bits >> 14) & 0x3FFF) + 1;
    return true;
  }
  if (starts_with_bytes(b, {'V', 'P', '8', 'X'}, 12)) {  // extended: 24-bit canvas width-1, height-1
    *w = int64_t{le24(b, 24)} + 1;
    *h = int64_t{le24(b, 27)} + 1;
    return true;
  }
  return false;
}

}  // namespace

bool image_header_size(const std::vector<uint8_t>& b, int64_t* w, int64_t* h, std::string* format) {
  if (starts_with_bytes(b, {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A})) {
    *format = "PNG";
    if (b.size() < 24 || !starts_with_bytes(b, {'I', 'H', 'D', 'R'}, 12)) return false;
    *w = be32(b, 16);
    *h = be32(b, 20);
    return true;
  }
  if (starts_with_bytes(b, {0xFF, 0xD8, 0xFF})) {
    *format = "JPEG";
    return jpeg_size(b, w, h);
  }
  if (starts_with_bytes(b, {'R', 'I', 'F', 'F'}) && starts_with_bytes(b, {'W', 'E', 'B', 'P'}, 8)) {
    *format = "WebP";
    return webp_size(b, w, h);
  }
  if (starts_with_bytes(b, {'B', 'M'}) && b.size() >= 26) {
    *format = "BMP";
    const uint32_t dib = le32(b, 14);
    if (dib == 12) {  // BITMAPCOREHEADER: 16-bit sizes
      *w = le16(b, 18);
      *h = le16(b, 20);
    } else {
      *w = static_cast<int32_t>(le32(b, 18));
      *h = static_cast<int32_t>(le32(b, 22));
      if (*h < 0) *h = -*h;  // top-down rows
    }
    return true;
  }
  format->clear();
  return false;
}

}  // namespace t2v
