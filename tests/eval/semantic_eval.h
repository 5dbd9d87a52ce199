// A semantic evaluator for videos of the default model's synthetic world
// (tools/world/world.py): finds the one saturated object in each frame by
// colour segmentation and says its colour, shape class and motion, to compare
// with what the prompt asked for.
#pragma once

#include <array>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace t2v::eval {

struct Expected {
  std::string colour, shape, motion;  // empty where the prompt does not say
};

// Reads colour, shape and motion words of the world's caption grammar
// (ball/disc/round dot -> circle, box/block -> square; every motion phrase).
Expected parse_prompt(const std::string& prompt);

struct Verdict {
  bool found = false;
  std::string colour, shape, motion;  // detected
  std::string reason;                 // why nothing was found, or the measurements
  bool colour_ok = false, shape_ok = false, motion_ok = false;
};

// frames: 8-bit RGB (CV_8UC3, R first), all the same size.
Verdict evaluate(const std::vector<cv::Mat>& frames, const Expected& expected);

// Splits a horizontal strip of square frames (as tools/world/make_eval_fixtures.py writes them).
std::vector<cv::Mat> split_strip(const cv::Mat& strip_rgb);

}  // namespace t2v::eval
