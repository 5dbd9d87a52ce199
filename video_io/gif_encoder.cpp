#include "video_io/gif_encoder.h"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <memory>

#include "core/error.h"

namespace t2v {
namespace {

constexpr int kLevelsR = 6, kLevelsG = 7, kLevelsB = 6;  // 6*7*6 = 252 palette entries
constexpr int kMaxCode = 4096;                           // 12-bit codes

// Bayer 4x4 threshold matrix (values 0..15).
constexpr int kBayer[4][4] = {{0, 8, 2, 10}, {12, 4, 14, 6}, {3, 11, 1, 9}, {15, 7, 13, 5}};

// floor(c * (levels-1) / 255 + (2m+1)/32): rounding with a threshold spread by the Bayer
// matrix, whose mean (1/2) makes it unbiased.
inline int quantize(int c, int levels, int m) {
  return (c * (levels - 1) * 32 + (2 * m + 1) * 255) / (255 * 32);
}

// Byte by byte: GCC 12 warns falsely (stringop-overflow) on vector range inserts here.
void put_bytes(std::vector<uint8_t>& out, std::initializer_list<int> bytes) {
  for (int b : bytes) out.push_back(static_cast<uint8_t>(b));
}
void put_text(std::vector<uint8_t>& out, const char* s) {
  while (*s) out.push_back(static_cast<uint8_t>(*s++));
}

void put_u16(std::vector<uint8_t>& out, int v) {
  out.push_back(static_cast<uint8_t>(v & 0xFF));
  out.push_back(static_cast<uint8_t>((v >> 8) & 0xFF));
}

// Packs variable-width codes least significant bit first.
struct BitWriter {
  std::vector<uint8_t> bytes;
  uint32_t acc = 0;
  int bits = 0;
  void put(int code, int width) {
    acc |= static_cast<uint32_t>(code) << bits;
    bits += width;
    while (bits >= 8) {
      bytes.push_back(static_cast<uint8_t>(acc & 0xFF));
      acc >>= 8;
      bits -= 8;
    }
  }
  void flush() {
    if (bits > 0) bytes.push_back(static_cast<uint8_t>(acc & 0xFF));
    acc = 0;
    bits = 0;
  }
};

// String table as an open-addressing hash of (prefix code << 8 | next index) -> code.
// 8192 slots for at most 4096 entries keeps probes short.
struct LzwTable {
  static constexpr int kSlots = 8192;
  std::array<int32_t, kSlots> keys;
  std::array<int16_t, kSlots> codes;
  LzwTable() { clear(); }
  void clear() { keys.fill(-1); }
  static int slot_of(int32_t key) { return static_cast<int>((static_cast<uint32_t>(key) * 2654435761u) >> 19); }
  int find(int32_t key, int& slot) const {
    slot = slot_of(key);
    while (keys[slot] != -1) {
      if (keys[slot] == key) return codes[slot];
      slot = (slot + 1) & (kSlots - 1);
    }
    return -1;
  }
  void insert(int slot, int32_t key, int code) {
    keys[slot] = key;
    codes[slot] = static_cast<int16_t>(code);
  }
};

}  // namespace

std::vector<uint8_t> gif_lzw_encode(const uint8_t* indices, size_t count, int min_code_size) {
  T2V_ASSERT(min_code_size >= 2 && min_code_size <= 8, "GIF min code size {}", min_code_size);
  const int clear = 1 << min_code_size, eoi = clear + 1;
  auto table = std::make_unique<LzwTable>();
  BitWriter bw;
  int width = min_code_size + 1, next = clear + 2;
  bw.put(clear, width);
  if (count > 0) {
    int prefix = indices[0];
    T2V_ASSERT(prefix < clear, "index {} does not fit {} bits", prefix, min_code_size);
    for (size_t i = 1; i < count; ++i) {
      const int c = indices[i];
      T2V_ASSERT(c < clear, "index {} does not fit {} bits", c, min_code_size);
      const int32_t key = (prefix << 8) | c;
      int slot = 0;
      const int code = table->find(key, slot);
      if (code >= 0) {
        prefix = code;
        continue;
      }
      bw.put(prefix, width);
      if (next < kMaxCode) {
        table->insert(slot, key, next);
        // The decoder adds its entries one code later than we do and widens its codes when
        // its next free code reaches 2^width; we are there when we just assigned 2^width.
        if (next == (1 << width)) ++width;
        ++next;
      } else {
        // Table full: start over (the decoder also resets on the clear code).
        bw.put(clear, width);
        table->clear();
        width = min_code_size + 1;
        next = clear + 2;
      }
      prefix = c;
    }
    bw.put(prefix, width);
    // The decoder adds one more entry after this last code and may widen before reading
    // the end code; do the same.
    if (next == (1 << width) && width < 12) ++width;
  }
  bw.put(eoi, width);
  bw.flush();
  return bw.bytes;
}

void gif_palette_colour(int index, uint8_t rgb[3]) {
  if (index >= kLevelsR * kLevelsG * kLevelsB) {
    rgb[0] = rgb[1] = rgb[2] = 0;
    return;
  }
  const int r = index / (kLevelsG * kLevelsB), g = (index / kLevelsB) % kLevelsG, b = index % kLevelsB;
  rgb[0] = static_cast<uint8_t>(r * 255 / (kLevelsR - 1));
  rgb[1] = static_cast<uint8_t>(g * 255 / (kLevelsG - 1));
  rgb[2] = static_cast<uint8_t>(b * 255 / (kLevelsB - 1));
}

GifEncoder::GifEncoder(int width, int height, int loop) : width_(width), height_(height) {
  T2V_ASSERT(width > 0 && height > 0 && width <= 65535 && height <= 65535, "GIF size {}x{}", width, height);
  out_.reserve(1024);
  put_text(out_, "GIF89a");
  // Logical screen descriptor: global colour table of 2^(7+1) = 256 entries, 8-bit colour.
  put_u16(out_, width);
  put_u16(out_, height);
  out_.push_back(0xF7);
  out_.push_back(0);  // background colour index
  out_.push_back(0);  // pixel aspect ratio: not given
  for (int i = 0; i < 256; ++i) {
    uint8_t c[3];
    gif_palette_colour(i, c);
    put_bytes(out_, {c[0], c[1], c[2]});
  }
  // NETSCAPE2.0 application extension: loop count.
  put_bytes(out_, {0x21, 0xFF, 0x0B});
  put_text(out_, "NETSCAPE2.0");
  put_bytes(out_, {0x03, 0x01});
  put_u16(out_, loop);
  out_.push_back(0x00);
  indices_.resize(static_cast<size_t>(width) * height);
}

void GifEncoder::add_frame(const uint8_t* rgb, int64_t stride, int delay_cs) {
  T2V_ASSERT(delay_cs >= 0 && delay_cs <= 65535, "GIF delay {}", delay_cs);
  for (int y = 0; y < height_; ++y) {
    const uint8_t* row = rgb + y * stride;
    uint8_t* dst = indices_.data() + static_cast<size_t>(y) * width_;
    for (int x = 0; x < width_; ++x) {
      const int m = kBayer[y & 3][x & 3];
      const int r = quantize(row[3 * x + 0], kLevelsR, m);
      const int g = quantize(row[3 * x + 1], kLevelsG, m);
      const int b = quantize(row[3 * x + 2], kLevelsB, m);
      dst[x] = static_cast<uint8_t>((r * kLevelsG + g) * kLevelsB + b);
    }
  }
  // Graphic control extension: disposal 1 (leave in place), no transparency, delay.
  put_bytes(out_, {0x21, 0xF9, 0x04, 0x04});
  put_u16(out_, delay_cs);
  put_bytes(out_, {0x00, 0x00});
  // Image descriptor: full canvas, no local colour table, not interlaced.
  out_.push_back(0x2C);
  put_u16(out_, 0);
  put_u16(out_, 0);
  put_u16(out_, width_);
  put_u16(out_, height_);
  out_.push_back(0x00);
  out_.push_back(8);  // LZW minimum code size
  std::vector<uint8_t> codes = gif_lzw_encode(indices_.data(), indices_.size(), 8);
  for (size_t pos = 0; pos < codes.size(); pos += 255) {
    const size_t n = std::min<size_t>(255, codes.size() - pos);
    out_.push_back(static_cast<uint8_t>(n));
    out_.insert(out_.end(), codes.begin() + static_cast<std::ptrdiff_t>(pos),
                codes.begin() + static_cast<std::ptrdiff_t>(pos + n));
  }
  out_.push_back(0x00);  // block terminator
  ++frames_;
}

std::vector<uint8_t> GifEncoder::finish() {
  out_.push_back(0x3B);  // trailer
  return std::move(out_);
}

}  // namespace t2v
