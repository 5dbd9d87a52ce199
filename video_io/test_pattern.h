// A synthetic test pattern: a coloured square moving over a gradient, with the frame index
// drawn as binary bars along the bottom. `t2v generate --test-pattern` writes it through
// the real MP4 writer, and tests use it as a source whose every frame is different and
// whose frame order can be read back after encoding. Edges are softened by one [1 2 1]
// pass, like real (band-limited) frames.
#pragma once

#include <cstdint>
#include <vector>

namespace t2v {

// Bars along the bottom: kTestPatternBits cells, most significant bit left, white = 1.
inline constexpr int kTestPatternBits = 16;

// Draws frame `index` of `count` (RGB24, rows `stride` bytes apart). Integer arithmetic
// only, so every machine draws the same bytes. Any size from 2x2; the counter bars are
// drawn only from 2 * kTestPatternBits x 16 up.
void draw_test_pattern(uint8_t* rgb, int width, int height, int64_t stride, int index, int count);

// The same frame as packed RGB24 (stride width * 3).
std::vector<uint8_t> test_pattern_frame(int width, int height, int index, int count);

// Reads the frame index back from the bars of a decoded (lossy) frame by sampling the
// middle of each cell; -1 when a cell is neither clearly dark nor clearly bright, or the
// frame is too small to carry bars.
int read_test_pattern_index(const uint8_t* rgb, int width, int height, int64_t stride);

}  // namespace t2v
