# CUDA build settings of t2v_kernels, included from kernels/CMakeLists.txt when
# the CUDA backend is built. Kept here so the backend's flags live with its code.
#
# CUDA dialect: CMake 3.25 knows nvcc only up to C++17, and the .cu files need
# nothing newer (they see plain launch declarations, never core/ or fmt).
set_target_properties(t2v_kernels PROPERTIES
  CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON CUDA_EXTENSIONS OFF
  CUDA_SEPARABLE_COMPILATION OFF)
target_compile_options(t2v_kernels PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo -Xcompiler=-Wall,-Wextra>
  $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:${T2V_WERROR}>>:-Werror=all-warnings>)
# cuDNN is loaded at run time (dlopen), so the library works where cuDNN is absent.
target_link_libraries(t2v_kernels PUBLIC ${CMAKE_DL_LIBS})
