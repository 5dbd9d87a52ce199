// The evaluator itself, on ground-truth clips of the synthetic world
// (tools/world/make_eval_fixtures.py): as drawn, as the default model's block
// codec reproduces them, and degraded; and it must notice a wrong prompt.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "semantic_eval.h"

namespace t2v::eval {
namespace {

const std::string kData = std::string(T2V_TEST_DATA_DIR) + "/eval";

struct Clip {
  nlohmann::json meta;
  std::vector<cv::Mat> frames;
};

std::vector<Clip> load_clips() {
  std::ifstream f(kData + "/index.json");
  EXPECT_TRUE(f) << "missing tests/data/eval/index.json";
  nlohmann::json index = nlohmann::json::parse(f);
  std::vector<Clip> clips;
  for (const auto& m : index) {
    cv::Mat bgr = cv::imread(kData + "/" + m["file"].get<std::string>(), cv::IMREAD_COLOR);
    EXPECT_FALSE(bgr.empty()) << m["file"];
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    clips.push_back({m, split_strip(rgb)});
  }
  return clips;
}

Expected truth(const nlohmann::json& m) { return {m["colour"], m["shape"], m["motion"]}; }

struct Score {
  int n = 0, colour = 0, shape = 0, motion = 0;
  void add(const Verdict& v) { ++n, colour += v.colour_ok, shape += v.shape_ok, motion += v.motion_ok; }
  std::string str() const {
    return std::to_string(colour) + "/" + std::to_string(n) + " colour, " + std::to_string(shape) + "/" +
           std::to_string(n) + " shape, " + std::to_string(motion) + "/" + std::to_string(n) + " motion";
  }
};

TEST(SemanticEval, ParsesEveryWordingOfTheGrammar) {
  EXPECT_EQ(parse_prompt("a red ball rolling to the left").colour, "red");
  EXPECT_EQ(parse_prompt("a red ball rolling to the left").shape, "circle");
  EXPECT_EQ(parse_prompt("a red ball rolling to the left").motion, "left");
  Expected d = parse_prompt("a yellow box moves diagonally up and to the right on a white background");
  EXPECT_EQ(d.shape, "square");
  EXPECT_EQ(d.motion, "diagonal");
  EXPECT_EQ(parse_prompt("an orange round dot getting smaller").motion, "shrinking");
  EXPECT_EQ(parse_prompt("an orange round dot getting smaller").shape, "circle");
  EXPECT_EQ(parse_prompt("a blue block hopping up and down").motion, "bouncing");
  EXPECT_EQ(parse_prompt("a purple triangle sinks down in the dark").motion, "down");
  EXPECT_EQ(parse_prompt("a green disc floats up").motion, "up");
  EXPECT_EQ(parse_prompt("a green disc expanding").motion, "growing");
  // Every caption of the fixtures (random wordings) parses to its scene.
  for (const Clip& c : load_clips()) {
    Expected e = parse_prompt(c.meta["prompt"]);
    EXPECT_EQ(e.colour, c.meta["colour"]) << c.meta["prompt"];
    EXPECT_EQ(e.shape, c.meta["shape"]) << c.meta["prompt"];
    EXPECT_EQ(e.motion, c.meta["motion"]) << c.meta["prompt"];
  }
}

TEST(SemanticEval, RightOnGroundTruthClips) {
  std::map<std::string, Score> by_kind;
  for (const Clip& c : load_clips()) {
    Verdict v = evaluate(c.frames, truth(c.meta));
    by_kind[c.meta["kind"]].add(v);
    // As drawn, every clip must be read right; the 4x4 block mosaic can make a
    // small circle and square nearly identical, so it gets a margin below.
    if (c.meta["kind"] == "clean") {
      EXPECT_TRUE(v.colour_ok && v.shape_ok && v.motion_ok)
          << c.meta["file"] << ": want " << c.meta["colour"] << " " << c.meta["shape"] << " " << c.meta["motion"]
          << ", got " << v.colour << " " << v.shape << " " << v.motion << " (" << v.reason << ")";
    }
  }
  for (const auto& [kind, s] : by_kind) std::printf("%s clips: %s\n", kind.c_str(), s.str().c_str());
  const Score& b = by_kind["blocks"];
  ASSERT_GE(b.n, 40);
  EXPECT_GE(b.colour, b.n * 95 / 100);  // measured 48/48, 47/48, 48/48
  EXPECT_GE(b.shape, b.n * 95 / 100);
  EXPECT_GE(b.motion, b.n * 95 / 100);
}

TEST(SemanticEval, RobustToBlurNoiseAndColourShift) {
  std::mt19937 rng(5);
  Score s;
  for (const Clip& c : load_clips()) {
    if (c.meta["kind"] != "clean") continue;
    std::vector<cv::Mat> bad;
    std::normal_distribution<float> shift(0.0f, 12.0f);
    cv::Scalar tint(shift(rng), shift(rng), shift(rng));
    for (const cv::Mat& f : c.frames) {
      cv::Mat g, noise(f.size(), CV_32FC3);
      cv::GaussianBlur(f, g, cv::Size(5, 5), 1.2);
      g.convertTo(g, CV_32FC3);
      cv::randn(noise, 0, 8);
      g = g + noise + tint;
      g.convertTo(g, CV_8UC3);  // saturates
      bad.push_back(g);
    }
    s.add(evaluate(bad, truth(c.meta)));
  }
  std::printf("degraded clean clips: %s\n", s.str().c_str());
  EXPECT_GE(s.colour, s.n * 95 / 100);
  EXPECT_GE(s.shape, s.n * 90 / 100);
  EXPECT_GE(s.motion, s.n * 95 / 100);
}

TEST(SemanticEval, NoticesTheWrongPrompt) {
  int checked = 0;
  for (const Clip& c : load_clips()) {
    if (c.meta["kind"] != "clean") continue;
    Expected e = truth(c.meta);
    Expected wrong_colour = e, wrong_shape = e, wrong_motion = e;
    wrong_colour.colour = e.colour == "red" ? "blue" : "red";
    wrong_shape.shape = e.shape == "square" ? "circle" : "square";
    wrong_motion.motion = e.motion == "left" ? "right" : "left";
    Verdict a = evaluate(c.frames, wrong_colour), b = evaluate(c.frames, wrong_shape),
            m = evaluate(c.frames, wrong_motion);
    EXPECT_FALSE(a.colour_ok);
    EXPECT_TRUE(a.shape_ok && a.motion_ok);
    EXPECT_FALSE(b.shape_ok);
    EXPECT_FALSE(m.motion_ok);
    ++checked;
  }
  EXPECT_GE(checked, 40);
}

TEST(SemanticEval, EmptyFramesAreNotFound) {
  std::vector<cv::Mat> gray(17, cv::Mat(64, 64, CV_8UC3, cv::Scalar(128, 128, 128)));
  Verdict v = evaluate(gray, parse_prompt("a red ball rolling to the left"));
  EXPECT_FALSE(v.found);
  EXPECT_FALSE(v.colour_ok || v.shape_ok || v.motion_ok);
  EXPECT_FALSE(v.reason.empty());
}

}  // namespace
}  // namespace t2v::eval
