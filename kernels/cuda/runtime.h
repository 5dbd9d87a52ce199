// The CUDA runtime context: one device, one stream, the cuBLASLt handle and
// workspace, and the caching allocator behind CUDA tensors. Created by an
// explicit cuda::init(device) (app startup, tests), never by static
// initialisation; kernels/cuda reaches it through context(). It is the only
// process-wide object of the backend: handles and the stream live inside it.
//
//   t2v::ops::cuda::init(0);                 // registers Device::CUDA in core
//   Tensor x = Tensor::empty({4, 8}, DType::BF16, Device::CUDA);
//   ...
//   t2v::ops::cuda::shutdown();              // frees the cache, destroys handles
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/cuda/allocator.h"

namespace t2v::ops::cuda {

// Whether a usable CUDA device exists, without throwing. On false, `reason`
// says why (no driver, no device, ...): the text tests print when they skip.
bool device_available(std::string* reason = nullptr);

struct DeviceInfo {
  int device = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  size_t total_memory = 0;
  size_t smem_per_block_optin = 0;  // bytes a block may use after cudaFuncSetAttribute
  size_t l2_bytes = 0;
};

// Which attention kernel ops::attention uses. Simt: the fp32 tiled flash kernel
// (attention_flash.cu), every shape. Mma: the tensor-core kernel
// (attention_mma.cu) where it applies (bf16, D = Dv in {64, 128}), Simt
// elsewhere. The default is Simt until the Mma kernel has passed the
// backend-ops test on a GPU; T2V_ATTENTION=mma|simt overrides at init().
enum class AttentionKernel { Simt, Mma };
// Which conv3d/conv2d implementation runs: our implicit GEMM (conv.cu) or cuDNN
// (conv_cudnn.cpp, loaded at first use). Default ImplicitGemm until the cuDNN
// path has passed the backend-ops test on a GPU; T2V_CONV=cudnn|igemm overrides.
enum class ConvKernel { ImplicitGemm, Cudnn };
struct CudnnState;

struct Context {
  DeviceInfo info;
  cudaStream_t stream = nullptr;               // every op of the pipeline runs on this stream
  cublasLtHandle_t cublaslt = nullptr;
  void* gemm_workspace = nullptr;              // cuBLASLt workspace (raw cudaMalloc)
  size_t gemm_workspace_bytes = 0;
  std::unique_ptr<CachingAllocator> allocator;
  int* flag = nullptr;                         // one device int for kernels that report errors (embedding ids)
  AttentionKernel attention_kernel = AttentionKernel::Simt;
  ConvKernel conv_kernel = ConvKernel::ImplicitGemm;
  CudnnState* cudnn = nullptr;                 // loaded on first use (conv_cudnn.cpp)
  bool poison = false;                         // see set_debug_poison()
  bool uncached = false;                       // T2V_CUDA_UNCACHED=1: free blocks at once (for compute-sanitizer)
  // Copies ahead (Tensor::to_ahead, weight offloading): made on first use.
  cudaStream_t copy_stream = nullptr;          // host->device copies beside the compute stream
  cudaEvent_t queued = nullptr;                // the compute stream's work so far (a copy starts after it)
  cudaEvent_t copied = nullptr;                // the copies so far (the compute stream waits for it)
};

// Sets up the context on `device` and registers the CUDA device backend in core
// (core/tensor.h). Throws t2v::Error(69) when no usable device is present.
// Calling it again with the same device is a no-op; another device is an error.
void init(int device = 0);
bool initialized();
// Synchronises, frees every cached and live block, destroys the handles.
void shutdown();
// The context; throws t2v::Error(69) if init() was not called.
Context& context();
cudaStream_t stream();
void synchronize();  // waits for the stream (checked)

// Testing aid (tests/cuda): while on, every new tensor allocation is filled
// with 0xFF bytes (NaN as F32, BF16 and F16) and followed by kDebugGuardBytes
// of 0xFF, so an unwritten output element reads NaN and a write past the end
// shows in the guard. Off by default; costs a memset per allocation.
constexpr size_t kDebugGuardBytes = 256;
void set_debug_poison(bool on);
bool debug_poison();

void set_attention_kernel(AttentionKernel k);
void set_conv_kernel(ConvKernel k);

// Device memory statistics of the caching allocator.
AllocatorStats memory_stats();
void reset_peak_memory();

// Times a region of stream work with CUDA events (after warm-up; take medians).
class EventTimer {
 public:
  EventTimer();
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void start();
  float stop_ms();  // records the stop event, waits for it, returns elapsed ms

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace t2v::ops::cuda
