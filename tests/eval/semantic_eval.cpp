#include "semantic_eval.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>

#include <opencv2/imgproc.hpp>

namespace t2v::eval {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Whole-word occurrence ("red" is not found in "reddish", "up" not in "upward").
bool contains_phrase(const std::string& text, const std::string& phrase) {
  for (size_t pos = text.find(phrase); pos != std::string::npos; pos = text.find(phrase, pos + 1)) {
    const size_t end = pos + phrase.size();
    const bool left = pos == 0 || !std::isalpha(static_cast<unsigned char>(text[pos - 1]));
    const bool right = end >= text.size() || !std::isalpha(static_cast<unsigned char>(text[end]));
    if (left && right) return true;
  }
  return false;
}

// The longest phrase of the table found in text; its key, or "".
std::string longest_match(const std::string& text,
                          const std::vector<std::pair<std::string, std::vector<std::string>>>& table) {
  std::string key;
  size_t best = 0;
  for (const auto& [name, phrases] : table)
    for (const std::string& p : phrases)
      if (p.size() > best && contains_phrase(text, p)) best = p.size(), key = name;
  return key;
}

float hue_deg(const cv::Vec3f& rgb) {
  const float r = rgb[0], g = rgb[1], b = rgb[2];
  const float mx = std::max({r, g, b}), mn = std::min({r, g, b}), d = mx - mn;
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
  const float d = std::fabs(a - b);
  return std::min(d, 360 - d);
}

std::string nearest_colour(const cv::Vec3f& rgb) {
  const float h = hue_deg(rgb);
  std::string best;
  float best_d = 1e9f;
  for (const auto& [name, p] : world().colours) {
    const float d = hue_distance(h, hue_deg(cv::Vec3f(p[0], p[1], p[2])));
    if (d < best_d) best_d = d, best = name;
  }
  return best;
}

// Median of an 8-bit single-channel image.
int median8(const cv::Mat& m) {
  int hist[256] = {};
  for (int y = 0; y < m.rows; ++y)
    for (int x = 0; x < m.cols; ++x) ++hist[m.at<uint8_t>(y, x)];
  const int half = static_cast<int>(m.total() / 2);
  int acc = 0;
  for (int v = 0; v < 256; ++v)
    if ((acc += hist[v]) > half) return v;
  return 255;
}

struct FrameObject {
  bool found = false;
  double cx = 0, cy = 0, area = 0;  // coverage-weighted, pixel centres at +0.5
  cv::Vec3f colour;                 // mean RGB of the object's core, after white balance
  cv::Mat cover;                    // CV_32F coverage in [0, 1] around the object, 0 elsewhere
  double peak = 0;                  // saturation of the frame's most saturated spot above the background's
};

// Every background is achromatic, so the object is the dominant blob of
// saturation (max - min of RGB). A global colour cast is removed first: on an
// achromatic pixel each channel equals the pixels' mean of the three, so the
// median over pixels of (channel - mean) is the cast. (Each channel's own
// median is not: on the gradient, a large object moves the three medians by
// different amounts, which made a gray background look tinted.)
FrameObject find_object(const cv::Mat& rgb) {
  FrameObject o;
  std::vector<cv::Mat> ch8;
  cv::split(rgb, ch8);
  std::vector<cv::Mat> ch(3);
  cv::Mat mean3 = cv::Mat::zeros(rgb.size(), CV_32F);
  for (int c = 0; c < 3; ++c) ch8[c].convertTo(ch[c], CV_32F), mean3 += ch[c] / 3;
  for (int c = 0; c < 3; ++c) {
    cv::Mat off = ch[c] - mean3;
    std::vector<float> v(off.begin<float>(), off.end<float>());
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    ch[c] -= v[v.size() / 2];
  }
  cv::Mat sat = cv::max(cv::max(ch[0], ch[1]), ch[2]) - cv::min(cv::min(ch[0], ch[1]), ch[2]);
  cv::Mat sat8, smooth8;
  sat.convertTo(sat8, CV_8U);
  cv::medianBlur(sat8, smooth8, 3);  // a lone noisy pixel must not set the peak
  double peak;
  cv::minMaxLoc(smooth8, nullptr, &peak);
  const double floor = median8(sat8);  // the background's own (noise) saturation
  o.peak = peak - floor;
  if (o.peak < 50) return o;
  cv::Mat mask = sat > floor + 0.5 * o.peak;
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8);
  std::vector<double> weight(n, 0.0);
  for (int y = 0; y < rgb.rows; ++y)
    for (int x = 0; x < rgb.cols; ++x)
      if (int l = labels.at<int>(y, x)) weight[l] += sat.at<float>(y, x) - floor;
  const int best = static_cast<int>(std::max_element(weight.begin() + 1, weight.end()) - weight.begin());
  if (n < 2 || stats.at<int>(best, cv::CC_STAT_AREA) < 3) return o;
  cv::Mat blob = labels == best;
  // Full coverage at the object's typical saturation (90th percentile of its blob).
  std::vector<float> vals;
  for (int y = 0; y < rgb.rows; ++y)
    for (int x = 0; x < rgb.cols; ++x)
      if (blob.at<uint8_t>(y, x)) vals.push_back(sat.at<float>(y, x));
  std::sort(vals.begin(), vals.end());
  const double full = vals[vals.size() * 9 / 10] - floor;
  cv::Mat grown;  // blurred edges fade out over a couple of pixels
  cv::dilate(blob, grown, cv::Mat::ones(5, 5, CV_8U));
  o.cover = cv::Mat::zeros(rgb.size(), CV_32F);
  double sw = 0, sx = 0, sy = 0;
  cv::Vec3d core(0, 0, 0), any(0, 0, 0);
  double n_core = 0, n_any = 0;
  for (int y = 0; y < rgb.rows; ++y)
    for (int x = 0; x < rgb.cols; ++x) {
      if (!grown.at<uint8_t>(y, x)) continue;
      const double w = std::clamp((sat.at<float>(y, x) - floor) / full, 0.0, 1.0);
      o.cover.at<float>(y, x) = static_cast<float>(w);
      sw += w, sx += w * x, sy += w * y;
      if (!blob.at<uint8_t>(y, x)) continue;
      const cv::Vec3d p(ch[0].at<float>(y, x), ch[1].at<float>(y, x), ch[2].at<float>(y, x));
      any += p, ++n_any;
      if (w > 0.8) core += p, ++n_core;
    }
  if (sw <= 0) return o;
  o.found = true;
  o.cx = sx / sw + 0.5, o.cy = sy / sw + 0.5, o.area = sw;
  const cv::Vec3d c = n_core > 0 ? core / n_core : any / n_any;
  o.colour = cv::Vec3f(static_cast<float>(c[0]), static_cast<float>(c[1]), static_cast<float>(c[2]));
  return o;
}

// Coverage of an ideal shape as world.py draws it (upright equilateral
// triangle; 4x4 supersampling), with the given centroid and area.
cv::Mat render_shape(const std::string& shape, double cx, double cy, double area, cv::Size size) {
  constexpr int ss = 4;
  cv::Mat out(size, CV_32F, cv::Scalar(0));
  const double s3 = std::sqrt(3.0);
  const double r = std::sqrt(area / M_PI), a = std::sqrt(area) / 2, R = std::sqrt(4 * area / (3 * s3));
  const double tx = cx, ty = cy - R, lx = cx - R * s3 / 2, ly = cy + R / 2, rx = cx + R * s3 / 2, ry = cy + R / 2;
  auto side = [](double px, double py, double qx, double qy, double x, double y) {
    return (qx - px) * (y - py) - (qy - py) * (x - px);
  };
  const double e = std::max({r, a * std::sqrt(2.0), R}) + 1;
  const int x0 = std::max(0, static_cast<int>(cx - e)), x1 = std::min(size.width - 1, static_cast<int>(cx + e));
  const int y0 = std::max(0, static_cast<int>(cy - e)), y1 = std::min(size.height - 1, static_cast<int>(cy + e));
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      int in = 0;
      for (int j = 0; j < ss; ++j)
        for (int i = 0; i < ss; ++i) {
          const double px = x + (i + 0.5) / ss, py = y + (j + 0.5) / ss;
          bool hit;
          if (shape == "circle") {
            hit = (px - cx) * (px - cx) + (py - cy) * (py - cy) <= r * r;
          } else if (shape == "square") {
            hit = std::fabs(px - cx) <= a && std::fabs(py - cy) <= a;
          } else {
            const double d1 = side(tx, ty, lx, ly, px, py), d2 = side(lx, ly, rx, ry, px, py),
                         d3 = side(rx, ry, tx, ty, px, py);
            hit = (d1 <= 0 && d2 <= 0 && d3 <= 0) || (d1 >= 0 && d2 >= 0 && d3 >= 0);
          }
          in += hit;
        }
      out.at<float>(y, x) = static_cast<float>(in) / (ss * ss);
    }
  return out;
}

// 4x4 block means on a grid whose blocks start at `phase` (mod 4), as the
// default model's VAE draws (block-constant); blocks cut by the border average what is inside.
cv::Mat block_means(const cv::Mat& m, cv::Point phase) {
  const int left = (4 - phase.x) % 4, top = (4 - phase.y) % 4;
  const int w = (m.cols + left + 3) / 4 * 4, h = (m.rows + top + 3) / 4 * 4;
  cv::Mat padded, ones, sums, counts;
  cv::copyMakeBorder(m, padded, top, h - m.rows - top, left, w - m.cols - left, cv::BORDER_CONSTANT, 0);
  cv::copyMakeBorder(cv::Mat::ones(m.size(), CV_32F), ones, top, h - m.rows - top, left, w - m.cols - left,
                     cv::BORDER_CONSTANT, 0);
  cv::resize(padded, sums, cv::Size(w / 4, h / 4), 0, 0, cv::INTER_AREA);
  cv::resize(ones, counts, cv::Size(w / 4, h / 4), 0, 0, cv::INTER_AREA);
  cv::Mat means = sums / counts, up;
  cv::resize(means, up, cv::Size(w, h), 0, 0, cv::INTER_NEAREST);
  return up(cv::Rect(left, top, m.cols, m.rows)).clone();
}

// The grid phase at which the coverage is most nearly block-constant.
cv::Point block_phase(const cv::Mat& cover) {
  cv::Point best(0, 0);
  double best_err = 1e18;
  for (int py = 0; py < 4; ++py)
    for (int px = 0; px < 4; ++px) {
      const double e = cv::norm(cover, block_means(cover, {px, py}), cv::NORM_L1);
      if (e < best_err) best_err = e, best = {px, py};
    }
  return best;
}

// Analysis by synthesis: which ideal shape, with the object's centroid and
// area, best explains its coverage. The template goes through each way the
// object may have been drawn (sharp, as 4x4 blocks on the coverage's own block
// grid like the default model's VAE, either one blurred) and the best match
// counts; comparisons go through a 4x4 box filter so small misplacements
// cost little. Returns "" for objects too small to tell; *err gets the best
// error relative to the area.
std::string frame_shape(const FrameObject& o, double min_area, double* err) {
  if (!o.found || o.area < min_area) return "";
  cv::Mat seen;
  cv::blur(o.cover, seen, cv::Size(4, 4));
  const cv::Point phase = block_phase(o.cover);
  std::string best;
  double best_err = 1e18;
  for (const std::string& shape : world().shapes) {
    const cv::Mat sharp = render_shape(shape, o.cx, o.cy, o.area, o.cover.size());
    for (const cv::Mat& drawn : {sharp, block_means(sharp, phase)})
      for (double sigma : {0.0, 0.8, 1.4}) {
        cv::Mat t = drawn.clone();
        if (sigma > 0) cv::GaussianBlur(t, t, cv::Size(0, 0), sigma);
        cv::blur(t, t, cv::Size(4, 4));
        const double e = cv::norm(seen, t, cv::NORM_L1);
        if (e < best_err) best_err = e, best = shape;
      }
  }
  *err = best_err / o.area;
  return best;
}

// The most frequent non-empty label; ties go to the lower summed error.
std::string majority(const std::vector<std::string>& labels, const std::vector<double>& errs) {
  std::map<std::string, std::pair<int, double>> votes;
  for (size_t i = 0; i < labels.size(); ++i)
    if (!labels[i].empty()) ++votes[labels[i]].first, votes[labels[i]].second -= errs[i];
  if (votes.empty()) return "";
  return std::max_element(votes.begin(), votes.end(), [](const auto& a, const auto& b) { return a.second < b.second; })
      ->first;
}

// Least-squares slope of v over t.
double slope(const std::vector<double>& t, const std::vector<double>& v) {
  double mt = 0, mv = 0;
  for (size_t i = 0; i < t.size(); ++i) mt += t[i], mv += v[i];
  mt /= static_cast<double>(t.size()), mv /= static_cast<double>(t.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < t.size(); ++i) num += (t[i] - mt) * (v[i] - mv), den += (t[i] - mt) * (t[i] - mt);
  return den > 0 ? num / den : 0.0;
}

// Motion from the centroid track and area (scale: frame width / 64, the world's size).
std::string classify_motion(const std::vector<FrameObject>& objs, double scale, std::string* detail) {
  std::vector<double> t, xs, ys, log_area;
  for (size_t i = 0; i < objs.size(); ++i)
    if (objs[i].found) {
      t.push_back(static_cast<double>(i));
      xs.push_back(objs[i].cx), ys.push_back(objs[i].cy), log_area.push_back(std::log(std::max(objs[i].area, 1.0)));
    }
  const double span = t.back() - t.front();
  // Net travel and size change from straight-line fits: robust to jitter in single frames.
  const double dx = slope(t, xs) * span, dy = slope(t, ys) * span;  // image y grows downwards
  const double ratio = std::exp(slope(t, log_area) * span);
  // Vertical reversal: the deepest point reached from both ends (down and back up, or up and back down).
  std::vector<double> y = ys;
  for (size_t i = 1; i + 1 < ys.size(); ++i) y[i] = (ys[i - 1] + ys[i] + ys[i + 1]) / 3;
  double reversal = 0;
  for (size_t j = 0; j < y.size(); ++j) {
    double lo_before = y[j], hi_before = y[j], lo_after = y[j], hi_after = y[j];
    for (size_t i = 0; i <= j; ++i) lo_before = std::min(lo_before, y[i]), hi_before = std::max(hi_before, y[i]);
    for (size_t k = j; k < y.size(); ++k) lo_after = std::min(lo_after, y[k]), hi_after = std::max(hi_after, y[k]);
    reversal = std::max({reversal, std::min(y[j] - lo_before, y[j] - lo_after),
                         std::min(hi_before - y[j], hi_after - y[j])});
  }
  const auto [xmin, xmax] = std::minmax_element(xs.begin(), xs.end());
  const double x_range = *xmax - *xmin;
  char buf[160];
  std::snprintf(buf, sizeof buf, "dx %+.1f dy %+.1f area x%.2f reversal %.1f x-range %.1f (pixels)", dx, dy, ratio,
                reversal, x_range);
  *detail = buf;
  const double travel = std::hypot(dx, dy);
  if (reversal > 6 * scale && x_range < 8 * scale && reversal > 0.5 * std::fabs(dy)) return "bouncing";
  if (travel < 8 * scale && ratio > 1.6) return "growing";
  if (travel < 8 * scale && ratio < 1 / 1.6) return "shrinking";
  if (travel < 4 * scale) return "static";
  const double ax = std::fabs(dx), ay = std::fabs(dy);
  if (dx > 0 && dy < 0 && std::min(ax, ay) > 0.5 * std::max(ax, ay)) return "diagonal";
  if (ax >= ay) return dx < 0 ? "left" : "right";
  return dy < 0 ? "up" : "down";
}

}  // namespace

const World& world() {
  static const World w = [] {
    World v;
    v.colours = {{"red", {220, 30, 30}},   {"orange", {245, 140, 20}}, {"yellow", {235, 215, 30}},
                 {"green", {30, 175, 60}}, {"blue", {35, 75, 225}},    {"purple", {150, 50, 200}}};
    v.shapes = {"circle", "square", "triangle"};
    v.motions = {"left", "right", "up", "down", "diagonal", "bouncing", "growing", "shrinking"};
    v.backgrounds = {"white", "black", "gray", "gradient"};
    v.shape_words = {{"circle", {"circle", "ball", "disc", "round dot"}},
                     {"square", {"square", "box", "block"}},
                     {"triangle", {"triangle"}}};
    v.motion_phrases = {
        {"left",
         {"moving to the left", "moves left", "rolling to the left", "slides to the left", "going left",
          "drifting left"}},
        {"right",
         {"moving to the right", "moves right", "rolling to the right", "slides to the right", "going right",
          "drifting right"}},
        {"up", {"moving up", "moves upward", "rising", "floats up", "going up", "sliding upward"}},
        {"down", {"moving down", "moves downward", "falling", "sinks down", "going down", "sliding downward"}},
        {"diagonal",
         {"moving diagonally", "moves diagonally up and to the right", "drifting diagonally",
          "going diagonally to the upper right"}},
        {"bouncing", {"bouncing", "bounces up and down", "bouncing on the floor", "hopping up and down"}},
        {"growing", {"growing", "grows bigger", "getting larger", "expanding", "growing in size"}},
        {"shrinking", {"shrinking", "shrinks", "getting smaller", "contracting", "shrinking in size"}}};
    v.held_out = {{"red", "triangle", "up"},        {"red", "square", "bouncing"},
                  {"orange", "circle", "down"},     {"orange", "triangle", "growing"},
                  {"yellow", "square", "left"},     {"yellow", "circle", "diagonal"},
                  {"green", "circle", "right"},     {"green", "triangle", "shrinking"},
                  {"blue", "triangle", "left"},     {"blue", "square", "growing"},
                  {"purple", "square", "right"},    {"purple", "circle", "shrinking"},
                  {"red", "circle", "growing"},     {"blue", "circle", "bouncing"},
                  {"green", "square", "down"},      {"orange", "square", "diagonal"}};
    return v;
  }();
  return w;
}

std::string canonical_caption(const std::string& colour, const std::string& shape, const std::string& motion,
                              const std::string& background) {
  auto first = [](const auto& table, const std::string& key) -> std::string {
    for (const auto& [name, words] : table)
      if (name == key) return words.front();
    return key;
  };
  std::string text = std::string(colour.empty() || std::string("aeiou").find(colour[0]) == std::string::npos ? "a" : "an") +
                     " " + colour + " " + first(world().shape_words, shape) + " " + first(world().motion_phrases, motion);
  if (!background.empty()) text += " on a " + background + " background";
  return text;
}

Expected parse_prompt(const std::string& prompt) {
  const std::string p = lower(prompt);
  Expected e;
  for (const auto& [name, rgb] : world().colours)
    if (contains_phrase(p, name)) e.colour = name;
  e.shape = longest_match(p, world().shape_words);
  e.motion = longest_match(p, world().motion_phrases);
  if (e.motion.empty()) {  // wordings outside the grammar: single words, most specific first
    static const std::vector<std::pair<std::string, std::vector<std::string>>> words = {
        {"diagonal", {"diagonal", "diagonally"}},
        {"bouncing", {"bounce", "bounces", "bouncing", "hopping"}},
        {"growing", {"grow", "grows", "growing", "larger", "bigger", "expanding"}},
        {"shrinking", {"shrink", "shrinks", "shrinking", "smaller", "contracting"}},
        {"left", {"left"}},
        {"right", {"right"}},
        {"up", {"up", "upward", "upwards", "rising", "rises"}},
        {"down", {"down", "downward", "downwards", "falling", "falls", "sinks"}}};
    for (const auto& [name, ws] : words) {
      for (const std::string& w : ws)
        if (contains_phrase(p, w)) e.motion = name;
      if (!e.motion.empty()) break;
    }
  }
  return e;
}

Verdict evaluate(const std::vector<cv::Mat>& frames, const Expected& expected) {
  Verdict v;
  if (frames.empty()) {
    v.reason = "no frames";
    return v;
  }
  const double scale = frames.front().cols / 64.0;
  std::vector<FrameObject> objs;
  int found = 0;
  double max_peak = 0;
  for (const cv::Mat& f : frames) {
    objs.push_back(find_object(f));
    found += objs.back().found;
    max_peak = std::max(max_peak, objs.back().peak);
  }
  std::vector<std::string> colours, shapes;
  std::vector<double> shape_errs;
  for (const FrameObject& o : objs) {
    FrameTrack tr;
    tr.found = o.found;
    if (o.found) {
      tr.cx = o.cx, tr.cy = o.cy, tr.area = o.area;
      tr.colour = nearest_colour(o.colour);
      double err = 0;
      tr.shape = frame_shape(o, 20 * scale * scale, &err);
      colours.push_back(tr.colour);
      shapes.push_back(tr.shape), shape_errs.push_back(err);
    }
    v.frames.push_back(tr);
  }
  if (found * 2 < static_cast<int>(frames.size())) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "no saturated object in %d of %zu frames (strongest saturation above the background: %.0f, "
                  "an object needs 50)",
                  static_cast<int>(frames.size()) - found, frames.size(), max_peak);
    v.reason = buf;
    return v;
  }
  v.found = true;
  v.colour = majority(colours, std::vector<double>(colours.size(), 0.0));
  v.shape = majority(shapes, shape_errs);
  if (v.shape.empty()) v.shape = "unknown";
  v.motion = classify_motion(objs, scale, &v.reason);
  v.colour_ok = !expected.colour.empty() && v.colour == expected.colour;
  v.shape_ok = !expected.shape.empty() && v.shape == expected.shape;
  v.motion_ok = !expected.motion.empty() && v.motion == expected.motion;
  return v;
}

Verdict evaluate(const std::vector<std::vector<uint8_t>>& frames, int width, int height, const Expected& expected) {
  std::vector<cv::Mat> mats;
  for (const auto& f : frames) {
    if (f.size() != static_cast<size_t>(width) * height * 3) {
      Verdict v;
      v.reason = "a frame of " + std::to_string(f.size()) + " bytes is not " + std::to_string(width) + "x" +
                 std::to_string(height) + " RGB";
      return v;
    }
    mats.push_back(cv::Mat(height, width, CV_8UC3, const_cast<uint8_t*>(f.data())).clone());
  }
  return evaluate(mats, expected);
}

std::vector<cv::Mat> split_strip(const cv::Mat& strip) {
  std::vector<cv::Mat> out;
  const int s = strip.rows;
  for (int x = 0; x + s <= strip.cols; x += s) out.push_back(strip(cv::Rect(x, 0, s, s)).clone());
  return out;
}

}  // namespace t2v::eval
