// CPU time of one real-size umT5-XXL layer on a 512-token prompt (random
// weights in memory). Not part of the suite (DISABLED_); run it with
//   OMP_NUM_THREADS=N ./test_text_encoder --gtest_also_run_disabled_tests --gtest_filter='*UMT5Bench*'
// It builds an encoder with the umt5-xxl config cut to one block (and a small
// embedding, which is a row gather either way) and times forward() on [1, 512]
// ids: embedding + one block + the final norm, i.e. one layer.
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>

#include "text_encoder/umt5.h"

namespace t2v {
namespace {

TEST(UMT5Bench, DISABLED_OneXxlLayer512TokensCpu) {
  UMT5Config cfg = UMT5Config::preset("umt5-xxl");
  cfg.num_layers = 1;
  cfg.vocab_size = 1024;
  RandomSource weights(7);  // core/weights.h: deterministic random weights
  UMT5Encoder enc = UMT5Encoder::bind(WeightScope(weights), cfg);
  Tensor ids = Tensor::empty(Shape{1, 512}, DType::I64);
  for (int64_t i = 0; i < 512; ++i) ids.data<int64_t>()[i] = (i * 37) % 1024;
  std::vector<double> secs, cpu;
  for (int r = 0; r < 4; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    std::clock_t c0 = std::clock();  // process CPU time, all threads
    Tensor out = enc.forward(ids, Tensor());
    cpu.push_back(double(std::clock() - c0) / CLOCKS_PER_SEC);
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_EQ(out.shape(), (Shape{1, 512, 4096}));
  }
  secs.erase(secs.begin());  // warm-up (page faults, thread pool start)
  cpu.erase(cpu.begin());
  std::sort(secs.begin(), secs.end());
  std::sort(cpu.begin(), cpu.end());
  // Linear FLOPs: 2·L·(4·D·D + 3·D·F); attention: 2·2·L·L·D.
  const double flops = 2.0 * 512 * (4.0 * 4096 * 4096 + 3.0 * 4096 * 10240) + 4.0 * 512 * 512 * 4096;
  std::printf("one umT5-XXL layer, 512 tokens, %d OpenMP threads: wall median %.3f s (min %.3f, max %.3f) = %.1f "
              "GFLOP/s; process CPU time median %.3f s (%.1f GFLOP per CPU-second)\n",
              omp_get_max_threads(), secs[1], secs[0], secs[2], flops / secs[1] / 1e9, cpu[1], flops / cpu[1] / 1e9);
}

}  // namespace
}  // namespace t2v
