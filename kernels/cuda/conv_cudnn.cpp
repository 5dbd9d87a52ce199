// conv3d through cuDNN (see conv_cudnn.h). Uses the descriptor-based
// convolution API, deprecated in cuDNN 9 in favour of the graph API but still
// shipped and supported; a graph-API port is future work (docs/perf_cuda.md).
#include "kernels/cuda/conv_cudnn.h"

#include <cudnn.h>
#include <dlfcn.h>

#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/ops.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/tensor_util.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace t2v::ops::cuda {

struct CudnnState {
  void* lib = nullptr;
  cudnnHandle_t handle = nullptr;
  decltype(&::cudnnGetErrorString) get_error_string = nullptr;
  decltype(&::cudnnCreate) create = nullptr;
  decltype(&::cudnnDestroy) destroy = nullptr;
  decltype(&::cudnnSetStream) set_stream = nullptr;
  decltype(&::cudnnCreateTensorDescriptor) create_tensor = nullptr;
  decltype(&::cudnnSetTensorNdDescriptor) set_tensor = nullptr;
  decltype(&::cudnnDestroyTensorDescriptor) destroy_tensor = nullptr;
  decltype(&::cudnnCreateFilterDescriptor) create_filter = nullptr;
  decltype(&::cudnnSetFilterNdDescriptor) set_filter = nullptr;
  decltype(&::cudnnDestroyFilterDescriptor) destroy_filter = nullptr;
  decltype(&::cudnnCreateConvolutionDescriptor) create_conv = nullptr;
  decltype(&::cudnnSetConvolutionNdDescriptor) set_conv = nullptr;
  decltype(&::cudnnSetConvolutionMathType) set_math = nullptr;
  decltype(&::cudnnDestroyConvolutionDescriptor) destroy_conv = nullptr;
  decltype(&::cudnnGetConvolutionForwardAlgorithm_v7) get_algos = nullptr;
  decltype(&::cudnnGetConvolutionForwardWorkspaceSize) workspace_size = nullptr;
  decltype(&::cudnnConvolutionForward) forward = nullptr;
};

namespace {

#define T2V_CUDNN_CHECK(st, stmt)                                                                    \
  do {                                                                                               \
    const cudnnStatus_t t2v_cudnn_st_ = (stmt);                                                      \
    if (t2v_cudnn_st_ != CUDNN_STATUS_SUCCESS)                                                       \
      ::t2v::ops::cuda::throw_cudnn_error(static_cast<int>(t2v_cudnn_st_),                           \
                                          (st).get_error_string(t2v_cudnn_st_), #stmt, __FILE__, __LINE__); \
  } while (0)

template <class F>
void resolve(void* lib, F& fn, const char* name) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn)
    throw Error(kExitUnavailable, fmt::format("cuDNN library lacks {}", name),
                "install cuDNN 9 (e.g. the nvidia-cudnn-cu13 wheel) or use T2V_CONV=igemm");
}

CudnnState& cudnn_state() {
  Context& c = context();
  if (c.cudnn) return *c.cudnn;
  void* lib = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
  if (!lib) lib = dlopen("libcudnn.so", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    throw Error(kExitUnavailable, fmt::format("cuDNN could not be loaded: {}", dlerror()),
                "put cuDNN 9's lib folder on LD_LIBRARY_PATH, or use T2V_CONV=igemm");
  auto s = std::make_unique<CudnnState>();
  s->lib = lib;
  resolve(lib, s->get_error_string, "cudnnGetErrorString");
  resolve(lib, s->create, "cudnnCreate");
  resolve(lib, s->destroy, "cudnnDestroy");
  resolve(lib, s->set_stream, "cudnnSetStream");
  resolve(lib, s->create_tensor, "cudnnCreateTensorDescriptor");
  resolve(lib, s->set_tensor, "cudnnSetTensorNdDescriptor");
  resolve(lib, s->destroy_tensor, "cudnnDestroyTensorDescriptor");
  resolve(lib, s->create_filter, "cudnnCreateFilterDescriptor");
  resolve(lib, s->set_filter, "cudnnSetFilterNdDescriptor");
  resolve(lib, s->destroy_filter, "cudnnDestroyFilterDescriptor");
  resolve(lib, s->create_conv, "cudnnCreateConvolutionDescriptor");
  resolve(lib, s->set_conv, "cudnnSetConvolutionNdDescriptor");
  resolve(lib, s->set_math, "cudnnSetConvolutionMathType");
  resolve(lib, s->destroy_conv, "cudnnDestroyConvolutionDescriptor");
  resolve(lib, s->get_algos, "cudnnGetConvolutionForwardAlgorithm_v7");
  resolve(lib, s->workspace_size, "cudnnGetConvolutionForwardWorkspaceSize");
  resolve(lib, s->forward, "cudnnConvolutionForward");
  T2V_CUDNN_CHECK(*s, s->create(&s->handle));
  T2V_CUDNN_CHECK(*s, s->set_stream(s->handle, c.stream));
  c.cudnn = s.release();
  return *c.cudnn;
}

cudnnDataType_t cudnn_type(DType dt) {
  switch (dt) {
    case DType::BF16: return CUDNN_DATA_BFLOAT16;
    case DType::F16: return CUDNN_DATA_HALF;
    default: return CUDNN_DATA_FLOAT;
  }
}

// Descriptors destroyed on every path.
struct Descs {
  CudnnState& s;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  explicit Descs(CudnnState& st) : s(st) {}
  ~Descs() {
    if (x) s.destroy_tensor(x);
    if (y) s.destroy_tensor(y);
    if (w) s.destroy_filter(w);
    if (conv) s.destroy_conv(conv);
  }
};

void set_nd(CudnnState& s, cudnnTensorDescriptor_t d, cudnnDataType_t t, const int64_t (&dims64)[5]) {
  int dims[5], strides[5];
  int64_t st = 1;
  for (int i = 4; i >= 0; --i) {
    if (dims64[i] > INT32_MAX || st > INT32_MAX)
      fail(kExitSoftware, "conv3d (cuDNN): tensor too large for 32-bit descriptors");
    dims[i] = static_cast<int>(dims64[i]);
    strides[i] = static_cast<int>(st);
    st *= dims64[i];
  }
  T2V_CUDNN_CHECK(s, s.set_tensor(d, t, 5, dims, strides));
}

// x with `front`/`back` zero slabs added along dim `d` (a concat, no kernel).
Tensor pad_dim(const Tensor& x, int d, int front, int back) {
  if (front == 0 && back == 0) return x;
  std::vector<Tensor> parts;
  std::vector<int64_t> s = x.shape().vec();
  if (front > 0) {
    s[d] = front;
    parts.push_back(Tensor::zeros(Shape(s), x.dtype(), Device::CUDA));
  }
  parts.push_back(x);
  if (back > 0) {
    s[d] = back;
    parts.push_back(Tensor::zeros(Shape(s), x.dtype(), Device::CUDA));
  }
  return ops::concat(parts, d);
}

}  // namespace

void destroy_cudnn_state(CudnnState* s) {
  if (!s) return;
  if (s->handle && s->destroy) s->destroy(s->handle);
  // The library stays loaded: unloading cuDNN at exit has crashed in practice
  // (its own static destructors run after ours).
  delete s;
}

void conv3d_cudnn(Tensor& y, const Tensor& x_in, const Tensor& w, const Tensor& bias, const ConvArgs& a,
                  int pad_t_back, int pad_h_back, int pad_w_back) {
  CudnnState& s = cudnn_state();
  // Symmetric part of each padding goes to cuDNN; the excess is materialised.
  const int pt = std::min(a.pt, pad_t_back), ph = std::min(a.ph, pad_h_back), pw = std::min(a.pw, pad_w_back);
  Tensor x = pad_dim(x_in, 2, a.pt - pt, pad_t_back - pt);
  x = pad_dim(x, 3, a.ph - ph, pad_h_back - ph);
  x = pad_dim(x, 4, a.pw - pw, pad_w_back - pw);

  const cudnnDataType_t t = cudnn_type(x.dtype());
  Descs d(s);
  T2V_CUDNN_CHECK(s, s.create_tensor(&d.x));
  T2V_CUDNN_CHECK(s, s.create_tensor(&d.y));
  T2V_CUDNN_CHECK(s, s.create_filter(&d.w));
  T2V_CUDNN_CHECK(s, s.create_conv(&d.conv));
  set_nd(s, d.x, t, {x.size(0), x.size(1), x.size(2), x.size(3), x.size(4)});
  set_nd(s, d.y, t, {a.B, a.Cout, a.To, a.Ho, a.Wo});
  const int wdims[5] = {static_cast<int>(a.Cout), static_cast<int>(a.Cin), static_cast<int>(a.kt),
                        static_cast<int>(a.kh), static_cast<int>(a.kw)};
  T2V_CUDNN_CHECK(s, s.set_filter(d.w, t, CUDNN_TENSOR_NCHW, 5, wdims));
  const int pads[3] = {pt, ph, pw}, strides[3] = {a.st, a.sh, a.sw}, dil[3] = {1, 1, 1};
  T2V_CUDNN_CHECK(s, s.set_conv(d.conv, 3, pads, strides, dil, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  // fp32 storage: plain FMA (cuDNN would otherwise use TF32 and miss the fp32
  // reference); half storage: tensor cores, fp32 accumulation.
  T2V_CUDNN_CHECK(s, s.set_math(d.conv, x.dtype() == DType::F32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));

  cudnnConvolutionFwdAlgoPerf_t perf[8];
  int n = 0;
  T2V_CUDNN_CHECK(s, s.get_algos(s.handle, d.x, d.w, d.conv, d.y, 8, &n, perf));
  constexpr size_t kMaxWorkspace = size_t{2} << 30;
  int pick = -1;
  for (int i = 0; i < n && pick < 0; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kMaxWorkspace) pick = i;
  if (pick < 0)
    fail(kExitSoftware, "conv3d (cuDNN): no algorithm for x {} w {} within {} bytes of workspace", x.str(), w.str(),
         kMaxWorkspace);
  size_t ws_bytes = 0;
  T2V_CUDNN_CHECK(s, s.workspace_size(s.handle, d.x, d.w, d.conv, d.y, perf[pick].algo, &ws_bytes));
  Tensor ws;
  if (ws_bytes > 0) ws = Tensor::empty(Shape{static_cast<int64_t>(ws_bytes)}, DType::U8, Device::CUDA);
  const float alpha = 1.0f, beta = 0.0f;
  T2V_CUDNN_CHECK(s, s.forward(s.handle, &alpha, d.x, x.raw(), d.w, w.raw(), d.conv, perf[pick].algo,
                               ws_bytes ? ws.raw() : nullptr, ws_bytes, &beta, d.y, y.raw()));
  if (bias.defined()) y = ops::add(y, bias.reshape(Shape{1, a.Cout, 1, 1, 1}));  // bias [C] over [B, C, T, H, W]
}

}  // namespace t2v::ops::cuda

#pragma GCC diagnostic pop
