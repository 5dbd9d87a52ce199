#include "app/image_input.h"

#include <filesystem>
#include <fstream>
#include <string_view>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "core/error.h"

namespace t2v {
namespace {

// A PNG whose first chunk is IHDR, a JPEG start of image, a WebP RIFF or a BMP: the
// formats OpenCV decodes here. Anything else is refused without decoding.
bool has_image_header(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char b[16] = {};
  f.read(b, sizeof b);
  const auto n = static_cast<size_t>(f.gcount());
  auto is = [&](size_t at, std::string_view s) { return n >= at + s.size() && std::string_view(b + at, s.size()) == s; };
  if (is(0, "\x89PNG\r\n\x1a\n")) return is(12, "IHDR");
  return is(0, "\xff\xd8\xff") || (is(0, "RIFF") && is(8, "WEBP")) || is(0, "BM");
}

}  // namespace

RgbImage8 load_image_rgb(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(kExitNoInput, fmt::format("--image '{}' does not exist or is not a file", path), "check the path");
  // The container is recognised before OpenCV sees it: its PNG reader lets libpng print
  // its own complaints about a damaged header, which would break the one-line error.
  if (!has_image_header(path))
    throw Error(kExitDataErr, fmt::format("--image '{}' cannot be decoded as an image", path),
                "pass a PNG or JPEG file");
  // IMREAD_UNCHANGED: no EXIF rotation and no colour conversion by OpenCV, so the
  // conversions below are the ones PIL's convert("RGB") makes.
  const cv::Mat m = cv::imread(path, cv::IMREAD_UNCHANGED);
  if (m.empty() || m.dims != 2 || m.rows <= 0 || m.cols <= 0)
    throw Error(kExitDataErr, fmt::format("--image '{}' cannot be decoded as an image", path),
                "pass a PNG or JPEG file");
  cv::Mat m8 = m;
  if (m.depth() == CV_16U) {
    // The high byte of each sample, as PIL's 16-bit PNG readers keep it.
    m8 = cv::Mat(m.rows, m.cols, CV_MAKETYPE(CV_8U, m.channels()));
    for (int y = 0; y < m.rows; ++y) {
      const uint16_t* src = m.ptr<uint16_t>(y);
      uint8_t* dst = m8.ptr<uint8_t>(y);
      for (int i = 0; i < m.cols * m.channels(); ++i) dst[i] = static_cast<uint8_t>(src[i] >> 8);
    }
  } else if (m.depth() != CV_8U)
    throw Error(kExitDataErr, fmt::format("--image '{}': sample type {} is not supported", path, m.depth()),
                "pass an 8-bit PNG or JPEG file");
  RgbImage8 img;
  img.width = m8.cols;
  img.height = m8.rows;
  img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
  const int ch = m8.channels();
  if (ch != 1 && ch != 2 && ch != 3 && ch != 4)
    throw Error(kExitDataErr, fmt::format("--image '{}' has {} channels", path, ch), "pass an RGB or grayscale image");
  for (int y = 0; y < img.height; ++y) {
    const uint8_t* row = m8.ptr<uint8_t>(y);
    for (int x = 0; x < img.width; ++x) {
      uint8_t* o = &img.rgb[(static_cast<size_t>(y) * img.width + x) * 3];
      const uint8_t* p = row + static_cast<size_t>(x) * ch;
      if (ch <= 2) {
        o[0] = o[1] = o[2] = p[0];  // gray (and gray + alpha): replicated
      } else {
        o[0] = p[2], o[1] = p[1], o[2] = p[0];  // OpenCV's BGR(A); alpha dropped
      }
    }
  }
  return img;
}

}  // namespace t2v
