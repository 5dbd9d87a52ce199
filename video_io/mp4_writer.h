// H.264 MP4 output on libavformat/libavcodec + libx264 (docs/conventions.md §8).
//
// RGB24 frames go in one at a time as the VAE decodes them; out comes yuv420p High-profile
// H.264 with BT.709 limited-range conversion *and* the matching colour tags, `+faststart`
// (moov before mdat, so browsers can start playing at once), and metadata kept as mdta
// keys (`use_metadata_tags`, else the muxer drops custom keys such as "t2v").
// The file is written to a temp file next to the destination and renamed into place only
// by finish(); any failure, or destruction without finish(), deletes it (atomic_file.h).
//
// Determinism: x264 output depends on its thread count (frame threads limit the motion
// search to rows already coded and change rate control), so `threads` is a fixed number
// rather than "auto" (= cores * 1.5); swscale runs bit-exact. The same frames and options
// then give a byte-identical file on any machine with the same FFmpeg/x264 build.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "video_io/atomic_file.h"
#include "video_io/frame_rate.h"

namespace t2v {

struct Mp4Options {
  int crf = 18;                     // 0-51; 18 is close to visually lossless for 8-bit x264
  std::string preset = "medium";    // x264 preset: ultrafast ... placebo
  // Fixed x264 thread count, part of the output's identity (1, 2, 4 and 8 threads give four
  // different files for the same frames). 4 is a fair speed on anything from 2 to 16 cores.
  int threads = 4;
  bool overwrite = false;           // replace an existing file (else Error 73)
  // Format-level tags, e.g. "t2v" -> generation JSON, "comment", "title". Values must be
  // valid UTF-8 without NUL bytes (Error 65): the C API would silently cut them at a NUL.
  std::map<std::string, std::string> metadata;
};

// Sizes x264 takes for yuv420p: even, 2..kMaxFrameSide. The app asks for multiple = 16
// (Wan's latent grid). Error(64) names the valid neighbours: "width 833 is odd: use 832 or
// 834", "width 833 is not a multiple of 16: use 832 or 848".
inline constexpr int kMaxFrameSide = 16384;
void check_frame_size(int width, int height, int multiple = 2);

// A generous size estimate of an MP4 (plus its previews) for check_free_space: 1 bit per
// pixel and frame (CRF 18 on generated video needs ~0.1-0.3) plus 1 MB.
uint64_t estimate_output_bytes(int width, int height, int frames);

// Error(69) when the FFmpeg build has no libx264 encoder; call at startup (docs/bad_inputs.md #54).
void check_h264_encoder();

class Mp4Writer {
 public:
  Mp4Writer();
  ~Mp4Writer();  // abort() unless finish() succeeded
  Mp4Writer(const Mp4Writer&) = delete;
  Mp4Writer& operator=(const Mp4Writer&) = delete;

  // Validates everything (encoder present, size, fps, crf, preset, metadata, destination)
  // and starts the temp file. Errors: 64 bad size/fps/options, 65 bad metadata, 69 no
  // libx264, 73 destination folder or existing file, 74 I/O.
  void open(const std::string& path, int width, int height, Rational fps, const Mp4Options& options = {});

  // Encodes one frame: height rows of width*3 bytes (R, G, B), rows `stride` bytes apart.
  // Error(74) naming the path on a write error (e.g. disk full); the temp file is deleted.
  void write_frame(const uint8_t* rgb24, int64_t stride);

  // Sets (or replaces) a format-level tag after open(): the MP4 index, where the tags
  // live, is written by finish(), so values known only at the end (timings) still
  // land in the file. Same rules as Mp4Options::metadata (Error 65).
  void set_metadata(const std::string& key, const std::string& value);
  // Flushes the encoder, writes the index (faststart rewrite), fsyncs and renames the file
  // into place. Error(74) on write errors, Error(73) if the destination appeared meanwhile.
  void finish();

  // Drops everything written so far and deletes the temp file (e.g. on Ctrl-C).
  void abort() noexcept;

  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace t2v
