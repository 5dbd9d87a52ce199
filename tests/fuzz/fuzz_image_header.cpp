// libFuzzer target for the byte parsers that see images from clients before any decoder
// does: the PNG/JPEG/WebP/BMP header reader (core/image_header.h) and the data: URL decoder
// (core/data_url.h) that `t2v serve` requests carry images in. Each input is read both as
// image bytes and as a data: URL; a decoded URL is read as image bytes too, and encoding
// what was decoded must decode to the same bytes. Any sanitizer report or a failed round
// trip is a bug.
//
// Build and run: tools/run_fuzz.sh (clang, -DT2V_FUZZ=ON); per-input limits in image_header.options.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "core/data_url.h"
#include "core/image_header.h"

namespace {

int64_t read_header(const std::vector<uint8_t>& bytes) {
  int64_t w = 0, h = 0;
  std::string format;
  const bool ok = t2v::image_header_size(bytes, &w, &h, &format);
  if (ok && format.empty()) std::abort();  // a size without a format
  return (ok ? w + h : 0) + static_cast<int64_t>(format.size()) + (format == "JPEG" && t2v::jpeg_reaches_end(bytes));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  volatile int64_t sink = read_header(bytes);
  std::string problem;
  const std::string url(reinterpret_cast<const char*>(data), size);
  if (std::optional<std::string> decoded = t2v::decode_data_url(url, &problem)) {
    sink = sink + read_header(std::vector<uint8_t>(decoded->begin(), decoded->end()));
    std::string again;
    const std::optional<std::string> round = t2v::decode_data_url(t2v::encode_data_url("x", *decoded), &again);
    if (!round || *round != *decoded) std::abort();
  } else if (problem.empty()) {
    std::abort();  // refused without a reason
  }
  (void)sink;
  return 0;
}
