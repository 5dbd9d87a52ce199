// Layout ops: concat, slice, permute, copies, embedding gather, cast. These move
// bytes of any dtype (element size from the dtype), so they also serve integer
// tensors. Test: tests/kernels/test_layout.cpp.
#include <cstring>

#include "kernels/cpu/backend_cpu.h"

namespace t2v::ops::cpu {
namespace {

int64_t prod(const Shape& s, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; ++i) p *= s[i];
  return p;
}

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  const Shape& s0 = xs[0].shape();
  const size_t es = dtype_size(xs[0].dtype());
  std::vector<int64_t> dims = s0.vec();
  dims[dim] = 0;
  for (const Tensor& t : xs) dims[dim] += t.size(dim);
  Tensor y = Tensor::empty(Shape(dims), xs[0].dtype());
  const int64_t outer = prod(s0, 0, dim), inner = prod(s0, dim + 1, s0.ndim());
  const int64_t out_row = dims[dim] * inner * (int64_t)es;  // bytes per outer index in y
  auto* yp = static_cast<uint8_t*>(y.raw());
  int64_t col = 0;  // byte offset of the current input inside an output row
  for (const Tensor& t : xs) {
    const int64_t row = t.size(dim) * inner * (int64_t)es;
    const auto* xp = static_cast<const uint8_t*>(t.raw());
    if (row > 0) {
#pragma omp parallel for schedule(static)
      for (int64_t o = 0; o < outer; ++o) std::memcpy(yp + o * out_row + col, xp + o * row, row);
    }
    col += row;
  }
  return y;
}

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end) {
  const Shape& s = x.shape();
  const size_t es = dtype_size(x.dtype());
  std::vector<int64_t> dims = s.vec();
  dims[dim] = end - start;
  Tensor y = Tensor::empty(Shape(dims), x.dtype());
  const int64_t outer = prod(s, 0, dim), inner = prod(s, dim + 1, s.ndim()) * (int64_t)es;
  const int64_t in_row = s[dim] * inner, out_row = (end - start) * inner;
  const auto* xp = static_cast<const uint8_t*>(x.raw());
  auto* yp = static_cast<uint8_t*>(y.raw());
  if (out_row > 0) {
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < outer; ++o) std::memcpy(yp + o * out_row, xp + o * in_row + start * inner, out_row);
  }
  return y;
}

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  const Shape& s = x.shape();
  const int nd = s.ndim();
  const size_t es = dtype_size(x.dtype());
  int64_t in_stride[kMaxDims];
  int64_t st = 1;
  for (int i = nd - 1; i >= 0; --i) {
    in_stride[i] = st;
    st *= s[i];
  }
  std::vector<int64_t> dims(nd);
  int64_t st_of_out[kMaxDims];
  for (int i = 0; i < nd; ++i) {
    dims[i] = s[perm[i]];
    st_of_out[i] = in_stride[perm[i]];
  }
  Tensor y = Tensor::empty(Shape(dims), x.dtype());
  const int64_t n = y.numel();
  if (n == 0) return y;
  if (nd == 0) {
    std::memcpy(y.raw(), x.raw(), es);
    return y;
  }
  const int64_t inner = dims[nd - 1], outer = n / inner, inner_stride = st_of_out[nd - 1];
  const auto* xp = static_cast<const uint8_t*>(x.raw());
  auto* yp = static_cast<uint8_t*>(y.raw());
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < outer; ++o) {
    int64_t off = 0, r = o;
    for (int i = nd - 2; i >= 0; --i) {
      off += (r % dims[i]) * st_of_out[i];
      r /= dims[i];
    }
    uint8_t* d = yp + o * inner * (int64_t)es;
    if (es == 4) {
      const auto* src = reinterpret_cast<const uint32_t*>(xp) + off;
      auto* dst = reinterpret_cast<uint32_t*>(d);
      for (int64_t i = 0; i < inner; ++i) dst[i] = src[i * inner_stride];
    } else {
      for (int64_t i = 0; i < inner; ++i) std::memcpy(d + i * es, xp + (off + i * inner_stride) * (int64_t)es, es);
    }
  }
  return y;
}

Tensor contiguous_copy(const Tensor& x) { return x.clone(); }

Tensor embedding(const Tensor& table, const Tensor& ids) {
  const int64_t V = table.size(0), C = table.size(1), n = ids.numel();
  std::vector<int64_t> idx(n);
  for (int64_t i = 0; i < n; ++i) {
    idx[i] = ids.dtype() == DType::I64 ? ids.data<int64_t>()[i] : (int64_t)ids.data<int32_t>()[i];
    if (idx[i] < 0 || idx[i] >= V)
      throw Error(kExitDataErr,
                  fmt::format("embedding: token id {} at position {} is outside the table's {} rows", idx[i], i, V),
                  "the tokenizer and the embedding weights must come from the same model (vocabulary size)");
  }
  std::vector<int64_t> dims = ids.shape().vec();
  dims.push_back(C);
  Tensor y = Tensor::empty(Shape(dims), table.dtype());
  const size_t row = (size_t)C * dtype_size(table.dtype());
  const auto* tp = static_cast<const uint8_t*>(table.raw());
  auto* yp = static_cast<uint8_t*>(y.raw());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) std::memcpy(yp + i * row, tp + idx[i] * row, row);
  return y;
}

Tensor cast(const Tensor& x, DType dt) { return x.dtype() == dt ? x.clone() : x.to(dt); }  // always a fresh tensor

}  // namespace

void register_layout(Backend& b) {
  b.concat = concat;
  b.slice = slice;
  b.permute = permute;
  b.contiguous_copy = contiguous_copy;
  b.embedding = embedding;
  b.cast = cast;
}

}  // namespace t2v::ops::cpu
