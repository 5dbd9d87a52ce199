// The CUDA context and the device backend registered in core (see runtime.h).
#include "kernels/cuda/runtime.h"

#include <cublasLt.h>

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_cudnn.h"

namespace t2v::ops::cuda {

namespace {

// The one process-wide object of the backend (see runtime.h): core's
// DeviceBackend hooks are plain function pointers, so they reach it here.
std::unique_ptr<Context> g_ctx;

constexpr size_t kGemmWorkspaceBytes = size_t{32} << 20;  // cuBLASLt recommends >= 32 MiB on Hopper

void* backend_alloc(size_t nbytes) {
  Context& c = context();
  if (!c.poison) return c.allocator->allocate(nbytes);
  void* p = c.allocator->allocate(nbytes + kDebugGuardBytes);
  T2V_CUDA_CHECK(cudaMemsetAsync(p, 0xFF, nbytes + kDebugGuardBytes, c.stream));
  return p;
}

void backend_free(void* p) {
  // Tensors may outlive shutdown(); their memory was already released then.
  if (!g_ctx) return;
  g_ctx->allocator->free(p);
  // Uncached mode: every block goes straight back to cudaFree, so
  // compute-sanitizer sees each tensor as its own allocation.
  if (g_ctx->uncached) g_ctx->allocator->release_cached();
}

void backend_copy(void* dst, const void* src, size_t nbytes, int kind) {
  Context& c = context();
  const cudaMemcpyKind k = kind == 0 ? cudaMemcpyHostToDevice
                           : kind == 1 ? cudaMemcpyDeviceToHost
                                       : cudaMemcpyDeviceToDevice;
  T2V_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, k, c.stream));
  // Host buffers are pageable and may be freed as soon as we return: wait for
  // copies that touch the host. Device-to-device copies stay in stream order.
  if (k != cudaMemcpyDeviceToDevice) T2V_CUDA_CHECK(cudaStreamSynchronize(c.stream));
}

void backend_memset0(void* dst, size_t nbytes) {
  T2V_CUDA_CHECK(cudaMemsetAsync(dst, 0, nbytes, context().stream));
}

// Copies ahead on a second stream. Each starts after the compute stream's work queued so
// far (the caching allocator may have handed `dst` out again right after that work freed
// it); the compute stream waits for them at backend_wait_copies_ahead. From pageable host
// memory the driver stages the bytes, so the call returns once they are staged.
void backend_copy_ahead(void* dst, const void* src, size_t nbytes) {
  Context& c = context();
  if (!c.copy_stream) {
    T2V_CUDA_CHECK(cudaStreamCreateWithFlags(&c.copy_stream, cudaStreamNonBlocking));
    T2V_CUDA_CHECK(cudaEventCreateWithFlags(&c.queued, cudaEventDisableTiming));
    T2V_CUDA_CHECK(cudaEventCreateWithFlags(&c.copied, cudaEventDisableTiming));
  }
  T2V_CUDA_CHECK(cudaEventRecord(c.queued, c.stream));
  T2V_CUDA_CHECK(cudaStreamWaitEvent(c.copy_stream, c.queued, 0));
  T2V_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, c.copy_stream));
}

void backend_wait_copies_ahead() {
  Context& c = context();
  if (!c.copy_stream) return;
  T2V_CUDA_CHECK(cudaEventRecord(c.copied, c.copy_stream));
  T2V_CUDA_CHECK(cudaStreamWaitEvent(c.stream, c.copied, 0));
}

void* raw_device_alloc(size_t nbytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, nbytes);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // out of memory is not sticky: clear it and let the cache retry
    return nullptr;
  }
  T2V_CUDA_CHECK(e);
  return p;
}

void raw_device_free(void* p) {
  // Freeing during shutdown after a sticky error would fail again; report the
  // first error only (the destructor path must not throw).
  const cudaError_t e = cudaFree(p);
  (void)e;
}

}  // namespace

bool device_available(std::string* reason) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    if (reason) *reason = fmt::format("{} ({})", cudaGetErrorName(e), cudaGetErrorString(e));
    return false;
  }
  if (n == 0) {
    if (reason) *reason = "cudaGetDeviceCount returned 0 devices";
    return false;
  }
  return true;
}

void init(int device) {
  if (g_ctx) {
    if (g_ctx->info.device != device)
      fail(kExitUsage, "CUDA backend already initialised on device {}, asked for device {}", g_ctx->info.device,
           device);
    return;
  }
  std::string reason;
  if (!device_available(&reason))
    throw Error(kExitUnavailable, fmt::format("no CUDA device: {}", reason),
                "run on a machine with an NVIDIA GPU and a CUDA 13 driver, or use --device cpu");
  int n = 0;
  T2V_CUDA_CHECK(cudaGetDeviceCount(&n));
  if (device < 0 || device >= n)
    throw Error(kExitUsage, fmt::format("CUDA device {} does not exist ({} device(s) present)", device, n),
                fmt::format("pick a device in [0, {})", n));
  T2V_CUDA_CHECK(cudaSetDevice(device));

  auto c = std::make_unique<Context>();
  cudaDeviceProp prop{};
  T2V_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  c->info.device = device;
  c->info.name = prop.name;
  c->info.cc_major = prop.major;
  c->info.cc_minor = prop.minor;
  c->info.sm_count = prop.multiProcessorCount;
  c->info.total_memory = prop.totalGlobalMem;
  c->info.smem_per_block_optin = prop.sharedMemPerBlockOptin;
  c->info.l2_bytes = static_cast<size_t>(prop.l2CacheSize);
  if (prop.major < 8)
    throw Error(kExitUnavailable,
                fmt::format("CUDA device {} ({}) has compute capability {}.{}; bf16 kernels need 8.0 or newer", device,
                            prop.name, prop.major, prop.minor),
                "use an Ampere, Ada or Hopper GPU, or --device cpu");

  T2V_CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  T2V_CUBLAS_CHECK(cublasLtCreate(&c->cublaslt));
  T2V_CUDA_CHECK(cudaMalloc(&c->gemm_workspace, kGemmWorkspaceBytes));
  c->gemm_workspace_bytes = kGemmWorkspaceBytes;
  T2V_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&c->flag), sizeof(int)));
  c->allocator = std::make_unique<CachingAllocator>(raw_device_alloc, raw_device_free);
  if (const char* ak = std::getenv("T2V_ATTENTION")) {
    if (std::strcmp(ak, "mma") == 0) c->attention_kernel = AttentionKernel::Mma;
    else if (std::strcmp(ak, "simt") == 0) c->attention_kernel = AttentionKernel::Simt;
    else throw Error(kExitUsage, fmt::format("T2V_ATTENTION={} is not one of mma, simt", ak));
  }
  if (const char* ck = std::getenv("T2V_CONV")) {
    if (std::strcmp(ck, "cudnn") == 0) c->conv_kernel = ConvKernel::Cudnn;
    else if (std::strcmp(ck, "igemm") == 0) c->conv_kernel = ConvKernel::ImplicitGemm;
    else throw Error(kExitUsage, fmt::format("T2V_CONV={} is not one of cudnn, igemm", ck));
  }
  const char* uncached = std::getenv("T2V_CUDA_UNCACHED");
  c->uncached = uncached && std::strcmp(uncached, "1") == 0;
  g_ctx = std::move(c);

  DeviceBackend b;
  b.alloc = backend_alloc;
  b.free = backend_free;
  b.copy = backend_copy;
  b.memset0 = backend_memset0;
  b.copy_ahead = backend_copy_ahead;
  b.wait_copies_ahead = backend_wait_copies_ahead;
  register_device_backend(Device::CUDA, b);
}

bool initialized() { return g_ctx != nullptr; }

void shutdown() {
  if (!g_ctx) return;
  std::unique_ptr<Context> c = std::move(g_ctx);
  (void)cudaStreamSynchronize(c->stream);
  destroy_cudnn_state(c->cudnn);
  c->cudnn = nullptr;
  c->allocator->release_all();
  if (c->flag) (void)cudaFree(c->flag);
  if (c->gemm_workspace) (void)cudaFree(c->gemm_workspace);
  if (c->cublaslt) (void)cublasLtDestroy(c->cublaslt);
  if (c->copy_stream) (void)cudaStreamSynchronize(c->copy_stream);
  if (c->queued) (void)cudaEventDestroy(c->queued);
  if (c->copied) (void)cudaEventDestroy(c->copied);
  if (c->copy_stream) (void)cudaStreamDestroy(c->copy_stream);
  if (c->stream) (void)cudaStreamDestroy(c->stream);
}

Context& context() {
  if (!g_ctx)
    throw Error(kExitUnavailable, "the CUDA backend is not initialised",
                "call t2v::ops::cuda::init(device) at startup (the CLI does this for --device cuda)");
  return *g_ctx;
}

cudaStream_t stream() { return context().stream; }

void synchronize() { T2V_CUDA_CHECK(cudaStreamSynchronize(context().stream)); }

void set_attention_kernel(AttentionKernel k) { context().attention_kernel = k; }
void set_conv_kernel(ConvKernel k) { context().conv_kernel = k; }

void set_debug_poison(bool on) { context().poison = on; }
bool debug_poison() { return g_ctx && g_ctx->poison; }

AllocatorStats memory_stats() { return context().allocator->stats(); }

void reset_peak_memory() { context().allocator->reset_peak(); }

EventTimer::EventTimer() {
  T2V_CUDA_CHECK(cudaEventCreate(&start_));
  T2V_CUDA_CHECK(cudaEventCreate(&stop_));
}

EventTimer::~EventTimer() {
  if (start_) (void)cudaEventDestroy(start_);
  if (stop_) (void)cudaEventDestroy(stop_);
}

void EventTimer::start() { T2V_CUDA_CHECK(cudaEventRecord(start_, stream())); }

float EventTimer::stop_ms() {
  T2V_CUDA_CHECK(cudaEventRecord(stop_, stream()));
  T2V_CUDA_CHECK(cudaEventSynchronize(stop_));
  float ms = 0.0f;
  T2V_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
  return ms;
}

}  // namespace t2v::ops::cuda
