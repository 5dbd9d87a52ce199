// Backend-ops test, part 1: elementwise, normalisation and layout ops on the
// GPU against the CPU reference (kernels/ops.h), F32 and BF16 storage, odd and
// real Wan shapes, fresh random inputs, NaN-poisoned outputs with guard zones;
// lincomb bit-exact; the GEMM dtype rule. Rule and helpers:
// tests/backend_ops/backend_ops_util.h, tests/cuda/backend_ops_cuda.h. Without
// a GPU every case skips with "no CUDA device: <reason>". Part 2 (GEMM,
// attention, conv): test_backend_ops_compute.cpp.
#ifdef T2V_HAVE_CUDA
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/ops.h"
#include "tests/cuda/backend_ops_cuda.h"

namespace t2v::test_cuda {
namespace {

class BackendOps : public ::testing::TestWithParam<DType> {};

std::vector<Shape> odd_shapes() {
  std::vector<Shape> s = {Shape{1}, Shape{113, 203}, Shape{1023}, Shape{2, 3, 5, 7, 9}, Shape{4, 1536}};
  if (large_cases()) s.push_back(Shape{1, 32760, 1536});  // Wan 1.3B activations, 832x480x81
  return s;
}

std::string name(const char* op, const Shape& s, DType dt) { return fmt::format("{} {} {}", op, s.str(), dtype_name(dt)); }

TEST_P(BackendOps, Unary) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  struct Case {
    const char* op;
    std::function<Tensor(const Tensor&)> f;
  };
  const std::vector<Case> cases = {
      {"gelu_tanh", [](const Tensor& x) { return ops::gelu_tanh(x); }},
      {"gelu_erf", [](const Tensor& x) { return ops::gelu_erf(x); }},
      {"silu", [](const Tensor& x) { return ops::silu(x); }},
      {"scale", [](const Tensor& x) { return ops::scale(x, -1.7f); }},
      {"add_scalar", [](const Tensor& x) { return ops::add_scalar(x, 0.37f); }},
      {"clamp", [](const Tensor& x) { return ops::clamp(x, -0.8f, 1.1f); }},
  };
  Rng rng;
  for (const Shape& s : odd_shapes())
    for (const Case& c : cases) {
      const Tensor x = rng.normal(s, 2.0f);
      const Tensor ref = c.f(rounded(x, dt));
      expect_close(c.f(to_gpu(x, dt)), ref, name(c.op, s, dt));
    }
}

TEST_P(BackendOps, BinaryBroadcast) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  std::vector<std::pair<Shape, Shape>> pairs = {
      {Shape{1}, Shape{1}},           {Shape{113, 203}, Shape{113, 203}}, {Shape{2, 1023, 7}, Shape{1, 1, 7}},
      {Shape{1}, Shape{1023}},        {Shape{2, 3, 1, 5}, Shape{3, 4, 1}}, {Shape{5, 1, 3, 1, 2}, Shape{4, 1, 6, 1}},
      {Shape{2, 1, 1536}, Shape{2, 77, 1536}}};
  if (large_cases()) pairs.push_back({Shape{2, 32760, 1536}, Shape{2, 1, 1536}});
  Rng rng;
  for (const auto& [sa, sb] : pairs) {
    const Tensor a = rng.uniform(sa), b = rng.uniform(sb, 0.5f, 2.0f);
    const std::string shapes = sa.str() + " . " + sb.str();
    expect_close(ops::add(to_gpu(a, dt), to_gpu(b, dt)), ops::add(rounded(a, dt), rounded(b, dt)), "add " + shapes);
    expect_close(ops::sub(to_gpu(a, dt), to_gpu(b, dt)), ops::sub(rounded(a, dt), rounded(b, dt)), "sub " + shapes);
    expect_close(ops::mul(to_gpu(a, dt), to_gpu(b, dt)), ops::mul(rounded(a, dt), rounded(b, dt)), "mul " + shapes);
  }
  // Mixed storage: a BF16 activation plus an F32 side tensor keeps a's dtype.
  const Tensor a = rng.uniform(Shape{3, 113}), b = rng.uniform(Shape{113});
  const Tensor out = ops::add(to_gpu(a, dt), to_gpu(b, DType::F32));
  EXPECT_EQ(out.dtype(), dt);
  expect_close(out, ops::add(rounded(a, dt), b), "add mixed (b F32)");
}

TEST_P(BackendOps, ModulateAndGatedResidual) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  std::vector<Shape> xs = {Shape{1, 1, 1}, Shape{2, 113, 203}, Shape{1, 1023, 1536}};
  if (large_cases()) xs.push_back(Shape{1, 32760, 1536});
  Rng rng;
  for (const Shape& sx : xs) {
    const Shape sm{sx[0], 1, sx[2]};  // per-sample shift/scale/gate [B, 1, C], as the DiT's time embedding
    const Tensor x = rng.normal(sx), y = rng.normal(sx), shift = rng.uniform(sm), sc = rng.uniform(sm),
                 gate = rng.uniform(sm);
    // Side tensors stay F32 (the DiT keeps its modulation in fp32).
    expect_close(ops::modulate(to_gpu(x, dt), to_gpu(shift, DType::F32), to_gpu(sc, DType::F32)),
                 ops::modulate(rounded(x, dt), shift, sc), name("modulate", sx, dt));
    expect_close(ops::add_gated(to_gpu(x, dt), to_gpu(y, dt), to_gpu(gate, DType::F32)),
                 ops::add_gated(rounded(x, dt), rounded(y, dt), gate), name("add_gated", sx, dt));
  }
}

TEST_P(BackendOps, LayerNorm) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  std::vector<Shape> xs = {Shape{1, 1}, Shape{113, 203}, Shape{3, 1023}, Shape{2, 7, 1536}, Shape{5, 5120}};
  if (large_cases()) xs.push_back(Shape{1, 32760, 1536});
  Rng rng;
  for (const Shape& sx : xs) {
    const int64_t C = sx[sx.ndim() - 1];
    // A large mean over a small spread: the two-pass variance must hold up.
    const Tensor x = ops::add_scalar(rng.normal(sx), 3.0f), w = rng.uniform(Shape{C}, 0.5f, 1.5f),
                 b = rng.uniform(Shape{C});
    expect_close(ops::layer_norm(to_gpu(x, dt), Tensor(), Tensor(), 1e-6f),
                 ops::layer_norm(rounded(x, dt), Tensor(), Tensor(), 1e-6f), name("layer_norm", sx, dt));
    expect_close(ops::layer_norm(to_gpu(x, dt), to_gpu(w, DType::F32), to_gpu(b, dt), 1e-5f),
                 ops::layer_norm(rounded(x, dt), w, rounded(b, dt), 1e-5f), name("layer_norm affine", sx, dt));
  }
}

TEST_P(BackendOps, LayerNormModulateFused) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  Rng rng;
  for (const Shape& sx : {Shape{1, 1, 1}, Shape{2, 113, 203}, Shape{2, 1023, 1536}}) {
    const Shape sm{sx[0], 1, sx[2]};
    const Tensor x = rng.normal(sx), shift = rng.uniform(sm), sc = rng.uniform(sm);
    const Tensor ref =
        ops::modulate(ops::layer_norm(rounded(x, dt), Tensor(), Tensor(), 1e-6f), shift, sc);
    expect_close(ops::layer_norm_modulate(to_gpu(x, dt), Tensor(), Tensor(), 1e-6f, to_gpu(shift, DType::F32),
                                          to_gpu(sc, DType::F32)),
                 ref, name("layer_norm_modulate", sx, dt));
  }
}

TEST_P(BackendOps, RmsNorm) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  Rng rng;
  for (const Shape& sx : {Shape{1, 1}, Shape{113, 203}, Shape{3, 1023}, Shape{2, 77, 4096}, Shape{1, 1024, 1536}}) {
    const int64_t C = sx[sx.ndim() - 1];
    const Tensor x = rng.normal(sx, 3.0f), w = rng.uniform(Shape{C}, 0.5f, 1.5f);
    expect_close(ops::rms_norm(to_gpu(x, dt), to_gpu(w, DType::F32), 1e-6f), ops::rms_norm(rounded(x, dt), w, 1e-6f),
                 name("rms_norm", sx, dt));
    expect_close(ops::rms_norm(to_gpu(x, dt), Tensor(), 1e-6f), ops::rms_norm(rounded(x, dt), Tensor(), 1e-6f),
                 name("rms_norm no weight", sx, dt));
  }
}

TEST_P(BackendOps, RmsNormChannels) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  std::vector<Shape> xs = {Shape{1, 1, 1}, Shape{2, 7, 3, 5}, Shape{1, 96, 2, 13, 17}, Shape{1, 384, 1, 30, 52}};
  if (large_cases()) xs.push_back(Shape{1, 96, 4, 240, 416});  // VAE decoder's last stage, one 4-frame chunk
  Rng rng;
  for (const Shape& sx : xs) {
    std::vector<int64_t> g(sx.ndim() - 1, 1);
    g[0] = sx[1];  // gamma [C, 1, 1, 1] as in the checkpoint
    const Tensor x = rng.normal(sx), gamma = rng.uniform(Shape(g), 0.5f, 1.5f);
    expect_close(ops::rms_norm_channels(to_gpu(x, dt), to_gpu(gamma, DType::F32), 1e-12f),
                 ops::rms_norm_channels(rounded(x, dt), gamma, 1e-12f), name("rms_norm_channels", sx, dt));
  }
}

TEST_P(BackendOps, Softmax) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  Rng rng;
  for (const Shape& sx : {Shape{1}, Shape{113, 203}, Shape{3, 1023}, Shape{2, 12, 4096}}) {
    const Tensor x = rng.normal(sx, 4.0f);
    expect_close(ops::softmax(to_gpu(x, dt)), ops::softmax(rounded(x, dt)), name("softmax", sx, dt));
  }
}

TEST_P(BackendOps, Rope3d) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  Rng rng;
  struct Grid { int64_t T, H, W, NH, D; };
  std::vector<Grid> grids = {{1, 1, 1, 1, 2}, {3, 5, 7, 2, 128}, {2, 3, 4, 3, 64}, {1, 2, 3, 1, 12}};
  if (large_cases()) grids.push_back({21, 30, 52, 12, 128});
  for (const Grid& g : grids) {
    const int64_t N = g.T * g.H * g.W;
    const Tensor table = rng.rotation_table(N, g.D / 2);
    const Tensor table_gpu = table.to(Device::CUDA);
    const Tensor x = rng.normal(Shape{2, N, g.NH, g.D});
    expect_close(ops::rope_3d(to_gpu(x, dt), table_gpu), ops::rope_3d(rounded(x, dt), table),
                 name("rope_3d", x.shape(), dt));
  }
}

// ---- data movement: bit-exact ---------------------------------------------------------

TEST_P(BackendOps, ConcatSlicePermuteCopy) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  Rng rng;
  const Tensor a = rng.uniform(Shape{2, 3, 113, 5}).to(dt), b = rng.uniform(Shape{2, 4, 113, 5}).to(dt),
               c = rng.uniform(Shape{2, 1, 113, 5}).to(dt);
  const Tensor ga = a.to(Device::CUDA), gb = b.to(Device::CUDA), gc = c.to(Device::CUDA);
  expect_exact(ops::concat({ga, gb, gc}, 1), ops::concat({a, b, c}, 1), "concat dim 1");
  expect_exact(ops::concat({ga, ga}, -1), ops::concat({a, a}, -1), "concat dim -1");
  expect_exact(ops::concat({ga, ga, ga}, 0), ops::concat({a, a, a}, 0), "concat dim 0");
  expect_exact(ops::slice(gb, 1, 1, 3), ops::slice(b, 1, 1, 3), "slice dim 1");
  expect_exact(ops::slice(gb, 2, 7, 113), ops::slice(b, 2, 7, 113), "slice dim 2");
  expect_exact(ops::slice(gb, -1, 4, 5), ops::slice(b, -1, 4, 5), "slice dim -1");
  expect_exact(ops::slice(gb, 0, 1, 1), ops::slice(b, 0, 1, 1), "slice empty");
  expect_exact(ops::permute(gb, {0, 2, 1, 3}), ops::permute(b, {0, 2, 1, 3}), "permute 0213");
  expect_exact(ops::permute(gb, {3, 2, 1, 0}), ops::permute(b, {3, 2, 1, 0}), "permute 3210");
  expect_exact(ops::contiguous_copy(gb), b, "contiguous_copy");
  // Wan patchify: [B, C, F, h/2, 2, w/2, 2] is 7-D; the DiT reshapes to <= 5-D
  // views first, e.g. [C, F*h/2, 2, w/2, 2] -> [F*h/2, w/2, 2, 2, C].
  const Tensor p = rng.uniform(Shape{16, 21 * 3, 2, 5, 2}).to(dt);
  expect_exact(ops::permute(p.to(Device::CUDA), {1, 3, 2, 4, 0}), ops::permute(p, {1, 3, 2, 4, 0}),
               "permute patchify-like");
}

TEST_P(BackendOps, EmbeddingAndUpsample) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  Rng rng;
  const Tensor table = rng.uniform(Shape{1000, 77}).to(dt);
  for (DType idt : {DType::I64, DType::I32}) {
    const Tensor ids = rng.ints(Shape{3, 17}, 0, 999, idt);
    expect_exact(ops::embedding(table.to(Device::CUDA), ids.to(Device::CUDA)), ops::embedding(table, ids),
                 "embedding ids " + dtype_str(idt));
  }
  // An id outside the table is a data error (65), as on the CPU.
  Tensor bad = rng.ints(Shape{5}, 0, 999, DType::I64);
  bad.data<int64_t>()[3] = 1000;
  try {
    (void)ops::embedding(table.to(Device::CUDA), bad.to(Device::CUDA));
    ADD_FAILURE() << "expected an error for id 1000";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr);
    EXPECT_NE(std::string(e.what()).find("position 3"), std::string::npos) << e.what();
  }
  for (const Shape& s : {Shape{1, 1}, Shape{2, 3, 5, 7}, Shape{1, 96, 2, 60, 104}}) {
    // The CPU op takes F32: upsample the dt-exact values in F32, then convert (exact).
    const Tensor x32 = rounded(rng.uniform(s), dt);
    expect_exact(ops::upsample_nearest2x(x32.to(dt).to(Device::CUDA)), ops::upsample_nearest2x(x32).to(dt),
                 name("upsample_nearest2x", s, dt));
  }
}

TEST_P(BackendOps, Cast) {
  T2V_REQUIRE_CUDA();
  const DType dt = GetParam();
  Rng rng;
  const Tensor x = rng.normal(Shape{113, 203}, 100.0f);
  // float <-> float: the GPU rounds like core's f32_to_bf16 (nearest even).
  expect_exact(ops::cast(x.to(Device::CUDA), dt), x.to(dt), "cast F32 -> " + dtype_str(dt));
  const Tensor xd = x.to(dt);
  expect_exact(ops::cast(xd.to(Device::CUDA), DType::F32), xd.to(DType::F32), "cast " + dtype_str(dt) + " -> F32");
  expect_exact(ops::cast(xd.to(Device::CUDA), DType::F16), xd.to(DType::F16), "cast " + dtype_str(dt) + " -> F16");
  // float -> int truncates toward zero; int -> float by value.
  expect_exact(ops::cast(xd.to(Device::CUDA), DType::I32), xd.to(DType::I32), "cast " + dtype_str(dt) + " -> I32");
  const Tensor ids = rng.ints(Shape{1023}, -300000, 300000, DType::I64);
  expect_exact(ops::cast(ids.to(Device::CUDA), dt), ids.to(dt), "cast I64 -> " + dtype_str(dt));
  expect_exact(ops::cast(ids.to(Device::CUDA), DType::I32), ids.to(DType::I32), "cast I64 -> I32");
  const Tensor u8 = rng.ints(Shape{1023}, 0, 255, DType::U8);
  expect_exact(ops::cast(u8.to(Device::CUDA), dt), u8.to(dt), "cast U8 -> " + dtype_str(dt));
}

// ---- lincomb: fp64 accumulation, one rounding -> bit-exact against the CPU -------------

// dst = sum coef_k * src_k over random F32 tensors; the CPU and the kernel add
// the same double products in the same order, so every element is equal.
TEST(BackendOpsLincomb, MatchesCpuBitExactly) {
  T2V_REQUIRE_CUDA();
  Rng rng;
  std::vector<Shape> shapes = {Shape{1}, Shape{113, 203}, Shape{2, 3, 5, 7, 9}, Shape{16, 3, 60, 104}};
  if (large_cases()) shapes.push_back(Shape{16, 21, 60, 104});  // Wan latents, 832x480x81
  std::uniform_real_distribution<double> coef(-3.0, 3.0);
  for (const Shape& s : shapes)
    for (int k : {1, 2, 4, 16}) {
      std::vector<Tensor> src, src_gpu;
      for (int t = 0; t < k; ++t) {
        src.push_back(rng.normal(s));
        src_gpu.push_back(src.back().to(Device::CUDA));
      }
      std::vector<ops::LinTerm> terms, terms_gpu;
      for (int t = 0; t < k; ++t) {
        const double c = coef(rng.engine());
        terms.push_back({c, &src[t]});
        terms_gpu.push_back({c, &src_gpu[t]});
      }
      Tensor ref = Tensor::empty(s, DType::F32);
      ops::lincomb(ref, terms);
      Tensor got = Tensor::empty(s, DType::F32, Device::CUDA);
      ops::lincomb(got, terms_gpu);
      expect_exact(got, ref, fmt::format("lincomb {} terms {}", k, s.str()));
    }
}

TEST(BackendOpsLincomb, AliasingZeroTermsAndLimit) {
  T2V_REQUIRE_CUDA();
  Rng rng;
  const Shape s{3, 1023};
  const Tensor a = rng.normal(s), b = rng.normal(s);
  // In place: a = 0.5 a - 2 b.
  Tensor ref = a.clone();
  ops::lincomb(ref, {{0.5, &ref}, {-2.0, &b}});
  Tensor ga = a.to(Device::CUDA);
  const Tensor gb = b.to(Device::CUDA);
  ops::lincomb(ga, {{0.5, &ga}, {-2.0, &gb}});
  expect_exact(ga, ref, "lincomb in place");
  // A zero coefficient drops its term even where the source is inf (the sigma = 0 step).
  const Tensor inf = Tensor::full(s, INFINITY).to(Device::CUDA);
  Tensor out = Tensor::empty(s, DType::F32, Device::CUDA);
  ops::lincomb(out, {{0.0, &inf}, {1.0, &gb}});
  expect_exact(out, b, "lincomb zero-coefficient inf term");
  // No non-zero term: zeros.
  ops::lincomb(out, {{0.0, &gb}});
  expect_exact(out, Tensor::zeros(s, DType::F32), "lincomb no terms");
  // The kernel sums at most kLincombMaxTerms (16) terms; more is Error(69).
  std::vector<ops::LinTerm> many(17, ops::LinTerm{1.0, &gb});
  try {
    ops::lincomb(out, many);
    ADD_FAILURE() << "17 terms must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitUnavailable) << e.what();
  }
}

// ---- GEMM dtype rule: no per-call weight cast ------------------------------------------

TEST(BackendOpsGemmDtypes, MismatchedActivationAndWeightAreRefused) {
  T2V_REQUIRE_CUDA();
  Rng rng;
  const Tensor x = to_gpu(rng.normal(Shape{5, 8}), DType::BF16), w32 = to_gpu(rng.normal(Shape{3, 8}), DType::F32),
               w16 = to_gpu(rng.normal(Shape{3, 8}), DType::BF16);
  for (const auto& f : std::vector<std::function<void()>>{
           [&] { (void)ops::linear(x, w32); }, [&] { (void)ops::linear_gelu_tanh(x, w32); },
           [&] { (void)ops::matmul(x, to_gpu(rng.normal(Shape{8, 3}), DType::F32)); },
           [&] { (void)ops::linear(ops::cast(x, DType::F32), w16, to_gpu(rng.normal(Shape{3}), DType::BF16)); }}) {
    try {
      f();
      ADD_FAILURE() << "a mismatched GEMM was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kExitSoftware) << e.what();
      EXPECT_NE(std::string(e.what()).find("BF16"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("F32"), std::string::npos) << e.what();
    }
  }
  // A bias may be F32 beside bf16 operands.
  const Tensor y = ops::linear(x, w16, to_gpu(rng.normal(Shape{3}), DType::F32));
  EXPECT_EQ(y.dtype(), DType::BF16);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, BackendOps, ::testing::Values(DType::F32, DType::BF16),
                         [](const ::testing::TestParamInfo<DType>& i) { return std::string(dtype_name(i.param)); });

}  // namespace
}  // namespace t2v::test_cuda
#endif  // T2V_HAVE_CUDA
