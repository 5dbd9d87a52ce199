// The evaluator itself, on ground-truth clips of the synthetic world
// (tools/world/make_eval_fixtures.py writes them from world.py): every clip as
// drawn must be read right, degraded copies (the default model's 4x4 block
// VAE, blur, noise, 4:2:0 chroma, JPEG, colour cast) at least 95% per
// attribute, and it must notice a prompt that asks for something else.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
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
  std::vector<cv::Mat> frames;  // RGB
};

const nlohmann::json& index_json() {
  static const nlohmann::json j = [] {
    std::ifstream f(kData + "/index.json");
    if (!f) throw std::runtime_error("missing tests/data/eval/index.json: run tools/world/make_eval_fixtures.py");
    return nlohmann::json::parse(f);
  }();
  return j;
}

const std::vector<Clip>& clips() {
  static const std::vector<Clip> all = [] {
    std::vector<Clip> out;
    for (const auto& m : index_json()["clips"]) {
      cv::Mat bgr = cv::imread(kData + "/" + m["file"].get<std::string>(), cv::IMREAD_COLOR);
      if (bgr.empty()) throw std::runtime_error("cannot read tests/data/eval/" + m["file"].get<std::string>());
      cv::Mat rgb;
      cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
      out.push_back({m, split_strip(rgb)});
    }
    return out;
  }();
  return all;
}

Expected truth(const nlohmann::json& m) { return {m["colour"], m["shape"], m["motion"]}; }

std::string describe(const Verdict& v) {
  return v.found ? v.colour + " " + v.shape + " " + v.motion + " (" + v.reason + ")" : "not found: " + v.reason;
}

struct Score {
  int n = 0, colour = 0, shape = 0, motion = 0;
  void add(const Verdict& v) { ++n, colour += v.colour_ok, shape += v.shape_ok, motion += v.motion_ok; }
  std::string str() const {
    char buf[160];
    std::snprintf(buf, sizeof buf, "colour %d/%d, shape %d/%d, motion %d/%d", colour, n, shape, n, motion, n);
    return buf;
  }
  bool at_least(int percent) const {
    return colour * 100 >= n * percent && shape * 100 >= n * percent && motion * 100 >= n * percent;
  }
};

// ---- degradations: what a small VAE and a video codec do to a frame ----------------------------------
using Degrade = std::function<cv::Mat(const cv::Mat&, std::mt19937&)>;

cv::Mat blocks(const cv::Mat& f, std::mt19937&) {  // the default model's VAE: 4x4 block means
  cv::Mat small, up;
  cv::resize(f, small, f.size() / 4, 0, 0, cv::INTER_AREA);
  cv::resize(small, up, f.size(), 0, 0, cv::INTER_NEAREST);
  return up;
}
cv::Mat blur(const cv::Mat& f, std::mt19937&) {
  cv::Mat g;
  cv::GaussianBlur(f, g, cv::Size(5, 5), 1.2);
  return g;
}
cv::Mat add_noise(const cv::Mat& f, double sigma, std::mt19937& rng) {
  cv::Mat g, noise(f.size(), CV_32FC3);
  cv::theRNG().state = rng();
  cv::randn(noise, 0, sigma);
  f.convertTo(g, CV_32FC3);
  g += noise;
  g.convertTo(g, CV_8UC3);  // saturates
  return g;
}
cv::Mat noise(const cv::Mat& f, std::mt19937& rng) { return add_noise(f, 8.0, rng); }
cv::Mat chroma420(const cv::Mat& f, std::mt19937&) {  // H.264's 4:2:0: chroma at half resolution
  cv::Mat ycc, small, up;
  cv::cvtColor(f, ycc, cv::COLOR_RGB2YCrCb);
  std::vector<cv::Mat> ch;
  cv::split(ycc, ch);
  for (int c = 1; c < 3; ++c) {
    cv::resize(ch[c], small, f.size() / 2, 0, 0, cv::INTER_AREA);
    cv::resize(small, ch[c], f.size(), 0, 0, cv::INTER_LINEAR);
  }
  cv::merge(ch, ycc);
  cv::Mat out;
  cv::cvtColor(ycc, out, cv::COLOR_YCrCb2RGB);
  return out;
}
cv::Mat jpeg(const cv::Mat& f, std::mt19937&) {
  cv::Mat bgr;
  cv::cvtColor(f, bgr, cv::COLOR_RGB2BGR);
  std::vector<uint8_t> bytes;
  cv::imencode(".jpg", bgr, bytes, {cv::IMWRITE_JPEG_QUALITY, 50});
  cv::Mat back = cv::imdecode(bytes, cv::IMREAD_COLOR), rgb;
  cv::cvtColor(back, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

// Runs a per-frame degradation over every clip; `per_clip` makes a fresh one per clip (a colour cast).
Score score_all(const std::string& name, const std::function<Degrade(std::mt19937&)>& per_clip) {
  std::mt19937 rng(5);
  Score s;
  for (const Clip& c : clips()) {
    Degrade d = per_clip(rng);
    std::vector<cv::Mat> bad;
    for (const cv::Mat& f : c.frames) bad.push_back(d(f, rng));
    Verdict v = evaluate(bad, truth(c.meta));
    s.add(v);
    if (!v.all_ok())
      std::printf("  %s miss: %s, want %s %s %s, got %s\n", name.c_str(), c.meta["file"].get<std::string>().c_str(),
                  c.meta["colour"].get<std::string>().c_str(), c.meta["shape"].get<std::string>().c_str(),
                  c.meta["motion"].get<std::string>().c_str(), describe(v).c_str());
  }
  std::printf("%-28s %s\n", (name + ":").c_str(), s.str().c_str());
  return s;
}

Degrade cast(std::mt19937& rng) {  // a colour shift of the whole frame, sigma 12 per channel
  std::normal_distribution<double> n(0.0, 12.0);
  const cv::Scalar tint(n(rng), n(rng), n(rng));
  return [tint](const cv::Mat& f, std::mt19937&) {
    cv::Mat g;
    f.convertTo(g, CV_32FC3);
    g += tint;
    g.convertTo(g, CV_8UC3);
    return g;
  };
}

// ---- the word lists -----------------------------------------------------------------------------------

TEST(SemanticEval, WorldTablesMatchWorldPy) {
  const nlohmann::json& w = index_json()["world"];
  const World& ours = world();
  ASSERT_EQ(ours.colours.size(), w["colours"].size());
  for (const auto& [name, rgb] : ours.colours) {
    ASSERT_TRUE(w["colours"].contains(name)) << name;
    for (int c = 0; c < 3; ++c) EXPECT_EQ(int(rgb[c]), w["colours"][name][c].get<int>()) << name;
  }
  EXPECT_EQ(nlohmann::json(ours.shapes), w["shapes"]);
  EXPECT_EQ(nlohmann::json(ours.motions), w["motions"]);
  EXPECT_EQ(nlohmann::json(ours.backgrounds), w["backgrounds"]);
  ASSERT_EQ(ours.shape_words.size(), w["shape_words"].size());
  for (const auto& [shape, nouns] : ours.shape_words) EXPECT_EQ(nlohmann::json(nouns), w["shape_words"][shape]);
  ASSERT_EQ(ours.motion_phrases.size(), w["motion_phrases"].size());
  for (const auto& [motion, phrases] : ours.motion_phrases)
    EXPECT_EQ(nlohmann::json(phrases), w["motion_phrases"][motion]);
  ASSERT_EQ(ours.held_out.size(), w["held_out"].size());
  for (size_t i = 0; i < ours.held_out.size(); ++i)
    EXPECT_EQ(nlohmann::json({ours.held_out[i].colour, ours.held_out[i].shape, ours.held_out[i].motion}),
              w["held_out"][i]);
}

TEST(SemanticEval, ParsesEveryWordingOfTheGrammar) {
  // Every noun x motion phrase, every background phrase, and the canonical
  // captions of the held-out combinations (written from world.py).
  int n = 0;
  for (const auto& c : index_json()["captions"]) {
    Expected e = parse_prompt(c[0]);
    EXPECT_EQ(e.colour, c[1]) << c[0];
    EXPECT_EQ(e.shape, c[2]) << c[0];
    EXPECT_EQ(e.motion, c[3]) << c[0];
    ++n;
  }
  EXPECT_GE(n, 352);  // 8 nouns x 44 motion phrases
  // The clips' own random wordings, and our canonical_caption = world.canonical_caption.
  for (const Clip& c : clips()) {
    for (const std::string& p : {c.meta["prompt"].get<std::string>(),
                                 canonical_caption(c.meta["colour"], c.meta["shape"], c.meta["motion"],
                                                   c.meta["background"])}) {
      Expected e = parse_prompt(p);
      EXPECT_EQ(e.colour, c.meta["colour"]) << p;
      EXPECT_EQ(e.shape, c.meta["shape"]) << p;
      EXPECT_EQ(e.motion, c.meta["motion"]) << p;
    }
  }
  EXPECT_EQ(canonical_caption("orange", "triangle", "growing", "gray"),
            "an orange triangle growing on a gray background");
}

TEST(SemanticEval, ParsesWordingsOutsideTheGrammar) {
  Expected e = parse_prompt("A RED Ball, bouncing!");
  EXPECT_EQ(e.colour, "red");
  EXPECT_EQ(e.shape, "circle");
  EXPECT_EQ(e.motion, "bouncing");
  EXPECT_EQ(parse_prompt("a green box that slowly rises").motion, "up");
  EXPECT_EQ(parse_prompt("a blue disc, diagonal").motion, "diagonal");
  // Words inside other words are not matched; unknown words leave fields empty.
  Expected none = parse_prompt("a reddish boxer upwardly mobile");
  EXPECT_EQ(none.colour, "");
  EXPECT_EQ(none.shape, "");
  EXPECT_EQ(none.motion, "");
}

// ---- ground truth -------------------------------------------------------------------------------------

TEST(SemanticEval, EveryCleanClipIsReadRight) {
  Score s;
  for (const Clip& c : clips()) {
    Verdict v = evaluate(c.frames, truth(c.meta));
    s.add(v);
    EXPECT_TRUE(v.all_ok()) << c.meta["file"] << ": want " << c.meta["colour"] << " " << c.meta["shape"] << " "
                            << c.meta["motion"] << ", got " << describe(v);
    EXPECT_EQ(v.frames.size(), c.frames.size());
  }
  std::printf("%-28s %s\n", "clean clips:", s.str().c_str());
  EXPECT_EQ(s.n, 48);
}

TEST(SemanticEval, DegradedClipsAtLeast95Percent) {
  auto same = [](Degrade d) { return [d](std::mt19937&) { return d; }; };
  std::vector<std::pair<std::string, Score>> results = {
      {"4x4 blocks (model VAE)", score_all("4x4 blocks (model VAE)", same(blocks))},
      {"gaussian blur 1.2", score_all("gaussian blur 1.2", same(blur))},
      {"noise sigma 8", score_all("noise sigma 8", same(noise))},
      {"chroma 4:2:0", score_all("chroma 4:2:0", same(chroma420))},
      {"jpeg q50", score_all("jpeg q50", same(jpeg))},
      {"colour cast sigma 12", score_all("colour cast sigma 12", cast)},
      // All at once, in the order a generated video goes through them.
      {"all combined", score_all("all combined", [](std::mt19937& rng) -> Degrade {
         Degrade c = cast(rng);
         return [c](const cv::Mat& f, std::mt19937& r) {
           cv::Mat g;
           cv::GaussianBlur(blocks(f, r), g, cv::Size(3, 3), 0.8);
           return c(jpeg(chroma420(add_noise(g, 5.0, r), r), r), r);
         };
       })}};
  for (const auto& [name, s] : results) {
    EXPECT_EQ(s.n, 48) << name;
    EXPECT_TRUE(s.at_least(95)) << name << ": " << s.str();
  }
}

TEST(SemanticEval, ASmallDistractorDoesNotWin) {
  Score s;
  for (const Clip& c : clips()) {
    // A 3x3 dot of another palette colour in a corner the object never reaches.
    const std::string other = c.meta["colour"] == "blue" ? "red" : "blue";
    cv::Vec3b rgb;
    for (const auto& [name, p] : world().colours)
      if (name == other) rgb = p;
    std::vector<cv::Mat> frames;
    for (const cv::Mat& f : c.frames) {
      cv::Mat g = f.clone();
      g(cv::Rect(0, 0, 3, 3)).setTo(cv::Scalar(rgb[0], rgb[1], rgb[2]));
      frames.push_back(g);
    }
    Verdict v = evaluate(frames, truth(c.meta));
    s.add(v);
    EXPECT_TRUE(v.colour_ok) << c.meta["file"] << ": " << describe(v);
  }
  std::printf("%-28s %s\n", "with a distractor dot:", s.str().c_str());
  EXPECT_TRUE(s.at_least(95)) << s.str();
}

// ---- it can fail --------------------------------------------------------------------------------------

TEST(SemanticEval, AnotherClipsPromptIsWrongWhereItDiffers) {
  const auto& all = clips();
  int checked = 0, differing = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t step : {1, 5, 17}) {
      const nlohmann::json& other = all[(i + step) % all.size()].meta;
      Expected e = parse_prompt(other["prompt"]);
      Verdict v = evaluate(all[i].frames, e);
      const nlohmann::json& mine = all[i].meta;
      EXPECT_EQ(v.colour_ok, mine["colour"] == other["colour"]) << mine["file"] << " vs " << other["prompt"];
      EXPECT_EQ(v.shape_ok, mine["shape"] == other["shape"]) << mine["file"] << " vs " << other["prompt"];
      EXPECT_EQ(v.motion_ok, mine["motion"] == other["motion"]) << mine["file"] << " vs " << other["prompt"];
      differing += !v.all_ok();
      ++checked;
    }
  }
  std::printf("other clips' prompts: %d checked, %d reported wrong in at least one attribute\n", checked, differing);
  EXPECT_GE(differing, checked / 2);
}

TEST(SemanticEval, EachWrongAttributeIsNamed) {
  for (const Clip& c : clips()) {
    Expected e = truth(c.meta);
    for (int which = 0; which < 3; ++which) {
      Expected wrong = e;
      std::string& field = which == 0 ? wrong.colour : which == 1 ? wrong.shape : wrong.motion;
      const std::vector<std::string>& names = which == 1 ? world().shapes : world().motions;
      if (which == 0)
        field = e.colour == "red" ? "blue" : "red";
      else
        field = names[(std::find(names.begin(), names.end(), field) - names.begin() + 1) % names.size()];
      Verdict v = evaluate(c.frames, wrong);
      EXPECT_EQ(v.colour_ok, which != 0) << c.meta["file"];
      EXPECT_EQ(v.shape_ok, which != 1) << c.meta["file"];
      EXPECT_EQ(v.motion_ok, which != 2) << c.meta["file"];
    }
  }
}

TEST(SemanticEval, NoObjectIsNotFoundWithAReason) {
  const Expected e = parse_prompt("a red ball rolling to the left");
  std::vector<cv::Mat> gray(17, cv::Mat(64, 64, CV_8UC3, cv::Scalar(128, 128, 128)));
  Verdict v = evaluate(gray, e);
  EXPECT_FALSE(v.found);
  EXPECT_FALSE(v.colour_ok || v.shape_ok || v.motion_ok);
  EXPECT_NE(v.reason.find("no saturated object in 17 of 17 frames"), std::string::npos) << v.reason;
  // Noise on a gray background is not an object either.
  std::mt19937 rng(3);
  std::vector<cv::Mat> noisy;
  for (const cv::Mat& f : gray) noisy.push_back(add_noise(f, 8.0, rng));
  Verdict n = evaluate(noisy, e);
  EXPECT_FALSE(n.found) << describe(n);
  // An object in only a few frames is not enough.
  std::vector<cv::Mat> mostly_gray = clips()[0].frames;
  for (size_t i = 0; i < 10; ++i) mostly_gray[i] = gray[i];
  EXPECT_FALSE(evaluate(mostly_gray, truth(clips()[0].meta)).found);
  EXPECT_FALSE(evaluate(std::vector<cv::Mat>{}, e).found);
  // Packed frames of the wrong size are refused with a reason.
  Verdict bad = evaluate(std::vector<std::vector<uint8_t>>(17, std::vector<uint8_t>(10)), 64, 64, e);
  EXPECT_FALSE(bad.found);
  EXPECT_FALSE(bad.reason.empty());
}

TEST(SemanticEval, PackedFramesGiveTheSameVerdict) {
  const Clip& c = clips()[3];
  std::vector<std::vector<uint8_t>> packed;
  for (const cv::Mat& f : c.frames) packed.emplace_back(f.data, f.data + f.total() * 3);
  Verdict a = evaluate(c.frames, truth(c.meta)), b = evaluate(packed, 64, 64, truth(c.meta));
  EXPECT_TRUE(b.all_ok()) << describe(b);
  EXPECT_EQ(a.reason, b.reason);
}

}  // namespace
}  // namespace t2v::eval
