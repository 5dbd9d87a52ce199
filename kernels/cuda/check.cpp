// Error mapping for checked CUDA calls (see check.h).
#include "kernels/cuda/check.h"

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"

namespace t2v::ops::cuda {

bool cuda_error_is_sticky(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorECCUncorrectable:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorContextIsDestroyed:
    case cudaErrorUnknown:
      return true;
    default:
      return false;
  }
}

int cuda_error_exit_code(cudaError_t e) {
  if (cuda_error_is_sticky(e)) return kExitTempFail;
  switch (e) {
    case cudaErrorMemoryAllocation:
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorInvalidDevice:
      return kExitUnavailable;
    default:
      return kExitSoftware;
  }
}

[[noreturn]] void throw_cuda_error(cudaError_t e, const char* stmt, const char* file, int line) {
  const int code = cuda_error_exit_code(e);
  std::string hint;
  if (code == kExitTempFail)
    hint = "the GPU context is unusable after this error; the run can be retried (check `dmesg` for Xid/ECC reports)";
  else if (e == cudaErrorMemoryAllocation)
    hint = "use a smaller size/frame count or a GPU with more memory";
  else if (e == cudaErrorNoKernelImageForDevice)
    hint = "rebuild with CMAKE_CUDA_ARCHITECTURES including this GPU's compute capability";
  else if (code == kExitUnavailable)
    hint = "check that an NVIDIA GPU and a CUDA 13 driver are present, or use --device cpu";
  throw Error(code,
              fmt::format("CUDA error {} ({}) in `{}` at {}:{}", cudaGetErrorName(e), cudaGetErrorString(e), stmt,
                          file, line),
              hint);
}

[[noreturn]] void throw_cublas_error(cublasStatus_t s, const char* stmt, const char* file, int line) {
  // cuBLAS reports asynchronous kernel faults as EXECUTION_FAILED; the runtime
  // error underneath decides whether the context is lost.
  int code = kExitSoftware;
  if (s == CUBLAS_STATUS_EXECUTION_FAILED) {
    const cudaError_t e = cudaPeekAtLastError();
    if (cuda_error_is_sticky(e)) code = kExitTempFail;
  } else if (s == CUBLAS_STATUS_ALLOC_FAILED) {
    code = kExitUnavailable;
  }
  throw Error(code, fmt::format("cuBLAS error {} ({}) in `{}` at {}:{}", cublasGetStatusName(s),
                                cublasGetStatusString(s), stmt, file, line));
}

[[noreturn]] void throw_cudnn_error(int status, const char* what, const char* stmt, const char* file, int line) {
  throw Error(kExitSoftware, fmt::format("cuDNN error {} ({}) in `{}` at {}:{}", status, what, stmt, file, line));
}

void check_last_launch(const char* kernel, const char* file, int line) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) {
    static const bool sync_check = [] {
      const char* v = std::getenv("T2V_CUDA_SYNC_CHECK");
      return v && std::strcmp(v, "1") == 0;
    }();
    if (!sync_check) return;
    e = cudaDeviceSynchronize();
    if (e == cudaSuccess) return;
  }
  throw_cuda_error(e, kernel, file, line);
}

}  // namespace t2v::ops::cuda
