// Reading a still image for image-to-video (--image): any PNG or JPEG OpenCV can
// decode, as 8-bit RGB the way PIL's Image.open(path).convert("RGB") gives it to the
// reference pipelines (no EXIF rotation; grayscale replicated to three channels; an
// alpha channel dropped, not composited; 16-bit samples keep their high byte).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace t2v {

// Interleaved RGB rows, top to bottom: pixel (x, y) channel c at rgb[(y*width + x)*3 + c].
struct RgbImage8 {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  uint8_t at(int x, int y, int c) const { return rgb[(static_cast<size_t>(y) * width + x) * 3 + c]; }
};

// Error(66) when the file does not exist or cannot be read; Error(65) when it is not an
// image OpenCV can decode. Each is one line naming the file.
RgbImage8 load_image_rgb(const std::string& path);

}  // namespace t2v
