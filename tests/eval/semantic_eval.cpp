#include "semantic_eval.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <opencv2/imgproc.hpp>

namespace t2v::eval {
namespace {

// The palette of tools/world/world.py (COLOURS).
const std::vector<std::pair<std::string, cv::Vec3f>>& palette() {
  static const std::vector<std::pair<std::string, cv::Vec3f>> p = {
      {"red", {220, 30, 30}},   {"orange", {245, 140, 20}}, {"yellow", {235, 215, 30}},
      {"green", {30, 175, 60}}, {"blue", {35, 75, 225}},    {"purple", {150, 50, 200}}};
  return p;
}

float hue_deg(const cv::Vec3f& rgb) {
  float r = rgb[0], g = rgb[1], b = rgb[2];
  float mx = std::max({r, g, b}), mn = std::min({r, g, b}), d = mx - mn;
  if (d <= 0) return 0;
  float h;
  if (mx == r)
    h = std::fmod((g - b) / d, 6.0f);
  else if (mx == g)
    h = (b - r) / d + 2;
  else
    h = (r - g) / d + 4;
  h *= 60;
  return h < 0 ? h + 360 : h;
}

float hue_distance(float a, float b) {
  float d = std::fabs(a - b);
  return std::min(d, 360 - d);
}

bool contains_word(const std::string& text, const std::string& word) {
  size_t pos = 0;
  while ((pos = text.find(word, pos)) != std::string::npos) {
    bool left = pos == 0 || !std::isalpha(static_cast<unsigned char>(text[pos - 1]));
    size_t end = pos + word.size();
    bool right = end >= text.size() || !std::isalpha(static_cast<unsigned char>(text[end]));
    if (left && right) return true;
    pos = end;
  }
  return false;
}

struct FrameObject {
  bool found = false;
  double cx = 0, cy = 0, area = 0;  // coverage-weighted
  double fill = 0;                  // coverage / bounding-box area
  cv::Vec3f colour;
  cv::Mat cover;                    // CV_32F coverage of the object (0 elsewhere)
};

// Saturation (max - min of RGB) marks the object: every background is gray.
FrameObject find_object(const cv::Mat& rgb) {
  FrameObject o;
  cv::Mat f;
  rgb.convertTo(f, CV_32FC3);
  std::vector<cv::Mat> ch;
  cv::split(f, ch);
  cv::Mat mx = cv::max(cv::max(ch[0], ch[1]), ch[2]);
  cv::Mat mn = cv::min(cv::min(ch[0], ch[1]), ch[2]);
  cv::Mat sat = mx - mn;
  double peak;
  cv::minMaxLoc(sat, nullptr, &peak);
  if (peak < 60) return o;
  // Coverage: saturation relative to the object's own (blocky or blurred edges count partly).
  cv::Mat cover = cv::min(sat / (0.85 * peak), 1.0);
  cv::Mat mask = sat > 0.5 * peak;
  // Largest connected blob only.
  cv::Mat labels, stats, centroids;
  int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8);
  int best = -1, best_area = 0;
  for (int i = 1; i < n; ++i)
    if (stats.at<int>(i, cv::CC_STAT_AREA) > best_area) best = i, best_area = stats.at<int>(i, cv::CC_STAT_AREA);
  if (best < 0 || best_area < 3) return o;
  cv::Mat blob = labels == best;
  cv::Mat grown;
  cv::dilate(blob, grown, cv::Mat::ones(3, 3, CV_8U));
  double sw = 0, sx = 0, sy = 0;
  cv::Vec3d col(0, 0, 0);
  double col_w = 0;
  for (int y = 0; y < rgb.rows; ++y)
    for (int x = 0; x < rgb.cols; ++x) {
      if (!grown.at<uint8_t>(y, x)) continue;
      double w = cover.at<float>(y, x);
      sw += w, sx += w * x, sy += w * y;
      if (blob.at<uint8_t>(y, x) && w > 0.9) {
        cv::Vec3f p = f.at<cv::Vec3f>(y, x);
        col += cv::Vec3d(p[0], p[1], p[2]);
        col_w += 1;
      }
    }
  if (sw <= 0) return o;
  o.found = true;
  o.cover = cv::Mat::zeros(rgb.size(), CV_32F);
  cover.copyTo(o.cover, grown);
  o.cx = sx / sw + 0.5, o.cy = sy / sw + 0.5, o.area = sw;
  cv::Rect box(stats.at<int>(best, cv::CC_STAT_LEFT), stats.at<int>(best, cv::CC_STAT_TOP),
               stats.at<int>(best, cv::CC_STAT_WIDTH), stats.at<int>(best, cv::CC_STAT_HEIGHT));
  o.fill = best_area / static_cast<double>(box.area());
  if (col_w == 0) {  // tiny object: take its most saturated pixel
    cv::Point at;
    cv::minMaxLoc(sat, nullptr, nullptr, nullptr, &at);
    cv::Vec3f p = f.at<cv::Vec3f>(at);
    col = cv::Vec3d(p[0], p[1], p[2]), col_w = 1;
  }
  o.colour = cv::Vec3f(static_cast<float>(col[0] / col_w), static_cast<float>(col[1] / col_w),
                       static_cast<float>(col[2] / col_w));
  return o;
}

std::string nearest_colour(const cv::Vec3f& rgb) {
  float h = hue_deg(rgb);
  std::string best;
  float best_d = 1e9f;
  for (const auto& [name, p] : palette()) {
    float d = hue_distance(h, hue_deg(p));
    if (d < best_d) best_d = d, best = name;
  }
  return best;
}

std::string classify_motion(const std::vector<FrameObject>& objs, std::string* detail) {
  std::vector<const FrameObject*> seen;
  for (const auto& o : objs)
    if (o.found) seen.push_back(&o);
  const FrameObject& a = *seen.front();
  const FrameObject& b = *seen.back();
  double dx = b.cx - a.cx, dy = b.cy - a.cy;  // image y grows downwards
  double ratio = b.area / std::max(a.area, 1e-9);
  double ymax = a.cy, ymin = a.cy;
  for (const auto* o : seen) ymax = std::max(ymax, o->cy), ymin = std::min(ymin, o->cy);
  double drop = std::min(ymax - a.cy, ymax - b.cy);  // down then back up
  double xr = 0;
  for (const auto* o : seen) xr = std::max(xr, std::fabs(o->cx - a.cx));
  *detail = "dx " + std::to_string(dx) + " dy " + std::to_string(dy) + " area x" + std::to_string(ratio) +
            " drop " + std::to_string(drop);
  double travel = std::hypot(dx, dy);
  if (drop > 6 && xr < 8 && drop > 0.5 * std::fabs(dy)) return "bouncing";
  if (travel < 8 && ratio > 1.6) return "growing";
  if (travel < 8 && ratio < 1 / 1.6) return "shrinking";
  if (travel < 4) return "static";
  double ax = std::fabs(dx), ay = std::fabs(dy);
  if (dx > 0 && dy < 0 && std::min(ax, ay) > 0.5 * std::max(ax, ay)) return "diagonal";
  if (ax >= ay) return dx < 0 ? "left" : "right";
  return dy < 0 ? "up" : "down";
}

// Coverage of an ideal shape (as world.py draws it) with the given centroid and area.
cv::Mat render_shape(const std::string& shape, double cx, double cy, double area, cv::Size size) {
  const int ss = 4;
  cv::Mat out(size, CV_32F, cv::Scalar(0));
  const double s3 = std::sqrt(3.0);
  double r = std::sqrt(area / M_PI), a = std::sqrt(area) / 2, R = std::sqrt(4 * area / (3 * s3));
  double tx = cx, ty = cy - R, lx = cx - R * s3 / 2, ly = cy + R / 2, rx = cx + R * s3 / 2, ry = cy + R / 2;
  auto side = [](double px, double py, double qx, double qy, double x, double y) {
    return (qx - px) * (y - py) - (qy - py) * (x - px);
  };
  for (int y = 0; y < size.height; ++y)
    for (int x = 0; x < size.width; ++x) {
      int in = 0;
      for (int j = 0; j < ss; ++j)
        for (int i = 0; i < ss; ++i) {
          double px = x + (i + 0.5) / ss, py = y + (j + 0.5) / ss;
          bool hit;
          if (shape == "circle") {
            hit = (px - cx) * (px - cx) + (py - cy) * (py - cy) <= r * r;
          } else if (shape == "square") {
            hit = std::fabs(px - cx) <= a && std::fabs(py - cy) <= a;
          } else {
            double d1 = side(tx, ty, lx, ly, px, py), d2 = side(lx, ly, rx, ry, px, py), d3 = side(rx, ry, tx, ty, px, py);
            hit = (d1 <= 0 && d2 <= 0 && d3 <= 0) || (d1 >= 0 && d2 >= 0 && d3 >= 0);
          }
          in += hit;
        }
      out.at<float>(y, x) = in / float(ss * ss);
    }
  return out;
}

// Analysis by synthesis: the ideal shape with the object's centroid and area
// that best explains its coverage, both seen through a 4x4 box filter (so sharp,
// blurred and block-mosaic renderings compare alike); majority over frames.
std::string classify_shape(const std::vector<FrameObject>& objs) {
  std::map<std::string, int> votes;
  for (const auto& o : objs) {
    if (!o.found || o.area < 20) continue;
    cv::Mat seen;
    cv::blur(o.cover, seen, cv::Size(4, 4));
    std::string best;
    double best_err = 1e18;
    for (const char* shape : {"circle", "square", "triangle"}) {
      cv::Mat t = render_shape(shape, o.cx, o.cy, o.area, o.cover.size());
      cv::blur(t, t, cv::Size(4, 4));
      double err = cv::norm(seen, t, cv::NORM_L1);
      if (err < best_err) best_err = err, best = shape;
    }
    ++votes[best];
  }
  if (votes.empty()) return "unknown";
  return std::max_element(votes.begin(), votes.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
}

}  // namespace

Expected parse_prompt(const std::string& prompt_in) {
  std::string p = prompt_in;
  std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return std::tolower(c); });
  Expected e;
  for (const auto& [name, rgb] : palette())
    if (contains_word(p, name)) e.colour = name;
  for (const char* w : {"circle", "ball", "disc", "round dot"})
    if (contains_word(p, w)) e.shape = "circle";
  for (const char* w : {"square", "box", "block"})
    if (contains_word(p, w)) e.shape = "square";
  if (contains_word(p, "triangle")) e.shape = "triangle";
  // Most specific phrases first: "diagonally up and to the right" mentions up and right.
  const std::vector<std::pair<std::string, std::vector<std::string>>> motions = {
      {"diagonal", {"diagonally"}},
      {"bouncing", {"bouncing", "bounces", "hopping"}},
      {"growing", {"growing", "grows", "larger", "expanding"}},
      {"shrinking", {"shrinking", "shrinks", "smaller", "contracting"}},
      {"left", {"left"}},
      {"right", {"right"}},
      {"up", {"up", "upward", "rising", "rises"}},
      {"down", {"down", "downward", "falling", "falls", "sinks"}}};
  for (const auto& [name, words] : motions) {
    for (const auto& w : words)
      if (contains_word(p, w)) e.motion = name;
    if (!e.motion.empty()) break;
  }
  return e;
}

Verdict evaluate(const std::vector<cv::Mat>& frames, const Expected& expected) {
  Verdict v;
  std::vector<FrameObject> objs;
  int found = 0;
  for (const cv::Mat& f : frames) {
    objs.push_back(find_object(f));
    found += objs.back().found;
  }
  if (found < static_cast<int>(frames.size()) / 2) {
    v.reason = "no saturated object in " + std::to_string(frames.size() - found) + " of " +
               std::to_string(frames.size()) + " frames";
    return v;
  }
  v.found = true;
  // Colour: vote over frames.
  std::map<std::string, int> votes;
  for (const auto& o : objs)
    if (o.found) ++votes[nearest_colour(o.colour)];
  v.colour = std::max_element(votes.begin(), votes.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
  v.shape = classify_shape(objs);
  v.motion = classify_motion(objs, &v.reason);
  v.colour_ok = v.colour == expected.colour;
  v.shape_ok = v.shape == expected.shape;
  v.motion_ok = v.motion == expected.motion;
  return v;
}

std::vector<cv::Mat> split_strip(const cv::Mat& strip) {
  std::vector<cv::Mat> out;
  int s = strip.rows;
  for (int x = 0; x + s <= strip.cols; x += s) out.push_back(strip(cv::Rect(x, 0, s, s)).clone());
  return out;
}

}  // namespace t2v::eval
