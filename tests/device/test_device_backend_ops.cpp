// Backend-ops test of the test device: every entry of its table, called
// through kernels/ops.h on fresh random inputs of several shapes (odd ones
// included), against the CPU reference. F32 storage runs the same CPU kernels,
// so it must match bit for bit; BF16/F16 storage is held to the NMSE rule of
// tests/backend_ops/backend_ops_util.h; data movement is bit-exact in every
// dtype. EveryEntryHasACase ties the cases to the table, so a new entry
// without a case fails.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/ops.h"
#include "kernels/test_device/test_device.h"
#include "tests/backend_ops/backend_ops_util.h"

namespace t2v::test_backend {
namespace {

Tensor up(const Tensor& cpu_f32, DType dt) { return to_device(cpu_f32, dt, Device::Test); }

// F32 storage: the CPU kernels ran, so bit-exact; half storage: the NMSE rule.
void check(const Tensor& got, const Tensor& ref, const std::string& what) {
  if (got.dtype() == DType::F32) expect_exact(got, ref, what);
  else expect_close(got, ref, what);
}

std::string name(const char* op, const Shape& s, DType dt) { return fmt::format("{} {} {}", op, s.str(), dtype_name(dt)); }

// ---- cases, one per table entry ------------------------------------------------

void linear_case(DType dt, Rng& rng, bool gelu) {
  struct Case { Shape x; int64_t N; bool bias; };
  for (const Case& c : std::vector<Case>{{Shape{1, 1}, 1, true}, {Shape{7, 13}, 5, false}, {Shape{33, 64}, 17, true},
                                         {Shape{2, 9, 12}, 7, true}}) {
    const int64_t K = c.x[c.x.ndim() - 1];
    const Tensor x = rng.normal(c.x), w = rng.normal(Shape{c.N, K}, 0.3f), b = c.bias ? rng.uniform(Shape{c.N}) : Tensor();
    const Tensor xd = up(x, dt), wd = up(w, dt), bd = c.bias ? up(b, DType::F32) : Tensor();  // F32 bias beside dt operands
    const Tensor got = gelu ? ops::linear_gelu_tanh(xd, wd, bd) : ops::linear(xd, wd, bd);
    const Tensor ref = gelu ? ops::linear_gelu_tanh(rounded(x, dt), rounded(w, dt), b)
                            : ops::linear(rounded(x, dt), rounded(w, dt), b);
    check(got, ref, name(gelu ? "linear_gelu_tanh" : "linear", c.x, dt) + fmt::format(" N{}", c.N));
  }
}

void matmul_case(DType dt, Rng& rng) {
  for (const auto& [sa, sb] : std::vector<std::pair<Shape, Shape>>{
           {Shape{1, 1}, Shape{1, 1}}, {Shape{13, 7}, Shape{7, 5}}, {Shape{2, 3, 9, 4}, Shape{2, 3, 4, 6}}}) {
    const Tensor a = rng.normal(sa), b = rng.normal(sb);
    check(ops::matmul(up(a, dt), up(b, dt)), ops::matmul(rounded(a, dt), rounded(b, dt)), name("matmul", sa, dt));
  }
}

const std::vector<Shape>& row_shapes() {
  static const std::vector<Shape> s = {Shape{1, 1}, Shape{13, 31}, Shape{2, 5, 64}, Shape{3, 1, 7}};
  return s;
}

void layer_norm_case(DType dt, Rng& rng) {
  for (const Shape& s : row_shapes()) {
    const int64_t C = s[s.ndim() - 1];
    const Tensor x = ops::add_scalar(rng.normal(s), 2.0f), w = rng.uniform(Shape{C}, 0.5f, 1.5f),
                 b = rng.uniform(Shape{C});
    check(ops::layer_norm(up(x, dt), Tensor(), Tensor(), 1e-6f),
          ops::layer_norm(rounded(x, dt), Tensor(), Tensor(), 1e-6f), name("layer_norm", s, dt));
    check(ops::layer_norm(up(x, dt), up(w, DType::F32), up(b, dt), 1e-5f),
          ops::layer_norm(rounded(x, dt), w, rounded(b, dt), 1e-5f), name("layer_norm affine", s, dt));
  }
}

void layer_norm_modulate_case(DType dt, Rng& rng) {
  for (const Shape& s : {Shape{1, 1, 1}, Shape{2, 13, 31}, Shape{3, 4, 64}}) {
    const int64_t C = s[2];
    const Shape sm{s[0], 1, C};
    const Tensor x = rng.normal(s), shift = rng.uniform(sm), sc = rng.uniform(sm), w = rng.uniform(Shape{C}),
                 b = rng.uniform(Shape{C});
    check(ops::layer_norm_modulate(up(x, dt), Tensor(), Tensor(), 1e-6f, up(shift, DType::F32), up(sc, DType::F32)),
          ops::layer_norm_modulate(rounded(x, dt), Tensor(), Tensor(), 1e-6f, shift, sc),
          name("layer_norm_modulate", s, dt));
    check(ops::layer_norm_modulate(up(x, dt), up(w, dt), up(b, dt), 1e-5f, up(shift, dt), up(sc, dt)),
          ops::layer_norm_modulate(rounded(x, dt), rounded(w, dt), rounded(b, dt), 1e-5f, rounded(shift, dt),
                                   rounded(sc, dt)),
          name("layer_norm_modulate affine", s, dt));
  }
}

void rms_norm_case(DType dt, Rng& rng) {
  for (const Shape& s : row_shapes()) {
    const Tensor x = rng.normal(s, 3.0f), w = rng.uniform(Shape{s[s.ndim() - 1]}, 0.5f, 1.5f);
    check(ops::rms_norm(up(x, dt), up(w, DType::F32), 1e-6f), ops::rms_norm(rounded(x, dt), w, 1e-6f),
          name("rms_norm", s, dt));
    check(ops::rms_norm(up(x, dt), Tensor(), 1e-6f), ops::rms_norm(rounded(x, dt), Tensor(), 1e-6f),
          name("rms_norm no weight", s, dt));
  }
}

void rms_norm_channels_case(DType dt, Rng& rng) {
  for (const Shape& s : {Shape{1, 1, 1}, Shape{2, 7, 3, 5}, Shape{1, 12, 2, 13, 17}}) {
    std::vector<int64_t> g(s.ndim() - 1, 1);
    g[0] = s[1];
    const Tensor x = rng.normal(s), gamma = rng.uniform(Shape(g), 0.5f, 1.5f);
    check(ops::rms_norm_channels(up(x, dt), up(gamma, DType::F32)), ops::rms_norm_channels(rounded(x, dt), gamma),
          name("rms_norm_channels", s, dt));
  }
}

void softmax_case(DType dt, Rng& rng) {
  for (const Shape& s : {Shape{1}, Shape{13, 31}, Shape{2, 3, 129}}) {
    const Tensor x = rng.normal(s, 4.0f);
    check(ops::softmax(up(x, dt)), ops::softmax(rounded(x, dt)), name("softmax", s, dt));
  }
}

void attention_case(DType dt, Rng& rng) {
  struct Case { int64_t B, Nq, Nk, NH, D, Dv; bool bias, mask; };
  for (const Case& c : std::vector<Case>{{1, 1, 1, 1, 1, 1, false, false},
                                         {2, 13, 17, 3, 8, 8, true, true},
                                         {3, 9, 5, 2, 6, 4, false, true}}) {
    const Tensor q = rng.normal(Shape{c.B, c.Nq, c.NH, c.D}), k = rng.normal(Shape{c.B, c.Nk, c.NH, c.D}),
                 v = rng.normal(Shape{c.B, c.Nk, c.NH, c.Dv});
    ops::AttentionParams p, pd;
    p.scale = pd.scale = 1.0f / std::sqrt(static_cast<float>(c.D));
    if (c.bias) {
      p.bias = rng.normal(Shape{1, c.NH, c.Nq, c.Nk});
      pd.bias = p.bias.to(Device::Test);
    }
    if (c.mask) {
      // Batch b keeps its first keys; the last batch keeps none (a fully masked row gives zeros).
      Tensor m = Tensor::zeros(Shape{c.B, c.Nk}, DType::I64);
      for (int64_t b = 0; b + 1 < c.B; ++b)
        for (int64_t j = 0; j < std::max<int64_t>(1, c.Nk - 2 * b); ++j) m.data<int64_t>()[b * c.Nk + j] = 1;
      p.key_mask = m;
      pd.key_mask = m.to(Device::Test);
    }
    check(ops::attention(up(q, dt), up(k, dt), up(v, dt), pd),
          ops::attention(rounded(q, dt), rounded(k, dt), rounded(v, dt), p),
          fmt::format("attention B{} Nq{} Nk{} NH{} D{} Dv{}{}{} {}", c.B, c.Nq, c.Nk, c.NH, c.D, c.Dv,
                      c.bias ? " +bias" : "", c.mask ? " +mask" : "", dtype_name(dt)));
  }
}

const std::vector<Shape>& elementwise_shapes() {
  static const std::vector<Shape> s = {Shape{1}, Shape{13, 31}, Shape{2, 3, 5, 7, 9}};
  return s;
}

// Unary entries: `f` is the op under test, applied to the device and the CPU input.
void unary_case(DType dt, Rng& rng, const char* op, Tensor (*f)(const Tensor&)) {
  for (const Shape& s : elementwise_shapes()) {
    const Tensor x = rng.normal(s, 2.0f);
    check(f(up(x, dt)), f(rounded(x, dt)), name(op, s, dt));
  }
}

void binary_case(DType dt, Rng& rng, const char* op, Tensor (*f)(const Tensor&, const Tensor&)) {
  for (const auto& [sa, sb] : std::vector<std::pair<Shape, Shape>>{{Shape{1}, Shape{1}},
                                                                   {Shape{13, 31}, Shape{13, 31}},
                                                                   {Shape{2, 3, 1, 5}, Shape{3, 4, 1}},
                                                                   {Shape{2, 9, 7}, Shape{7}}}) {
    const Tensor a = rng.uniform(sa), b = rng.uniform(sb, 0.5f, 2.0f);
    check(f(up(a, dt), up(b, dt)), f(rounded(a, dt), rounded(b, dt)), name(op, sa, dt) + " . " + sb.str());
  }
  // A side tensor in F32 beside a dt activation: the output keeps a's dtype.
  const Tensor a = rng.uniform(Shape{3, 11}), b = rng.uniform(Shape{11});
  const Tensor out = f(up(a, dt), up(b, DType::F32));
  EXPECT_EQ(out.dtype(), dt);
  check(out, f(rounded(a, dt), b), name(op, a.shape(), dt) + " (b F32)");
}

Tensor scale_f(const Tensor& x) { return ops::scale(x, -1.7f); }
Tensor add_scalar_f(const Tensor& x) { return ops::add_scalar(x, 0.37f); }
Tensor clamp_f(const Tensor& x) { return ops::clamp(x, -0.8f, 1.1f); }
Tensor gelu_tanh_f(const Tensor& x) { return ops::gelu_tanh(x); }
Tensor gelu_erf_f(const Tensor& x) { return ops::gelu_erf(x); }
Tensor silu_f(const Tensor& x) { return ops::silu(x); }
Tensor add_f(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
Tensor sub_f(const Tensor& a, const Tensor& b) { return ops::sub(a, b); }
Tensor mul_f(const Tensor& a, const Tensor& b) { return ops::mul(a, b); }

void modulate_case(DType dt, Rng& rng, bool gated) {
  for (const Shape& s : {Shape{1, 1, 1}, Shape{2, 13, 31}, Shape{1, 64, 48}}) {
    const Shape sm{s[0], 1, s[2]};
    const Tensor x = rng.normal(s), y = rng.normal(s), a = rng.uniform(sm), b = rng.uniform(sm);
    if (gated)
      check(ops::add_gated(up(x, dt), up(y, dt), up(a, DType::F32)),
            ops::add_gated(rounded(x, dt), rounded(y, dt), a), name("add_gated", s, dt));
    else
      check(ops::modulate(up(x, dt), up(a, DType::F32), up(b, DType::F32)), ops::modulate(rounded(x, dt), a, b),
            name("modulate", s, dt));
  }
}

// lincomb is F32 only: exact against the CPU (also in place and with a
// dropped inf term); another dtype is refused.
void lincomb_case(DType dt, Rng& rng) {
  if (dt != DType::F32) {
    Tensor dst = Tensor::empty(Shape{4}, dt, Device::Test);
    const Tensor src = up(rng.normal(Shape{4}), DType::F32);
    EXPECT_THROW(ops::lincomb(dst, {{1.0, &src}}), Error) << "lincomb into " << dtype_name(dt);
    return;
  }
  std::uniform_real_distribution<double> coef(-3.0, 3.0);
  for (const Shape& s : {Shape{1}, Shape{13, 31}, Shape{16, 3, 6, 10}})
    for (int k : {1, 2, 4, 5}) {
      std::vector<Tensor> src, src_d;
      for (int t = 0; t < k; ++t) {
        src.push_back(rng.normal(s));
        src_d.push_back(src.back().to(Device::Test));
      }
      std::vector<ops::LinTerm> terms, terms_d;
      for (int t = 0; t < k; ++t) {
        const double c = coef(rng.engine());
        terms.push_back({c, &src[t]});
        terms_d.push_back({c, &src_d[t]});
      }
      Tensor ref = Tensor::empty(s, DType::F32), got = Tensor::empty(s, DType::F32, Device::Test);
      ops::lincomb(ref, terms);
      ops::lincomb(got, terms_d);
      expect_exact(got, ref, fmt::format("lincomb {} terms {}", k, s.str()));
    }
  const Tensor a = rng.normal(Shape{3, 17}), b = rng.normal(Shape{3, 17});
  Tensor ref = a.clone(), got = a.to(Device::Test);
  const Tensor bd = b.to(Device::Test), inf = Tensor::full(Shape{3, 17}, INFINITY).to(Device::Test);
  ops::lincomb(ref, {{0.5, &ref}, {-2.0, &b}});
  ops::lincomb(got, {{0.5, &got}, {-2.0, &bd}, {0.0, &inf}});
  expect_exact(got, ref, "lincomb in place, zero-coefficient inf term");
}

void conv3d_case(DType dt, Rng& rng) {
  ops::Conv3dParams causal;
  causal.pad_t_front = 2;
  causal.pad_h = causal.pad_w = 1;
  ops::Conv3dParams down;
  down.stride = {1, 2, 2};
  for (const auto& [sx, sw, p] : std::vector<std::tuple<Shape, Shape, ops::Conv3dParams>>{
           {Shape{1, 1, 1, 1, 1}, Shape{1, 1, 1, 1, 1}, ops::Conv3dParams{}},
           {Shape{1, 5, 4, 13, 11}, Shape{7, 5, 3, 3, 3}, causal},
           {Shape{2, 3, 2, 9, 7}, Shape{4, 3, 1, 3, 3}, down}}) {
    const Tensor x = rng.normal(sx), w = rng.normal(sw, 0.2f), b = rng.uniform(Shape{sw[0]});
    check(ops::conv3d(up(x, dt), up(w, dt), up(b, DType::F32), p), ops::conv3d(rounded(x, dt), rounded(w, dt), b, p),
          name("conv3d", sx, dt) + " w" + sw.str());
  }
}

void conv2d_case(DType dt, Rng& rng) {
  ops::Conv2dParams asym;
  asym.stride = {2, 2};
  asym.pad_bottom = asym.pad_right = 1;
  for (const auto& [sx, sw, p] : std::vector<std::tuple<Shape, Shape, ops::Conv2dParams>>{
           {Shape{1, 1, 1, 1}, Shape{1, 1, 1, 1}, ops::Conv2dParams{}}, {Shape{2, 3, 17, 19}, Shape{4, 3, 3, 3}, asym}}) {
    const Tensor x = rng.normal(sx), w = rng.normal(sw, 0.2f), b = rng.uniform(Shape{sw[0]});
    check(ops::conv2d(up(x, dt), up(w, dt), up(b, dt), p),
          ops::conv2d(rounded(x, dt), rounded(w, dt), rounded(b, dt), p), name("conv2d", sx, dt) + " w" + sw.str());
  }
}

void upsample_case(DType dt, Rng& rng) {
  for (const Shape& s : {Shape{1, 1}, Shape{2, 3, 5, 7}, Shape{1, 4, 2, 9, 13}}) {
    const Tensor x = rounded(rng.uniform(s), dt);  // dt-exact values: the F32 reference converts exactly
    expect_exact(ops::upsample_nearest2x(x.to(dt).to(Device::Test)), ops::upsample_nearest2x(x).to(dt),
                 name("upsample_nearest2x", s, dt));
  }
}

void rope_case(DType dt, Rng& rng) {
  struct Grid { int64_t T, H, W, NH, D; };
  for (const Grid& g : std::vector<Grid>{{1, 1, 1, 1, 2}, {3, 5, 7, 2, 12}, {2, 3, 4, 3, 64}}) {
    const Tensor table = rng.rotation_table(g.T * g.H * g.W, g.D / 2);
    const Tensor x = rng.normal(Shape{2, g.T * g.H * g.W, g.NH, g.D});
    check(ops::rope_3d(up(x, dt), table.to(Device::Test)), ops::rope_3d(rounded(x, dt), table),
          name("rope_3d", x.shape(), dt));
  }
}

// ---- data movement: bit-exact in every dtype -----------------------------------------

void concat_case(DType dt, Rng& rng) {
  const Tensor a = rng.uniform(Shape{2, 3, 13, 5}).to(dt), b = rng.uniform(Shape{2, 4, 13, 5}).to(dt),
               c = rng.uniform(Shape{2, 1, 13, 5}).to(dt);
  const Tensor da = a.to(Device::Test), db = b.to(Device::Test), dc = c.to(Device::Test);
  for (int d : {0, 1, -1}) {
    const std::vector<Tensor> host = d == 1 ? std::vector<Tensor>{a, b, c} : std::vector<Tensor>{a, a};
    const std::vector<Tensor> dev = d == 1 ? std::vector<Tensor>{da, db, dc} : std::vector<Tensor>{da, da};
    expect_exact(ops::concat(dev, d), ops::concat(host, d), fmt::format("concat dim {} {}", d, dtype_name(dt)));
  }
}

void slice_case(DType dt, Rng& rng) {
  const Tensor b = rng.uniform(Shape{2, 4, 13, 5}).to(dt), db = b.to(Device::Test);
  for (const auto& [d, s, e] : std::vector<std::tuple<int, int64_t, int64_t>>{{1, 1, 3}, {2, 7, 13}, {-1, 4, 5}, {0, 1, 1}})
    expect_exact(ops::slice(db, d, s, e), ops::slice(b, d, s, e), fmt::format("slice dim {} [{}, {}) {}", d, s, e, dtype_name(dt)));
}

void permute_case(DType dt, Rng& rng) {
  const Tensor b = rng.uniform(Shape{2, 4, 13, 5}).to(dt), db = b.to(Device::Test);
  for (const std::vector<int>& p : std::vector<std::vector<int>>{{0, 2, 1, 3}, {3, 2, 1, 0}, {1, 0, 3, 2}})
    expect_exact(ops::permute(db, p), ops::permute(b, p),
                 fmt::format("permute {}{}{}{} {}", p[0], p[1], p[2], p[3], dtype_name(dt)));
}

void contiguous_copy_case(DType dt, Rng& rng) {
  const Tensor b = rng.uniform(Shape{3, 7, 11}).to(dt);
  expect_exact(ops::contiguous_copy(b.to(Device::Test)), b, "contiguous_copy " + dtype_str(dt));
}

void embedding_case(DType dt, Rng& rng) {
  const Tensor table = rng.uniform(Shape{100, 13}).to(dt);
  for (DType idt : {DType::I64, DType::I32}) {
    const Tensor ids = rng.ints(Shape{3, 17}, 0, 99, idt);
    expect_exact(ops::embedding(table.to(Device::Test), ids.to(Device::Test)), ops::embedding(table, ids),
                 "embedding ids " + dtype_str(idt) + " " + dtype_str(dt));
  }
  Tensor bad = rng.ints(Shape{5}, 0, 99, DType::I64);
  bad.data<int64_t>()[3] = 100;
  try {
    (void)ops::embedding(table.to(Device::Test), bad.to(Device::Test));
    ADD_FAILURE() << "an id outside the table must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitDataErr) << e.what();
  }
}

void cast_case(DType dt, Rng& rng) {
  const Tensor x = rng.normal(Shape{13, 31}, 100.0f), xd = x.to(dt);
  expect_exact(ops::cast(x.to(Device::Test), dt), x.to(dt), "cast F32 -> " + dtype_str(dt));
  expect_exact(ops::cast(xd.to(Device::Test), DType::F32), xd.to(DType::F32), "cast " + dtype_str(dt) + " -> F32");
  expect_exact(ops::cast(xd.to(Device::Test), DType::F16), xd.to(DType::F16), "cast " + dtype_str(dt) + " -> F16");
  expect_exact(ops::cast(xd.to(Device::Test), DType::I32), xd.to(DType::I32), "cast " + dtype_str(dt) + " -> I32");
  const Tensor ids = rng.ints(Shape{1023}, -300000, 300000, DType::I64);
  expect_exact(ops::cast(ids.to(Device::Test), dt), ids.to(dt), "cast I64 -> " + dtype_str(dt));
  const Tensor u8 = rng.ints(Shape{257}, 0, 255, DType::U8);
  expect_exact(ops::cast(u8.to(Device::Test), dt), u8.to(dt), "cast U8 -> " + dtype_str(dt));
}

struct OpCase {
  const char* entry;  // the Backend member the case exercises (kernels/backend.h)
  void (*run)(DType dt, Rng& rng);
};

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = {
      {"linear", [](DType dt, Rng& r) { linear_case(dt, r, false); }},
      {"linear_gelu_tanh", [](DType dt, Rng& r) { linear_case(dt, r, true); }},
      {"matmul", matmul_case},
      {"layer_norm", layer_norm_case},
      {"layer_norm_modulate", layer_norm_modulate_case},
      {"rms_norm", rms_norm_case},
      {"rms_norm_channels", rms_norm_channels_case},
      {"softmax", softmax_case},
      {"attention", attention_case},
      {"gelu_tanh", [](DType dt, Rng& r) { unary_case(dt, r, "gelu_tanh", gelu_tanh_f); }},
      {"gelu_erf", [](DType dt, Rng& r) { unary_case(dt, r, "gelu_erf", gelu_erf_f); }},
      {"silu", [](DType dt, Rng& r) { unary_case(dt, r, "silu", silu_f); }},
      {"add", [](DType dt, Rng& r) { binary_case(dt, r, "add", add_f); }},
      {"sub", [](DType dt, Rng& r) { binary_case(dt, r, "sub", sub_f); }},
      {"mul", [](DType dt, Rng& r) { binary_case(dt, r, "mul", mul_f); }},
      {"scale", [](DType dt, Rng& r) { unary_case(dt, r, "scale", scale_f); }},
      {"add_scalar", [](DType dt, Rng& r) { unary_case(dt, r, "add_scalar", add_scalar_f); }},
      {"clamp", [](DType dt, Rng& r) { unary_case(dt, r, "clamp", clamp_f); }},
      {"modulate", [](DType dt, Rng& r) { modulate_case(dt, r, false); }},
      {"add_gated", [](DType dt, Rng& r) { modulate_case(dt, r, true); }},
      {"lincomb", lincomb_case},
      {"conv3d", conv3d_case},
      {"conv2d", conv2d_case},
      {"upsample_nearest2x", upsample_case},
      {"rope_3d", rope_case},
      {"concat", concat_case},
      {"slice", slice_case},
      {"permute", permute_case},
      {"contiguous_copy", contiguous_copy_case},
      {"embedding", embedding_case},
      {"cast", cast_case},
  };
  return cases;
}

TEST(TestDeviceBackendOps, EveryEntryHasACase) {
  std::set<std::string> cased;
  for (const OpCase& c : op_cases()) cased.insert(c.entry);
  std::set<std::string> entries;
  for (const ops::OpEntry& e : ops::op_entries(ops::backend(Device::Test))) {
    entries.insert(e.name);
    if (e.present) {
      EXPECT_TRUE(cased.count(e.name)) << "test-device entry '" << e.name << "' has no case here";
    }
  }
  for (const std::string& c : cased) EXPECT_TRUE(entries.count(c)) << "case '" << c << "' names no table entry";
}

class TestDeviceBackendOpsByDtype : public ::testing::TestWithParam<DType> {};

TEST_P(TestDeviceBackendOpsByDtype, EveryEntryMatchesTheCpuReference) {
  ops::open_test_device();
  Rng rng;
  for (const OpCase& c : op_cases()) {
    SCOPED_TRACE(c.entry);
    try {
      c.run(GetParam(), rng);
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.entry << " (" << dtype_name(GetParam()) << "): " << e.what();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, TestDeviceBackendOpsByDtype, ::testing::Values(DType::F32, DType::BF16, DType::F16),
                         [](const ::testing::TestParamInfo<DType>& i) { return std::string(dtype_name(i.param)); });

}  // namespace
}  // namespace t2v::test_backend
