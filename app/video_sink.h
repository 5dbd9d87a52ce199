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

// The previews' path without extension: "out/ball.mp4" -> "out/ball" (+ ".png", ".gif").
std::string preview_base(const std::string& output);

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

  // Writes every output: the frames dump (F32 [F, H, W, 3] under the key "frames"), the
  // previews (<output>.png contact sheet and <output>.gif), then the MP4 (its settings tag
  // replaced when `settings` is given: timings are known only now), renamed into place
  // last. A failure removes what this call already put in place, so a failed render
  // leaves nothing behind and the same command can run again (docs/bad_inputs.md #83).
  void finish(const nlohmann::json* settings);

 private:
  void save_frames_dump() const;

  std::string output_, dump_path_;
  int width_ = 0, height_ = 0;
  Rational fps_;
  bool keep_frames_ = false;
  bool overwrite_ = false, preview_overwrite_ = false;
  Mp4Writer writer_;
  std::vector<uint8_t> kept_;  // every frame, only for --preview
  std::vector<float> unit_;    // every frame in [0, 1], only for --dump-frames
  int frames_ = 0;
  double mux_s_ = 0;
};

}  // namespace t2v
