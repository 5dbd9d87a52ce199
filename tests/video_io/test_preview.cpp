// Previews and the test pattern: GIF LZW against an independent decoder written here from
// the GIF89a specification, the GIF file against FFmpeg's decoder, the contact sheet PNG
// through OpenCV.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "video_io/gif_encoder.h"
#include "video_io/mp4_reader.h"
#include "video_io/preview.h"
#include "video_io/test_pattern.h"
#include "video_test_util.h"

namespace t2v {
namespace {

using test::ScratchDir;

// GIF LZW decoder (GIF89a appendix F): variable-width codes LSB first, clear and end
// codes, deferred width change when the table reaches 2^width. Fails the test on any
// malformed stream, including data after the end code.
std::vector<uint8_t> lzw_decode(const std::vector<uint8_t>& bytes, int min_code_size) {
  const int clear = 1 << min_code_size, eoi = clear + 1;
  size_t bitpos = 0;
  auto read = [&](int width) -> int {
    if (bitpos + width > bytes.size() * 8) return -1;
    int v = 0;
    for (int i = 0; i < width; ++i, ++bitpos) v |= ((bytes[bitpos / 8] >> (bitpos % 8)) & 1) << i;
    return v;
  };
  std::vector<std::vector<uint8_t>> dict;
  auto reset = [&] {
    dict.clear();
    for (int i = 0; i < clear; ++i) dict.push_back({uint8_t(i)});
    dict.push_back({});  // clear
    dict.push_back({});  // end
  };
  reset();
  int width = min_code_size + 1, prev = -1;
  std::vector<uint8_t> out;
  bool ended = false;
  for (;;) {
    const int code = read(width);
    if (code < 0) {
      ADD_FAILURE() << "code stream ends without the end code";
      break;
    }
    if (code == clear) {
      reset();
      width = min_code_size + 1;
      prev = -1;
      continue;
    }
    if (code == eoi) {
      ended = true;
      break;
    }
    std::vector<uint8_t> entry;
    if (prev < 0) {
      if (code >= clear) {
        ADD_FAILURE() << "first code " << code << " is not a literal";
        break;
      }
      entry = dict[code];
    } else {
      if (code < int(dict.size())) {
        entry = dict[code];
      } else if (code == int(dict.size())) {
        entry = dict[prev];
        entry.push_back(dict[prev][0]);
      } else {
        ADD_FAILURE() << "code " << code << " beyond table size " << dict.size();
        break;
      }
      if (dict.size() < 4096) {
        std::vector<uint8_t> added = dict[prev];
        added.push_back(entry[0]);
        dict.push_back(added);
      }
      if (int(dict.size()) == (1 << width) && width < 12) ++width;
    }
    out.insert(out.end(), entry.begin(), entry.end());
    prev = code;
  }
  if (ended) {
    EXPECT_LE(bytes.size() * 8 - bitpos, 7u) << "bytes after the end code";
  }
  return out;
}

void expect_lzw_round_trip(const std::vector<uint8_t>& data, int min_code_size, const char* what) {
  SCOPED_TRACE(what);
  const auto codes = gif_lzw_encode(data.data(), data.size(), min_code_size);
  EXPECT_TRUE(lzw_decode(codes, min_code_size) == data);
}

TEST(Gif, LzwRoundTrips) {
  std::mt19937 rng(1);
  std::vector<uint8_t> random(300000), small_alphabet(300000), runs, ramp;
  for (auto& v : random) v = uint8_t(rng());  // fills the table and clears it many times
  for (auto& v : small_alphabet) v = uint8_t(rng() % 3);
  for (int i = 0; i < 2000; ++i) runs.insert(runs.end(), size_t(rng() % 700), uint8_t(rng() % 4));
  for (int i = 0; i < 100000; ++i) ramp.push_back(uint8_t((i / 3) & 255));
  expect_lzw_round_trip({}, 8, "empty");
  expect_lzw_round_trip({7}, 8, "one");
  expect_lzw_round_trip({7, 7}, 8, "two");
  expect_lzw_round_trip(std::vector<uint8_t>(200000, 42), 8, "constant");
  expect_lzw_round_trip(random, 8, "random");
  expect_lzw_round_trip(small_alphabet, 8, "small alphabet");
  expect_lzw_round_trip(small_alphabet, 2, "2-bit codes");
  expect_lzw_round_trip(runs, 2, "runs, 2-bit codes");
  expect_lzw_round_trip(runs, 8, "runs");
  expect_lzw_round_trip(ramp, 8, "ramp");
  // Every length around the code-width changes (the end code's width depends on them).
  for (size_t n = 250; n < 1100; ++n) {
    std::vector<uint8_t> d(random.begin(), random.begin() + long(n));
    const auto codes = gif_lzw_encode(d.data(), d.size(), 8);
    ASSERT_TRUE(lzw_decode(codes, 8) == d) << "length " << n;
  }
}

struct GifFile {
  int width = 0, height = 0, loop = -1;
  std::vector<uint8_t> palette;              // 256 * 3
  std::vector<int> delays;                   // per frame, 1/100 s
  std::vector<std::vector<uint8_t>> frames;  // palette indices, decoded here
  bool trailer = false;
};

// Walks the GIF block structure; fails the test on anything unexpected.
GifFile parse_gif(const std::vector<uint8_t>& f) {
  GifFile g;
  size_t p = 0;
  auto u8 = [&]() -> int { return p < f.size() ? f[p++] : (ADD_FAILURE() << "truncated", -1); };
  auto u16 = [&]() { int lo = u8(); return lo | (u8() << 8); };
  auto sub_blocks = [&]() {
    std::vector<uint8_t> data;
    for (int n = u8(); n > 0; n = u8())
      for (int i = 0; i < n; ++i) data.push_back(uint8_t(u8()));
    return data;
  };
  EXPECT_EQ(std::string(f.begin(), f.begin() + 6), "GIF89a");
  p = 6;
  g.width = u16();
  g.height = u16();
  const int packed = u8();
  u8();
  u8();
  EXPECT_EQ(packed & 0x80, 0x80) << "no global colour table";
  const int entries = 2 << (packed & 7);
  for (int i = 0; i < entries * 3; ++i) g.palette.push_back(uint8_t(u8()));
  int pending_delay = -1;
  while (p < f.size()) {
    const int block = u8();
    if (block == 0x3B) {
      g.trailer = true;
      EXPECT_EQ(p, f.size()) << "bytes after the trailer";
      break;
    }
    if (block == 0x21) {
      const int label = u8();
      auto data = sub_blocks();
      if (label == 0xF9) {
        EXPECT_EQ(data.size(), 4u);
        pending_delay = data[1] | (data[2] << 8);
      } else if (label == 0xFF && data.size() >= 14 && std::string(data.begin(), data.begin() + 11) == "NETSCAPE2.0") {
        g.loop = data[12] | (data[13] << 8);
      }
    } else if (block == 0x2C) {
      const int x = u16(), y = u16(), w = u16(), h = u16(), flags = u8();
      EXPECT_EQ(x, 0);
      EXPECT_EQ(y, 0);
      EXPECT_EQ(w, g.width);
      EXPECT_EQ(h, g.height);
      EXPECT_EQ(flags, 0) << "local colour table or interlace";
      const int min_code_size = u8();
      const auto indices = lzw_decode(sub_blocks(), min_code_size);
      EXPECT_EQ(indices.size(), size_t(w) * h);
      g.frames.push_back(indices);
      g.delays.push_back(pending_delay);
      pending_delay = -1;
    } else {
      ADD_FAILURE() << "unknown block 0x" << std::hex << block << " at " << std::dec << p - 1;
      break;
    }
  }
  return g;
}

std::vector<std::vector<uint8_t>> pattern_frames(int w, int h, int n) {
  std::vector<std::vector<uint8_t>> frames;
  for (int i = 0; i < n; ++i) frames.push_back(test_pattern_frame(w, h, i, n));
  return frames;
}

std::vector<RgbImage> views(const std::vector<std::vector<uint8_t>>& frames, int w, int h) {
  std::vector<RgbImage> v;
  for (const auto& f : frames) v.push_back({f.data(), w, h, int64_t{w} * 3});
  return v;
}

// Means of each channel over 4x4 cells (the Bayer matrix period), rounded.
std::vector<uint8_t> cell_means(const std::vector<uint8_t>& rgb, int w, int h) {
  std::vector<uint8_t> out;
  for (int cy = 0; cy + 4 <= h; cy += 4)
    for (int cx = 0; cx + 4 <= w; cx += 4)
      for (int c = 0; c < 3; ++c) {
        int sum = 0;
        for (int y = cy; y < cy + 4; ++y)
          for (int x = cx; x < cx + 4; ++x) sum += rgb[(size_t(y) * w + x) * 3 + c];
        out.push_back(uint8_t((sum + 8) / 16));
      }
  return out;
}

TEST(Gif, AnimatedPreviewDecodesLikeTheSource) {
  ScratchDir dir;
  const int w = 128, h = 96, n = 17;
  const auto frames = pattern_frames(w, h, n);
  const std::string path = dir.file("preview.gif");
  EXPECT_EQ(write_animated_gif(path, views(frames, w, h), Rational{16, 1}), n);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"preview.gif"});
  const auto bytes = test::read_bytes(path);
  ASSERT_GT(bytes.size(), 800u);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 6), "GIF89a");
  EXPECT_EQ(bytes.back(), 0x3B);

  const GifFile g = parse_gif(bytes);
  EXPECT_TRUE(g.trailer);
  EXPECT_EQ(g.width, w);
  EXPECT_EQ(g.height, h);
  EXPECT_EQ(g.loop, 0);
  ASSERT_EQ(g.frames.size(), size_t(n));
  int total = 0;
  for (int d : g.delays) {
    EXPECT_TRUE(d == 6 || d == 7) << d;  // 6.25/100 s per frame at 16 fps
    total += d;
  }
  EXPECT_EQ(total, 106);  // round(100 * 17 / 16)

  // FFmpeg's GIF decoder sees the same pictures as our decoder. Ordered dither trades
  // per-pixel error (~21 dB PSNR for 6-7 levels per channel) for correct local averages:
  // compared after averaging each 4x4 dither cell, the GIF is close to the source.
  Mp4Reader reader;
  reader.open(path);
  EXPECT_EQ(reader.info().codec_name, "gif");
  const auto decoded = reader.read_all_frames();
  ASSERT_EQ(decoded.size(), size_t(n));
  double worst = INFINITY, worst_pixel = INFINITY;
  for (int i = 0; i < n; ++i) {
    std::vector<uint8_t> ours(size_t(w) * h * 3);
    for (size_t k = 0; k < g.frames[i].size(); ++k)
      for (int c = 0; c < 3; ++c) ours[k * 3 + c] = g.palette[g.frames[i][k] * 3 + c];
    EXPECT_TRUE(decoded[i] == ours) << "frame " << i;
    worst_pixel = std::min(worst_pixel, test::psnr(frames[i], decoded[i]));
    worst = std::min(worst, test::psnr(cell_means(frames[i], w, h), cell_means(decoded[i], w, h)));
    EXPECT_EQ(read_test_pattern_index(decoded[i].data(), w, h, w * 3), i);
  }
  std::printf("[ gif ] %d frames, %zu bytes, worst PSNR vs source: %.2f dB per pixel, %.2f dB on 4x4 means\n", n,
              bytes.size(), worst_pixel, worst);
  EXPECT_GE(worst_pixel, 20.0);
  EXPECT_GE(worst, 38.0);

  // Deterministic: the same frames give the same bytes.
  write_animated_gif(dir.file("again.gif"), views(frames, w, h), Rational{16, 1});
  EXPECT_TRUE(test::read_bytes(dir.file("again.gif")) == bytes);
}

TEST(Gif, HighFrameRatesDropFramesButKeepDuration) {
  ScratchDir dir;
  const int w = 64, h = 32, n = 24;
  const auto frames = pattern_frames(w, h, n);
  const int written = write_animated_gif(dir.file("fast.gif"), views(frames, w, h), Rational{120, 1});
  const GifFile g = parse_gif(test::read_bytes(dir.file("fast.gif")));
  EXPECT_EQ(int(g.frames.size()), written);
  EXPECT_LT(written, n);
  int total = 0;
  for (int d : g.delays) {
    EXPECT_GE(d, 2);  // browsers slow delays under 2/100 s down to 1/10 s
    total += d;
  }
  EXPECT_EQ(total, 20);  // 24 frames at 120 fps = 0.2 s
}

TEST(Gif, WideFramesAreScaledDown) {
  ScratchDir dir;
  const int w = 832, h = 480;
  const auto frames = pattern_frames(w, h, 2);
  GifOptions o;
  o.max_width = 416;
  write_animated_gif(dir.file("wide.gif"), views(frames, w, h), Rational{16, 1}, o);
  const GifFile g = parse_gif(test::read_bytes(dir.file("wide.gif")));
  EXPECT_EQ(g.width, 416);
  EXPECT_EQ(g.height, 240);
  EXPECT_EQ(g.frames.size(), 2u);
}

TEST(ContactSheet, GridOfEvenlySpacedLabelledFrames) {
  EXPECT_EQ(evenly_spaced_indices(17, 8), (std::vector<int>{0, 2, 5, 7, 9, 11, 14, 16}));
  EXPECT_EQ(evenly_spaced_indices(81, 3), (std::vector<int>{0, 40, 80}));
  EXPECT_EQ(evenly_spaced_indices(3, 8), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(evenly_spaced_indices(5, 1), (std::vector<int>{0}));

  ScratchDir dir;
  const int w = 128, h = 96, n = 17;
  const auto frames = pattern_frames(w, h, n);
  const std::string path = dir.file("sheet.png");
  const auto shown = write_contact_sheet(path, views(frames, w, h));
  EXPECT_EQ(shown, (std::vector<int>{0, 2, 5, 7, 9, 11, 14, 16}));
  EXPECT_EQ(dir.list(), std::vector<std::string>{"sheet.png"});

  const cv::Mat img = cv::imread(path, cv::IMREAD_COLOR);  // BGR
  ASSERT_FALSE(img.empty());
  const int gap = 4;
  EXPECT_EQ(img.cols, 4 * w + 5 * gap);
  EXPECT_EQ(img.rows, 2 * h + 3 * gap);
  for (int k = 0; k < 8; ++k) {
    const int x0 = gap + (k % 4) * (w + gap), y0 = gap + (k / 4) * (h + gap);
    // Away from the label the tile is the frame itself (PNG is lossless, no scaling here).
    for (int y : {h / 2, h - 3})
      for (int x : {w / 2, w - 3}) {
        const cv::Vec3b px = img.at<cv::Vec3b>(y0 + y, x0 + x);
        const uint8_t* src = &frames[shown[k]][(size_t(y) * w + x) * 3];
        EXPECT_EQ(px[2], src[0]);
        EXPECT_EQ(px[1], src[1]);
        EXPECT_EQ(px[0], src[2]);
      }
    // The label: a black box with white text in the top-left corner.
    int white = 0, black = 0;
    for (int y = 0; y < 10; ++y)
      for (int x = 0; x < 16; ++x) {
        const cv::Vec3b px = img.at<cv::Vec3b>(y0 + y, x0 + x);
        if (px[0] > 200 && px[1] > 200 && px[2] > 200) ++white;
        if (px[0] == 0 && px[1] == 0 && px[2] == 0) ++black;
      }
    EXPECT_GT(white, 3) << "tile " << k;
    EXPECT_GT(black, 20) << "tile " << k;
  }
  // Deterministic.
  write_contact_sheet(dir.file("again.png"), views(frames, w, h));
  EXPECT_TRUE(test::read_bytes(dir.file("again.png")) == test::read_bytes(path));
  // Refuses to replace without overwrite, replaces with it.
  EXPECT_THROW(write_contact_sheet(path, views(frames, w, h)), Error);
  ContactSheetOptions o;
  o.overwrite = true;
  o.tiles = 3;
  o.max_tile_width = 64;
  EXPECT_EQ(write_contact_sheet(path, views(frames, w, h), o), (std::vector<int>{0, 8, 16}));
  const cv::Mat small = cv::imread(path, cv::IMREAD_COLOR);
  EXPECT_EQ(small.cols, 3 * 64 + 4 * gap);
  EXPECT_EQ(small.rows, 48 + 2 * gap);
}

// Random RGB frames: every pixel of png_bytes and of an unscaled frame strip decoded back,
// the strip's gaps the dark background, at odd sizes.
TEST(PngBytes, FrameAndStripDecodeToTheirPixels) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto [w, h] : {std::pair{7, 5}, {1, 1}, {33, 18}}) {
    std::vector<std::vector<uint8_t>> frames(3, std::vector<uint8_t>(size_t(w) * h * 3));
    for (auto& f : frames)
      for (uint8_t& b : f) b = uint8_t(byte(rng));
    std::vector<uint8_t> png = png_bytes(views(frames, w, h)[0]);
    cv::Mat img = cv::imdecode(png, cv::IMREAD_COLOR);  // BGR
    ASSERT_EQ(img.cols, w);
    ASSERT_EQ(img.rows, h);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c)
          ASSERT_EQ(img.at<cv::Vec3b>(y, x)[2 - c], frames[0][(size_t(y) * w + x) * 3 + c]) << w << "x" << h;

    const int gap = 3;
    png = frame_strip_png(views(frames, w, h), w, h, gap);
    img = cv::imdecode(png, cv::IMREAD_COLOR);
    ASSERT_EQ(img.cols, 3 * w + 4 * gap);
    ASSERT_EQ(img.rows, h + 2 * gap);
    for (int y = 0; y < img.rows; ++y)
      for (int x = 0; x < img.cols; ++x) {
        const int k = (x - gap) / (w + gap), tx = (x - gap) % (w + gap), ty = y - gap;
        const bool in_tile = x >= gap && tx < w && ty >= 0 && ty < h;
        for (int c = 0; c < 3; ++c) {
          const int want = in_tile ? frames[size_t(k)][(size_t(ty) * w + tx) * 3 + c] : 32;
          ASSERT_EQ(img.at<cv::Vec3b>(y, x)[2 - c], want) << w << "x" << h << " at " << x << "," << y;
        }
      }
  }
  // Scaled tiles: the strip has the asked size.
  std::vector<std::vector<uint8_t>> one(1, std::vector<uint8_t>(size_t(9) * 4 * 3, 200));
  cv::Mat big = cv::imdecode(frame_strip_png(views(one, 9, 4), 36, 16, 0), cv::IMREAD_COLOR);
  EXPECT_EQ(big.cols, 36);
  EXPECT_EQ(big.rows, 16);
  EXPECT_EQ(big.at<cv::Vec3b>(8, 18), cv::Vec3b(200, 200, 200));
}

TEST(TestPattern, DeterministicMovingAndCounted) {
  for (auto [w, h, n] : {std::tuple{128, 96, 17}, std::tuple{832, 480, 81}, std::tuple{32, 16, 3}}) {
    SCOPED_TRACE(w);
    std::vector<uint8_t> prev;
    for (int i = 0; i < n; ++i) {
      const auto f = test_pattern_frame(w, h, i, n);
      if (i % 8 == 0) {
        EXPECT_TRUE(f == test_pattern_frame(w, h, i, n));
      }
      EXPECT_EQ(read_test_pattern_index(f.data(), w, h, w * 3), i);
      if (!prev.empty()) {
        EXPECT_FALSE(f == prev) << "frame " << i << " repeats its predecessor";
      }
      prev = f;
    }
  }
  // Tiny frames (the app allows 16x16) get the picture without bars.
  for (auto [w, h] : {std::pair{16, 16}, std::pair{2, 2}, std::pair{48, 8}}) {
    const auto a = test_pattern_frame(w, h, 0, 2), b = test_pattern_frame(w, h, 1, 2);
    EXPECT_EQ(read_test_pattern_index(a.data(), w, h, w * 3), -1);
    EXPECT_EQ(a.size(), size_t(w) * h * 3);
  }
  // Drawing into a strided buffer gives the same rows.
  const int w = 128, h = 96, stride = w * 3 + 16;
  std::vector<uint8_t> padded(size_t(stride) * h, 0);
  draw_test_pattern(padded.data(), w, h, stride, 5, 17);
  const auto packed = test_pattern_frame(w, h, 5, 17);
  for (int y = 0; y < h; ++y)
    EXPECT_TRUE(std::equal(packed.begin() + y * w * 3, packed.begin() + (y + 1) * w * 3, padded.begin() + y * stride));
}

}  // namespace
}  // namespace t2v
