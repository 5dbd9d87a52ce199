// A small GIF89a encoder for animated previews (OpenCV 4.6 cannot write GIF).
//
// Fixed global palette: a 6x7x6 RGB cube (252 colours; green gets 7 levels because the eye
// resolves it best) plus 4 unused black entries, chosen with 4x4 ordered (Bayer) dithering.
// A fixed palette and ordered dither keep the output deterministic and flicker-free: a
// pixel that does not change between frames gets the same index in every frame.
// Codes are variable-length LZW as in the GIF89a specification (appendix F).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace t2v {

// LZW-compresses palette indices (each < 2^min_code_size) into a GIF code stream: clear
// code first, end-of-information code last, codes packed least significant bit first.
// The bytes are not yet split into the 255-byte sub-blocks of the file format.
std::vector<uint8_t> gif_lzw_encode(const uint8_t* indices, size_t count, int min_code_size);

// The palette colour of index i (0..255) as {R, G, B}.
void gif_palette_colour(int index, uint8_t rgb[3]);

class GifEncoder {
 public:
  // `loop` = 0 repeats forever (NETSCAPE2.0 extension).
  GifEncoder(int width, int height, int loop = 0);

  // Appends one RGB24 frame (rows `stride` bytes apart) shown for `delay_cs` hundredths
  // of a second.
  void add_frame(const uint8_t* rgb, int64_t stride, int delay_cs);

  int frames() const { return frames_; }

  // The whole file, trailer included; the encoder is spent afterwards.
  std::vector<uint8_t> finish();

 private:
  int width_, height_, frames_ = 0;
  std::vector<uint8_t> out_;
  std::vector<uint8_t> indices_;
};

}  // namespace t2v
