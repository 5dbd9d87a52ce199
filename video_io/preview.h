// Previews of a finished video for people to look at: a contact-sheet PNG (evenly spaced
// frames in a grid, each labelled with its frame index) and an animated GIF, both written
// atomically (atomic_file.h) and deterministic (same frames, same bytes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "video_io/frame_rate.h"

namespace t2v {

// One RGB24 frame owned by the caller: `height` rows of width*3 bytes, `stride` apart.
struct RgbImage {
  const uint8_t* data = nullptr;
  int width = 0, height = 0;
  int64_t stride = 0;
};

// Views of `count` frames stored back to back as [F, H, W, 3] uint8.
std::vector<RgbImage> frames_view(const uint8_t* frames, int count, int width, int height);

// `n` indices spread evenly over [0, count), first and last included: round(i*(count-1)/(n-1)).
std::vector<int> evenly_spaced_indices(int count, int n);

struct ContactSheetOptions {
  int tiles = 8;              // frames shown (fewer if the video is shorter)
  int columns = 4;
  int max_tile_width = 320;   // tiles are scaled down (area filter) to at most this width
  bool overwrite = false;
};

// Writes the contact sheet PNG; returns the frame indices shown. Errors as AtomicFile.
std::vector<int> write_contact_sheet(const std::string& path, const std::vector<RgbImage>& frames,
                                     const ContactSheetOptions& options = {});

struct GifOptions {
  int max_width = 416;        // frames are scaled down (area filter) to at most this width
  bool overwrite = false;
};

// Writes an endlessly looping GIF at `fps`. GIF delays are whole hundredths of a second
// and browsers slow down delays under 2/100 s, so frames are dropped where needed to keep
// every delay >= 2; delays are rounded cumulatively so the total duration stays right.
// Returns the number of frames written.
int write_animated_gif(const std::string& path, const std::vector<RgbImage>& frames, Rational fps,
                       const GifOptions& options = {});

// One frame as PNG bytes, unscaled (video thumbnails).
std::vector<uint8_t> png_bytes(const RgbImage& frame);

// Frames side by side, each scaled (bilinear) to tile_width x tile_height, `gap` pixels apart on
// a dark background, as PNG bytes (live previews of a render in progress).
std::vector<uint8_t> frame_strip_png(const std::vector<RgbImage>& frames, int tile_width, int tile_height, int gap = 2);

}  // namespace t2v
