// Reads videos back through libavformat/libavcodec: stream facts, format-level tags and
// frames as RGB24. Used by tests and tools to check what the writer produced; it opens
// anything FFmpeg demuxes (the GIF previews too).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "video_io/frame_rate.h"

namespace t2v {

struct VideoInfo {
  std::string format_name;  // demuxer, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  std::string codec_name;   // e.g. "h264"
  std::string profile;      // e.g. "High"; empty when the codec has none
  std::string pix_fmt;      // e.g. "yuv420p"
  int width = 0, height = 0;
  Rational fps;             // the stream's average frame rate
  int64_t frame_count = 0;  // from the container index (nb_frames); 0 when not stored
  double duration_s = 0;    // stream duration, else the container's
  // av_color_*_name of the stream's tags, e.g. "bt709" and "tv"; "unknown" when untagged.
  std::string color_primaries, color_trc, color_space, color_range;
  std::map<std::string, std::string> metadata;  // format-level tags
};

// Cheap completeness check for a file found under a final name (batch resume, docs/bad_inputs.md
// #50): header probing cannot see a faststart file cut inside mdat (docs/conventions.md §8.2),
// but its top-level boxes then no longer tile the file. Returns "" when the boxes tile the
// file exactly, start with ftyp and include moov and mdat; else what is wrong.
std::string mp4_structure_problem(const std::string& path);

class Mp4Reader {
 public:
  Mp4Reader();
  ~Mp4Reader();
  Mp4Reader(const Mp4Reader&) = delete;
  Mp4Reader& operator=(const Mp4Reader&) = delete;

  // Error(66) when `path` cannot be opened, Error(65) when it holds no decodable video.
  void open(const std::string& path);
  const VideoInfo& info() const;

  // Decodes the next frame into `rgb` (height rows of width*3 bytes, no padding); false at
  // the end. YUV is converted with the matrix and range the stream is tagged with (BT.709
  // for our files; untagged streams are taken as BT.601 limited, as FFmpeg does).
  bool read_frame(std::vector<uint8_t>& rgb);

  // Every remaining frame.
  std::vector<std::vector<uint8_t>> read_all_frames();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace t2v
