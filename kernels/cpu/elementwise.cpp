// Activations, elementwise arithmetic with NumPy broadcasting, and lincomb.
// Activations evaluate in double and round once to fp32 (within 1 ulp of
// PyTorch's float kernels); arithmetic is plain fp32 in PyTorch's operation
// order (modulate: x * (1 + scale) + shift, add_gated: x + y * gate), so those
// results are bit-identical to the eager PyTorch expressions. lincomb sums in
// double and rounds once (the scheduler's arithmetic; compiled without FMA
// contraction, see kernels/CMakeLists.txt).
// Test: tests/kernels/test_elementwise.cpp.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/backend_cpu.h"
#include "kernels/cpu/vector_math.h"

namespace t2v::ops::cpu {

void apply_in_blocks(void (*f)(const float*, float*, int64_t), const float* x, float* y, int64_t n) {
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) f(x + b * kBlock, y + b * kBlock, std::min(kBlock, n - b * kBlock));
}

namespace {

// ---- unary ----------------------------------------------------------------------
enum class Unary { GeluTanh, GeluErf, Silu, Scale, AddScalar, Clamp };

Tensor unary(const Tensor& x, Unary op, float s0 = 0.0f, float s1 = 0.0f) {
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const int64_t n = x.numel();
  switch (op) {
    case Unary::GeluTanh:
      // tanh form as v / (1 + exp(-2u)): one exp instead of tanh, no cancellation
      // in 1 + tanh u for negative v (vector_math.h).
      apply_in_blocks(gelu_tanh_array, xp, yp, n);
      break;
    case Unary::GeluErf:
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const double v = xp[i];
        yp[i] = (float)(0.5 * v * (1.0 + std::erf(v * M_SQRT1_2)));
      }
      break;
    case Unary::Silu:
      apply_in_blocks(silu_array, xp, yp, n);
      break;
    case Unary::Scale:
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] * s0;
      break;
    case Unary::AddScalar:
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] + s0;
      break;
    case Unary::Clamp:
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) yp[i] = std::isnan(xp[i]) ? xp[i] : std::min(std::max(xp[i], s0), s1);
      break;
  }
  return y;
}

// ---- broadcasting ----------------------------------------------------------------
// Up to three operands broadcast to one output shape. Adjacent dims are merged
// when every operand either broadcasts both or neither, so the innermost loop
// runs as long as possible; each operand's innermost stride is 0 or 1.
struct BroadcastPlan {
  int nd = 0;
  int64_t dims[kMaxDims] = {};
  int64_t strides[3][kMaxDims] = {};
  int nops = 0;
  int64_t outer = 1, inner = 1;

  BroadcastPlan(const Shape& out, std::initializer_list<const Shape*> ins) {
    nops = (int)ins.size();
    const int ond = out.ndim();
    // Per dim: size and, per operand, whether it is broadcast (size 1 vs out > 1).
    int64_t d[kMaxDims];
    bool bc[3][kMaxDims];
    for (int i = 0; i < ond; ++i) d[i] = out[i];
    int k = 0;
    for (const Shape* s : ins) {
      const int off = ond - s->ndim();
      for (int i = 0; i < ond; ++i) bc[k][i] = (i < off) || ((*s)[i - off] == 1 && out[i] != 1);
      ++k;
    }
    // Merge dims (dropping size-1 output dims).
    int n = 0;
    bool mb[3][kMaxDims];
    for (int i = 0; i < ond; ++i) {
      if (d[i] == 1) continue;
      bool same = n > 0;
      for (int o = 0; o < nops && same; ++o) same = mb[o][n - 1] == bc[o][i];
      if (same) {
        dims[n - 1] *= d[i];
      } else {
        dims[n] = d[i];
        for (int o = 0; o < nops; ++o) mb[o][n] = bc[o][i];
        ++n;
      }
    }
    if (n == 0) {
      dims[0] = 1;
      for (int o = 0; o < nops; ++o) mb[o][0] = false;
      n = 1;
    }
    nd = n;
    for (int o = 0; o < nops; ++o) {
      int64_t st = 1;
      for (int i = nd - 1; i >= 0; --i) {
        strides[o][i] = mb[o][i] ? 0 : st;
        if (!mb[o][i]) st *= dims[i];
      }
    }
    inner = dims[nd - 1];
    for (int i = 0; i < nd - 1; ++i) outer *= dims[i];
  }

  // Element offset of operand o at the start of outer row r.
  int64_t offset(int o, int64_t r) const {
    int64_t off = 0;
    for (int i = nd - 2; i >= 0; --i) {
      off += (r % dims[i]) * strides[o][i];
      r /= dims[i];
    }
    return off;
  }
};

enum class Binary { Add, Sub, Mul };

Tensor binary(const Tensor& a, const Tensor& b, const Shape& out_shape, Binary op) {
  Tensor y = Tensor::empty(out_shape, DType::F32);
  const BroadcastPlan pl(out_shape, {&a.shape(), &b.shape()});
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* yp = y.data<float>();
  const int64_t n = pl.inner;
  const int64_t sa = pl.strides[0][pl.nd - 1], sb = pl.strides[1][pl.nd - 1];
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < pl.outer; ++r) {
    const float* ar = ap + pl.offset(0, r);
    const float* br = bp + pl.offset(1, r);
    float* yr = yp + r * n;
    if (sa == 1 && sb == 1) {
      switch (op) {
        case Binary::Add: for (int64_t i = 0; i < n; ++i) yr[i] = ar[i] + br[i]; break;
        case Binary::Sub: for (int64_t i = 0; i < n; ++i) yr[i] = ar[i] - br[i]; break;
        case Binary::Mul: for (int64_t i = 0; i < n; ++i) yr[i] = ar[i] * br[i]; break;
      }
    } else {
      switch (op) {
        case Binary::Add: for (int64_t i = 0; i < n; ++i) yr[i] = ar[i * sa] + br[i * sb]; break;
        case Binary::Sub: for (int64_t i = 0; i < n; ++i) yr[i] = ar[i * sa] - br[i * sb]; break;
        case Binary::Mul: for (int64_t i = 0; i < n; ++i) yr[i] = ar[i * sa] * br[i * sb]; break;
      }
    }
  }
  return y;
}

Shape broadcast_shape(const Shape& a, const Shape& b) {
  const int nd = std::max(a.ndim(), b.ndim());
  std::vector<int64_t> d(nd);
  for (int i = 0; i < nd; ++i) {
    const int ia = i - (nd - a.ndim()), ib = i - (nd - b.ndim());
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    d[i] = da == 1 ? db : da;  // ops.cpp has checked compatibility
  }
  return Shape(d);
}

Tensor gelu_tanh(const Tensor& x) { return unary(x, Unary::GeluTanh); }
Tensor gelu_erf(const Tensor& x) { return unary(x, Unary::GeluErf); }
Tensor silu(const Tensor& x) { return unary(x, Unary::Silu); }
Tensor scale(const Tensor& x, float s) { return unary(x, Unary::Scale, s); }
Tensor add_scalar(const Tensor& x, float s) { return unary(x, Unary::AddScalar, s); }
Tensor clamp(const Tensor& x, float lo, float hi) { return unary(x, Unary::Clamp, lo, hi); }

Tensor add(const Tensor& a, const Tensor& b) { return binary(a, b, broadcast_shape(a.shape(), b.shape()), Binary::Add); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(a, b, broadcast_shape(a.shape(), b.shape()), Binary::Sub); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(a, b, broadcast_shape(a.shape(), b.shape()), Binary::Mul); }

Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale) {
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const BroadcastPlan pl(x.shape(), {&x.shape(), &shift.shape(), &scale.shape()});
  const float* xp = x.data<float>();
  const float* hp = shift.data<float>();
  const float* cp = scale.data<float>();
  float* yp = y.data<float>();
  const int64_t n = pl.inner;
  const int64_t sh = pl.strides[1][pl.nd - 1], sc = pl.strides[2][pl.nd - 1];
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < pl.outer; ++r) {
    const float* xr = xp + pl.offset(0, r);
    const float* hr = hp + pl.offset(1, r);
    const float* cr = cp + pl.offset(2, r);
    float* yr = yp + r * n;
    for (int64_t i = 0; i < n; ++i) {
      const float s1 = 1.0f + cr[i * sc];  // rounded like PyTorch's (1 + scale) temporary
      const float xs = xr[i] * s1;
      yr[i] = xs + hr[i * sh];
    }
  }
  return y;
}

Tensor add_gated(const Tensor& x, const Tensor& y, const Tensor& gate) {
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  const BroadcastPlan pl(x.shape(), {&x.shape(), &y.shape(), &gate.shape()});
  const float* xp = x.data<float>();
  const float* yp = y.data<float>();
  const float* gp = gate.data<float>();
  float* op = out.data<float>();
  const int64_t n = pl.inner;
  const int64_t sg = pl.strides[2][pl.nd - 1];
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < pl.outer; ++r) {
    const float* xr = xp + pl.offset(0, r);
    const float* yr = yp + pl.offset(1, r);
    const float* gr = gp + pl.offset(2, r);
    float* orow = op + r * n;
    for (int64_t i = 0; i < n; ++i) {
      const float yg = yr[i] * gr[i * sg];
      orow[i] = xr[i] + yg;
    }
  }
  return out;
}

// The scheduler's primitive: double accumulation, one rounding; the terms are
// the non-zero ones (ops.cpp drops the others). Elementwise read-before-write,
// so dst may be a source.
void lincomb(Tensor& dst, std::span<const LinTerm> terms) {
  std::vector<const float*> src;
  std::vector<double> coef;
  for (const LinTerm& t : terms) {
    src.push_back(t.src->data<float>());
    coef.push_back(t.coef);
  }
  float* out = dst.data<float>();
  const int64_t n = dst.numel();
  const size_t k = src.size();
#pragma omp parallel for schedule(static) if (n >= (1 << 16))
  for (int64_t j = 0; j < n; ++j) {
    double acc = 0.0;
    for (size_t t = 0; t < k; ++t) acc += coef[t] * static_cast<double>(src[t][j]);
    out[j] = static_cast<float>(acc);
  }
}

}  // namespace

void register_elementwise(Backend& b) {
  b.gelu_tanh = gelu_tanh;
  b.gelu_erf = gelu_erf;
  b.silu = silu;
  b.add = add;
  b.sub = sub;
  b.mul = mul;
  b.scale = scale;
  b.add_scalar = add_scalar;
  b.clamp = clamp;
  b.modulate = modulate;
  b.add_gated = add_gated;
  b.lincomb = lincomb;
}

}  // namespace t2v::ops::cpu
