// Layout CUDA ops over Tensors: concat and slice as 2-D strided copies
// (cudaMemcpy2DAsync: rows = product of the dims before `dim`), permute,
// embedding, nearest upsampling and RoPE (kernels in layout.cu).
#include <fmt/format.h>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/tensor_util.h"

namespace t2v::ops::cuda {

namespace {

int norm_dim(int dim, int nd, const char* op) {
  const int d = dim < 0 ? dim + nd : dim;
  if (d < 0 || d >= nd) fail(kExitSoftware, "{}: dim {} out of range for {} dims", op, dim, nd);
  return d;
}

// rows = product of dims before d, inner = product of dims after d.
void split_at(const Shape& s, int d, int64_t* outer, int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < d; ++i) *outer *= s[i];
  for (int i = d + 1; i < s.ndim(); ++i) *inner *= s[i];
}

// Copies a [rows, width] block between pitched buffers on the stream.
void copy_2d(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t rows) {
  if (width == 0 || rows == 0) return;
  T2V_CUDA_CHECK(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, cudaMemcpyDeviceToDevice, stream()));
}

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  if (xs.empty()) fail(kExitSoftware, "concat: no tensors");
  const Tensor& x0 = xs[0];
  require_cuda(x0, "concat", "xs[0]");
  const int nd = x0.dim();
  const int d = norm_dim(dim, nd, "concat");
  std::vector<int64_t> out = x0.shape().vec();
  out[d] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    require_cuda(t, "concat", "xs[i]");
    bool ok = t.dim() == nd && t.dtype() == x0.dtype();
    for (int k = 0; ok && k < nd; ++k) ok = (k == d) || t.size(k) == x0.size(k);
    if (!ok)
      fail(kExitSoftware, "concat: xs[{}] {} does not match xs[0] {} outside dim {}", i, t.str(), x0.str(), d);
    out[d] += t.size(d);
  }
  Tensor y = Tensor::empty(Shape(out), x0.dtype(), Device::CUDA);
  int64_t outer, inner;
  split_at(y.shape(), d, &outer, &inner);
  const size_t es = dtype_size(x0.dtype());
  const size_t dpitch = static_cast<size_t>(out[d] * inner) * es;
  size_t col = 0;
  for (const Tensor& t : xs) {
    const size_t w = static_cast<size_t>(t.size(d) * inner) * es;
    copy_2d(static_cast<char*>(y.raw()) + col, dpitch, t.raw(), w, w, static_cast<size_t>(outer));
    col += w;
  }
  return y;
}

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end) {
  require_cuda(x, "slice", "x");
  const int d = norm_dim(dim, x.dim(), "slice");
  const int64_t n = x.size(d);
  if (start < 0 || end < start || end > n)
    fail(kExitSoftware, "slice: range [{}, {}) out of bounds for dim {} of {}", start, end, d, x.str());
  std::vector<int64_t> out = x.shape().vec();
  out[d] = end - start;
  Tensor y = Tensor::empty(Shape(out), x.dtype(), Device::CUDA);
  int64_t outer, inner;
  split_at(x.shape(), d, &outer, &inner);
  const size_t es = dtype_size(x.dtype());
  const size_t w = static_cast<size_t>((end - start) * inner) * es;
  copy_2d(y.raw(), w, static_cast<const char*>(x.raw()) + static_cast<size_t>(start * inner) * es,
          static_cast<size_t>(n * inner) * es, w, static_cast<size_t>(outer));
  return y;
}

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  require_cuda(x, "permute", "x");
  const int nd = x.dim();
  if (static_cast<int>(perm.size()) != nd || nd > kMaxBroadcastDims)
    fail(kExitSoftware, "permute: perm of {} entries for {}", perm.size(), x.str());
  int64_t in_stride[kMaxBroadcastDims] = {0, 0, 0, 0, 0};
  int64_t st[kMaxBroadcastDims] = {0, 0, 0, 0, 0};
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; --i) {
    st[i] = s;
    s *= x.size(i);
  }
  std::vector<int64_t> out(nd);
  std::vector<bool> seen(nd, false);
  for (int i = 0; i < nd; ++i) {
    const int p = perm[i] < 0 ? perm[i] + nd : perm[i];
    if (p < 0 || p >= nd || seen[p]) fail(kExitSoftware, "permute: invalid permutation for {}", x.str());
    seen[p] = true;
    out[i] = x.size(p);
    in_stride[i] = st[p];
  }
  Tensor y = Tensor::empty(Shape(out), x.dtype(), Device::CUDA);
  launch_permute(y.raw(), x.raw(), static_cast<int>(dtype_size(x.dtype())), out_shape(y.shape()), in_stride,
                 stream());
  return y;
}

Tensor contiguous_copy(const Tensor& x) {
  require_cuda(x, "contiguous_copy", "x");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  if (x.nbytes() > 0)
    T2V_CUDA_CHECK(cudaMemcpyAsync(y.raw(), x.raw(), x.nbytes(), cudaMemcpyDeviceToDevice, stream()));
  return y;
}

Tensor embedding(const Tensor& table, const Tensor& ids) {
  const char* op = "embedding";
  require_cuda(table, op, "table");
  require_cuda(ids, op, "ids");
  if (table.dim() != 2) fail(kExitSoftware, "embedding: table {} must be [V, C]", table.str());
  if (ids.dtype() != DType::I64 && ids.dtype() != DType::I32)
    fail(kExitSoftware, "embedding: ids {} must be I64 or I32", ids.str());
  if (ids.dim() + 1 > kMaxDims) fail(kExitSoftware, "embedding: ids {} has too many dims", ids.str());
  const int64_t V = table.size(0), C = table.size(1), n = ids.numel();
  std::vector<int64_t> out = ids.shape().vec();
  out.push_back(C);
  Tensor y = Tensor::empty(Shape(out), table.dtype(), Device::CUDA);
  Context& c = context();
  T2V_CUDA_CHECK(cudaMemsetAsync(c.flag, 0, sizeof(int), c.stream));
  launch_embedding(y.raw(), table.raw(), static_cast<int>(dtype_size(table.dtype())), V, C, ids.raw(),
                   ids.dtype() == DType::I64, n, c.flag, c.stream);
  // Bad ids are user data (a tokenizer/vocabulary mismatch): report them like
  // the CPU path. The read-back synchronises; embedding runs once per prompt.
  int bad = 0;
  T2V_CUDA_CHECK(cudaMemcpyAsync(&bad, c.flag, sizeof(int), cudaMemcpyDeviceToHost, c.stream));
  T2V_CUDA_CHECK(cudaStreamSynchronize(c.stream));
  if (bad != 0)
    throw Error(kExitDataErr, fmt::format("embedding: id at position {} is outside the table's {} rows", bad - 1, V),
                "the token ids do not match the model's vocabulary; check the tokenizer files");
  return y;
}

Tensor upsample_nearest2x(const Tensor& x) {
  require_cuda(x, "upsample_nearest2x", "x");
  if (x.dim() < 2) fail(kExitSoftware, "upsample_nearest2x: x {} needs at least 2 dims", x.str());
  std::vector<int64_t> out = x.shape().vec();
  const int64_t H = x.size(-2), W = x.size(-1);
  const int64_t P = (H * W == 0) ? 0 : x.numel() / (H * W);
  out[out.size() - 2] = 2 * H;
  out[out.size() - 1] = 2 * W;
  Tensor y = Tensor::empty(Shape(out), x.dtype(), Device::CUDA);
  launch_upsample_nearest2x(y.raw(), x.raw(), static_cast<int>(dtype_size(x.dtype())), P, H, W, stream());
  return y;
}

Tensor rope_3d(const Tensor& x, const Tensor& table) {
  const char* op = "rope_3d";
  require_cuda(x, op, "x");
  require_cuda(table, op, "table");
  const Elem e = float_elem(x, op, "x");
  const Elem te = float_elem(table, op, "table");
  if (x.dim() != 4 || x.size(3) % 2 != 0)
    fail(kExitSoftware, "rope_3d: x {} must be [B, N, NH, D] with D even", x.str());
  const int64_t B = x.size(0), N = x.size(1), NH = x.size(2), D = x.size(3);
  if (table.dim() != 3 || table.size(0) != N || table.size(1) != D / 2 || table.size(2) != 2)
    fail(kExitSoftware, "rope_3d: table {} must be [N={}, D/2={}, 2] for x {}", table.str(), N, D / 2, x.str());
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  launch_rope_3d(y.raw(), x.raw(), e, B, N, NH, D, table.raw(), te, stream());
  return y;
}

}  // namespace

void register_layout(Backend& b) {
  b.concat = concat;
  b.slice = slice;
  b.permute = permute;
  b.contiguous_copy = contiguous_copy;
  b.embedding = embedding;
  b.upsample_nearest2x = upsample_nearest2x;
  b.rope_3d = rope_3d;
}

}  // namespace t2v::ops::cuda
