// A semantic evaluator for videos of the default model's synthetic world
// (tools/world/world.py): finds the one saturated object in each frame by
// colour segmentation and says its colour, shape class and motion, to compare
// with what the prompt asked for.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>

namespace t2v::eval {

// The world's vocabulary, copied from world.py (COLOURS, SHAPES, MOTIONS,
// SHAPE_WORDS, MOTION_PHRASES, HELD_OUT); the test checks the copies against
// tests/data/eval/index.json, which make_eval_fixtures.py writes from world.py.
struct World {
  std::vector<std::pair<std::string, cv::Vec3b>> colours;  // name, RGB
  std::vector<std::string> shapes, motions, backgrounds;
  std::vector<std::pair<std::string, std::vector<std::string>>> shape_words, motion_phrases;
  struct Combo {
    std::string colour, shape, motion;
  };
  std::vector<Combo> held_out;
};
const World& world();

// world.canonical_caption: "a red triangle moving up on a white background".
std::string canonical_caption(const std::string& colour, const std::string& shape, const std::string& motion,
                              const std::string& background = "");

struct Expected {
  std::string colour, shape, motion;  // empty where the prompt does not say
};

// Reads colour, shape and motion from a prompt of the world's caption grammar:
// any noun of SHAPE_WORDS (ball/disc/round dot -> circle, box/block -> square)
// and any phrase of MOTION_PHRASES (the longest phrase found wins, so "moves
// diagonally up and to the right" is diagonal), with single motion words
// ("rising", "left", ...) as a fallback for wordings outside the grammar.
Expected parse_prompt(const std::string& prompt);

struct FrameTrack {
  bool found = false;
  double cx = 0, cy = 0, area = 0;  // coverage-weighted centroid (pixels) and area (pixels)
  std::string colour, shape;        // this frame's votes ("" when not found or too small)
};

struct Verdict {
  bool found = false;                 // an object in at least half the frames
  std::string colour, shape, motion;  // detected ("" when not found)
  bool colour_ok = false, shape_ok = false, motion_ok = false;
  std::string reason;  // why nothing was found, or the motion measurements
  std::vector<FrameTrack> frames;
  bool all_ok() const { return colour_ok && shape_ok && motion_ok; }
};

// frames: 8-bit RGB (CV_8UC3, R first), all the same size.
Verdict evaluate(const std::vector<cv::Mat>& frames, const Expected& expected);
// Frames as Mp4Reader::read_all_frames gives them (packed RGB24, width x height).
Verdict evaluate(const std::vector<std::vector<uint8_t>>& frames, int width, int height, const Expected& expected);

// Splits a horizontal strip of square frames (as tools/world/make_eval_fixtures.py writes them).
std::vector<cv::Mat> split_strip(const cv::Mat& strip_rgb);

}  // namespace t2v::eval
