// Image input: header sniffing (sizes before decoding), OpenCV decoding, and
// PIL's convert("RGB") rules. See image_input.h.
#include "app/image_input.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "core/error.h"

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

std::vector<uint8_t> read_file(const std::string& path, const std::string& what, const ImageLimits& limits) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw Error(kExitNoInput, fmt::format("{} '{}' does not exist", what, path), "check the path");
  if (fs::is_directory(path, ec))
    throw Error(kExitNoInput, fmt::format("{} '{}' is a folder, not an image file", what, path),
                "pass a PNG, JPEG, WebP or BMP file");
  const auto size = fs::file_size(path, ec);
  if (!ec && static_cast<int64_t>(size) > limits.max_file_bytes)
    throw Error(kExitDataErr,
                fmt::format("{} '{}' is {} MB, above the limit of {} MB for an input image", what, path, size >> 20,
                            limits.max_file_bytes >> 20),
                "pass a smaller image (the video is at most a few megapixels)");
  std::ifstream f(path, std::ios::binary);
  if (!f)
    throw Error(kExitNoInput, fmt::format("{} '{}' cannot be read: {}", what, path, std::strerror(errno)),
                "check the file's permissions");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad())
    throw Error(kExitNoInput, fmt::format("{} '{}' cannot be read: {}", what, path, std::strerror(errno)),
                "check the file's permissions");
  return bytes;
}

// One 8-bit RGB value from a decoded sample, as PIL's convert("RGB") makes it.
uint8_t to_8bit(const cv::Mat& m, int y, int x, int c, bool gray16) {
  if (m.depth() == CV_8U) return m.ptr<uint8_t>(y)[x * m.channels() + c];
  const uint16_t v = m.ptr<uint16_t>(y)[x * m.channels() + c];
  // PIL keeps the high byte of 16-bit colour samples but reads 16-bit grayscale as
  // integers ("I;16") and clips them to 255 on the way to RGB.
  return gray16 ? static_cast<uint8_t>(v > 255 ? 255 : v) : static_cast<uint8_t>(v >> 8);
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

RgbImage load_rgb_image(const std::string& path, const std::string& what, const ImageLimits& limits) {
  const std::vector<uint8_t> bytes = read_file(path, what, limits);
  int64_t w = 0, h = 0;
  std::string format;
  if (!image_header_size(bytes, &w, &h, &format)) {
    if (format.empty())
      throw Error(kExitDataErr, fmt::format("{} '{}' is not a PNG, JPEG, WebP or BMP image", what, path),
                  "convert it to PNG");
    throw Error(kExitDataErr, fmt::format("{} '{}': the {} header is cut short or damaged", what, path, format),
                "re-export the image");
  }
  if (w > limits.max_side || h > limits.max_side || w * h > limits.max_pixels)
    throw Error(kExitDataErr,
                fmt::format("{} '{}' is {}x{} pixels, above the limit of {} pixels per side and {} megapixels", what,
                            path, w, h, limits.max_side, limits.max_pixels / 1'000'000),
                "scale the image down first (it is resized to the video size anyway)");
  if (w < limits.min_side || h < limits.min_side)
    throw Error(kExitDataErr,
                fmt::format("{} '{}' is {}x{} pixels; an input image must be at least {}x{}", what, path, w, h,
                            limits.min_side, limits.min_side),
                "pass the picture the video should start from");

  cv::Mat m;
  try {
    const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data()));
    m = cv::imdecode(raw, cv::IMREAD_UNCHANGED);  // no EXIF rotation, alpha and 16 bits kept
  } catch (const cv::Exception& e) {
    m.release();
  }
  if (m.empty() || m.cols != w || m.rows != h)
    throw Error(kExitDataErr, fmt::format("{} '{}': the {} data cannot be decoded (corrupt or truncated file?)", what,
                                          path, format),
                "re-export or re-download the image");
  if ((m.depth() != CV_8U && m.depth() != CV_16U) || m.channels() < 1 || m.channels() > 4)
    throw Error(kExitDataErr,
                fmt::format("{} '{}' has {} channels of an unsupported sample type", what, path, m.channels()),
                "save it as an 8-bit RGB PNG");

  RgbImage img;
  img.width = m.cols;
  img.height = m.rows;
  img.path = path;
  img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
  const int ch = m.channels();
  const bool gray16 = ch == 1 && m.depth() == CV_16U;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      uint8_t* px = &img.rgb[(static_cast<size_t>(y) * img.width + x) * 3];
      if (ch <= 2) {  // grayscale (+ alpha): replicated, alpha dropped
        px[0] = px[1] = px[2] = to_8bit(m, y, x, 0, gray16);
      } else {  // OpenCV's BGR(A) order; alpha dropped
        px[0] = to_8bit(m, y, x, 2, false);
        px[1] = to_8bit(m, y, x, 1, false);
        px[2] = to_8bit(m, y, x, 0, false);
      }
    }
  }
  return img;
}

Tensor rgb_image_to_tensor(const RgbImage& image) {
  const int64_t H = image.height, W = image.width;
  Tensor t = Tensor::empty(Shape{3, H, W}, DType::F32);
  float* p = t.data<float>();
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < 3; ++c) {
        // TF.to_tensor divides by 255 in float32; sub_(0.5).div_(0.5) then rounds twice more.
        const float u = static_cast<float>(image.rgb[static_cast<size_t>((y * W + x) * 3 + c)]) / 255.0f;
        p[(c * H + y) * W + x] = (u - 0.5f) / 0.5f;
      }
  return t;
}

}  // namespace t2v
