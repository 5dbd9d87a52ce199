#include "video_io/preview.h"

#include <algorithm>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "video_io/atomic_file.h"
#include "video_io/gif_encoder.h"

namespace t2v {
namespace {

cv::Mat as_mat(const RgbImage& f) {
  T2V_ASSERT(f.data && f.width > 0 && f.height > 0 && f.stride >= int64_t{f.width} * 3, "bad frame {}x{} stride {}",
             f.width, f.height, f.stride);
  return cv::Mat(f.height, f.width, CV_8UC3, const_cast<uint8_t*>(f.data), static_cast<size_t>(f.stride));
}

// The frame scaled to at most `max_width` wide (aspect kept); INTER_AREA averages the
// source pixels, so thin details do not alias. Returns a view when no scaling is needed.
cv::Mat scaled(const RgbImage& f, int max_width) {
  cv::Mat m = as_mat(f);
  if (f.width <= max_width) return m;
  const int h = std::max(1, static_cast<int>((int64_t{f.height} * max_width + f.width / 2) / f.width));
  cv::Mat out;
  cv::resize(m, out, cv::Size(max_width, h), 0, 0, cv::INTER_AREA);
  return out;
}

void check_frames(const std::vector<RgbImage>& frames, const char* what) {
  T2V_ASSERT(!frames.empty(), "{} needs at least one frame", what);
  for (const RgbImage& f : frames)
    T2V_ASSERT(f.width == frames[0].width && f.height == frames[0].height, "{}: frames differ in size", what);
}

std::vector<uint8_t> encode_png(const cv::Mat& rgb, const std::string& what) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);  // imencode expects BGR
  std::vector<uint8_t> png;
  if (!cv::imencode(".png", bgr, png, {cv::IMWRITE_PNG_COMPRESSION, 6}))
    throw Error(kExitSoftware, fmt::format("cannot encode the {} as PNG", what));
  return png;
}

// round(100 * i / fps) in hundredths of a second, exactly, for fps = num/den.
int64_t centiseconds(int64_t i, Rational fps) { return (200 * i * fps.den + fps.num) / (2 * int64_t{fps.num}); }

}  // namespace

std::vector<RgbImage> frames_view(const uint8_t* frames, int count, int width, int height) {
  std::vector<RgbImage> out;
  const int64_t frame_bytes = int64_t{width} * height * 3;
  for (int i = 0; i < count; ++i) out.push_back(RgbImage{frames + i * frame_bytes, width, height, int64_t{width} * 3});
  return out;
}

std::vector<int> evenly_spaced_indices(int count, int n) {
  n = std::min(n, count);
  std::vector<int> idx;
  if (n <= 0) return idx;
  if (n == 1) return {0};
  for (int i = 0; i < n; ++i) idx.push_back(static_cast<int>((int64_t{2} * i * (count - 1) + (n - 1)) / (2 * (n - 1))));
  return idx;
}

std::vector<int> write_contact_sheet(const std::string& path, const std::vector<RgbImage>& frames,
                                     const ContactSheetOptions& options) {
  check_frames(frames, "contact sheet");
  T2V_ASSERT(options.tiles >= 1 && options.columns >= 1 && options.max_tile_width >= 16, "bad contact sheet options");
  const std::vector<int> shown = evenly_spaced_indices(static_cast<int>(frames.size()), options.tiles);
  const int n = static_cast<int>(shown.size());
  const int cols = std::min(options.columns, n), rows = (n + cols - 1) / cols;
  const int gap = 4;
  cv::Mat first = scaled(frames[shown[0]], options.max_tile_width);
  const int tw = first.cols, th = first.rows;
  cv::Mat sheet(rows * th + (rows + 1) * gap, cols * tw + (cols + 1) * gap, CV_8UC3, cv::Scalar(32, 32, 32));

  // Labels: small white text on a black box in each tile's top-left corner.
  const double font_scale = th >= 160 ? 0.5 : 0.35;
  for (int k = 0; k < n; ++k) {
    const int x = gap + (k % cols) * (tw + gap), y = gap + (k / cols) * (th + gap);
    cv::Mat tile = sheet(cv::Rect(x, y, tw, th));
    scaled(frames[shown[k]], options.max_tile_width).copyTo(tile);
    const std::string label = fmt::format("#{}", shown[k]);
    int baseline = 0;
    cv::Size ts = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, font_scale, 1, &baseline);
    cv::Rect box(0, 0, std::min(tw, ts.width + 6), std::min(th, ts.height + baseline + 4));
    cv::rectangle(tile, box, cv::Scalar(0, 0, 0), cv::FILLED);
    cv::putText(tile, label, cv::Point(3, ts.height + 2), cv::FONT_HERSHEY_SIMPLEX, font_scale,
                cv::Scalar(255, 255, 255), 1, cv::LINE_AA);
  }

  std::vector<uint8_t> png = encode_png(sheet, fmt::format("contact sheet '{}'", path));
  write_file_atomic(path, png.data(), png.size(), options.overwrite);
  return shown;
}

std::vector<uint8_t> png_bytes(const RgbImage& frame) { return encode_png(as_mat(frame), "frame"); }

std::vector<uint8_t> frame_strip_png(const std::vector<RgbImage>& frames, int tile_width, int tile_height, int gap) {
  check_frames(frames, "frame strip");
  T2V_ASSERT(tile_width >= 1 && tile_height >= 1 && gap >= 0, "bad strip tile {}x{} gap {}", tile_width, tile_height,
             gap);
  const int n = static_cast<int>(frames.size());
  cv::Mat strip(tile_height + 2 * gap, n * tile_width + (n + 1) * gap, CV_8UC3, cv::Scalar(32, 32, 32));
  for (int k = 0; k < n; ++k) {
    cv::Mat tile = strip(cv::Rect(gap + k * (tile_width + gap), gap, tile_width, tile_height));
    cv::resize(as_mat(frames[k]), tile, cv::Size(tile_width, tile_height), 0, 0, cv::INTER_LINEAR);
  }
  return encode_png(strip, "frame strip");
}

int write_animated_gif(const std::string& path, const std::vector<RgbImage>& frames, Rational fps,
                       const GifOptions& options) {
  check_frames(frames, "GIF");
  check_fps(fps);
  T2V_ASSERT(options.max_width >= 16, "GIF max width {}", options.max_width);
  const int64_t count = static_cast<int64_t>(frames.size());
  // Keep a frame when at least 2/100 s passed since the last kept one.
  std::vector<int64_t> kept = {0};
  for (int64_t i = 1; i < count; ++i)
    if (centiseconds(i, fps) - centiseconds(kept.back(), fps) >= 2) kept.push_back(i);

  cv::Mat probe = scaled(frames[0], options.max_width);
  GifEncoder gif(probe.cols, probe.rows);
  for (size_t k = 0; k < kept.size(); ++k) {
    const int64_t end = k + 1 < kept.size() ? kept[k + 1] : count;
    const int delay = static_cast<int>(std::max<int64_t>(2, centiseconds(end, fps) - centiseconds(kept[k], fps)));
    cv::Mat m = scaled(frames[kept[k]], options.max_width);
    gif.add_frame(m.data, static_cast<int64_t>(m.step), std::min(delay, 65535));
  }
  const int written = gif.frames();
  std::vector<uint8_t> bytes = gif.finish();
  write_file_atomic(path, bytes.data(), bytes.size(), options.overwrite);
  return written;
}

}  // namespace t2v
