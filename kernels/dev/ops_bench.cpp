// Times the production CUDA ops (kernels/ops.h on Device::CUDA tensors) at real
// Wan2.1 sizes: median of CUDA-event timings after warm-up, with the achieved
// TFLOP/s (GEMM, attention, conv) or GB/s (memory-bound ops, bytes = inputs
// read once + output written once). Inputs are fresh random bf16, never zeros.
//
//   ops_bench            # 1.3B at 832x480x81 (N = 32760, C = 1536)
//   ops_bench --reps 20
// Ceilings measured on these machines (docs/perf_cuda.md): bf16 GEMM ~798
// TFLOP/s, device copy ~3.0 TB/s (H100) / ~4.3 TB/s (H200).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/runtime.h"
#include "kernels/ops.h"

using namespace t2v;

namespace {

Tensor random_bf16(const Shape& s, std::mt19937& g, float stddev = 1.0f) {
  Tensor t = Tensor::empty(s, DType::F32);
  std::normal_distribution<float> d(0.0f, stddev);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(g);
  return t.to(DType::BF16).to(Device::CUDA);
}

// Median ms of `fn` over `reps` timed runs after `warmup` runs.
double time_ms(const std::function<void()>& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  ops::cuda::EventTimer timer;
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    timer.start();
    fn();
    ms.push_back(timer.stop_ms());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void report(const char* what, double ms, double flop, double bytes) {
  std::printf("%-58s %9.3f ms", what, ms);
  if (flop > 0) std::printf("  %7.1f TFLOP/s", flop / (ms * 1e-3) / 1e12);
  if (bytes > 0) std::printf("  %7.1f GB/s", bytes / (ms * 1e-3) / 1e9);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 10;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::atoi(argv[i + 1]);
  try {
    ops::cuda::init(0);
    const auto& info = ops::cuda::context().info;
    std::printf("ops_bench on %s (sm_%d%d), bf16 storage, median of %d\n", info.name.c_str(), info.cc_major,
                info.cc_minor, reps);
    std::mt19937 g(std::random_device{}());
    const int64_t N = 32760, C = 1536, F = 8960, NH = 12, D = 128, L = 512;
    const double b2 = 2.0;  // bytes per bf16 element

    const Tensor x = random_bf16(Shape{1, N, C}, g);
    const Tensor w = random_bf16(Shape{C, C}, g, 0.02f), bias = random_bf16(Shape{C}, g);
    const Tensor w_up = random_bf16(Shape{F, C}, g, 0.02f), w_down = random_bf16(Shape{C, F}, g, 0.02f);
    Tensor h;
    report("linear 32760x1536x1536 +bias (q/k/v/o)", time_ms([&] { h = ops::linear(x, w, bias); }, 2, reps),
           2.0 * N * C * C, 0);
    report("linear 32760x1536x8960 (FFN up)", time_ms([&] { h = ops::linear(x, w_up); }, 2, reps), 2.0 * N * C * F, 0);
    report("linear_gelu_tanh 32760x1536x8960 (FFN up, GELU epilogue)",
           time_ms([&] { h = ops::linear_gelu_tanh(x, w_up, Tensor()); }, 2, reps), 2.0 * N * C * F, 0);
    const Tensor xf = random_bf16(Shape{1, N, F}, g);
    report("linear 32760x8960x1536 (FFN down)", time_ms([&] { h = ops::linear(xf, w_down); }, 2, reps),
           2.0 * N * C * F, 0);

    const Tensor q = random_bf16(Shape{1, N, NH, D}, g), k = random_bf16(Shape{1, N, NH, D}, g),
                 v = random_bf16(Shape{1, N, NH, D}, g);
    ops::AttentionParams p;
    p.scale = 0.08838834764831845f;
    report("attention self N32760 NH12 D128 (flash SIMT)",
           time_ms([&] { h = ops::attention(q, k, v, p); }, 1, std::max(3, reps / 3)), 4.0 * N * N * NH * D, 0);
    const Tensor kc = random_bf16(Shape{1, L, NH, D}, g), vc = random_bf16(Shape{1, L, NH, D}, g);
    report("attention cross N32760 L512 (flash SIMT)", time_ms([&] { h = ops::attention(q, kc, vc, p); }, 2, reps),
           4.0 * N * L * NH * D, 0);
    ops::cuda::set_attention_kernel(ops::cuda::AttentionKernel::Mma);
    report("attention self N32760 NH12 D128 (mma.sync)", time_ms([&] { h = ops::attention(q, k, v, p); }, 1, reps),
           4.0 * N * N * NH * D, 0);
    report("attention cross N32760 L512 (mma.sync)", time_ms([&] { h = ops::attention(q, kc, vc, p); }, 2, reps),
           4.0 * N * L * NH * D, 0);
    ops::cuda::set_attention_kernel(ops::cuda::AttentionKernel::Simt);

    const Tensor shift = random_bf16(Shape{1, 1, C}, g), scale = random_bf16(Shape{1, 1, C}, g);
    report("layer_norm_modulate [1,32760,1536]",
           time_ms([&] { h = ops::layer_norm_modulate(x, Tensor(), Tensor(), 1e-6f, shift, scale); }, 2, reps), 0,
           2.0 * N * C * b2);
    report("layer_norm then modulate (unfused)",
           time_ms([&] { h = ops::modulate(ops::layer_norm(x, Tensor(), Tensor(), 1e-6f), shift, scale); }, 2, reps),
           0, 2.0 * N * C * b2);
    const Tensor gamma = random_bf16(Shape{C}, g);
    report("rms_norm [32760,1536]", time_ms([&] { h = ops::rms_norm(x, gamma, 1e-6f); }, 2, reps), 0, 2.0 * N * C * b2);
    const Tensor y = random_bf16(Shape{1, N, C}, g);
    report("add_gated [1,32760,1536]", time_ms([&] { h = ops::add_gated(x, y, shift); }, 2, reps), 0,
           3.0 * N * C * b2);
    report("gelu_tanh [1,32760,8960]", time_ms([&] { h = ops::gelu_tanh(xf); }, 2, reps), 0, 2.0 * N * F * b2);
    // A (cos, sin) table of arbitrary angles: the kernel's time does not depend on them.
    Tensor table = Tensor::empty(Shape{N, D / 2, 2}, DType::F32);
    for (int64_t i = 0; i < N * D / 2; ++i) {
      table.data<float>()[2 * i] = std::cos(0.001f * static_cast<float>(i));
      table.data<float>()[2 * i + 1] = std::sin(0.001f * static_cast<float>(i));
    }
    table = table.to(Device::CUDA);
    report("rope_3d [1,32760,12,128]", time_ms([&] { h = ops::rope_3d(q, table); }, 2, reps), 0,
           2.0 * N * NH * D * b2);

    // Wan VAE decoder: a 3x3x3 causal conv at 384 channels on the 60x104 latent grid, 3 frames.
    const Tensor xv = random_bf16(Shape{1, 384, 3, 60, 104}, g), wv = random_bf16(Shape{384, 384, 3, 3, 3}, g, 0.02f);
    ops::Conv3dParams cp;
    cp.pad_t_front = 2;
    cp.pad_h = cp.pad_w = 1;
    report("conv3d 384->384 3x3x3 [1,384,3,60,104] (implicit GEMM SIMT)",
           time_ms([&] { h = ops::conv3d(xv, wv, Tensor(), cp); }, 1, std::max(3, reps / 3)),
           2.0 * 384 * 384 * 27 * 3 * 60 * 104, 0);
    try {
      ops::cuda::set_conv_kernel(ops::cuda::ConvKernel::Cudnn);
      report("conv3d 384->384 3x3x3 [1,384,3,60,104] (cuDNN)",
             time_ms([&] { h = ops::conv3d(xv, wv, Tensor(), cp); }, 2, reps), 2.0 * 384 * 384 * 27 * 3 * 60 * 104, 0);
      const Tensor xbig = random_bf16(Shape{1, 96, 4, 480, 832}, g), wbig = random_bf16(Shape{96, 96, 3, 3, 3}, g, 0.02f);
      report("conv3d 96->96 3x3x3 [1,96,4,480,832] (cuDNN, VAE last stage)",
             time_ms([&] { h = ops::conv3d(xbig, wbig, Tensor(), cp); }, 1, std::max(3, reps / 3)),
             2.0 * 96 * 96 * 27 * 4 * 480 * 832, 0);
    } catch (const std::exception& e) {
      std::printf("conv3d (cuDNN): %s\n", e.what());
    }
    ops::cuda::set_conv_kernel(ops::cuda::ConvKernel::ImplicitGemm);

    const auto st = ops::cuda::memory_stats();
    std::printf("device memory: peak in use %.1f MiB, reserved %.1f MiB\n", st.peak_in_use_bytes / 1048576.0,
                st.peak_reserved_bytes / 1048576.0);
    ops::cuda::shutdown();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ops_bench: %s\n", e.what());
    return 70;
  }
}
