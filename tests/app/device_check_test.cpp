// The device and the dtype are settled before any model file is opened: `--device cuda`
// where no GPU can be used (or in a build without CUDA) is exit 69, a `--dtype` the
// backends do not run on the device is exit 64, each one line, at once, with nothing
// written - for `generate` and `batch` alike.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <chrono>
#include <filesystem>

#include "app/device.h"
#include "cli_test_util.h"
#include "core/error.h"
#include "video_io/mp4_reader.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Whether --device cuda would work here; then the refusal cannot be seen.
bool gpu_usable() {
  try {
    open_device("cuda");
    return true;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitUnavailable) << e.what();
    return false;
  }
}

struct Timed {
  RunResult r;
  double wall_s = 0;
  double cpu_s = 0;  // user + system time of the program: what it did, however busy the machine is
};

double children_cpu_s() {
  struct rusage u {};
  getrusage(RUSAGE_CHILDREN, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// The restart main() does to configure the BLAS library is left out: it doubles the start-up
// time and has nothing to do with when the device is checked.
Timed run_timed(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {T2V_EXE};
  argv.insert(argv.end(), args.begin(), args.end());
  const double cpu0 = children_cpu_s();
  const auto t0 = std::chrono::steady_clock::now();
  Timed t;
  t.r = run_program(argv, {{"T2V_NO_BLAS_REEXEC", "1"}});
  t.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  t.cpu_s = children_cpu_s() - cpu0;
  return t;
}

std::vector<std::string> generate_args(const TempDir& dir, const std::string& model,
                                       const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"generate", "-p",      "a red ball", "--model", model, "-o",
                                dir.file("out/v.mp4"), "--size", "16x16", "--frames", "1", "--steps", "1"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::vector<std::string> batch_args_for(const TempDir& dir, const std::string& model,
                                        const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"batch",  dir.file("list.jsonl"), "--out-dir", dir.file("out"), "--model", model,
                                "--size", "16x16", "--frames", "1", "--steps", "1"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// Nothing under out/ for generate (the folder exists, the video must not); no out/ at all for
// batch (the folder is made only after the device check).
void expect_nothing_written(const TempDir& dir, bool batch) {
  if (batch) {
    EXPECT_FALSE(fs::exists(dir.file("out"))) << "the output folder was made";
  } else {
    EXPECT_TRUE(fs::is_empty(dir.file("out"))) << "a file (or temp file) was written";
  }
}

TEST(DeviceCheck, CudaWithoutAGpuExits69AtOnceForGenerateAndBatch) {
  if (gpu_usable()) GTEST_SKIP() << "a GPU is usable here: --device cuda renders instead of exiting 69";
  for (bool batch : {false, true}) {
    // The real model (the refusal must come before it loads), and a model that does not
    // exist (the refusal must come before the model is even looked up: else 66).
    for (const std::string& model : {test_model_dir(), std::string("/nonexistent/model")}) {
      SCOPED_TRACE(std::string(batch ? "batch" : "generate") + " --model " + model);
      TempDir dir;
      fs::create_directories(dir.file(batch ? "" : "out"));
      write_text(dir.file("list.jsonl"), prompt_list(2));
      const std::vector<std::string> args = batch ? batch_args_for(dir, model, {"--device", "cuda"})
                                                  : generate_args(dir, model, {"--device", "cuda"});
      Timed t = run_timed(args);
      EXPECT_EQ(t.r.code, 69) << t.r.err;
      EXPECT_EQ(count_lines(t.r.err), 1) << "one line: " << t.r.err;
      EXPECT_NE(t.r.err.find("t2v: error:"), std::string::npos) << t.r.err;
      EXPECT_TRUE(t.r.out.empty()) << t.r.out;
      expect_nothing_written(dir, batch);
      // Start-up and the failed CUDA start only (0.3 s measured; rendering this model's
      // smallest video takes 1.7 s or more). The processor time, not the wall clock: on a
      // machine busy with other work the program may wait for a core longer than it runs.
      EXPECT_LT(t.cpu_s, 0.8) << "the refusal took " << t.cpu_s << " s of processor time";
      std::printf("%s --device cuda without a GPU: exit %d after %.3f s (%.3f s of processor time)\n",
                  batch ? "batch" : "generate", t.r.code, t.wall_s, t.cpu_s);
    }
  }
}

TEST(DeviceCheck, DtypeIsHonouredByGenerateAndBatchAlike) {
  // bf16 on the CPU and fp8 anywhere are refused before any model is looked up (else 66).
  for (bool batch : {false, true}) {
    for (const char* dtype : {"bf16", "fp8"}) {
      SCOPED_TRACE(std::string(batch ? "batch" : "generate") + " --dtype " + dtype);
      TempDir dir;
      fs::create_directories(dir.file(batch ? "" : "out"));
      write_text(dir.file("list.jsonl"), prompt_list(2));
      const std::vector<std::string> extra = {"--device", "cpu", "--dtype", dtype};
      RunResult r = run_t2v(batch ? batch_args_for(dir, "/nonexistent/model", extra)
                                  : generate_args(dir, "/nonexistent/model", extra));
      EXPECT_EQ(r.code, 64) << r.err;
      EXPECT_NE(r.err.find(std::string("--dtype ") + dtype), std::string::npos) << r.err;
      EXPECT_EQ(count_lines(r.err), 1) << r.err;
      expect_nothing_written(dir, batch);
    }
  }
  // An unknown name is a usage error naming the option, for both commands.
  for (bool batch : {false, true}) {
    TempDir dir;
    fs::create_directories(dir.file("out"));
    write_text(dir.file("list.jsonl"), prompt_list(1));
    RunResult r = run_t2v(batch ? batch_args_for(dir, "/nonexistent/model", {"--dtype", "fp16"})
                                : generate_args(dir, "/nonexistent/model", {"--dtype", "fp16"}));
    EXPECT_EQ(r.code, 64) << r.err;
    EXPECT_NE(r.err.find("--dtype 'fp16' is unknown"), std::string::npos) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
  }
}

TEST(DeviceCheck, BatchRendersWithTheDtypeGiven) {
  // --dtype f32 on the CPU is what auto chooses there: the same frames (the files differ only
  // in their timing metadata).
  TempDir dir;
  write_text(dir.file("list.jsonl"), prompt_list(1));
  RunResult a = run_t2v(batch_args(dir.file("list.jsonl"), dir.file("a"), {"--dtype", "f32"}));
  ASSERT_EQ(a.code, 0) << a.err;
  RunResult b = run_t2v(batch_args(dir.file("list.jsonl"), dir.file("b"), {"--dtype", "auto"}));
  ASSERT_EQ(b.code, 0) << b.err;
  Mp4Reader ra, rb;
  ra.open(dir.file("a/item0.mp4"));
  rb.open(dir.file("b/item0.mp4"));
  const auto fa = ra.read_all_frames();
  ASSERT_FALSE(fa.empty());
  EXPECT_EQ(fa, rb.read_all_frames());
}

}  // namespace
}  // namespace t2v::test
