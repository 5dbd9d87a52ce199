// attention on CUDA: argument checks, bias broadcast and key-mask conversion,
// then the kernel the context selects (runtime.h AttentionKernel): the
// tensor-core kernel (attention_mma.cu) or the fp32 tiled flash kernel
// (attention_flash.cu). k and v are cast to q's
// dtype when they differ; the bias may be F32/BF16/F16.
#include <fmt/format.h>

#include "core/error.h"
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/tensor_util.h"

namespace t2v::ops::cuda {
namespace {

Tensor attention(const Tensor& q, const Tensor& k_in, const Tensor& v_in, const AttentionParams& p) {
  const char* op = "attention";
  require_cuda(q, op, "q");
  require_cuda(k_in, op, "k");
  require_cuda(v_in, op, "v");
  const Elem e = float_elem(q, op, "q");
  float_elem(k_in, op, "k");
  float_elem(v_in, op, "v");
  if (q.dim() != 4 || k_in.dim() != 4 || v_in.dim() != 4)
    fail(kExitSoftware, "attention: q {}, k {}, v {} must be [B, N, NH, D]", q.str(), k_in.str(), v_in.str());
  const int64_t B = q.size(0), Nq = q.size(1), NH = q.size(2), D = q.size(3);
  const int64_t Nk = k_in.size(1), Dv = v_in.size(3);
  if (k_in.size(0) != B || k_in.size(2) != NH || k_in.size(3) != D || v_in.size(0) != B || v_in.size(1) != Nk ||
      v_in.size(2) != NH)
    fail(kExitSoftware, "attention: q {}, k {}, v {} disagree on B, NH, D or Nk", q.str(), k_in.str(), v_in.str());
  if (D > kAttentionMaxHeadDim || Dv > kAttentionMaxHeadDim)
    throw Error(kExitUnavailable,
                fmt::format("attention: head dim {} / value dim {} above {} is not yet implemented on CUDA", D, Dv,
                            kAttentionMaxHeadDim),
                "use --device cpu for this model");
  const Tensor k = cast_to(k_in, q.dtype());
  const Tensor v = cast_to(v_in, q.dtype());

  AttentionArgs a;
  a.q = q.raw();
  a.k = k.raw();
  a.v = v.raw();
  a.dt = e;
  a.B = B;
  a.Nq = Nq;
  a.Nk = Nk;
  a.NH = NH;
  a.D = D;
  a.Dv = Dv;
  a.scale = p.scale;
  if (p.bias.defined()) {
    require_cuda(p.bias, op, "bias");
    const Shape full{B, NH, Nq, Nk};
    if (p.bias.dim() > 4) fail(kExitSoftware, "attention: bias {} has more than 4 dims", p.bias.str());
    const BView bv = broadcast_view(p.bias, full, op, "bias");
    a.bias = bv.p;
    a.bias_dt = bv.dt;
    for (int i = 0; i < 4; ++i) a.bias_stride[i] = bv.stride[i];
  }
  Tensor keep;
  if (p.key_mask.defined()) {
    require_cuda(p.key_mask, op, "key_mask");
    if (p.key_mask.dim() != 2 || p.key_mask.size(0) != B || p.key_mask.size(1) != Nk)
      fail(kExitSoftware, "attention: key_mask {} must be [B={}, Nk={}]", p.key_mask.str(), B, Nk);
    keep = Tensor::empty(Shape{B, Nk}, DType::U8, Device::CUDA);
    launch_mask_to_keep(static_cast<uint8_t*>(keep.raw()), p.key_mask.raw(), cast_code(p.key_mask.dtype(), op), B * Nk, stream());
    a.keep = static_cast<const uint8_t*>(keep.raw());
  }
  Tensor o = Tensor::empty(Shape{B, Nq, NH, Dv}, q.dtype(), Device::CUDA);
  a.o = o.raw();
  if (context().attention_kernel == AttentionKernel::Mma && attention_mma_supported(a))
    launch_attention_mma(a, stream());
  else
    launch_attention_flash(a, stream());
  return o;
}

}  // namespace

void register_attention(Backend& b) {
  b.attention = attention;
}

}  // namespace t2v::ops::cuda
