#include "app/image_resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"

namespace t2v {

// ---- Python arithmetic ---------------------------------------------------------------

double py_floordiv(double a, double b) {
  // CPython's float_floor_div (Objects/floatobject.c): from fmod, then floor with a
  // correction, so the result is exact where floor(a / b) can be off by one.
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0.0) return std::copysign(0.0, a / b);
  double fl = std::floor(div);
  if (div - fl > 0.5) fl += 1.0;
  return fl;
}

int64_t py_round(double x) {
  // Half to even (Python 3's round); std::round rounds half away from zero.
  double r = std::round(x);
  if (std::fabs(x - std::trunc(x)) == 0.5) r = 2.0 * std::round(x / 2.0);
  return static_cast<int64_t>(r);
}

std::pair<int, int> best_output_size(int w, int h, int dw, int dh, int64_t expected_area) {
  const double area = static_cast<double>(expected_area);
  const double ratio = static_cast<double>(w) / h;
  const double ow = std::sqrt(area * ratio);  // (area * ratio) ** 0.5
  const double oh = area / ow;
  // Width first.
  const int64_t ow1 = static_cast<int64_t>(py_floordiv(ow, dw) * dw);
  const int64_t oh1 = static_cast<int64_t>(py_floordiv(area / static_cast<double>(ow1), dh) * dh);
  const double ratio1 = static_cast<double>(ow1) / static_cast<double>(oh1);
  // Height first.
  const int64_t oh2 = static_cast<int64_t>(py_floordiv(oh, dh) * dh);
  const int64_t ow2 = static_cast<int64_t>(py_floordiv(area / static_cast<double>(oh2), dw) * dw);
  const double ratio2 = static_cast<double>(ow2) / static_cast<double>(oh2);
  if (ow1 <= 0 || oh1 <= 0 || ow2 <= 0 || oh2 <= 0)
    throw Error(kExitUsage, fmt::format("no {}x{} multiple fits the area {} for a {}x{} image", dw, dh,
                                        expected_area, w, h),
                "use a larger --size");
  if (std::max(ratio / ratio1, ratio1 / ratio) < std::max(ratio / ratio2, ratio2 / ratio))
    return {static_cast<int>(ow1), static_cast<int>(oh1)};
  return {static_cast<int>(ow2), static_cast<int>(oh2)};
}

// ---- PIL Lanczos ----------------------------------------------------------------------
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // PIL's fixed point for 8-bit images

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}
double lanczos(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

// Per output sample: the first input index, the count, and the fixed-point weights.
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // [out * 2]: xmin, count
  std::vector<int32_t> k;   // [out * ksize]
};

Coeffs precompute(int in_size, int out_size) {
  Coeffs c;
  const double scale = static_cast<double>(static_cast<float>(in_size) - 0.0f) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 3.0 * filterscale;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(static_cast<size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = 0.0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[static_cast<size_t>(x)] = lanczos((x + xmin - center + 0.5) * ss);
      ww += w[static_cast<size_t>(x)];
    }
    for (int x = 0; x < xmax; ++x) {
      double v = w[static_cast<size_t>(x)];
      if (ww != 0.0) v /= ww;
      // normalize_coeffs_8bpc: to fixed point, rounding half away from zero.
      c.k[static_cast<size_t>(xx) * c.ksize + x] =
          v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[static_cast<size_t>(xx) * 2] = xmin;
    c.bounds[static_cast<size_t>(xx) * 2 + 1] = xmax;
  }
  return c;
}

uint8_t pixel(const InputImage& img, int x, int y, int c) {
  return img.rgb[(static_cast<size_t>(y) * img.width + x) * 3 + c];
}

uint8_t clip8(int32_t v) {
  const int32_t s = v >> kPrecisionBits;  // arithmetic shift: floor
  return static_cast<uint8_t>(std::clamp(s, 0, 255));
}

}  // namespace

InputImage resize_lanczos_pil(const InputImage& in, int width, int height) {
  if (width == in.width && height == in.height) return in;  // PIL returns a copy
  const Coeffs cv = precompute(in.height, height);
  const int ybox_first = cv.bounds[0];
  const int ybox_last = cv.bounds[static_cast<size_t>(height) * 2 - 2] + cv.bounds[static_cast<size_t>(height) * 2 - 1];
  const bool need_h = width != in.width;   // box[2] != xsize with the default box
  const bool need_v = height != in.height;
  // Horizontal pass over rows [ybox_first, ybox_last), rounded to uint8.
  InputImage tmp = in;
  int row0 = 0;
  if (need_h) {
    const Coeffs ch = precompute(in.width, width);
    tmp.width = width;
    tmp.height = ybox_last - ybox_first;
    tmp.rgb.assign(static_cast<size_t>(tmp.width) * tmp.height * 3, 0);
    for (int yy = 0; yy < tmp.height; ++yy)
      for (int xx = 0; xx < width; ++xx) {
        const int xmin = ch.bounds[static_cast<size_t>(xx) * 2], n = ch.bounds[static_cast<size_t>(xx) * 2 + 1];
        const int32_t* k = &ch.k[static_cast<size_t>(xx) * ch.ksize];
        for (int c = 0; c < 3; ++c) {
          int32_t ss = 1 << (kPrecisionBits - 1);
          for (int x = 0; x < n; ++x) ss += static_cast<int32_t>(pixel(in, x + xmin, yy + ybox_first, c)) * k[x];
          tmp.rgb[(static_cast<size_t>(yy) * width + xx) * 3 + c] = clip8(ss);
        }
      }
    row0 = ybox_first;  // the vertical bounds are shifted by the first row used
  }
  if (!need_v) return tmp;
  InputImage out;
  out.path = in.path;
  out.width = tmp.width;
  out.height = height;
  out.rgb.assign(static_cast<size_t>(out.width) * height * 3, 0);
  for (int yy = 0; yy < height; ++yy) {
    const int ymin = cv.bounds[static_cast<size_t>(yy) * 2] - row0, n = cv.bounds[static_cast<size_t>(yy) * 2 + 1];
    const int32_t* k = &cv.k[static_cast<size_t>(yy) * cv.ksize];
    for (int xx = 0; xx < out.width; ++xx)
      for (int c = 0; c < 3; ++c) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int y = 0; y < n; ++y) ss += static_cast<int32_t>(pixel(tmp, xx, y + ymin, c)) * k[y];
        out.rgb[(static_cast<size_t>(yy) * out.width + xx) * 3 + c] = clip8(ss);
      }
  }
  return out;
}

InputImage crop(const InputImage& in, int x0, int y0, int width, int height) {
  T2V_ASSERT(x0 >= 0 && y0 >= 0 && x0 + width <= in.width && y0 + height <= in.height, "crop outside the image");
  InputImage out;
  out.path = in.path;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y)
    std::copy_n(&in.rgb[(static_cast<size_t>(y + y0) * in.width + x0) * 3], static_cast<size_t>(width) * 3,
                &out.rgb[static_cast<size_t>(y) * width * 3]);
  return out;
}

// ---- the TI2V-5B geometry ---------------------------------------------------------------

PreparedImage prepare_ti2v_image(const InputImage& img, int width, int height) {
  PreparedImage p;
  const auto [ow, oh] = best_output_size(img.width, img.height, 32, 32, static_cast<int64_t>(width) * height);
  const double s = std::max(static_cast<double>(ow) / img.width, static_cast<double>(oh) / img.height);
  p.resized_w = static_cast<int>(py_round(img.width * s));
  p.resized_h = static_cast<int>(py_round(img.height * s));
  const InputImage r = resize_lanczos_pil(img, p.resized_w, p.resized_h);
  p.image = crop(r, (r.width - ow) / 2, (r.height - oh) / 2, ow, oh);
  p.width = ow;
  p.height = oh;
  return p;
}

}  // namespace t2v
