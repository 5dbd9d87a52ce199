// Helpers of the backend-ops tests (see backend_ops_util.h).
#include "tests/backend_ops/backend_ops_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/dtype.h"

namespace t2v::test_backend {

namespace {
uint64_t base_seed() {
  static const uint64_t seed = [] {
    const char* v = std::getenv("T2V_TEST_SEED");
    const uint64_t s = v ? std::strtoull(v, nullptr, 10) : std::random_device{}();
    std::printf("[backend-ops] seed %llu (rerun with T2V_TEST_SEED=%llu)\n", static_cast<unsigned long long>(s),
                static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}
uint64_t next_stream() {
  static uint64_t n = 0;
  return ++n;
}
}  // namespace

Rng::Rng() : g_(base_seed() * 0x9E3779B97F4A7C15ull + next_stream()) {}

Tensor Rng::uniform(const Shape& s, float lo, float hi) {
  Tensor t = Tensor::empty(s, DType::F32);
  std::uniform_real_distribution<float> d(lo, hi);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(g_);
  return t;
}

Tensor Rng::normal(const Shape& s, float stddev) {
  Tensor t = Tensor::empty(s, DType::F32);
  std::normal_distribution<float> d(0.0f, stddev);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(g_);
  return t;
}

Tensor Rng::ints(const Shape& s, int lo, int hi, DType dt) {
  Tensor t = Tensor::empty(s, dt);
  std::uniform_int_distribution<int> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int v = d(g_);
    if (dt == DType::I64) t.data<int64_t>()[i] = v;
    else if (dt == DType::I32) t.data<int32_t>()[i] = v;
    else t.data<uint8_t>()[i] = static_cast<uint8_t>(v);
  }
  return t;
}

Tensor Rng::small_ints(const Shape& s, int lo, int hi) {
  Tensor t = Tensor::empty(s, DType::F32);
  std::uniform_int_distribution<int> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(d(g_));
  return t;
}

Tensor Rng::rotation_table(int64_t n, int64_t pairs) {
  Tensor t = Tensor::empty(Shape{n, pairs, 2}, DType::F32);
  std::uniform_real_distribution<double> d(-M_PI, M_PI);
  float* p = t.data<float>();
  for (int64_t i = 0; i < n * pairs; ++i) {
    const double phi = d(g_);
    p[2 * i] = static_cast<float>(std::cos(phi));
    p[2 * i + 1] = static_cast<float>(std::sin(phi));
  }
  return t;
}

Tensor to_device(const Tensor& cpu_f32, DType dt, Device dev) { return cpu_f32.to(dt).to(dev); }

Tensor rounded(const Tensor& cpu_f32, DType dt) { return dt == DType::F32 ? cpu_f32 : cpu_f32.to(dt).to(DType::F32); }

std::vector<float> host_floats(const Tensor& t) {
  Tensor h = t.to(Device::CPU);
  if (h.dtype() != DType::F32) h = h.to(DType::F32);
  return h.to_vector();
}

ErrorStats compare(const std::vector<float>& got, const std::vector<float>& ref) {
  ErrorStats s;
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double r = ref[i], g = got[i];
    if (!std::isfinite(g) && std::isfinite(r)) {
      if (s.nan_count++ == 0) s.worst_index = static_cast<int64_t>(i);
      continue;
    }
    if (!std::isfinite(r)) continue;  // e.g. a -inf logit in the reference: compared by the NaN count only
    const double d = std::fabs(g - r);
    num += d * d;
    den += r * r;
    if (d > s.max_abs) {
      s.max_abs = d;
      if (s.nan_count == 0) s.worst_index = static_cast<int64_t>(i);
    }
  }
  s.nmse = den > 0.0 ? num / den : num;
  return s;
}

std::string dtype_str(DType dt) { return dtype_name(dt); }

void expect_close(const Tensor& out, const Tensor& cpu_ref, const std::string& what, double naive_nmse) {
  ASSERT_NE(out.device(), Device::CPU) << what << ": the result of a device op is on the CPU";
  ASSERT_EQ(out.shape(), cpu_ref.shape()) << what;
  const std::vector<float> got = host_floats(out);
  const std::vector<float> ref = cpu_ref.to_vector();
  const ErrorStats e = compare(got, ref);
  const DType dt = out.dtype();
  double limit = 1e-7, naive = 0.0;
  if (dt != DType::F32) {
    const std::vector<float> ref_rounded = host_floats(cpu_ref.to(dt));
    naive = std::max(compare(ref_rounded, ref).nmse, naive_nmse);
    limit = 3.0 * naive + 1e-12;
  }
  std::printf("[backend-ops] %-4s %-60s %-5s nmse %.3e (limit %.3e, naive %.3e) max_abs %.3e nan %lld\n",
              device_name(out.device()), what.c_str(), dtype_name(dt), e.nmse, limit, naive, e.max_abs,
              static_cast<long long>(e.nan_count));
  EXPECT_EQ(e.nan_count, 0) << what << ": " << e.nan_count << " non-finite outputs (first at flat index "
                            << e.worst_index << "): unwritten or overflowed";
  EXPECT_LE(e.nmse, limit) << what << ": worst element at flat index " << e.worst_index << " got "
                           << (e.worst_index >= 0 ? got[e.worst_index] : 0.0f) << " want "
                           << (e.worst_index >= 0 ? ref[e.worst_index] : 0.0f);
}

void expect_exact(const Tensor& out, const Tensor& cpu_ref, const std::string& what) {
  ASSERT_NE(out.device(), Device::CPU) << what << ": the result of a device op is on the CPU";
  ASSERT_EQ(out.shape(), cpu_ref.shape()) << what;
  ASSERT_EQ(out.dtype(), cpu_ref.dtype()) << what;
  const Tensor h = out.to(Device::CPU);
  const size_t n = h.nbytes();
  int64_t diff = 0, first = -1;
  const auto* a = static_cast<const uint8_t*>(h.raw());
  const auto* b = static_cast<const uint8_t*>(cpu_ref.raw());
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) {
      if (first < 0) first = static_cast<int64_t>(i);
      ++diff;
    }
  std::printf("[backend-ops] %-4s %-60s %-5s exact: %lld differing bytes of %zu\n", device_name(out.device()),
              what.c_str(), dtype_name(out.dtype()), static_cast<long long>(diff), n);
  EXPECT_EQ(diff, 0) << what << ": first differing byte " << first << " (element "
                     << (first >= 0 ? first / static_cast<int64_t>(dtype_size(h.dtype())) : -1) << ")";
}

}  // namespace t2v::test_backend
