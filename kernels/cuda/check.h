// Checked calls into the CUDA runtime, cuBLASLt and cuDNN. Every call in
// kernels/cuda goes through one of these macros; a failure throws t2v::Error
// naming the statement, file and line. Sticky device errors (illegal address,
// ECC, launch failure, ...) leave the context unusable for the rest of the
// process, so they carry exit code 75 (EX_TEMPFAIL: retry, ideally on another
// node); out-of-memory carries 69 with the sizes; anything else is 70.
// Plain C++ (no kernels): the error mapping is unit-tested without a GPU
// (tests/cuda/test_cuda_runtime.cpp).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>

namespace t2v::ops::cuda {

// True for errors after which the CUDA context cannot be used again.
bool cuda_error_is_sticky(cudaError_t e);
// The exit code an error maps to (75 sticky, 69 out of memory / no device, 70 otherwise).
int cuda_error_exit_code(cudaError_t e);

// Throw t2v::Error for a failed call; `stmt` is the statement text.
[[noreturn]] void throw_cuda_error(cudaError_t e, const char* stmt, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t s, const char* stmt, const char* file, int line);
// cuDNN status as a plain int so this header does not need cudnn.h.
[[noreturn]] void throw_cudnn_error(int status, const char* what, const char* stmt, const char* file, int line);

// After a kernel launch: picks up launch-configuration errors (and, with
// T2V_CUDA_SYNC_CHECK=1 in the environment, synchronises to attribute
// asynchronous faults to the launch that caused them; for debugging).
void check_last_launch(const char* kernel, const char* file, int line);

}  // namespace t2v::ops::cuda

#define T2V_CUDA_CHECK(stmt)                                                               \
  do {                                                                                     \
    cudaError_t t2v_cuda_err_ = (stmt);                                                    \
    if (t2v_cuda_err_ != cudaSuccess)                                                      \
      ::t2v::ops::cuda::throw_cuda_error(t2v_cuda_err_, #stmt, __FILE__, __LINE__);        \
  } while (0)

#define T2V_CUBLAS_CHECK(stmt)                                                             \
  do {                                                                                     \
    cublasStatus_t t2v_cublas_st_ = (stmt);                                                \
    if (t2v_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                           \
      ::t2v::ops::cuda::throw_cublas_error(t2v_cublas_st_, #stmt, __FILE__, __LINE__);     \
  } while (0)

// Names the kernel in the error; use right after every <<<...>>> launch.
#define T2V_CUDA_LAUNCH_CHECK(kernel_name) \
  ::t2v::ops::cuda::check_last_launch(kernel_name, __FILE__, __LINE__)
