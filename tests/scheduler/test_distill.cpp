// The step-distilled sampler against LightX2V's WanStepDistillScheduler
// (tools/golden/gen_distill_goldens.py): sigmas and DiT timesteps bit for bit,
// the updates on a synthetic model, and the refusal of bad timestep lists.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/error.h"
#include "core/safetensors.h"
#include "scheduler/distill.h"

namespace t2v {
namespace {

const std::string kGolden = std::string(T2V_TEST_DATA_DIR) + "/scheduler/distill.safetensors";

struct DistillCase {
  std::string name;
  std::vector<int> steps;
  double shift;
};

std::vector<DistillCase> golden_cases(const SafetensorsFile& f) {
  std::vector<DistillCase> out;
  const std::string suffix = ".list";
  for (const auto& [key, value] : f.metadata()) {
    if (key.size() <= suffix.size() || key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    DistillCase c;
    c.name = key.substr(0, key.size() - suffix.size());
    c.steps = parse_distill_timesteps(value);
    c.shift = std::stod(f.metadata().at(c.name + ".shift"));
    out.push_back(c);
  }
  return out;
}

// The goldens' model: v = tanh(x) * sigma + 0.1 * x, float32.
Tensor synthetic_velocity(const Tensor& x, float sigma) {
  Tensor v = Tensor::empty(x.shape(), DType::F32);
  const float* px = x.data<float>();
  float* pv = v.data<float>();
  for (int64_t j = 0; j < x.numel(); ++j) pv[j] = std::tanh(px[j]) * sigma + 0.1f * px[j];
  return v;
}

double rel_error(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double d = static_cast<double>(a[j]) - b[j];
    num += d * d;
    den += static_cast<double>(b[j]) * b[j];
  }
  return std::sqrt(num) / std::sqrt(den);
}

TEST(DistillSchedule, SigmasAndDitTimestepsMatchLightX2VBitForBit) {
  SafetensorsFile f(kGolden);
  const auto cases = golden_cases(f);
  ASSERT_EQ(cases.size(), 30u) << "5 lists x 6 shifts";
  int three_step = 0, four_step = 0, whole_table = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const DistillSchedule s = make_distill_schedule(c.steps, c.shift);
    const std::vector<float> sig = f.get(c.name + ".sigmas").to_vector();
    const std::vector<float> ts = f.get(c.name + ".timesteps").to_vector();
    ASSERT_EQ(s.sigmas.size(), sig.size());
    ASSERT_EQ(s.timesteps.size(), ts.size());
    EXPECT_EQ(std::memcmp(s.sigmas.data(), sig.data(), sig.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(s.timesteps.data(), ts.data(), ts.size() * sizeof(float)), 0);
    for (size_t i = 0; i < ts.size(); ++i) EXPECT_EQ(s.timesteps[i], ts[i]) << "step " << i;
    three_step += c.steps.size() == 3;
    four_step += c.steps.size() == 4;
    whole_table += c.steps.size() == 1000;
  }
  EXPECT_EQ(three_step, 6);
  EXPECT_EQ(four_step, 6);
  // Every entry of the float32 table at every shift (torch's linspace rounds
  // differently from a plain start + k * step at 82 of them).
  EXPECT_EQ(whole_table, 6);
}

// The shifted sigma is shift*s/(1+(shift-1)*s) of s = 1 - t/1000: the documented
// 4-step list at shift 5 hands the DiT 1000, 937.5, 833.33.., 625 (float values,
// not rounded to integers).
TEST(DistillSchedule, DitTimestepsAreUnroundedShiftedSigmas) {
  for (double shift : {5.0, 3.0, 8.0}) {
    const std::vector<int> list = {1000, 750, 500, 250};
    const DistillSchedule s = make_distill_schedule(list, shift);
    ASSERT_EQ(s.timesteps.size(), 4u);
    for (size_t i = 0; i < list.size(); ++i) {
      const double sig = list[i] / 1000.0;
      const double want = 1000.0 * shift * sig / (1 + (shift - 1) * sig);
      EXPECT_NEAR(s.timesteps[i], want, 1e-4 * want) << "shift " << shift << " step " << i;
      EXPECT_FLOAT_EQ(s.timesteps[i], 1000.0f * s.sigmas[i]);
    }
    EXPECT_EQ(s.sigmas.back(), 0.0f);
  }
  const DistillSchedule s5 = make_distill_schedule({1000, 750, 500, 250}, 5.0);
  EXPECT_EQ(s5.timesteps[0], 1000.0f);
  EXPECT_EQ(s5.timesteps[1], 937.5f);
  EXPECT_NE(s5.timesteps[2], std::round(s5.timesteps[2])) << "the DiT timestep must not be rounded";
}

TEST(DistillScheduler, UpdatesMatchLightX2V) {
  SafetensorsFile f(kGolden);
  double worst = 0;
  int compared = 0;
  for (const auto& c : golden_cases(f)) {
    SCOPED_TRACE(c.name);
    if (!f.find(c.name + ".samples")) continue;  // the whole-table lists carry no trajectory
    const Tensor ref = f.get(c.name + ".samples");  // [N+1, 16, 2, 2, 3]
    ASSERT_EQ(ref.size(0), static_cast<int64_t>(c.steps.size()) + 1);
    const Shape shape({1, ref.size(1), ref.size(2), ref.size(3), ref.size(4)});
    DistillScheduler sched(c.steps, c.shift);
    Tensor x = ref.narrow0(0, 1).reshape(shape).clone();
    for (int i = 0; i < sched.num_steps(); ++i) {
      const Tensor v = synthetic_velocity(x, sched.schedule().sigmas[static_cast<size_t>(i)]);
      x = sched.step(v, i, x);
      const double err = rel_error(x.data<float>(), ref.narrow0(i + 1, 1).data<float>(), x.numel());
      // Upstream rounds each float32 product and sum; t2v rounds once: a few ulp
      // (measured 1.6e-7 at worst).
      ASSERT_LE(err, 1e-6) << "after step " << i;
      worst = std::max(worst, err);
      ++compared;
    }
  }
  EXPECT_EQ(compared, 6 * (4 + 3 + 2 + 8));
  std::printf("[ distill ] max rel error vs LightX2V: %.3g over %d steps\n", worst, compared);
}

// The last step goes to sigma = 0: the sample becomes x - sigma * v.
TEST(DistillScheduler, LastStepLandsOnX0) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  std::vector<float> xv(7 * 5 * 3), vv(xv.size());
  for (auto& a : xv) a = nd(rng);
  for (auto& a : vv) a = nd(rng);
  const Tensor x = Tensor::from_floats(xv, {7, 5, 3}), v = Tensor::from_floats(vv, {7, 5, 3});
  DistillScheduler sched({900}, 3.0);
  const Tensor out = sched.step(v, 0, x);
  const double s = sched.schedule().sigmas[0];
  ASSERT_GT(s, 0.9);
  for (int64_t j = 0; j < x.numel(); ++j)
    EXPECT_EQ(out.data<float>()[j], static_cast<float>(xv[j] - s * static_cast<double>(vv[j])));
}

TEST(DistillTimesteps, ParsesAndFormats) {
  EXPECT_EQ(parse_distill_timesteps("1000,750,500,250"), (std::vector<int>{1000, 750, 500, 250}));
  EXPECT_EQ(parse_distill_timesteps(" 1000, 667 ,333"), (std::vector<int>{1000, 667, 333}));
  EXPECT_EQ(parse_distill_timesteps("1"), (std::vector<int>{1}));
  EXPECT_EQ(format_distill_timesteps({1000, 750, 500, 250}), "1000,750,500,250");
}

TEST(DistillTimesteps, RefusesBadLists) {
  for (const char* bad : {"", "1000,750,750", "750,1000", "1000,0", "0", "1001", "1001,500", "1000,750.5", "abc",
                          "1000,,500", "1000,-250", "1e3"}) {
    SCOPED_TRACE(bad);
    try {
      parse_distill_timesteps(bad);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitUsage);
      EXPECT_NE(std::string(e.what()).find("--timesteps"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
  }
  for (double shift : {0.0, -1.0, std::nan("")}) EXPECT_THROW(make_distill_schedule({1000}, shift), Error);
}

}  // namespace
}  // namespace t2v
