#include "core/data_url.h"

#include <cstdint>
#include <string_view>

#include <fmt/format.h>

#include "core/file_io.h"

namespace t2v {

namespace {

constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int digit_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::optional<std::string> decode_data_url(const std::string& url, std::string* problem) {
  const size_t comma = url.find(',');
  if (url.rfind("data:", 0) != 0 || comma == std::string::npos) {
    *problem = "is not a data: URL (data:image/png;base64,...)";
    return std::nullopt;
  }
  const std::string_view head(url.data(), comma);
  if (head.size() < 7 || head.substr(head.size() - 7) != ";base64") {
    *problem = "is a data: URL without base64; only base64 data: URLs are taken (data:image/png;base64,...)";
    return std::nullopt;
  }
  std::string out;
  out.reserve((url.size() - comma) / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  int pad = 0;
  for (size_t i = comma + 1; i < url.size(); ++i) {
    const char c = url[i];
    if (c == '=' && pad < 2) {
      ++pad;
      continue;
    }
    const int v = digit_value(c);
    if (v < 0 || pad) {
      *problem = v < 0 ? fmt::format("has {} at byte {}, which is not base64",
                                     file_io::printable(std::string_view(&url[i], 1)), i)
                       : "has base64 data after its '=' padding";
      return std::nullopt;
    }
    acc = (acc << 6 | static_cast<uint32_t>(v)) & 0xFFFFFF;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>(acc >> bits & 0xFF));
    }
  }
  if (out.empty()) {
    *problem = "holds no data";
    return std::nullopt;
  }
  return out;
}

std::string encode_data_url(const std::string& media_type, const std::string& bytes) {
  std::string url = "data:" + media_type + ";base64,";
  url.reserve(url.size() + (bytes.size() + 2) / 3 * 4);
  const auto at = [&](size_t k) { return k < bytes.size() ? uint32_t{static_cast<uint8_t>(bytes[k])} : 0u; };
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t n = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    url += kDigits[n >> 18 & 63];
    url += kDigits[n >> 12 & 63];
    url += i + 1 < bytes.size() ? kDigits[n >> 6 & 63] : '=';
    url += i + 2 < bytes.size() ? kDigits[n & 63] : '=';
  }
  return url;
}

}  // namespace t2v
