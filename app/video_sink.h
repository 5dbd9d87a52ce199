// Where a render's frames go as the VAE produces them, so memory does not grow with
// the video's length: the MP4 (a temp file until finish() renames it into place), the
// 8-bit frames kept for --preview and the float frames for --dump-frames.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/render_request.h"
#include "video_io/mp4_writer.h"

namespace t2v {

class VideoSink {
 public:
  // Opens the MP4's temp file for r.output, `settings` in its `t2v` tag and the prompt
  // as its comment. Dropped (nothing written) unless finish() is reached.
  VideoSink(const RenderRequest& r, const nlohmann::json& settings);
  VideoSink(const VideoSink&) = delete;
  VideoSink& operator=(const VideoSink&) = delete;

  int width() const { return width_; }
  int height() const { return height_; }
  // True when the frames in [0, 1] before 8-bit rounding are wanted too (--dump-frames).
  bool wants_unit_frames() const { return !dump_path_.empty(); }
  // One frame [H, W, 3]: its 8-bit values and, when wanted, the values they were rounded from.
  void add_frame(const uint8_t* rgb, const float* unit);
  int frames() const { return frames_; }
  double mux_s() const { return mux_s_; }  // seconds spent in the MP4 writer so far

  // Saves the float frames as F32 [F, H, W, 3] under the key "frames".
  void save_frames_dump() const;
  // Replaces the settings tag when `settings` is given (timings known only now), writes
  // the index and renames the MP4 into place.
  void finish(const nlohmann::json* settings);
  // <output>.png (contact sheet) and <output>.gif next to the MP4.
  void write_previews() const;

 private:
  std::string output_, dump_path_;
  int width_ = 0, height_ = 0;
  Rational fps_;
  bool keep_frames_ = false;
  Mp4Writer writer_;
  std::vector<uint8_t> kept_;  // every frame, only for --preview
  std::vector<float> unit_;    // every frame in [0, 1], only for --dump-frames
  int frames_ = 0;
  double mux_s_ = 0;
};

}  // namespace t2v
