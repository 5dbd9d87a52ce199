// Image input: header sniffing (sizes before decoding), OpenCV decoding, and
// PIL's convert("RGB") rules. See image_input.h.
#include "app/image_input.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

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

// Whether the JPEG's scan data runs to its end-of-image marker. Inside entropy-coded
// data a 0xFF byte is always followed by 0x00 or a restart marker, so an FF D9 after
// the first start-of-scan is the real end (a thumbnail's FF D9 sits before it, in APP1).
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

// The rule of every input file (core/file_read.h, docs/bad_inputs.md #68), with the
// image's own messages: opens without blocking (a FIFO with no writer would hang a plain
// open) and refuses anything but a regular file, checked on the descriptor, before
// reading: a FIFO or /dev/zero never ends. Symlinks are followed; an input is only read.
std::vector<uint8_t> read_file(const std::string& path, const std::string& what, const ImageLimits& limits) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) throw Error(kExitNoInput, fmt::format("{} '{}' does not exist", what, path), "check the path");
    throw Error(kExitNoInput, fmt::format("{} '{}' cannot be read: {}", what, path, std::strerror(e)),
                "check the path and the file's permissions");
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw Error(kExitIoErr, fmt::format("{} '{}': fstat failed: {}", what, path, std::strerror(errno)));
  if (S_ISDIR(st.st_mode))
    throw Error(kExitNoInput, fmt::format("{} '{}' is a folder, not an image file", what, path),
                "pass a PNG, JPEG, WebP or BMP file");
  if (!S_ISREG(st.st_mode))
    throw Error(kExitNoInput, fmt::format("{} '{}' is not a regular file (a FIFO, device or socket)", what, path),
                "save the image to a file and pass that");
  const auto too_big = [&](int64_t bytes) {
    return Error(kExitDataErr,
                 fmt::format("{} '{}' is {} MB, above the limit of {} MB for an input image", what, path, bytes >> 20,
                             limits.max_file_bytes >> 20),
                 "pass a smaller image (the video is at most a few megapixels)");
  };
  if (st.st_size > limits.max_file_bytes) throw too_big(st.st_size);
  // Read to the end, but never past the limit: the file may grow while it is read.
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size) + 1);
  size_t got = 0;
  for (;;) {
    if (got == bytes.size()) {
      if (static_cast<int64_t>(got) > limits.max_file_bytes) throw too_big(static_cast<int64_t>(got));
      bytes.resize(std::min<size_t>(bytes.size() * 2, static_cast<size_t>(limits.max_file_bytes) + 1));
    }
    const ssize_t r = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0)
      throw Error(kExitIoErr, fmt::format("{} '{}' cannot be read: {}", what, path, std::strerror(errno)),
                  "check the disk and retry");
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  bytes.resize(got);
  return bytes;
}

// libpng and libjpeg inside OpenCV print their complaints on stderr themselves
// ("libpng error: ...", "Corrupt JPEG data: ..."; a harmless "iCCP" warning on good
// files). They are caught for the length of a decode so that an error stays one line,
// and the decoder's last line goes into our message instead.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    file_ = std::tmpfile();
    saved_ = ::dup(STDERR_FILENO);
    if (!file_ || saved_ < 0 || ::dup2(::fileno(file_), STDERR_FILENO) < 0) restore();
  }
  ~StderrCapture() {
    restore();
    if (file_) std::fclose(file_);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  // Restores stderr; the last non-empty line written meanwhile (at most 200 characters).
  std::string finish() {
    restore();
    if (!file_) return {};
    std::string text(4096, '\0');
    const long end = std::max(0L, std::ftell(file_));
    std::fseek(file_, end > 4096 ? end - 4096 : 0, SEEK_SET);
    text.resize(std::fread(text.data(), 1, text.size(), file_));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
    std::string line = text.substr(text.find_last_of('\n') == std::string::npos ? 0 : text.find_last_of('\n') + 1);
    for (char& c : line)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) c = '?';
    return line.substr(0, 200);
  }

 private:
  void restore() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      ::dup2(saved_, STDERR_FILENO);
      ::close(saved_);
      saved_ = -1;
    }
  }
  std::FILE* file_ = nullptr;
  int saved_ = -1;
};

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

InputImage load_rgb_image(const std::string& path, const std::string& what, const ImageLimits& limits) {
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
  std::string decoder_says;
  {
    StderrCapture capture;
    try {
      const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data()));
      m = cv::imdecode(raw, cv::IMREAD_UNCHANGED);  // no EXIF rotation, alpha and 16 bits kept
    } catch (const cv::Exception& e) {
      m.release();
    }
    decoder_says = capture.finish();
  }
  // libjpeg fills a cut-off JPEG with grey without a word; PIL's load() refuses it.
  const bool cut_jpeg = format == "JPEG" && !jpeg_reaches_end(bytes);
  if (m.empty() || m.cols != w || m.rows != h || cut_jpeg)
    throw Error(kExitDataErr,
                fmt::format("{} '{}': the {} data cannot be decoded (corrupt or truncated file?){}", what, path,
                            format, decoder_says.empty() ? "" : fmt::format(" [{}]", decoder_says)),
                "re-export or re-download the image");
  if ((m.depth() != CV_8U && m.depth() != CV_16U) || m.channels() < 1 || m.channels() > 4)
    throw Error(kExitDataErr,
                fmt::format("{} '{}' has {} channels of an unsupported sample type", what, path, m.channels()),
                "save it as an 8-bit RGB PNG");

  InputImage img;
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

Tensor rgb_image_to_tensor(const InputImage& image) {
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
