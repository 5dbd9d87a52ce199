#include "video_io/test_pattern.h"

#include <algorithm>

#include "core/error.h"

namespace t2v {
namespace {

// Height of the counter strip and its cells' width.
int bar_height(int height) { return std::max(4, height / 12) & ~1; }
int cell_width(int width) { return width / kTestPatternBits; }
bool has_bars(int width, int height) { return width >= 2 * kTestPatternBits && height >= 16; }

// Triangle wave over [0, span]: goes 0 -> span -> 0 once every `period` steps.
int triangle(int t, int period, int span) {
  int p = t % period;
  int half = period / 2;
  int v = p <= half ? p : period - p;
  return half == 0 ? 0 : v * span / half;
}

// One [1 2 1]/4 pass along each axis (edges clamp). Real frames (camera, VAE decoder) are
// band-limited; a pixel-sharp edge between saturated colours is the worst case of 4:2:0
// chroma subsampling (at 128x96 it alone caps the RGB PSNR near 34 dB at any CRF).
void smooth_121(uint8_t* rgb, int width, int height, int64_t stride) {
  const int row_len = width * 3;
  std::vector<int> tmp(static_cast<size_t>(row_len) * height);
  for (int y = 0; y < height; ++y) {  // horizontal: neighbours are 3 bytes away
    const uint8_t* src = rgb + y * stride;
    int* dst = tmp.data() + static_cast<size_t>(y) * row_len;
    for (int i = 0; i < row_len; ++i) {
      const int left = i >= 3 ? src[i - 3] : src[i], right = i + 3 < row_len ? src[i + 3] : src[i];
      dst[i] = left + 2 * src[i] + right;
    }
  }
  for (int y = 0; y < height; ++y) {  // vertical, with rounding of the /16
    const int* up = tmp.data() + static_cast<size_t>(std::max(y - 1, 0)) * row_len;
    const int* mid = tmp.data() + static_cast<size_t>(y) * row_len;
    const int* down = tmp.data() + static_cast<size_t>(std::min(y + 1, height - 1)) * row_len;
    uint8_t* out = rgb + y * stride;
    for (int i = 0; i < row_len; ++i) out[i] = static_cast<uint8_t>((up[i] + 2 * mid[i] + down[i] + 8) / 16);
  }
}

}  // namespace

void draw_test_pattern(uint8_t* rgb, int width, int height, int64_t stride, int index, int count) {
  T2V_ASSERT(width >= 2 && height >= 2, "test pattern size {}x{}", width, height);
  T2V_ASSERT(count >= 1 && index >= 0 && index < count && index < (1 << kTestPatternBits), "frame {} of {}", index,
             count);
  const int bars = has_bars(width, height) ? bar_height(height) : 0;
  const int scene_h = height - bars;

  // Background: red grows left to right, green top to bottom, blue drifts with time.
  const int blue = 64 + (count > 1 ? 128 * index / (count - 1) : 0);
  for (int y = 0; y < scene_h; ++y) {
    uint8_t* row = rgb + y * stride;
    const int g = y * 255 / std::max(1, scene_h - 1);
    for (int x = 0; x < width; ++x) {
      row[3 * x + 0] = static_cast<uint8_t>(x * 255 / std::max(1, width - 1));
      row[3 * x + 1] = static_cast<uint8_t>(g);
      row[3 * x + 2] = static_cast<uint8_t>(blue);
    }
  }

  // Square: side a quarter of the scene's shorter side, on even coordinates (so 4:2:0
  // chroma cells never straddle its edge), bouncing along both axes at different rates.
  const int side = std::max(2, std::min(width, scene_h) / 4) & ~1;
  const int sx = triangle(index * 2, std::max(2, count), width - side) & ~1;
  const int sy = triangle(index * 3, std::max(2, count), scene_h - side) & ~1;
  static constexpr uint8_t kColours[6][3] = {{230, 40, 40},  {240, 200, 30}, {40, 200, 60},
                                             {30, 190, 220}, {50, 60, 230},  {220, 50, 200}};
  const uint8_t* c = kColours[(index / 8) % 6];  // a new colour every 8 frames (0.5 s at 16 fps)
  for (int y = sy; y < sy + side; ++y) {
    uint8_t* row = rgb + y * stride;
    for (int x = sx; x < sx + side; ++x) {
      row[3 * x + 0] = c[0];
      row[3 * x + 1] = c[1];
      row[3 * x + 2] = c[2];
    }
  }

  // Counter: kTestPatternBits cells, MSB first, white for 1 and near-black for 0; the
  // remainder of the strip right of the cells is mid grey.
  const int cw = cell_width(width);
  for (int y = scene_h; y < height; ++y) {
    uint8_t* row = rgb + y * stride;
    for (int x = 0; x < width; ++x) {
      int cell = x / cw;
      uint8_t v = 128;
      if (cell < kTestPatternBits) v = ((index >> (kTestPatternBits - 1 - cell)) & 1) ? 235 : 20;
      row[3 * x + 0] = row[3 * x + 1] = row[3 * x + 2] = v;
    }
  }
  smooth_121(rgb, width, height, stride);
}

std::vector<uint8_t> test_pattern_frame(int width, int height, int index, int count) {
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3);
  draw_test_pattern(rgb.data(), width, height, int64_t{width} * 3, index, count);
  return rgb;
}

int read_test_pattern_index(const uint8_t* rgb, int width, int height, int64_t stride) {
  if (!has_bars(width, height)) return -1;
  const int bars = bar_height(height), cw = cell_width(width);
  const uint8_t* row = rgb + (height - bars / 2 - 1) * stride;
  int index = 0;
  for (int cell = 0; cell < kTestPatternBits; ++cell) {
    const uint8_t* px = row + 3 * (cell * cw + cw / 2);
    int luma = (px[0] + px[1] + px[2]) / 3;
    if (luma > 80 && luma < 175) return -1;
    index = (index << 1) | (luma >= 175 ? 1 : 0);
  }
  return index;
}

}  // namespace t2v
